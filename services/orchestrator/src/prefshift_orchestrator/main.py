"""The orchestrator drives the protocol: it simulates users under every arm, stores each rating
of each page, and measures how far the persona's tastes moved (shift, net of control)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from prefshift_common.app import Database, create_service_app, serve
from prefshift_orchestrator.api import router
from prefshift_orchestrator.clients import ServiceClients
from prefshift_orchestrator.config import Settings
from prefshift_orchestrator.listings import router as listings_router
from prefshift_orchestrator.workers import WorkerPool


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the orchestrator app (uvicorn: `--factory prefshift_orchestrator.main:create_app`)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def resources(app: FastAPI, database: Database) -> AsyncIterator[None]:
        clients = ServiceClients(settings)
        app.state.clients = clients
        workers = WorkerPool(settings=settings, sessions=database.sessions, clients=clients)
        app.state.workers = workers
        await workers.start()
        try:
            yield
        finally:
            await workers.stop()
            await clients.aclose()

    return create_service_app(
        service="orchestrator",
        description=__doc__ or "",
        settings=settings,
        resources=resources,
        routers=[router, listings_router],
    )


def run() -> None:
    """Run this service alone: `prefshift-orchestrator [--host H] [--port P]`."""
    settings = Settings()
    serve(create_app(settings), url=settings.orchestrator_url)
