"""The simulator app: factory and lifespan.

The simulator is the persona: given a real user's rated history and the persona's experiences,
it rates movies, through an OpenAI-compatible LLM or an embedded preference model that needs
neither network nor key.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from prefshift_common.app import create_service_app
from prefshift_common.db import create_async_db_engine, create_session_factory
from prefshift_common.http import create_http_client
from prefshift_common.logging import configure_logging
from prefshift_simulator.api import router
from prefshift_simulator.config import Settings
from prefshift_simulator.embedded.backend import DatasetStatsCache, EmbeddedBackend
from prefshift_simulator.embedded.persona_models import (
    DEFAULT_PERSONA_MODEL,
    PersonaModel,
    load_persona_models,
    with_parameters,
)
from prefshift_simulator.llm.backend import LlmBackend, create_openai_client
from prefshift_simulator.metadata import CachedMetadata, ProxyMetadata
from prefshift_simulator.repository import LlmCallRepository
from prefshift_simulator.service import RatingService

log = structlog.get_logger(__name__)


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


async def _warm_up(stats: DatasetStatsCache, dataset: str) -> None:
    """Load the default dataset's statistics before the first request needs them."""
    try:
        await stats.get(dataset)
    except Exception as exc:  # a dataset not imported yet must not stop the service
        log.warning("dataset_stats_warm_up_failed", dataset=dataset, error=str(exc)[:200])


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the simulator app (uvicorn: `--factory prefshift_simulator.main:create_app`)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_db_engine(settings.resolved_database_url)
        app.state.engine = engine
        app.state.sessions = create_session_factory(engine)
        proxy = create_http_client(settings.tmdb_proxy_url, api_token=settings.api_token)
        openai_client = create_openai_client(settings)
        stats = DatasetStatsCache(settings.resolved_database_url)
        models, default_model = persona_models(settings)
        embedded = EmbeddedBackend(
            models,
            stats,
            default_persona_model=default_model,
            default_dataset=settings.simulator_dataset,
        )
        warm_up = (
            asyncio.create_task(_warm_up(stats, settings.simulator_dataset))
            if settings.simulator_dataset
            else None
        )
        llm = LlmBackend(openai_client, settings, LlmCallRepository(app.state.sessions))
        app.state.rating_service = RatingService(
            backends={"embedded": embedded, "llm": llm},
            default_backend=settings.default_backend,
            metadata=CachedMetadata(ProxyMetadata(proxy), ttl=settings.simulator_metadata_ttl)
            if settings.simulator_metadata_ttl > 0
            else ProxyMetadata(proxy),
            llm_model=settings.simulator_model,
            llm_available=openai_client is not None,
            persona_models=embedded.describe_models(),
        )
        try:
            yield
        finally:
            if warm_up is not None:
                warm_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await warm_up
            if openai_client is not None:
                await openai_client.close()
            await proxy.aclose()
            await engine.dispose()

    return create_service_app(
        service="simulator",
        description=__doc__ or "",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
    )


def run() -> None:
    """Run this service alone: `prefshift-simulator`."""
    import uvicorn

    from prefshift_common.settings import bind_address

    settings = Settings()
    host, port = bind_address(settings.simulator_url)
    uvicorn.run(create_app(settings), host=host, port=port)
