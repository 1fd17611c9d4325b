"""The simulator is the persona: given a real user's rated history and the persona's experiences,
it rates movies, through an OpenAI-compatible LLM or an embedded preference model that needs
neither network nor key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from prefshift_common.app import Database, background_task, create_service_app, serve
from prefshift_common.llm.metrics import LlmMetrics
from prefshift_common.metrics import ServiceMetrics
from prefshift_common.tmdb_client import TmdbProxyClient
from prefshift_simulator.api import router
from prefshift_simulator.config import Settings
from prefshift_simulator.embedded.backend import DatasetStatsCache, EmbeddedBackend
from prefshift_simulator.embedded.persona_models import (
    DEFAULT_PERSONA_MODEL,
    PersonaModel,
    load_persona_models,
    with_parameters,
)
from prefshift_simulator.llm.backend import LlmBackend, create_llm_client
from prefshift_simulator.metadata import CachedMetadata, ProxyMetadata
from prefshift_simulator.service import RatingService


def persona_models(settings: Settings) -> tuple[dict[str, PersonaModel], str]:
    """The embedded persona's named parameter sets (shipped, then the settings' directory, each
    with the settings' single-parameter overrides applied) and the default set's name."""
    models = load_persona_models(settings.simulator_persona_dir)
    overrides = settings.persona_overrides
    if overrides:
        models = {
            name: dataclasses.replace(m, params=with_parameters(m.params, overrides))
            for name, m in models.items()
        }
    return models, settings.simulator_persona or DEFAULT_PERSONA_MODEL


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the simulator app (uvicorn: `--factory prefshift_simulator.main:create_app`)."""
    settings = settings or Settings()
    metrics = ServiceMetrics("simulator")
    llm_metrics = LlmMetrics(metrics.registry)

    @asynccontextmanager
    async def resources(app: FastAPI, database: Database) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await _open(app, database, stack)
            yield

    async def _open(app: FastAPI, database: Database, stack: AsyncExitStack) -> None:
        """Build the rating service; what must be closed goes on ``stack``."""
        proxy = TmdbProxyClient.create(settings.tmdb_proxy_url, api_token=settings.api_token)
        stack.push_async_callback(proxy.aclose)
        llm_client = create_llm_client(settings, database.sessions, llm_metrics)
        stack.push_async_callback(llm_client.aclose)
        stats = DatasetStatsCache(
            settings.resolved_database_url, settings.simulator_reference_datasets
        )
        models, default_model = persona_models(settings)
        embedded = EmbeddedBackend(
            models,
            stats,
            default_persona_model=default_model,
            default_dataset=settings.simulator_dataset,
        )
        if settings.simulator_dataset:  # its statistics, before the first request needs them
            await stack.enter_async_context(
                background_task(stats.get(settings.simulator_dataset), name="dataset_stats_warm_up")
            )
        llm = LlmBackend(llm_client, settings)
        app.state.rating_service = RatingService(
            backends={"embedded": embedded, "llm": llm},
            default_backend=settings.default_backend,
            metadata=CachedMetadata(ProxyMetadata(proxy), ttl=settings.simulator_metadata_ttl)
            if settings.simulator_metadata_ttl > 0
            else ProxyMetadata(proxy),
            llm_model=settings.simulator_model,
            llm_available=llm_client.configured,
            persona_models=embedded.describe_models(),
        )

    return create_service_app(
        service="simulator",
        description=__doc__ or "",
        settings=settings,
        resources=resources,
        routers=[router],
        metrics=metrics,
    )


def run() -> None:
    """Run this service alone: `prefshift-simulator [--host H] [--port P]`."""
    settings = Settings()
    serve(create_app(settings), url=settings.simulator_url)
