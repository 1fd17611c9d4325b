"""The tmdb-proxy's metrics (docs/operations.md): the cache's and TMDB's counters of the running
service, read when scraped (the same counters ``/cache/stats`` shows)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from prefshift_tmdb_proxy.service import MovieService

_PREFIX = "prefshift_tmdb_proxy_"

#: (metric name, the counter it reads: on the movie service or on its TMDB client, help)
_COUNTERS: tuple[tuple[str, str, str, str], ...] = (
    (
        "cache_hits",
        "service",
        "hits",
        "Movie details answered from the memo, the database cache or the offline records.",
    ),
    (
        "cache_misses",
        "service",
        "misses",
        "Movie details not in the cache (or expired): fetched from TMDB, or unknown offline.",
    ),
    (
        "stale_served",
        "service",
        "stale_served",
        "Movie details answered from an expired cached copy while TMDB was slow or away.",
    ),
    (
        "fallback_served",
        "service",
        "fallback_served",
        "Movie details answered from the offline records or the dataset for want of TMDB.",
    ),
    ("upstream_requests", "upstream", "calls", "Requests sent to TMDB, retries included."),
    (
        "upstream_errors",
        "upstream",
        "errors",
        "TMDB requests that failed (timeouts, connection errors, 429, 5xx, other 4xx).",
    ),
    ("upstream_throttled", "upstream", "throttled", "TMDB answers 429 (rate limited)."),
    ("upstream_retries", "upstream", "retries", "TMDB requests made again after a failure."),
    (
        "rate_limit_waits",
        "upstream",
        "rate_limit_waits",
        "TMDB requests that waited for a slot of the proxy's rate limit.",
    ),
)


class ProxyCollector(Collector):
    """Reads the counters of the app's movie service and TMDB client at scrape time (zeros
    before the service started; the upstream ones stay zero offline)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[CounterMetricFamily]:
        service: MovieService | None = getattr(self.app.state, "movie_service", None)
        sources = {
            "service": service,
            "upstream": service.upstream_counters if service is not None else None,
        }
        for name, source, attribute, documentation in _COUNTERS:
            counts = sources[source]
            value = getattr(counts, attribute) if counts is not None else 0
            yield CounterMetricFamily(_PREFIX + name, documentation, value=value)
