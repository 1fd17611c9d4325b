"""schemathesis against the recommender's OpenAPI schema, over real HTTP on loopback (trained
models on ml-latest-small, a fake LLM behind the LLM recommenders): every response conforms to
the schema, invalid input is refused with a declared status, nothing answers 500.

Operations are driven with Hypothesis directly (``operation.as_strategy()``), as the other
services' schema tests do."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis.checks import positive_data_acceptance

from prefshift_recommender.main import create_app
from tests.conftest import DatabaseFactory
from tests.fakes.live import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Reply, json_content
from tests.recommender.conftest import make_settings

API_TOKEN = "schemathesis-recommender-token"
OPERATIONS = [
    "GET /recommenders",
    "POST /recommendations",
    "POST /recommenders/{name}/train",
    "GET /healthz",
    "GET /readyz",
]
TITLES = [("The Matrix", 1999), ("Se7en", 1995), ("Heat", 1995), ("Fargo", 1996)]


def answer(_body: object) -> Reply:
    return Reply(
        content=json_content({"recommendations": [{"title": t, "year": y} for t, y in TITLES]})
    )


@pytest.fixture(scope="module")
def recommender_schema(
    database_factory: DatabaseFactory,
    ml_small_template: str,
    trained_data_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[schemathesis.BaseSchema]:
    url = database_factory.new(template=ml_small_template)
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    shutil.copytree(trained_data_dir, data_dir)
    fake = FakeOpenAI(responder=answer)
    with fake.serve() as llm_url:
        app = create_app(
            make_settings(
                url,
                data_dir,
                openai_base_url=llm_url,
                openai_api_key=SecretStr("sk-schemathesis"),
                recommender_llm_rounds=2,
                api_token=SecretStr(API_TOKEN),
                log_level="WARNING",
            )
        )
        with LiveServer(app) as server:
            yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_schema_lists_every_operation(recommender_schema: schemathesis.BaseSchema) -> None:
    found = {
        f"{result.ok().method.upper()} {result.ok().path}"
        for result in recommender_schema.get_all_operations()
    }
    assert found == set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_the_schema(
    recommender_schema: schemathesis.BaseSchema, label: str
) -> None:
    method, path = label.split(" ", 1)
    operation = recommender_schema[path][method]
    # Training parameters belong to one implementation each (k to item-knn, factors to als and
    # bpr), which the path picks: a schema-valid body can name another's parameter and get 422.
    excluded = [positive_data_acceptance] if path.endswith("/train") else []

    @given(case=operation.as_strategy())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers={"Authorization": f"Bearer {API_TOKEN}"}, excluded_checks=excluded
        )

    check()
