"""The tmdb-proxy's ``/metrics``: a miss then a hit, the requests it sent to the fake TMDB (its
429s among them), and the same counters offline."""

from __future__ import annotations

from tests.fakes.tmdb_server import FakeTmdb
from tests.prometheus import sample
from tests.tmdb_proxy.conftest import ProxyFactory

MATRIX = 603
TOY_STORY = 862


async def test_a_miss_then_a_hit_and_tmdbs_429s_are_counted(
    proxy: ProxyFactory, fake_tmdb: FakeTmdb
) -> None:
    async with proxy(fake_tmdb) as client:
        before = (await client.get("/metrics")).text
        assert (await client.get(f"/3/movie/{MATRIX}")).status_code == 200  # miss: TMDB asked
        after_miss = (await client.get("/metrics")).text
        assert (await client.get(f"/3/movie/{MATRIX}")).status_code == 200  # hit
        fake_tmdb.fail(429, retry_after=0.05, count=2)
        assert (await client.get(f"/3/movie/{TOY_STORY}")).status_code == 200  # after two 429s
        after = (await client.get("/metrics")).text

    hits = "prefshift_tmdb_proxy_cache_hits_total"
    misses = "prefshift_tmdb_proxy_cache_misses_total"
    upstream = "prefshift_tmdb_proxy_upstream_requests_total"
    assert sample(before, hits) == sample(before, misses) == sample(before, upstream) == 0
    assert (sample(after_miss, hits), sample(after_miss, misses)) == (0, 1)
    assert sample(after_miss, upstream) == 1
    assert (sample(after, hits), sample(after, misses)) == (1, 2)
    assert sample(after, upstream) == fake_tmdb.count() == 4
    assert sample(after, "prefshift_tmdb_proxy_upstream_throttled_total") == 2
    assert sample(after, "prefshift_tmdb_proxy_upstream_retries_total") == 2
    route = "/3/movie/{tmdb_id}"
    assert (
        sample(after, "prefshift_http_requests_total", method="GET", route=route, status="200") == 3
    )


async def test_offline_the_offline_records_are_the_cache(proxy: ProxyFactory) -> None:
    async with proxy() as client:
        assert (await client.get(f"/3/movie/{MATRIX}")).status_code in (200, 404)
        assert (await client.get(f"/3/movie/{MATRIX}")).status_code in (200, 404)
        text = (await client.get("/metrics")).text

    # the first lookup reads the offline records (a hit or a miss), the second the memo
    looked_up = sample(text, "prefshift_tmdb_proxy_cache_hits_total") + sample(
        text, "prefshift_tmdb_proxy_cache_misses_total"
    )
    assert looked_up == 2
    assert sample(text, "prefshift_tmdb_proxy_upstream_requests_total") == 0
