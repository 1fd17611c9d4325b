"""schemathesis against the proxy's OpenAPI schema, over real HTTP on loopback: every response
conforms to the schema, valid input is accepted, invalid input refused, nothing answers 500.

The operations are driven with Hypothesis directly (``operation.as_strategy()``) because
schemathesis's ``from_fixture`` does not work with this pytest version."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from prefshift_tmdb_proxy.config import Settings
from prefshift_tmdb_proxy.main import create_app
from tests.fakes.live import LiveServer

API_TOKEN = "schemathesis-proxy-token"
OPERATIONS = [
    "GET /3/movie/{tmdb_id}",
    "GET /3/search/movie",
    "POST /movies/batch",
    "GET /cache/stats",
    "GET /healthz",
    "GET /readyz",
]


@pytest.fixture(scope="module")
def proxy_schema(
    database_factory: object, ml_small_offline_template: str
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
            api_token=API_TOKEN,
        )
    )
    with LiveServer(app) as server:
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_schema_lists_every_operation(proxy_schema: schemathesis.BaseSchema) -> None:
    found = {
        f"{result.ok().method.upper()} {result.ok().path}"
        for result in proxy_schema.get_all_operations()
    }
    assert found == set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_the_schema(
    proxy_schema: schemathesis.BaseSchema, label: str
) -> None:
    method, path = label.split(" ", 1)
    operation = proxy_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {API_TOKEN}"})

    check()
