"""Killing the orchestrator mid-run loses no completed work and repeats no completed call; two
orchestrator processes on Postgres share an experiment without running a user twice."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
from sqlalchemy import text

from prefshift_common.db import sync_connection
from tests.e2e.conftest import USER, RecordingProxy, Services
from tests.fakes.live import free_port
from tests.polling import wait_for_run

PROTOCOL = {"pages": 4, "page_size": 10, "arms": ["als", "random", "control"], "seed": 3}
RATING_CALLS = 1 + 2 * 4 * 2 + 4  # baseline, 2 recommending arms × 4 pages × 2, control × 4
BASE_SERVICES = ("tmdb-proxy", "simulator", "recommender")


def _query(database_url: str, sql: str, **params: Any) -> list[Any]:
    with sync_connection(database_url) as connection:
        return list(connection.execute(text(sql), params))


def _fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def test_kill_the_orchestrator_mid_run_and_restart_it(services: Services) -> None:
    database_url = services.env["PREFSHIFT_DATABASE_URL"]
    simulator = RecordingProxy(services.urls["simulator"], delay=0.4)
    recommender = RecordingProxy(services.urls["recommender"])
    with (
        services.start(BASE_SERVICES),
        simulator.serve() as simulator_url,
        recommender.serve() as recommender_url,
    ):
        via_proxies = {
            "PREFSHIFT_SIMULATOR_URL": simulator_url,
            "PREFSHIFT_RECOMMENDER_URL": recommender_url,
        }
        with services.start(["orchestrator"], **via_proxies) as first, services.client() as client:
            run_id = client.post(f"/simulate/{USER}", json=PROTOCOL).json()["run_id"]
            deadline = time.monotonic() + 240
            while client.get(f"/runs/{run_id}").json()["pages_done"] < 5:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            first.processes["orchestrator"].kill()  # SIGKILL: no graceful hand-back
            first.processes["orchestrator"].wait()
            time.sleep(0.5)  # requests already on the wire reach the proxies
        status, claimed_by = _query(
            database_url, "SELECT status, claimed_by FROM runs WHERE id = :r", r=run_id
        )[0]
        assert status == "running" and claimed_by is not None  # as the dead process left it
        steps = _query(
            database_url,
            "SELECT arm, page, phase FROM run_ratings WHERE run_id = :r GROUP BY arm, page, phase",
            r=run_id,
        )
        pages = _query(
            database_url,
            "SELECT COUNT(*) FROM run_pages WHERE run_id = :r AND recommended IS NOT NULL",
            r=run_id,
        )[0][0]
        assert 0 < len(steps) < RATING_CALLS
        rated_before = simulator.bodies("ratings")
        recommended_before = recommender.bodies("recommendations")

        with services.start(["orchestrator"], **via_proxies), services.client() as client:
            run = wait_for_run(client, run_id)
        assert run["status"] == "completed", run
        assert run["attempts"] == 2
    rated_after = simulator.bodies("ratings")[len(rated_before) :]
    recommended_after = recommender.bodies("recommendations")[len(recommended_before) :]
    # The restarted orchestrator asked for exactly the steps the dead one had not stored …
    assert len(rated_after) == RATING_CALLS - len(steps)
    assert len(recommended_after) == 2 * 4 - pages
    # … and repeated only calls that were in flight when it died (sent, never stored).
    before = {_fingerprint(body) for body in rated_before}
    repeated = [body for body in rated_after if _fingerprint(body) in before]
    assert len(repeated) == len(rated_before) - len(steps)
    stored = _query(
        database_url,
        "SELECT COUNT(*), COUNT(DISTINCT arm || ':' || page || ':' || phase) FROM run_ratings "
        "WHERE run_id = :r",
        r=run_id,
    )[0]
    assert stored[1] == RATING_CALLS
    assert stored[0] == 30 * (1 + 3 * 4) + 10 * 2 * 4


@pytest.mark.postgres_only  # several orchestrator processes share one Postgres database
def test_two_orchestrators_share_an_experiment(services: Services) -> None:
    database_url = services.env["PREFSHIFT_DATABASE_URL"]
    simulator = RecordingProxy(services.urls["simulator"])
    users = [
        int(row[0])
        for row in _query(
            database_url, "SELECT user_id FROM dataset_users ORDER BY user_id LIMIT 6"
        )
    ]
    protocol = {"pages": 2, "page_size": 5, "arms": ["random", "control"], "seed": 1}
    second_url = f"http://127.0.0.1:{free_port()}"
    with services.start(BASE_SERVICES), simulator.serve() as simulator_url:
        common = {"PREFSHIFT_SIMULATOR_URL": simulator_url, "PREFSHIFT_ORCHESTRATOR_WORKERS": "2"}
        with (
            services.start(["orchestrator"], PREFSHIFT_ORCHESTRATOR_WORKER_ID="one", **common),
            services.start(
                ["orchestrator"],
                PREFSHIFT_ORCHESTRATOR_WORKER_ID="two",
                PREFSHIFT_ORCHESTRATOR_URL=second_url,
                **common,
            ),
            services.client() as one,
            services.client(second_url) as two,
        ):
            experiment = one.post(
                "/experiments", json={**protocol, "cohort": {"kind": "users", "user_ids": users}}
            )
            assert experiment.status_code == 202, experiment.text
            experiment_id = experiment.json()["experiment_id"]
            deadline = time.monotonic() + 300
            while (state := two.get(f"/experiments/{experiment_id}").json())["status"] == "running":
                assert time.monotonic() < deadline
                time.sleep(0.2)
    assert state["status"] == "completed", state
    runs = _query(database_url, "SELECT user_id, attempts, claimed_by FROM runs ORDER BY user_id")
    assert [row[0] for row in runs] == users
    assert all(row[1] == 1 for row in runs)
    assert {row[2] for row in runs} == {"one", "two"}
    per_user: dict[int, int] = {}
    for body in simulator.bodies("ratings"):
        per_user[body["persona"]["user_id"]] = per_user.get(body["persona"]["user_id"], 0) + 1
    # baseline + random (2 pages × 2 calls) + control (2 pages): once each, never twice.
    assert per_user == {user: 1 + 4 + 2 for user in users}
