"""The tmdb-proxy app: a drop-in for TMDB's v3 movie paths that caches in the database,
respects TMDB's rate limit and works offline (imported records, then MovieLens's own data)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import structlog
from fastapi import FastAPI

from prefshift_common.app import create_service_app
from prefshift_common.db import create_async_db_engine, create_session_factory, is_sqlite
from prefshift_common.http import create_http_client
from prefshift_common.logging import configure_logging
from prefshift_tmdb_proxy.api import router
from prefshift_tmdb_proxy.config import Settings
from prefshift_tmdb_proxy.service import MovieService
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
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database_url = settings.resolved_database_url
        # Every concurrent fetch holds a connection on Postgres; a pool smaller than the load
        # turns into a connection opened and closed per request (the "overflow").
        pool = {} if is_sqlite(database_url) else {"pool_size": settings.tmdb_proxy_db_pool_size}
        engine = create_async_db_engine(database_url, **pool)
        app.state.engine = engine
        app.state.sessions = create_session_factory(engine)
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
            sessions=app.state.sessions,
            client=client,
            cross_process_lock=not is_sqlite(database_url),
            cache_ttl_s=settings.tmdb_proxy_cache_ttl_s,
            negative_ttl_s=settings.tmdb_proxy_negative_ttl_s,
            max_concurrency=settings.tmdb_proxy_max_concurrency,
            index_refresh_s=settings.tmdb_proxy_index_refresh_s,
            search_cache_size=settings.tmdb_proxy_search_cache_size,
            memo_size=settings.tmdb_proxy_memo_size,
        )
        app.state.movie_service = service
        log.info("tmdb_proxy_started", mode="online" if settings.online else "offline")
        warm_up = asyncio.create_task(_warm_up(service))
        try:
            yield
        finally:
            warm_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warm_up
            if http is not None:
                await http.aclose()
            remove_key_scrubber(scrubber)
            await engine.dispose()

    return create_service_app(
        service="tmdb-proxy",
        description=__doc__ or "",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
    )


async def _warm_up(service: MovieService) -> None:
    try:
        await service.warm_up()
    except Exception as exc:  # a missing table or an empty database must not stop the service
        log.warning("title_index_warm_up_failed", error=type(exc).__name__)


def run() -> None:
    """Run this service alone: `prefshift-tmdb-proxy`."""
    import uvicorn

    from prefshift_common.settings import bind_address

    settings = Settings()
    host, port = bind_address(settings.tmdb_proxy_url)
    uvicorn.run(create_app(settings), host=host, port=port)
