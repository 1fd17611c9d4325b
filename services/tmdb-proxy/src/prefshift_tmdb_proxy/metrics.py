"""The tmdb-proxy's metrics (docs/operations.md): the cache's and TMDB's counters of the running
service, read when scraped (the same counters ``/cache/stats`` shows)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from prefshift_tmdb_proxy.service import MovieService

_PREFIX = "prefshift_tmdb_proxy_"


class ProxyCollector(Collector):
    """Reads the counters of the app's movie service and TMDB client at scrape time (zeros
    before the service started; the upstream ones stay zero offline)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[CounterMetricFamily]:
        service: MovieService | None = getattr(self.app.state, "movie_service", None)
        upstream = service.upstream_counters if service is not None else None

        def counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(_PREFIX + name, documentation, value=value)

        yield counter(
            "cache_hits",
            "Movie details answered from the memo, the database cache or the offline records.",
            service.hits if service else 0,
        )
        yield counter(
            "cache_misses",
            "Movie details not in the cache (or expired): fetched from TMDB, or unknown offline.",
            service.misses if service else 0,
        )
        yield counter(
            "stale_served",
            "Movie details answered from an expired cached copy while TMDB was slow or away.",
            service.stale_served if service else 0,
        )
        yield counter(
            "fallback_served",
            "Movie details answered from the offline records or the dataset for want of TMDB.",
            service.fallback_served if service else 0,
        )
        yield counter(
            "upstream_requests",
            "Requests sent to TMDB, retries included.",
            upstream.calls if upstream else 0,
        )
        yield counter(
            "upstream_errors",
            "TMDB requests that failed (timeouts, connection errors, 429, 5xx, other 4xx).",
            upstream.errors if upstream else 0,
        )
        yield counter(
            "upstream_throttled",
            "TMDB answers 429 (rate limited).",
            upstream.throttled if upstream else 0,
        )
        yield counter(
            "upstream_retries",
            "TMDB requests made again after a failure.",
            upstream.retries if upstream else 0,
        )
        yield counter(
            "rate_limit_waits",
            "TMDB requests that waited for a slot of the proxy's rate limit.",
            upstream.rate_limit_waits if upstream else 0,
        )
