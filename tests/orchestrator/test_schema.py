"""schemathesis against the orchestrator's OpenAPI schema, over real HTTP on loopback, with its
workers running runs against contract-speaking services: responses conform to the schema,
invalid input is refused with 422, nothing answers 500.

Operations are driven with Hypothesis directly (``operation.as_strategy()``), as in the other
services' schema tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis.checks import positive_data_acceptance

from prefshift_orchestrator.main import create_app
from tests.fakes.live import LiveServer
from tests.orchestrator.conftest import USER, dataset_tmdb_ids, orchestrator_settings
from tests.orchestrator.standins import StandInRecommender, StandInSimulator, serving

API_TOKEN = "schemathesis-orchestrator-token"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
OPERATIONS = [
    "POST /simulate/{user_id}",
    "GET /simulate/{user_id}",
    "GET /runs/{run_id}",
    "DELETE /runs/{run_id}",
    "GET /runs/{run_id}/ratings",
    "GET /runs/{run_id}/shift",
    "GET /runs/{run_id}/selection",
    "POST /experiments",
    "GET /experiments/{experiment_id}",
    "GET /experiments/{experiment_id}/report",
    "GET /experiments",
    "GET /datasets",
    "GET /healthz",
    "GET /readyz",
]


@pytest.fixture(scope="module")
def orchestrator_schema(
    database_factory: object, seed_cohort_template: str
) -> Iterator[schemathesis.BaseSchema]:
    url = database_factory.new(template=seed_cohort_template)  # type: ignore[attr-defined]
    simulator = StandInSimulator()
    recommender = StandInRecommender(dataset_tmdb_ids(url))
    with serving(simulator.app) as simulator_url, serving(recommender.app) as recommender_url:
        app = create_app(
            orchestrator_settings(
                url,
                simulator_url=simulator_url,
                recommender_url=recommender_url,
                api_token=SecretStr(API_TOKEN),
                log_level="WARNING",
            )
        )
        with LiveServer(app) as server:
            # Some finished runs and an experiment, so that the read routes have data to show.
            small = {"pages": 1, "page_size": 3, "test_size": 5, "persona_size": 5}
            client = httpx.Client(base_url=server.url, headers=AUTH, timeout=60)
            run = client.post(f"/simulate/{USER}", json=small).json()
            client.post(
                "/experiments", json={**small, "cohort": {"kind": "users", "user_ids": [USER]}}
            )
            deadline = time.monotonic() + 60
            while client.get(f"/runs/{run['run_id']}").json()["status"] != "completed":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            client.close()
            yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_schema_lists_every_operation(orchestrator_schema: schemathesis.BaseSchema) -> None:
    found = {
        f"{result.ok().method.upper()} {result.ok().path}"
        for result in orchestrator_schema.get_all_operations()
    }
    assert found == set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_operation_conforms_to_the_schema(
    orchestrator_schema: schemathesis.BaseSchema, label: str
) -> None:
    method, path = label.split(" ", 1)
    operation = orchestrator_schema[path][method]
    examples = 25 if method == "POST" else 50
    # The POSTs have rules JSON Schema cannot state (distinct arm names; test + persona movies
    # within the user's ratings; a cohort rule's bounds): a schema-valid body may break them
    # and then gets a documented 422. Every other check runs, including for those 422s.
    excluded = [positive_data_acceptance] if method == "POST" else []

    @given(case=operation.as_strategy())
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        # generous: POST /experiments with a cohort rule reads every rating of the dataset
        response = case.call_and_validate(headers=AUTH, excluded_checks=excluded, timeout=120)
        if response.status_code == 422 and method == "POST":
            assert response.json()["error"] in ("validation_error", "unprocessable")

    check()
