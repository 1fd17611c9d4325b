"""The orchestrator drives the protocol: it simulates users under every arm, stores each rating
of each page, and measures how far the persona's tastes moved (shift, net of control)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from prefshift_common.app import create_service_app
from prefshift_common.db import create_async_db_engine, create_session_factory
from prefshift_common.logging import configure_logging
from prefshift_orchestrator.api import router
from prefshift_orchestrator.clients import ServiceClients
from prefshift_orchestrator.config import Settings
from prefshift_orchestrator.listings import router as listings_router
from prefshift_orchestrator.workers import WorkerPool


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the orchestrator app (uvicorn: `--factory prefshift_orchestrator.main:create_app`)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_db_engine(settings.resolved_database_url)
        app.state.engine = engine
        app.state.sessions = create_session_factory(engine)
        clients = ServiceClients(settings)
        app.state.clients = clients
        workers = WorkerPool(settings=settings, sessions=app.state.sessions, clients=clients)
        app.state.workers = workers
        await workers.start()
        try:
            yield
        finally:
            await workers.stop()
            await clients.aclose()
            await engine.dispose()

    return create_service_app(
        service="orchestrator",
        description=__doc__ or "",
        settings=settings,
        lifespan=lifespan,
        routers=[router, listings_router],
    )


def run() -> None:
    """Run this service alone: `prefshift-orchestrator`."""
    import uvicorn

    from prefshift_common.settings import bind_address

    settings = Settings()
    host, port = bind_address(settings.orchestrator_url)
    uvicorn.run(create_app(settings), host=host, port=port)
