"""The orchestrator drives the protocol: it simulates users under every arm, stores each rating
of each page, and measures how far the persona's tastes moved (shift, net of control)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from prefshift_common.app import (
    Database,
    ServiceResources,
    create_service_app,
    serve,
    service_database,
)
from prefshift_common.metrics import ServiceMetrics
from prefshift_orchestrator.api import router
from prefshift_orchestrator.clients import ServiceClients
from prefshift_orchestrator.config import Settings
from prefshift_orchestrator.listings import router as listings_router
from prefshift_orchestrator.metrics import OrchestratorMetrics
from prefshift_orchestrator.workers import WorkerPool


def _worker_resources(settings: Settings, metrics: OrchestratorMetrics) -> ServiceResources:
    """The service clients and the worker pool, started on the open database and stopped
    (runs handed back to the queue) before it closes — the API process's and a worker's."""

    @asynccontextmanager
    async def resources(app: FastAPI, database: Database) -> AsyncIterator[None]:
        clients = ServiceClients(settings)
        app.state.clients = clients
        workers = WorkerPool(
            settings=settings, sessions=database.sessions, clients=clients, metrics=metrics
        )
        app.state.workers = workers
        await workers.start()
        try:
            yield
        finally:
            await workers.stop()
            await clients.aclose()

    return resources


def _orchestrator_app(
    *, service: str, description: str, settings: Settings, routers: list[APIRouter]
) -> FastAPI:
    """The API process's app or a worker's: the worker pool and the orchestrator's metrics (the
    queue's depth counted in the database when scraped: every process sees every run)."""
    metrics = ServiceMetrics(service)
    orchestrator_metrics = OrchestratorMetrics(metrics.registry)
    app = create_service_app(
        service=service,
        description=description,
        settings=settings,
        resources=_worker_resources(settings, orchestrator_metrics),
        routers=routers,
        metrics=metrics,
    )
    metrics.on_scrape(lambda: orchestrator_metrics.count_runs(service_database(app)))
    return app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the orchestrator app (uvicorn: `--factory prefshift_orchestrator.main:create_app`)."""
    settings = settings or Settings()
    return _orchestrator_app(
        service="orchestrator",
        description=__doc__ or "",
        settings=settings,
        routers=[router, listings_router],
    )


def create_worker_app(settings: Settings | None = None) -> FastAPI:
    """A worker (``prefshift worker``): the orchestrator's worker pool without its API.

    It claims queued runs from the shared database and executes them exactly as the API
    process's workers do (the same lifespan, the same pool), and answers only ``/healthz`` and
    ``/readyz`` for a supervisor's probes and ``/metrics`` (what its workers did, and the
    queue); runs are submitted through any orchestrator's API.
    SIGTERM and SIGINT stop it as they stop the orchestrator: uvicorn ends the lifespan, which
    hands the runs it holds back to the queue."""
    settings = settings or Settings()
    if settings.orchestrator_workers == 0:
        raise ValueError("a worker with PREFSHIFT_ORCHESTRATOR_WORKERS=0 would run nothing")
    return _orchestrator_app(
        service="orchestrator-worker",
        description=create_worker_app.__doc__ or "",
        settings=settings,
        routers=[],
    )


def run() -> None:
    """Run this service alone: `prefshift-orchestrator [--host H] [--port P]`."""
    settings = Settings()
    serve(create_app(settings), url=settings.orchestrator_url)
