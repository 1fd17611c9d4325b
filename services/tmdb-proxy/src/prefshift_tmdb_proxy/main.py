"""The tmdb-proxy is a drop-in for TMDB's v3 movie paths that caches in the database,
respects TMDB's rate limit and works offline (imported records, then MovieLens's own data)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import structlog
from fastapi import FastAPI

from prefshift_common.app import Database, background_task, create_service_app, serve
from prefshift_common.db import is_sqlite
from prefshift_common.http import create_http_client
from prefshift_common.metrics import ServiceMetrics
from prefshift_tmdb_proxy.api import router
from prefshift_tmdb_proxy.config import Settings
from prefshift_tmdb_proxy.metrics import ProxyCollector
from prefshift_tmdb_proxy.paths import TmdbPaths
from prefshift_tmdb_proxy.service import MovieService
from prefshift_tmdb_proxy.tmdb_api import install_tmdb_errors
from prefshift_tmdb_proxy.tmdb_api import router as tmdb_router
from prefshift_tmdb_proxy.upstream import (
    RateLimiter,
    TmdbClient,
    install_key_scrubber,
    remove_key_scrubber,
)

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the tmdb-proxy app (uvicorn: `--factory prefshift_tmdb_proxy.main:create_app`)."""
    settings = settings or Settings()
    database_url = settings.resolved_database_url

    @asynccontextmanager
    async def resources(app: FastAPI, database: Database) -> AsyncIterator[None]:
        scrubber = install_key_scrubber(settings.tmdb_api_key)
        http: httpx.AsyncClient | None = None
        client: TmdbClient | None = None
        if settings.online:
            http = create_http_client(
                settings.tmdb_api_base_url.rstrip("/"),
                timeout=settings.tmdb_proxy_timeout_s,
                max_connections=settings.tmdb_proxy_max_concurrency,
            )
            client = TmdbClient(
                http,
                api_key=settings.tmdb_api_key,
                read_token=settings.tmdb_read_token,
                limiter=RateLimiter(settings.tmdb_proxy_rate_limit),
                max_attempts=settings.tmdb_proxy_max_attempts,
                retry_budget_s=settings.tmdb_proxy_retry_budget_s,
                backoff_base_s=settings.tmdb_proxy_backoff_base_s,
                backoff_max_s=settings.tmdb_proxy_backoff_max_s,
                timeout_s=settings.tmdb_proxy_timeout_s,
                max_concurrency=settings.tmdb_proxy_max_concurrency,
            )
        service = MovieService(
            sessions=database.sessions,
            client=client,
            cross_process_lock=not is_sqlite(database_url),
            cache_ttl_s=settings.tmdb_proxy_cache_ttl_s,
            negative_ttl_s=settings.tmdb_proxy_negative_ttl_s,
            max_concurrency=settings.tmdb_proxy_max_concurrency,
            index_refresh_s=settings.tmdb_proxy_index_refresh_s,
            search_cache_size=settings.tmdb_proxy_search_cache_size,
            memo_size=settings.tmdb_proxy_memo_size,
            fetches_per_request=settings.tmdb_proxy_fetches_per_request,
            request_deadline_s=settings.tmdb_proxy_request_deadline_s,
            refresh_queue_size=settings.tmdb_proxy_refresh_queue_size,
        )
        app.state.movie_service = service
        app.state.tmdb_paths = TmdbPaths(
            movies=service,
            client=client,
            sessions=database.sessions,
            cache_size=settings.tmdb_proxy_search_cache_size,
            cache_ttl_s=settings.tmdb_proxy_negative_ttl_s,
            refresh_s=settings.tmdb_proxy_index_refresh_s,
            deadline_s=settings.tmdb_proxy_request_deadline_s,
        )
        if client is not None:
            service.refresher.start()
        log.info("tmdb_proxy_started", mode="online" if settings.online else "offline")
        try:
            async with background_task(service.warm_up(), name="title_index_warm_up"):
                yield
        finally:
            await service.refresher.stop()
            if http is not None:
                await http.aclose()
            remove_key_scrubber(scrubber)

    metrics = ServiceMetrics("tmdb-proxy")
    app = create_service_app(
        service="tmdb-proxy",
        description=__doc__ or "",
        settings=settings,
        resources=resources,
        # Every concurrent fetch holds a connection on Postgres; a pool smaller than the load
        # turns into a connection opened and closed per request (the "overflow").
        engine_options={}
        if is_sqlite(database_url)
        else {"pool_size": settings.tmdb_proxy_db_pool_size},
        routers=[router],
        metrics=metrics,
    )
    metrics.registry.register(ProxyCollector(app))
    # TMDB's paths authenticate and answer errors as TMDB does (api_key or bearer, TMDB bodies)
    app.include_router(tmdb_router)
    install_tmdb_errors(app)
    return app


def run() -> None:
    """Run this service alone: `prefshift-tmdb-proxy [--host H] [--port P]`."""
    settings = Settings()
    serve(create_app(settings), url=settings.tmdb_proxy_url)
