"""Workers: runs resume from their checkpoints without repeating completed calls, stalled runs
are re-queued, several orchestrators share the queue, and failures are recorded."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from prefshift_common.db import sync_connection
from tests.orchestrator.conftest import (
    USER,
    OrchestratorFactory,
    dataset_tmdb_ids,
)
from tests.orchestrator.standins import (
    StandInRecommender,
    StandInSimulator,
    serving,
    stand_in_services,
)
from tests.polling import wait_for_run

PROTOCOL = {"pages": 3, "page_size": 4, "test_size": 6, "persona_size": 8, "seed": 11}
ARMS = ["als", "random", "control"]
# baseline + (2 arms × 3 pages × 2 calls) + control's 3 pages
RATING_CALLS = 1 + 2 * 3 * 2 + 3


def _fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _query(database_url: str, sql: str, **params: Any) -> list[Any]:
    with sync_connection(database_url, transaction=True) as connection:
        result = connection.execute(text(sql), params)
        return list(result) if result.returns_rows else []


def _stored_steps(database_url: str, run_id: int) -> tuple[int, int]:
    """(rating steps stored, recommendation pages stored) of a run."""
    steps = _query(
        database_url,
        "SELECT COUNT(*) FROM (SELECT DISTINCT arm, page, phase FROM run_ratings "
        "WHERE run_id = :run) AS s",
        run=run_id,
    )[0][0]
    pages = _query(
        database_url,
        "SELECT COUNT(*) FROM run_pages WHERE run_id = :run AND recommended IS NOT NULL",
        run=run_id,
    )[0][0]
    return int(steps), int(pages)


def _wait_for_pages(client: httpx.Client, run_id: int, pages: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while client.get(f"/runs/{run_id}").json()["pages_done"] < pages:
        assert time.monotonic() < deadline, "run made no progress"
        time.sleep(0.05)


def test_a_stopped_run_resumes_elsewhere_without_repeating_completed_calls(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator(delay=0.15)
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    with stand_in_services(simulator, recommender) as services:
        with orchestrator(seed_cohort_database_url, **services) as first:
            run_id = first.post(f"/simulate/{USER}", json={**PROTOCOL, "arms": ARMS}).json()[
                "run_id"
            ]
            _wait_for_pages(first, run_id, 4)
        # The first orchestrator stopped mid-run and handed the run back to the queue.
        status = _query(seed_cohort_database_url, "SELECT status FROM runs WHERE id = :r", r=run_id)
        assert status[0][0] == "queued"
        steps_before, pages_before = _stored_steps(seed_cohort_database_url, run_id)
        assert 0 < steps_before < RATING_CALLS
        sent_before = len(simulator.requests)
        recommended_before = len(recommender.requests)

        with orchestrator(seed_cohort_database_url, **services) as second:
            run = wait_for_run(second, run_id)
        assert run["status"] == "completed" and run["attempts"] == 2

    # Exactly the steps that were not stored were asked for after the restart.
    assert len(simulator.requests) - sent_before == RATING_CALLS - steps_before
    assert len(recommender.requests) - recommended_before == 2 * 3 - pages_before
    stored_fingerprints = {_fingerprint(b) for b in simulator.requests[:sent_before]}
    repeats = [
        b for b in simulator.requests[sent_before:] if _fingerprint(b) in stored_fingerprints
    ]
    # Only calls in flight at the stop (sent, never stored) may have been sent again.
    assert len(repeats) == sent_before - steps_before


def test_a_stalled_run_is_requeued_and_completed(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator()
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    with stand_in_services(simulator, recommender) as services:
        with orchestrator(seed_cohort_database_url, orchestrator_workers=0, **services) as api:
            run_id = api.post(f"/simulate/{USER}", json={**PROTOCOL, "arms": ARMS}).json()["run_id"]
        # A worker that died holding the run: claimed, heartbeat long ago.
        _query(
            seed_cohort_database_url,
            "UPDATE runs SET status = 'running', claimed_by = 'dead-worker', "
            "claim_token = 'dead', attempts = 1, heartbeat_at = :old WHERE id = :r",
            old="2020-01-01 00:00:00.000000",
            r=run_id,
        )
        with orchestrator(seed_cohort_database_url, **services) as client:
            run = wait_for_run(client, run_id)
        assert run["status"] == "completed" and run["attempts"] == 2
        assert run["claimed_by"] != "dead-worker"


def test_two_orchestrators_share_an_experiment_without_running_a_user_twice(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator(delay=0.02)
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    users = [
        int(row[0])
        for row in _query(
            seed_cohort_database_url,
            "SELECT user_id FROM dataset_users ORDER BY user_id LIMIT 8",
        )
    ]
    protocol = {"pages": 1, "page_size": 3, "test_size": 5, "persona_size": 5, "arms": ARMS}
    with stand_in_services(simulator, recommender) as services:
        with (
            orchestrator(seed_cohort_database_url, orchestrator_worker_id="one", **services) as one,
            orchestrator(seed_cohort_database_url, orchestrator_worker_id="two", **services),
        ):
            experiment = one.post(
                "/experiments", json={**protocol, "cohort": {"kind": "users", "user_ids": users}}
            )
            assert experiment.status_code == 202, experiment.text
            experiment_id = experiment.json()["experiment_id"]
            deadline = time.monotonic() + 120
            while (state := one.get(f"/experiments/{experiment_id}").json())["status"] == "running":
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert state["status"] == "completed"
        assert state["progress"]["completed"] == len(users)
    runs = _query(
        seed_cohort_database_url,
        "SELECT user_id, attempts, claimed_by FROM runs ORDER BY user_id",
    )
    assert [row[0] for row in runs] == sorted(users)
    assert all(row[1] == 1 for row in runs)
    assert {row[2] for row in runs} == {"one", "two"}
    # Each user's baseline was asked for exactly once.
    baselines = [
        r["persona"]["user_id"] for r in simulator.requests if not r["persona"]["experiences"]
    ]
    per_user_calls = {
        u: sum(1 for r in simulator.requests if r["persona"]["user_id"] == u) for u in users
    }
    assert all(calls == 1 + 2 * 2 + 1 for calls in per_user_calls.values()), per_user_calls
    assert len(baselines) >= len(users)


def test_a_recommender_that_is_down_fails_the_run_with_a_clear_error(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator()
    with (
        serving(simulator.app) as simulator_url,
        orchestrator(seed_cohort_database_url, simulator_url=simulator_url) as client,
    ):
        run_id = client.post(f"/simulate/{USER}", json=PROTOCOL).json()["run_id"]
        run = wait_for_run(client, run_id)
    assert run["status"] == "failed"
    assert run["error"]["error"] == "unavailable" and run["error"]["status"] == 503
    assert "recommender at http://127.0.0.1:" in run["error"]["detail"]
    assert "unreachable" in run["error"]["detail"]


@pytest.mark.slow
def test_cancelling_a_running_run_stops_its_worker(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator(delay=0.2)
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    with (
        stand_in_services(simulator, recommender) as services,
        orchestrator(seed_cohort_database_url, **services) as client,
    ):
        run_id = client.post(f"/simulate/{USER}", json={**PROTOCOL, "arms": ARMS}).json()["run_id"]
        _wait_for_pages(client, run_id, 2)
        assert client.delete(f"/runs/{run_id}").json()["status"] == "cancelled"
        # The worker drops the run at its next heartbeat or write: the simulator, asked every
        # 0.2 s while the run goes on, then hears nothing more.
        deadline = time.monotonic() + 20
        calls, quiet_since = len(simulator.requests), time.monotonic()
        while time.monotonic() - quiet_since < 1.5:
            assert time.monotonic() < deadline, "the cancelled run kept calling the simulator"
            time.sleep(0.1)
            if len(simulator.requests) != calls:
                calls, quiet_since = len(simulator.requests), time.monotonic()
        assert calls < RATING_CALLS
        run = client.get(f"/runs/{run_id}").json()
        assert run["status"] == "cancelled" and run["pages_done"] < run["pages_total"]


def test_an_untrained_arm_is_trained_first_or_refused(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator()
    listing = [{"name": "als", "kind": "collaborative", "trained": False, "status": "untrained"}]
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url), listing=listing)
    body = {**PROTOCOL, "arms": ["als", "control"], "pages": 1}
    with stand_in_services(simulator, recommender) as services:
        with orchestrator(
            seed_cohort_database_url, orchestrator_train_untrained=False, **services
        ) as client:
            refused = wait_for_run(
                client, client.post(f"/simulate/{USER}", json=body).json()["run_id"]
            )
        assert refused["status"] == "failed" and refused["error"]["status"] == 409
        assert "is not trained" in refused["error"]["detail"]
        assert recommender.train_requests == []
        with orchestrator(seed_cohort_database_url, **services) as client:
            response = client.post(f"/simulate/{USER}", params={"force": True}, json=body)
            trained = wait_for_run(client, response.json()["run_id"])
        assert trained["status"] == "completed", trained
        assert recommender.train_requests == ["als"]
        assert any("trained 'als'" in message for message in trained["messages"])


def test_an_external_service_is_an_arm(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator()
    pool = dataset_tmdb_ids(seed_cohort_database_url)
    external = StandInRecommender(list(reversed(pool)), with_listing=False)
    with (
        serving(simulator.app) as simulator_url,
        serving(external.app) as external_url,
        orchestrator(
            seed_cohort_database_url,
            simulator_url=simulator_url,
            api_token=None,
            arm_url_allow="127.0.0.1",
        ) as client,
    ):
        arms = [{"name": "theirs", "url": external_url, "recommender": "whatever"}, "control"]
        run_id = client.post(f"/simulate/{USER}", json={**PROTOCOL, "arms": arms}).json()["run_id"]
        run = wait_for_run(client, run_id)
        assert run["status"] == "completed", run
        assert run["arms"][0] == {
            "name": "theirs",
            "kind": "recommender",
            "url": external_url,
            "recommender": "whatever",
        }
        assert [r["recommender"] for r in external.requests] == ["whatever"] * 3
        shown = [
            r["tmdb_id"]
            for r in client.get(f"/runs/{run_id}/ratings").json()["ratings"]
            if r["arm"] == "theirs" and r["phase"] == "experience"
        ]
        assert len(shown) == 12 and set(shown) <= set(pool[-200:])
