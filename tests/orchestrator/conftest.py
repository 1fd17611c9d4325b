"""Fixtures for the orchestrator's tests: the orchestrator app on loopback, against services
that speak the recommender and simulator contracts (``standins.py``), on a fresh database
with the seed cohort imported."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from prefshift_common.db import sync_connection
from prefshift_orchestrator.config import Settings
from prefshift_orchestrator.main import create_app
from tests.fakes.live import LiveServer, free_port

#: A seed-cohort user (Specialist, 400+ ratings).
USER = 117669
UNREACHABLE = f"http://127.0.0.1:{free_port()}"


def orchestrator_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "recommender_url": UNREACHABLE,
        "simulator_url": UNREACHABLE,
        "tmdb_proxy_url": UNREACHABLE,
        "orchestrator_workers": 2,
        "orchestrator_heartbeat_seconds": 0.3,
        "orchestrator_stall_seconds": 2.0,
        "orchestrator_poll_seconds": 0.1,
        "orchestrator_call_retries": 0,
        "orchestrator_dataset": "seed-cohort",
        "api_token": None,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextmanager
def running_orchestrator(database_url: str, **overrides: Any) -> Iterator[httpx.Client]:
    """The orchestrator app (with its workers) on a free loopback port, and a client for it."""
    settings = orchestrator_settings(database_url, **overrides)
    with (
        LiveServer(create_app(settings)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield client


OrchestratorFactory = Callable[..., AbstractContextManager[httpx.Client]]


@pytest.fixture
def orchestrator() -> OrchestratorFactory:
    return running_orchestrator


def dataset_tmdb_ids(database_url: str, limit: int = 3000) -> list[int]:
    """TMDB ids of the dataset's movies (a candidate pool for stand-in recommenders)."""
    with sync_connection(database_url) as connection:
        rows = connection.execute(
            text(
                "SELECT DISTINCT tmdb_id FROM movies WHERE tmdb_id IS NOT NULL "
                "ORDER BY tmdb_id LIMIT :limit"
            ),
            {"limit": limit},
        )
        return [int(row[0]) for row in rows]
