"""The recommender service: top-N movies from seven implementations behind one contract.

`GET /recommenders` lists the implementations and their state; `POST /recommendations` asks
one of them for a page (for a dataset user or any history: cold start without refitting);
`POST /recommenders/{name}/train` trains one in the background. Collaborative filtering (als,
bpr, item-knn) uses the `implicit` library; popularity and random are the baselines; llm and
llm-persuasive ask an OpenAI-compatible chat model. Any service speaking this contract can stand
in for this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import structlog
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from prefshift_common.app import Database, background_task, create_service_app, serve
from prefshift_common.db import create_sync_db_engine
from prefshift_common.llm import LlmClient
from prefshift_common.llm.metrics import LlmMetrics
from prefshift_common.metrics import ServiceMetrics
from prefshift_common.tmdb_client import TmdbProxyClient
from prefshift_recommender import repository
from prefshift_recommender.algorithms import limit_blas_threads
from prefshift_recommender.api import router
from prefshift_recommender.config import Settings
from prefshift_recommender.registry import ModelRegistry
from prefshift_recommender.service import Dependencies, RecommenderService

log = structlog.get_logger(__name__)


def _llm_client(settings: Settings, database: Database, metrics: LlmMetrics) -> LlmClient:
    """The shared LLM client of the llm recommenders (records and replays every call)."""
    return LlmClient(
        service="recommender",
        settings=settings,
        model=settings.recommender_model,
        temperature=settings.recommender_temperature,
        timeout=settings.recommender_llm_timeout,
        max_retries=settings.recommender_llm_max_retries,
        sessions=database.sessions,
        metrics=metrics,
    )


async def _warm_up(service: RecommenderService, database: Database) -> None:
    """The default catalogue, loaded in the background while the service already answers (a
    request meanwhile waits for the same load rather than starting its own)."""
    async with database.sessions() as session:
        await service.warm_up(session)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the recommender app (uvicorn: `--factory prefshift_recommender.main:create_app`)."""
    settings = settings or Settings()
    metrics = ServiceMetrics("recommender")
    llm_metrics = LlmMetrics(metrics.registry)

    @asynccontextmanager
    async def resources(app: FastAPI, database: Database) -> AsyncIterator[None]:
        limit_blas_threads()
        sync_engine = create_sync_db_engine(settings.resolved_database_url)
        registry = ModelRegistry(
            engine=sync_engine, models_dir=settings.models_dir, threads=settings.recommender_threads
        )
        llm_client = _llm_client(settings, database, llm_metrics)
        proxy = TmdbProxyClient.create(
            settings.tmdb_proxy_url,
            timeout=httpx.Timeout(15.0, connect=3.0),
            api_token=settings.api_token,
        )
        service = RecommenderService(
            Dependencies(settings=settings, registry=registry, llm=llm_client, proxy=proxy)
        )
        app.state.recommender = service
        app.state.registry = registry
        try:
            async with database.sessions() as session:
                datasets = await repository.list_datasets(session)
                await registry.load_persisted(datasets)
                await service.autotrain(session)
        except SQLAlchemyError as exc:  # e.g. not migrated yet: serve, and say so in /readyz
            log.warning("startup_models_skipped", error=f"{type(exc).__name__}: {exc}"[:300])
        try:
            async with background_task(_warm_up(service, database), name="catalogue_warm_up"):
                yield
        finally:
            registry.close()
            await proxy.aclose()
            await llm_client.aclose()
            sync_engine.dispose()

    return create_service_app(
        service="recommender",
        description=__doc__ or "",
        settings=settings,
        resources=resources,
        routers=[router],
        metrics=metrics,
    )


def run() -> None:
    """Run this service alone: `prefshift-recommender [--host H] [--port P]`."""
    settings = Settings()
    serve(create_app(settings), url=settings.recommender_url)
