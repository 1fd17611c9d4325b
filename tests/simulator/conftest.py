"""Fixtures of the simulator tests: the real tmdb-proxy (offline, answering from the imported
seed cohort) on a loopback port, the simulator app in-process with its lifespan running, and a
persona built from a real seed-cohort user by the protocol's split."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from prefshift_common.contracts import RatedMovie
from prefshift_datasets.split import SplitMovie, split_persona_and_test
from prefshift_simulator.config import Settings
from prefshift_simulator.evaluation import DatasetSnapshot, read_dataset
from prefshift_simulator.main import create_app
from prefshift_tmdb_proxy.main import create_app as create_proxy_app
from tests.conftest import DatabaseFactory
from tests.fakes.live import LiveServer
from tests.tmdb_proxy.conftest import offline_proxy_settings

DATASET = "seed-cohort"


@pytest.fixture(scope="session")
def seed_snapshot(database_factory: DatabaseFactory, seed_cohort_template: str) -> DatasetSnapshot:
    """The seed cohort as the evaluation reads it (read once, from a copy: a Postgres template
    that other workers clone must have no connection)."""
    url = database_factory.new(template=seed_cohort_template)
    try:
        return read_dataset(url, DATASET)
    finally:
        database_factory.release(url)


@dataclass(frozen=True)
class PersonaCase:
    """A real user's protocol split: 40 history ratings and 30 test movies."""

    user_id: int
    history: list[RatedMovie]
    test: list[int]
    real: dict[int, float]

    def persona(self, **extra: Any) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "dataset": DATASET,
            "history": [m.model_dump() for m in self.history],
            **extra,
        }


def persona_case(snapshot: DatasetSnapshot, user_id: int, seed: int = 0) -> PersonaCase:
    frame = snapshot.ratings[snapshot.ratings["user_id"] == user_id]
    real = {int(t): float(r) for t, r in zip(frame["tmdb_id"], frame["rating"], strict=True)}
    split = split_persona_and_test(
        [SplitMovie(t, snapshot.facts[t].genres) for t in real], seed=seed
    )
    return PersonaCase(
        user_id=user_id,
        history=[RatedMovie(tmdb_id=t, rating=real[t]) for t in split.persona],
        test=list(split.test),
        real=real,
    )


@pytest.fixture(scope="session")
def case(seed_snapshot: DatasetSnapshot) -> PersonaCase:
    """The first user of the seed cohort."""
    return persona_case(seed_snapshot, int(seed_snapshot.ratings["user_id"].min()))


@pytest.fixture
def proxy_url(seed_cohort_database_url: str) -> Iterator[str]:
    """The real tmdb-proxy, offline (no TMDB key), on a free loopback port."""
    settings = offline_proxy_settings(seed_cohort_database_url, api_token=None)
    with LiveServer(create_proxy_app(settings)) as server:
        yield server.url


SimulatorFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def simulator_settings(database_url: str, proxy_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "tmdb_proxy_url": proxy_url,
        # explicit, so that an LLM configured in the environment never reaches a test
        "openai_api_key": None,
        "openai_base_url": None,
        "simulator_backend": None,
        "api_token": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def simulator(seed_cohort_database_url: str, proxy_url: str) -> SimulatorFactory:
    """``async with simulator(**settings) as client``: the simulator app in-process (lifespan
    running) on the test's database, talking to the real proxy over loopback HTTP."""

    @asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app: FastAPI = create_app(
            simulator_settings(seed_cohort_database_url, proxy_url, **overrides)
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://simulator", timeout=60
            ) as client,
        ):
            yield client

    return factory
