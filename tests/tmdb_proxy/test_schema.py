"""schemathesis against the proxy's OpenAPI schema (the harness in ``tests/schema.py``), served
offline on ml-latest-small."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis

from prefshift_tmdb_proxy.main import create_app
from tests.fakes.live import LiveServer
from tests.schema import SchemaContract
from tests.tmdb_proxy.conftest import offline_proxy_settings


@pytest.mark.slow
class TestProxySchema(SchemaContract):
    api_token = "schemathesis-proxy-token"
    operations = (
        "GET /3/movie/{tmdb_id}",
        "GET /3/movie/{tmdb_id}/{part}",
        "GET /3/movie/{tmdb_id}/watch/providers",
        "GET /3/movie/popular",
        "GET /3/movie/top_rated",
        "GET /3/movie/now_playing",
        "GET /3/movie/upcoming",
        "GET /3/movie/latest",
        "GET /3/search/movie",
        "GET /3/discover/movie",
        "GET /3/find/{external_id}",
        "GET /3/genre/movie/list",
        "GET /3/configuration",
        "POST /movies/batch",
        "GET /cache/stats",
        "GET /healthz",
        "GET /readyz",
    )

    database_template = "ml_small_offline_template"
    #: the offline catalogue (lists, similar) is built at start-up: slow on a busy machine
    timeout = 60.0

    def examples(self, method: str, path: str) -> int:
        # TMDB's list and sub-resource paths share one handler shape: fewer draws each
        if path.startswith("/3/") and path not in ("/3/movie/{tmdb_id}", "/3/search/movie"):
            return 15
        return self.max_examples

    @pytest.fixture(scope="class")
    @classmethod
    def schema(cls, schema_database_url: str) -> Iterator[schemathesis.BaseSchema]:
        # with a token, schemathesis also checks that wrong or missing auth is refused
        settings = offline_proxy_settings(
            schema_database_url, log_level="WARNING", api_token=cls.api_token
        )
        with LiveServer(create_app(settings)) as server:
            yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
