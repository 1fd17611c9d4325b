"""Fixtures of the recommender tests: the service in-process (``httpx.AsyncClient`` over
``ASGITransport``, lifespan run) on a real migrated database with ml-latest-small imported, and
models trained once per session on that dataset."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from prefshift_common.db import sync_connection
from prefshift_datasets.models import Dataset
from prefshift_recommender import artifacts, repository
from prefshift_recommender.algorithms import SCORERS
from prefshift_recommender.config import Settings
from prefshift_recommender.main import create_app
from prefshift_recommender.registry import ModelRegistry
from prefshift_recommender.repository import DatasetRef
from tests.conftest import DatabaseFactory, _dispose_all

COLLABORATIVE = ["als", "bpr", "item-knn"]
MODEL_BACKED = [*COLLABORATIVE, "popularity", "random"]


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "recommender_autotrain": "",
        # explicit, so that a key or URL in the environment never reaches a test
        "openai_api_key": None,
        "openai_base_url": None,
        "tmdb_proxy_url": "http://127.0.0.1:9",  # closed port unless a test starts the proxy
        "api_token": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


ServiceFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def service_factory(database_url: str, data_dir: Path) -> ServiceFactory:
    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(make_settings(database_url, data_dir, **overrides))
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=transport, base_url="http://recommender", timeout=60
            ) as client,
        ):
            client.registry = app.state.registry  # type: ignore[attr-defined]
            yield client

    return factory


def registry_of(client: httpx.AsyncClient) -> ModelRegistry:
    registry: ModelRegistry = client.registry  # type: ignore[attr-defined]
    return registry


@pytest.fixture(scope="session")
def trained_data_dir(
    tmp_path_factory: pytest.TempPathFactory,
    database_factory: DatabaseFactory,
    ml_small_template: str,
) -> Path:
    """A data directory holding every model-backed implementation trained (default parameters)
    on ml-latest-small, once per session. Tests copy it before writing to it."""
    data_dir = tmp_path_factory.mktemp("recommender-models")
    url = database_factory.new(template=ml_small_template)
    with sync_connection(url) as connection:
        row = connection.execute(
            select(Dataset.id, Dataset.name, Dataset.fingerprint).where(
                Dataset.name == "ml-latest-small"
            )
        ).one()
        dataset = DatasetRef(id=row.id, name=row.name, fingerprint=row.fingerprint)
        matrix = artifacts.build_matrix(repository.load_rating_arrays(connection, dataset.id))
        _dispose_all()
    for name in SCORERS:
        model = artifacts.train(name, dataset, matrix, {}, progress=lambda _p: None)
        artifacts.save(model, data_dir / "models")
    return data_dir


@pytest.fixture
def trained_service(
    ml_small_database_url: str, trained_data_dir: Path, tmp_path: Path
) -> ServiceFactory:
    """``async with trained_service(**settings) as client``: the service with every
    model-backed implementation already trained on ml-latest-small."""
    data_dir = tmp_path / "data"
    shutil.copytree(trained_data_dir, data_dir)
    return service_factory(ml_small_database_url, data_dir)


@pytest.fixture
def untrained_service(ml_small_database_url: str, tmp_path: Path) -> ServiceFactory:
    """The service on ml-latest-small with no model on disk (and no autotrain)."""
    return service_factory(ml_small_database_url, tmp_path / "data")
