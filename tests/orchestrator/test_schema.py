"""schemathesis against the orchestrator's OpenAPI schema (the harness in ``tests/schema.py``),
with its workers running runs against contract-speaking services."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from pydantic import SecretStr

from prefshift_orchestrator.main import create_app
from tests.fakes.live import LiveServer
from tests.orchestrator.conftest import USER, dataset_tmdb_ids, orchestrator_settings
from tests.orchestrator.standins import StandInRecommender, StandInSimulator, serving
from tests.polling import wait_for_run
from tests.schema import SchemaContract


@pytest.mark.slow
class TestOrchestratorSchema(SchemaContract):
    api_token = "schemathesis-orchestrator-token"
    operations = (
        "POST /simulate/{user_id}",
        "GET /simulate/{user_id}",
        "GET /runs/{run_id}",
        "DELETE /runs/{run_id}",
        "GET /runs/{run_id}/ratings",
        "GET /runs/{run_id}/shift",
        "GET /runs/{run_id}/selection",
        "GET /runs",
        "POST /experiments",
        "GET /experiments/{experiment_id}",
        "GET /experiments/{experiment_id}/progress",
        "GET /experiments/{experiment_id}/report",
        "GET /experiments",
        "GET /datasets",
        "GET /healthz",
        "GET /readyz",
    )
    timeout = 120  # generous: POST /experiments with a cohort rule reads every rating

    def examples(self, method: str, path: str) -> int:
        return 25 if method == "POST" else 50

    def check_response(self, method: str, path: str, response: schemathesis.Response) -> None:
        if response.status_code == 422 and method == "POST":
            assert response.json()["error"] in ("validation_error", "unprocessable")

    database_template = "seed_cohort_template"

    @pytest.fixture(scope="class")
    @classmethod
    def schema(cls, schema_database_url: str) -> Iterator[schemathesis.BaseSchema]:
        url = schema_database_url
        simulator = StandInSimulator()
        recommender = StandInRecommender(dataset_tmdb_ids(url))
        with serving(simulator.app) as simulator_url, serving(recommender.app) as recommender_url:
            app = create_app(
                orchestrator_settings(
                    url,
                    simulator_url=simulator_url,
                    recommender_url=recommender_url,
                    api_token=SecretStr(cls.api_token),
                    log_level="WARNING",
                )
            )
            with LiveServer(app) as server:
                # Some finished runs and an experiment, so that the read routes have data.
                small = {"pages": 1, "page_size": 3, "test_size": 5, "persona_size": 5}
                headers = {"Authorization": f"Bearer {cls.api_token}"}
                with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
                    run = client.post(f"/simulate/{USER}", json=small).json()
                    cohort = {"kind": "users", "user_ids": [USER]}
                    client.post("/experiments", json={**small, "cohort": cohort})
                    assert wait_for_run(client, run["run_id"], timeout=60)["status"] == "completed"
                yield schemathesis.openapi.from_url(f"{server.url}/openapi.json")
