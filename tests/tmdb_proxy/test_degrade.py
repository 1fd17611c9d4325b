"""tmdb-proxy degrades instead of blocking (issue cases 2 and 3): when TMDB rate-limits or is
slow, a request answers within its deadline from copies (marked ``stale`` / ``fallback``), asks
TMDB for at most its budget of uncached ids, refreshes those TMDB did not answer later within
the rate limit (never the ids past its budget), and stops the work of a client that went
away."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from sqlalchemy import create_engine, text

from prefshift_common.db import sync_url
from prefshift_tmdb_proxy.config import Settings
from prefshift_tmdb_proxy.main import create_app
from tests.fakes.live import LiveServer
from tests.fakes.tmdb_server import FakeTmdb
from tests.tmdb_proxy.conftest import TMDB_KEY, make_proxy_factory
from tests.tmdb_proxy.test_upstream_failures import arrival_bound, max_in_any_window

BUDGET = 5
RATE = 10.0


def _dataset_ids(database_url: str, limit: int) -> list[int]:
    """TMDB ids of the seed cohort's movies that the fake TMDB knows too."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT DISTINCT tmdb_id FROM movies WHERE tmdb_id IS NOT NULL "
                    "ORDER BY tmdb_id LIMIT :limit"
                ),
                {"limit": limit},
            )
            return [int(row[0]) for row in rows]
    finally:
        engine.dispose()


def _struggling(fake: FakeTmdb, mode: str) -> None:
    if mode == "429":
        fake.fail(429, retry_after=1)  # every request, for the whole test
    else:
        fake.delay = 30.0  # far past the request deadline


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["429", "slow"])
async def test_a_batch_answers_from_fallbacks_within_its_budget_when_tmdb_struggles(
    seed_cohort_database_url: str, fake_tmdb: FakeTmdb, mode: str
) -> None:
    ids = _dataset_ids(seed_cohort_database_url, 500)
    _struggling(fake_tmdb, mode)
    proxy = make_proxy_factory(seed_cohort_database_url)
    async with proxy(
        fake_tmdb,
        tmdb_proxy_fetches_per_request=BUDGET,
        tmdb_proxy_request_deadline_s=0.5,
        tmdb_proxy_rate_limit=RATE,
        tmdb_proxy_timeout_s=60.0,
        tmdb_proxy_retry_budget_s=60.0,
    ) as client:
        started = time.monotonic()
        first = await client.post("/movies/batch", json={"tmdb_ids": ids})
        took = time.monotonic() - started
        second = await client.post("/movies/batch", json={"tmdb_ids": ids})
        single = await client.get(f"/3/movie/{ids[-1]}")
        stats = (await client.get("/cache/stats")).json()
        assert (await client.get("/healthz")).status_code == 200
    assert first.status_code == second.status_code == single.status_code == 200, first.text
    body = first.json()
    # every movie answered, each from the dataset's own record, and said so
    assert [m["id"] for m in body["movies"]] == ids
    assert body["fallback"] == ids and body["stale"] == [] and body["deferred"] == []
    assert single.headers["x-prefshift-source"] in ("movielens", "offline")
    assert stats["fallback_served"] >= 2 * len(ids) and stats["refresh_queue"] > 0
    # within the deadline (plus the time to read the fallbacks), not the 60 s retry budget
    assert took < 30, took
    # TMDB was asked for the budget's ids (and the refresher's), within the rate limit
    asked = {entry.path for entry in fake_tmdb.log}
    assert len(asked) <= 2 * BUDGET + 1 + 2, asked
    assert max_in_any_window(fake_tmdb.times()) <= arrival_bound(RATE)


async def test_5000_uncached_ids_cost_at_most_the_budget_of_upstream_calls(
    database_url: str, fake_tmdb: FakeTmdb
) -> None:
    """The simulator asks for a 5,000-movie history in ten batches of 500."""
    unknown = list(range(1_900_000_000, 1_900_005_000))
    proxy = make_proxy_factory(database_url)
    async with proxy(
        fake_tmdb,
        tmdb_proxy_fetches_per_request=BUDGET,
        tmdb_proxy_rate_limit=1000,
        tmdb_proxy_refresh_queue_size=0,  # no background refresh: count the requests' own calls
    ) as client:
        answers = [
            await client.post("/movies/batch", json={"tmdb_ids": unknown[i : i + 500]})
            for i in range(0, len(unknown), 500)
        ]
    assert all(a.status_code == 200 for a in answers)
    # per request: BUDGET ids asked and answered (unknown → missing); the rest deferred
    for answer in answers:
        assert len(answer.json()["missing"]) == BUDGET
        assert len(answer.json()["deferred"]) == 500 - BUDGET
    assert fake_tmdb.count() == 10 * BUDGET


@pytest.mark.slow
async def test_the_refresher_shares_the_requests_budget(
    database_url: str, fake_tmdb: FakeTmdb
) -> None:
    """With the background refresher on: ten batches of 500 uncached ids cost TMDB the
    requests' budget and no more — the ids past it are not queued (they made ~5,000 background
    calls after one 5,000-id history)."""
    unknown = list(range(1_900_000_000, 1_900_005_000))
    proxy = make_proxy_factory(database_url)
    async with proxy(
        fake_tmdb, tmdb_proxy_fetches_per_request=BUDGET, tmdb_proxy_rate_limit=1000
    ) as client:
        for i in range(0, len(unknown), 500):
            answer = await client.post("/movies/batch", json={"tmdb_ids": unknown[i : i + 500]})
            assert answer.status_code == 200
            assert len(answer.json()["deferred"]) == 500 - BUDGET
        await asyncio.sleep(1.5)  # the refresher would have made ~1,500 calls by now
        stats = (await client.get("/cache/stats")).json()
    assert fake_tmdb.count() == 10 * BUDGET
    assert stats["refresh_queue"] == 0 and stats["refreshed"] == 0


@pytest.mark.slow
async def test_the_work_of_a_client_that_went_away_stops(
    database_url: str, fake_tmdb: FakeTmdb
) -> None:
    fake_tmdb.delay = 1.0
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=database_url,
        tmdb_api_key=TMDB_KEY,
        tmdb_api_base_url=fake_tmdb.base_url,
        tmdb_proxy_fetches_per_request=100,
        tmdb_proxy_request_deadline_s=60.0,
        tmdb_proxy_max_concurrency=2,
        tmdb_proxy_refresh_queue_size=0,
        tmdb_proxy_rate_limit=1000,
    )
    ids = sorted(fake_tmdb.movies)[:100]
    with LiveServer(create_app(settings)) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.post("/movies/batch", json={"tmdb_ids": ids}, timeout=0.5)
        await asyncio.sleep(3.0)  # the fetches that had begun finish; no others start
        sent = fake_tmdb.count()
        await asyncio.sleep(1.5)
        assert fake_tmdb.count() == sent
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/healthz").status_code == 200
    # two fetch slots: the fetches that had begun, not the hundred the request wanted
    assert sent <= 2 * 2, sent
