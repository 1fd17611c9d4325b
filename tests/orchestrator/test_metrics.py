"""The orchestrator's ``/metrics``: the queue's depth counted in the database, and what its workers
did on a run against contract-speaking services (runs claimed and completed, ratings written,
page steps timed)."""

from __future__ import annotations

import httpx

from tests.orchestrator.conftest import USER, OrchestratorFactory, dataset_tmdb_ids
from tests.orchestrator.standins import StandInRecommender, StandInSimulator, stand_in_services
from tests.polling import wait_for_run
from tests.prometheus import sample

USERS = [47425, 85795, 117669]
SMALL = {"pages": 2, "page_size": 5, "test_size": 10, "persona_size": 12}


def runs(client: httpx.Client, status: str) -> float:
    return sample(client.get("/metrics").text, "prefshift_orchestrator_runs", status=status)


def test_the_queue_depth_counts_an_experiments_runs_by_status(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    with orchestrator(seed_cohort_database_url, orchestrator_workers=0) as client:
        # every status is shown, at 0 before any run exists
        assert 'prefshift_orchestrator_runs{status="queued"} 0.0' in client.get("/metrics").text
        submitted = client.post(
            "/experiments",
            json={**SMALL, "seed": 5, "cohort": {"kind": "users", "user_ids": USERS}},
        )
        assert submitted.status_code == 202, submitted.text
        assert runs(client, "queued") == 3
        cancelled = client.delete(f"/runs/{submitted.json()['runs'][0]['run_id']}")
        assert cancelled.status_code == 200, cancelled.text
        text = client.get("/metrics").text

    depth = {
        status: sample(text, "prefshift_orchestrator_runs", status=status)
        for status in ("queued", "running", "completed", "failed", "cancelled")
    }
    assert depth == {"queued": 2, "running": 0, "completed": 0, "failed": 0, "cancelled": 1}
    assert sample(text, "prefshift_orchestrator_queue_depth") == 2
    assert sample(text, "prefshift_orchestrator_runs_claimed_total") == 0  # no worker here
    assert (
        sample(
            text,
            "prefshift_http_requests_total",
            method="POST",
            route="/experiments",
            status="202",
        )
        == 1
    )


def test_a_run_moves_the_worker_counters(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator()
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    with (
        stand_in_services(simulator, recommender) as services,
        orchestrator(seed_cohort_database_url, **services) as client,
    ):
        response = client.post(f"/simulate/{USER}", json={**SMALL, "seed": 7})
        assert response.status_code == 202, response.text
        run = wait_for_run(client, response.json()["run_id"])
        assert run["status"] == "completed", run
        stored = client.get(f"/runs/{run['run_id']}/ratings").json()["ratings"]
        text = client.get("/metrics").text

    assert sample(text, "prefshift_orchestrator_runs_claimed_total") == 1
    assert sample(text, "prefshift_orchestrator_runs_completed_total") == 1
    assert sample(text, "prefshift_orchestrator_runs_failed_total") == 0
    assert sample(text, "prefshift_orchestrator_runs", status="completed") == 1
    assert sample(text, "prefshift_orchestrator_runs", status="queued") == 0
    written = "prefshift_orchestrator_ratings_written_total"
    # the baseline and 3 arms x 2 pages re-rate 10 test movies; 2 arms x 2 pages show 5 movies
    assert sample(text, written, phase="test") == 10 * (1 + 3 * 2)
    assert sample(text, written, phase="experience") == 5 * 2 * 2
    assert sample(text, written, phase="test") + sample(text, written, phase="experience") == len(
        stored
    )
    steps = "prefshift_orchestrator_step_duration_seconds_count"
    assert sample(text, steps, step="ratings") == len(simulator.requests)
    assert sample(text, steps, step="recommend") == 2 * 2
    route = "/runs/{run_id}"
    assert sample(text, "prefshift_http_requests_total", method="GET", route=route) >= 1
