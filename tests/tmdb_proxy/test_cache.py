"""The cache: hits never reach TMDB, concurrent misses make one upstream request, 404s are
remembered briefly, entries expire, and batches read hits in one go."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from prefshift_common.db import create_async_db_engine
from tests.fakes.tmdb_server import FakeTmdb
from tests.tmdb_proxy.conftest import ProxyFactory, make_proxy_factory, service_of

MATRIX = 603
TOY_STORY = 862
UNKNOWN = 2_000_000_000


async def test_second_request_is_served_from_the_cache(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    async with proxy(fake_tmdb) as client:
        first = await client.get(f"/3/movie/{MATRIX}")
        second = await client.get(f"/3/movie/{MATRIX}")
        stats = (await client.get("/cache/stats")).json()

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["title"] == "The Matrix"
    assert first.headers["x-prefshift-source"] == "tmdb"
    assert "prefshift_source" not in first.json()
    assert first.json()["belongs_to_collection"] is None  # TMDB's fields pass through
    assert fake_tmdb.count(f"/3/movie/{MATRIX}") == 1
    assert stats["hits"] == 1 and stats["misses"] == 1
    assert stats["upstream_calls"] == 1 and stats["entries"] == 1


async def test_the_cache_survives_a_restart_of_the_proxy(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    async with proxy(fake_tmdb) as client:
        assert (await client.get(f"/3/movie/{MATRIX}")).status_code == 200
    async with proxy(fake_tmdb) as client:
        assert (await client.get(f"/3/movie/{MATRIX}")).json()["title"] == "The Matrix"
    assert fake_tmdb.count() == 1


async def test_100_concurrent_requests_for_one_uncached_id_make_one_upstream_call(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    fake_tmdb.delay = 0.3  # keep the first fetch in flight while the others arrive
    async with proxy(fake_tmdb) as client:
        responses = await asyncio.gather(*(client.get(f"/3/movie/{TOY_STORY}") for _ in range(100)))
    assert [r.status_code for r in responses] == [200] * 100
    assert {r.json()["title"] for r in responses} == {"Toy Story"}
    assert fake_tmdb.count(f"/3/movie/{TOY_STORY}") == 1


async def test_concurrent_misses_in_two_processes_make_one_upstream_call(
    database_url: str, fake_tmdb: FakeTmdb
) -> None:
    """Two proxies (separate services, pools and in-process single flights) on one Postgres:
    the advisory lock lets only one of them ask TMDB."""
    if not database_url.startswith("postgresql"):
        pytest.skip("cross-process single flight is a Postgres feature (advisory locks)")
    fake_tmdb.delay = 0.3
    factory = make_proxy_factory(database_url)
    async with factory(fake_tmdb) as first, factory(fake_tmdb) as second:
        responses = await asyncio.gather(
            *(c.get(f"/3/movie/{MATRIX}") for c in [first, second] * 20)
        )
    assert [r.status_code for r in responses] == [200] * 40
    assert fake_tmdb.count(f"/3/movie/{MATRIX}") == 1


async def test_unknown_id_answers_tmdbs_404_and_is_remembered(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    async with proxy(fake_tmdb) as client:
        first = await client.get(f"/3/movie/{UNKNOWN}")
        second = await client.get(f"/3/movie/{UNKNOWN}")
        stats = (await client.get("/cache/stats")).json()
    expected = {
        "success": False,
        "status_code": 34,
        "status_message": "The resource you requested could not be found.",
    }
    assert first.status_code == second.status_code == 404
    assert first.json() == second.json() == expected
    assert fake_tmdb.count(f"/3/movie/{UNKNOWN}") == 1
    assert stats["not_found_entries"] == 1


async def test_entries_and_404s_expire_after_their_ttls(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    async with proxy(
        fake_tmdb, tmdb_proxy_cache_ttl_s=0.3, tmdb_proxy_negative_ttl_s=0.3
    ) as client:
        for _ in range(2):
            assert (await client.get(f"/3/movie/{MATRIX}")).status_code == 200
            assert (await client.get(f"/3/movie/{UNKNOWN}")).status_code == 404
        assert fake_tmdb.count() == 2
        await asyncio.sleep(0.4)
        assert (await client.get("/cache/stats")).json()["expired_entries"] == 2
        assert (await client.get(f"/3/movie/{MATRIX}")).status_code == 200
        assert (await client.get(f"/3/movie/{UNKNOWN}")).status_code == 404
    assert fake_tmdb.count(f"/3/movie/{MATRIX}") == 2
    assert fake_tmdb.count(f"/3/movie/{UNKNOWN}") == 2


async def test_batch_keeps_order_reports_missing_and_reuses_the_cache(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb, database_url: str
) -> None:
    known = sorted(fake_tmdb.movies)[:150]
    ids = [UNKNOWN, *reversed(known), known[0], UNKNOWN - 1]  # a duplicate and two unknown
    # a budget that lets the batch fetch every miss (the default answers most from copies)
    async with proxy(
        fake_tmdb, tmdb_proxy_rate_limit=1000, tmdb_proxy_fetches_per_request=500
    ) as client:
        assert (await client.get(f"/3/movie/{known[5]}")).status_code == 200
        first = await client.post("/movies/batch", json={"tmdb_ids": ids})
        calls_after_first = fake_tmdb.count()
        second = await client.post("/movies/batch", json={"tmdb_ids": ids})
        hits = service_of(client).hits

    assert first.status_code == second.status_code == 200
    body = first.json()
    assert [m["id"] for m in body["movies"]] == list(reversed(known))
    assert body["missing"] == [UNKNOWN, UNKNOWN - 1]
    assert all(m["title"] == fake_tmdb.movies[m["id"]]["title"] for m in body["movies"])
    assert calls_after_first == 152  # 150 known (one was cached) + 2 unknown, each once
    assert fake_tmdb.count() == calls_after_first  # the second batch was all hits
    assert second.json() == body
    assert hits == 1 + 152

    engine = create_async_db_engine(database_url)
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text("SELECT status, count(*) FROM tmdb_cache GROUP BY status ORDER BY status")
            )
        ).all()
    await engine.dispose()
    assert [tuple(row) for row in rows] == [("not_found", 2), ("ok", 150)]


async def test_online_search_is_tmdbs_answer_and_is_cached_briefly(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    async with proxy(fake_tmdb) as client:
        first = await client.get("/3/search/movie", params={"query": "Matrix", "year": 1999})
        again = await client.get("/3/search/movie", params={"query": "matrix ", "year": 1999})
        other_page = await client.get(
            "/3/search/movie", params={"query": "Matrix", "year": 1999, "page": 2}
        )
    assert first.status_code == 200
    body = first.json()
    assert body["results"][0]["id"] == MATRIX
    assert body["results"][0]["genre_ids"] == [28, 878]
    assert again.json() == body
    assert other_page.json()["page"] == 2
    searches = [e for e in fake_tmdb.log if e.path == "/3/search/movie"]
    assert [(e.query["query"], e.query["year"], e.query["page"]) for e in searches] == [
        ("Matrix", "1999", "1"),
        ("Matrix", "1999", "2"),
    ]


async def test_a_caller_that_goes_away_does_not_cancel_the_shared_fetch(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    fake_tmdb.delay = 0.5
    async with proxy(fake_tmdb) as client:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.get(f"/3/movie/{MATRIX}"), timeout=0.1)
        waiting = await client.get(f"/3/movie/{MATRIX}")  # joins the fetch still in flight
        later = await client.get(f"/3/movie/{MATRIX}")
    assert waiting.status_code == later.status_code == 200
    assert fake_tmdb.count(f"/3/movie/{MATRIX}") == 1
