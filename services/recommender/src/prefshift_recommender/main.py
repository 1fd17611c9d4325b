"""The recommender app: factory and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from prefshift_common.app import create_service_app
from prefshift_common.db import create_async_db_engine, create_session_factory
from prefshift_common.logging import configure_logging
from prefshift_recommender.api import router
from prefshift_recommender.config import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the recommender app (uvicorn: `--factory prefshift_recommender.main:create_app`)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_db_engine(settings.resolved_database_url)
        app.state.engine = engine
        app.state.sessions = create_session_factory(engine)
        try:
            yield
        finally:
            await engine.dispose()

    return create_service_app(
        service="recommender",
        description=__doc__ or "",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
    )


def run() -> None:
    """Run this service alone: `prefshift-recommender`."""
    import uvicorn

    from prefshift_common.settings import bind_address

    settings = Settings()
    host, port = bind_address(settings.recommender_url)
    uvicorn.run(create_app(settings), host=host, port=port)
