"""Fixtures of the tmdb-proxy tests: the fake TMDB on loopback and the proxy in-process
(``httpx.AsyncClient`` over ``ASGITransport``, lifespan run), on the database under test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from prefshift_tmdb_proxy.config import Settings as ProxySettings
from prefshift_tmdb_proxy.importer import import_tmdb_jsonl
from prefshift_tmdb_proxy.main import create_app
from prefshift_tmdb_proxy.service import MovieService
from tests.conftest import DatabaseFactory, SharedTemplates
from tests.fakes.tmdb_server import FakeTmdb

TMDB_KEY = "tmdb-test-key-3f9a7c21e5b04d68"


def offline_proxy_settings(database_url: str, **overrides: Any) -> ProxySettings:
    """Settings of a tmdb-proxy that never goes online (no TMDB key, whatever the environment
    holds) on ``database_url``."""
    values: dict[str, Any] = {"tmdb_api_key": None, "tmdb_read_token": None, **overrides}
    return ProxySettings(_env_file=None, database_url=database_url, **values)  # type: ignore[call-arg]


@pytest.fixture
def fake_tmdb() -> Iterator[FakeTmdb]:
    """A fake TMDB that accepts ``TMDB_KEY``, listening on a free loopback port."""
    fake = FakeTmdb(api_key=TMDB_KEY)
    with fake.serve():
        yield fake


ProxyFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def proxy(database_url: str) -> ProxyFactory:
    """``async with proxy(tmdb=fake, **settings) as client``: the proxy app with its lifespan
    running; without ``tmdb`` it is offline (no key). ``client.app_service`` is its service."""
    return make_proxy_factory(database_url)


def make_proxy_factory(database_url: str) -> ProxyFactory:
    @asynccontextmanager
    async def factory(
        tmdb: FakeTmdb | None = None, *, api_key: str = TMDB_KEY, **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings: dict[str, Any] = {
            "database_url": database_url,
            "tmdb_proxy_backoff_base_s": 0.05,
            "tmdb_proxy_backoff_max_s": 0.2,
            "tmdb_proxy_retry_budget_s": 5.0,
            "tmdb_proxy_timeout_s": 2.0,
            "tmdb_proxy_index_refresh_s": 0.0,
            # explicit, so that a TMDB key in the environment never makes a test go online
            "tmdb_api_key": None,
            "tmdb_read_token": None,
        }
        if tmdb is not None:
            settings["tmdb_api_base_url"] = tmdb.base_url
            settings["tmdb_api_key"] = SecretStr(api_key)
        settings.update(overrides)
        from prefshift_tmdb_proxy.config import Settings

        app = create_app(Settings(_env_file=None, **settings))  # type: ignore[call-arg]
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://proxy", timeout=60
            ) as client,
        ):
            client.app_service = app.state.movie_service  # type: ignore[attr-defined]
            yield client

    return factory


def service_of(client: httpx.AsyncClient) -> MovieService:
    service: MovieService = client.app_service  # type: ignore[attr-defined]
    return service


@pytest.fixture(scope="session")
def ml_small_offline_template(
    shared_templates: SharedTemplates, ml_small_template: str, shared_data: Path
) -> str:
    """``ml-latest-small`` plus ``tmdb-offline/movies.jsonl`` imported with the TMDB 5000 file's
    keywords (never write to it, nor connect to it: clone it)."""

    def make() -> str:
        url = shared_templates.new(ml_small_template)
        import_tmdb_jsonl(
            url,
            shared_data / "tmdb-offline" / "movies.jsonl",
            tmdb_5000=shared_data / "tmdb-5000" / "tmdb_5000_movies.csv",
        )
        return url

    return shared_templates.get("ml-small-offline", make)


@pytest.fixture
def ml_small_offline_database_url(
    database_factory: DatabaseFactory, ml_small_offline_template: str
) -> str:
    """A fresh copy of ``ml_small_offline_template`` for this test."""
    return database_factory.new(template=ml_small_offline_template)
