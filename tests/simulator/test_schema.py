"""schemathesis against the simulator's OpenAPI schema (the harness in ``tests/schema.py``), with
the real tmdb-proxy and a fake LLM behind it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from pydantic import SecretStr

from prefshift_simulator.main import create_app
from prefshift_tmdb_proxy.main import create_app as create_proxy_app
from tests.fakes.live import LiveServer
from tests.fakes.openai_server import FakeOpenAI
from tests.schema import SchemaContract
from tests.simulator.conftest import simulator_settings
from tests.simulator.test_llm import answer_all
from tests.tmdb_proxy.conftest import offline_proxy_settings


@pytest.mark.slow
class TestSimulatorSchema(SchemaContract):
    api_token = "schemathesis-simulator-token"
    operations = ("POST /ratings", "GET /backends", "GET /healthz", "GET /readyz")
    max_examples = int(os.environ.get("SIM_SCHEMA_EXAMPLES", "60"))

    database_template = "seed_cohort_template"

    @pytest.fixture(scope="class")
    @classmethod
    def schema(cls, schema_database_url: str) -> Iterator[schemathesis.BaseSchema]:
        url = schema_database_url
        proxy = create_proxy_app(offline_proxy_settings(url, log_level="WARNING"))
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
                    api_token=SecretStr(cls.api_token),
                    log_level="WARNING",
                )
            )
            with LiveServer(app) as server:
                yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
