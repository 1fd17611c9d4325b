"""``/metrics``: every service's Prometheus metrics (docs/operations.md lists them).

Each app has its own registry (:class:`ServiceMetrics`, on ``app.state.metrics``): tests build
many apps in one process, and a registry per app means two apps never register one name twice
nor count each other's work. A service adds its own metrics to ``metrics.registry`` (counters it
increments, or a collector that reads its counters at scrape time) and may register an async
``on_scrape`` hook, e.g. a count query whose result a gauge shows.

Requests are counted and timed per route *template* (``/runs/{run_id}``), never per raw path,
so the labels stay bounded whatever clients ask for; a path no route matches is ``<unmatched>``,
a method other than the standard ones ``<other>``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The route label of a request no route matched (404s, refused hosts).
UNMATCHED = "<unmatched>"
#: Methods counted by name; a client may send any token as a method, so the rest are ``OTHER``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "<other>"
#: Request durations: a cached lookup takes a millisecond, a page of LLM ratings a minute.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

ScrapeHook = Callable[[], Awaitable[None]]


class ServiceMetrics:
    """One app's registry: the process's own figures, its requests, and what the service adds."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "prefshift_http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "prefshift_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route template.",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._hooks: list[ScrapeHook] = []

    def on_scrape(self, hook: ScrapeHook) -> None:
        """Run ``hook`` before every scrape (to refresh gauges read from the database)."""
        self._hooks.append(hook)

    async def exposition(self) -> bytes:
        """The registry in Prometheus's text format, after the scrape hooks ran."""
        for hook in self._hooks:
            await hook()
        return generate_latest(self.registry)


def route_template(scope: Scope) -> str:
    """The path template of the route that handled ``scope`` (set by the router as it matched)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class RequestMetricsMiddleware:
    """Counts and times every HTTP request per route template and status code."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an app that raises without answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_template(scope)
            method = scope["method"] if scope["method"] in METHODS else OTHER
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.request_seconds.labels(method, route).observe(
                time.perf_counter() - started
            )


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus's text exposition of this service's metrics."""
    metrics: ServiceMetrics = request.app.state.metrics
    return Response(await metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
