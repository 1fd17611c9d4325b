"""TMDB misbehaving: 429 storms (rate respected, every request answered after recovery), 5xx,
timeouts, TMDB down (503 or the cached copy, nothing lost) and a wrong key (a clear 502)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from prefshift_tmdb_proxy.importer import import_tmdb_jsonl
from tests.fakes.tmdb_server import FakeTmdb
from tests.tmdb_proxy.conftest import ProxyFactory, service_of

MATRIX = 603
TOY_STORY = 862
JUMANJI = 8844


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The most requests that arrived within any ``window`` seconds."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def arrival_bound(rate: float) -> float:
    """Most arrivals the fake may see in one second from a proxy limited to ``rate``/s.

    Sends are 1/rate apart, so a window holds rate + 1 of them; but the fake timestamps
    arrivals, and on a loaded machine a scheduler stall of the fake's thread bunches a few
    sends into one window. 20% + 2 covers such stalls (the default 35/s keeps TMDB's ~40/s
    with the same margin), while a proxy without a limiter sends the whole burst at once.
    """
    return rate * 1.2 + 2


@pytest.mark.slow
async def test_429_storm_is_retried_within_the_rate_and_every_request_answered(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    rate = 20.0
    ids = sorted(fake_tmdb.movies)[:60]
    fake_tmdb.fail(429, retry_after=0.2, count=20)
    async with proxy(
        fake_tmdb,
        tmdb_proxy_rate_limit=rate,
        tmdb_proxy_max_attempts=10,
        tmdb_proxy_retry_budget_s=30.0,
        tmdb_proxy_request_deadline_s=60.0,  # wait for TMDB: this test is about the retries
    ) as client:
        responses = await asyncio.gather(*(client.get(f"/3/movie/{i}") for i in ids))
        stats = (await client.get("/cache/stats")).json()

    assert [r.status_code for r in responses] == [200] * len(ids)
    assert [r.json()["id"] for r in responses] == ids
    assert fake_tmdb.count(status=429) == 20
    assert fake_tmdb.count(status=200) == len(ids)
    assert max_in_any_window(fake_tmdb.times()) <= arrival_bound(rate)
    assert stats["upstream_errors"] == 20 and stats["upstream_retries"] == 20
    assert stats["upstream_calls"] == len(ids) + 20
    assert stats["rate_limit_waits"] > 0


@pytest.mark.slow
async def test_rate_limit_holds_for_a_burst_of_distinct_misses(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    rate = 25.0
    ids = sorted(fake_tmdb.movies)[:75]
    async with proxy(
        fake_tmdb,
        tmdb_proxy_rate_limit=rate,
        tmdb_proxy_fetches_per_request=500,  # every miss fetched: this test is about the limiter
        tmdb_proxy_request_deadline_s=60.0,
    ) as client:
        response = await client.post("/movies/batch", json={"tmdb_ids": ids})
    assert response.status_code == 200 and len(response.json()["movies"]) == len(ids)
    times = fake_tmdb.times()
    assert len(times) == len(ids)
    assert max_in_any_window(times) <= arrival_bound(rate)
    assert (len(times) - 1) / (times[-1] - times[0]) <= rate * 1.05


async def test_5xx_and_timeouts_are_retried(proxy: ProxyFactory, fake_tmdb: FakeTmdb) -> None:
    async with proxy(fake_tmdb, tmdb_proxy_timeout_s=0.3) as client:
        fake_tmdb.fail(500, count=2)
        assert (await client.get(f"/3/movie/{MATRIX}")).status_code == 200
        assert fake_tmdb.count(f"/3/movie/{MATRIX}") == 3

        fake_tmdb.delay = 1.0  # slower than the proxy's per-attempt timeout
        slow = asyncio.create_task(client.get(f"/3/movie/{TOY_STORY}"))
        await asyncio.sleep(0.5)
        fake_tmdb.delay = 0.0
        response = await slow
    assert response.status_code == 200 and response.json()["title"] == "Toy Story"


async def test_tmdb_down_answers_the_cached_copy_or_503_and_loses_nothing(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    async with proxy(
        fake_tmdb,
        tmdb_proxy_cache_ttl_s=0.5,
        tmdb_proxy_max_attempts=3,
        tmdb_proxy_retry_budget_s=2.0,
    ) as client:
        cached = (await client.get(f"/3/movie/{MATRIX}")).json()
        await asyncio.sleep(0.6)  # the cached copy is now stale
        fake_tmdb.stop()

        stale = await client.get(f"/3/movie/{MATRIX}")
        unknown = await client.get(f"/3/movie/{TOY_STORY}")
        batch = await client.post("/movies/batch", json={"tmdb_ids": [MATRIX, JUMANJI]})
        stats_down = (await client.get("/cache/stats")).json()

        fake_tmdb.start()
        recovered = await client.get(f"/3/movie/{TOY_STORY}")
        refreshed = await client.get(f"/3/movie/{MATRIX}")
        batch_after = await client.post("/movies/batch", json={"tmdb_ids": [MATRIX, JUMANJI]})

    assert stale.status_code == 200 and stale.json() == cached
    assert stale.headers["x-prefshift-stale"] == "true"
    assert unknown.status_code == 503
    assert unknown.json()["success"] is False and unknown.json()["status_code"] == 9  # TMDB's
    assert "no copy exists" in unknown.json()["status_message"]
    # a batch answers what has a copy, and says which came stale and which it could not give
    assert batch.status_code == 200, batch.text
    assert [m["id"] for m in batch.json()["movies"]] == [MATRIX]
    assert batch.json()["stale"] == [MATRIX] and batch.json()["deferred"] == [JUMANJI]
    assert batch.json()["missing"] == []
    assert stats_down["stale_served"] >= 2 and stats_down["entries"] == 1
    assert recovered.status_code == 200 and recovered.json()["title"] == "Toy Story"
    assert refreshed.status_code == 200 and refreshed.json()["title"] == "The Matrix"
    assert [m["id"] for m in batch_after.json()["movies"]] == [MATRIX, JUMANJI]
    assert fake_tmdb.count(f"/3/movie/{MATRIX}") == 2  # first fetch, refresh after recovery


async def test_tmdb_down_falls_back_to_imported_records(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb, database_url: str, tmp_path: Path
) -> None:
    records = tmp_path / "movies.jsonl"
    records.write_text(json.dumps({**fake_tmdb.movies[TOY_STORY], "title": "Toy Story"}))
    import_tmdb_jsonl(database_url, records)
    fake_tmdb.fail(503)
    async with proxy(fake_tmdb, tmdb_proxy_max_attempts=2) as client:
        response = await client.get(f"/3/movie/{TOY_STORY}")
        search = await client.get("/3/search/movie", params={"query": "Toy Story"})
    assert response.status_code == 200
    assert response.headers["x-prefshift-source"] == "offline"
    assert search.status_code == 200
    assert search.json()["results"][0]["id"] == TOY_STORY


async def test_wrong_key_is_a_clear_502_and_not_retried(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    async with proxy(fake_tmdb, api_key="not-the-key") as client:
        response = await client.get(f"/3/movie/{MATRIX}")
        search = await client.get("/3/search/movie", params={"query": "Matrix"})
        service = service_of(client)
    assert response.status_code == 502
    body = response.json()
    assert body["success"] is False and body["status_code"] == 43  # TMDB's body on TMDB's path
    assert "TMDB_API_KEY" in body["status_message"] and "wrong" in body["status_message"]
    assert "not-the-key" not in response.text
    assert search.status_code == 502
    assert fake_tmdb.count() == 2
    assert service.hits == 0


async def test_read_token_is_sent_as_bearer_and_never_as_a_query_parameter(
    proxy: ProxyFactory,
) -> None:
    fake = FakeTmdb(read_token="read-token-xyz")
    with fake.serve():
        async with proxy(fake, api_key="", tmdb_read_token="read-token-xyz") as client:
            response = await client.get(f"/3/movie/{MATRIX}")
    assert response.status_code == 200
    assert fake.log[0].authorization == "Bearer read-token-xyz"
    assert "api_key" not in fake.log[0].query


async def test_other_4xx_from_tmdb_is_a_502_and_not_retried(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    fake_tmdb.fail(403)
    async with proxy(fake_tmdb) as client:
        response = await client.get(f"/3/movie/{MATRIX}")
    assert response.status_code == 502
    assert response.json()["status_code"] == 43
    assert "HTTP 403" in response.json()["status_message"]
    assert fake_tmdb.count() == 1
