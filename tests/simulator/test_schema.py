"""schemathesis against the simulator's OpenAPI schema, over real HTTP on loopback (with the
real tmdb-proxy and a fake LLM behind it): responses conform to the schema, invalid input is
refused, nothing answers 500.

Operations are driven with Hypothesis directly (``operation.as_strategy()``), as in the proxy's
schema test, because schemathesis's ``from_fixture`` does not work with this pytest version."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr

from prefshift_simulator.main import create_app
from prefshift_tmdb_proxy.config import Settings as ProxySettings
from prefshift_tmdb_proxy.main import create_app as create_proxy_app
from tests.fakes.live import LiveServer
from tests.fakes.openai_server import FakeOpenAI
from tests.simulator.conftest import simulator_settings
from tests.simulator.test_llm import answer_all

API_TOKEN = "schemathesis-simulator-token"
OPERATIONS = ["POST /ratings", "GET /backends", "GET /healthz", "GET /readyz"]


@pytest.fixture(scope="module")
def simulator_schema(
    database_factory: object, seed_cohort_template: str
) -> Iterator[schemathesis.BaseSchema]:
    url = database_factory.new(template=seed_cohort_template)  # type: ignore[attr-defined]
    proxy = create_proxy_app(
        ProxySettings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=url,
            tmdb_api_key=None,
            tmdb_read_token=None,
            log_level="WARNING",
        )
    )
    fake = FakeOpenAI(responder=answer_all)
    with LiveServer(proxy) as proxy_server, fake.serve() as llm_url:
        app = create_app(
            simulator_settings(
                url,
                proxy_server.url,
                openai_base_url=llm_url,
                openai_api_key=SecretStr("sk-schemathesis"),
                simulator_backend="embedded",
                simulator_dataset="seed-cohort",
                api_token=SecretStr(API_TOKEN),
                log_level="WARNING",
            )
        )
        with LiveServer(app) as server:
            yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_schema_lists_every_operation(simulator_schema: schemathesis.BaseSchema) -> None:
    found = {
        f"{result.ok().method.upper()} {result.ok().path}"
        for result in simulator_schema.get_all_operations()
    }
    assert found == set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_the_schema(
    simulator_schema: schemathesis.BaseSchema, label: str
) -> None:
    method, path = label.split(" ", 1)
    operation = simulator_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=int(os.environ.get("SIM_SCHEMA_EXAMPLES", "60")),
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {API_TOKEN}"})

    check()
