"""schemathesis against the proxy's OpenAPI schema (the harness in ``tests/schema.py``), served
offline on ml-latest-small."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis

from prefshift_tmdb_proxy.config import Settings
from prefshift_tmdb_proxy.main import create_app
from tests.fakes.live import LiveServer
from tests.schema import SchemaContract


class TestProxySchema(SchemaContract):
    api_token = "schemathesis-proxy-token"
    operations = (
        "GET /3/movie/{tmdb_id}",
        "GET /3/search/movie",
        "POST /movies/batch",
        "GET /cache/stats",
        "GET /healthz",
        "GET /readyz",
    )

    @pytest.fixture(scope="class")
    @classmethod
    def schema(
        cls, database_factory: object, ml_small_offline_template: str
    ) -> Iterator[schemathesis.BaseSchema]:
        url = database_factory.new(template=ml_small_offline_template)  # type: ignore[attr-defined]
        app = create_app(
            Settings(  # type: ignore[call-arg]
                _env_file=None,
                database_url=url,
                tmdb_api_key=None,
                tmdb_read_token=None,
                log_level="WARNING",
                # with a token, schemathesis also checks that wrong or missing auth is refused
                api_token=cls.api_token,
            )
        )
        with LiveServer(app) as server:
            yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
