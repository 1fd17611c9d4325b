"""``prefshift worker``: a real worker process beside an orchestrator that runs no workers of
its own. It completes a run submitted through the orchestrator's API, answers its health
probes, and on SIGTERM hands back the run it holds and exits within the grace period a
supervisor gives before SIGKILL — the orchestrator's shutdown (``test_shutdown.py``), because
it is the same worker pool in the same lifespan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.fakes.live import free_port
from tests.orchestrator.conftest import UNREACHABLE, USER, OrchestratorFactory, dataset_tmdb_ids
from tests.orchestrator.standins import StandInRecommender, StandInSimulator, stand_in_services
from tests.orchestrator.test_shutdown import GRACE_SECONDS
from tests.orchestrator.test_workers import _query
from tests.polling import wait_for_run
from tests.prometheus import sample

pytestmark = pytest.mark.slow  # a real worker process: about 10 s
PROTOCOL = {"pages": 1, "page_size": 3, "test_size": 6, "persona_size": 8, "arms": ["control"]}
WORKER_ID = "worker-under-test"


def test_a_worker_process_completes_a_queued_run_and_stops_cleanly_on_sigterm(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    url = seed_cohort_database_url
    simulator = StandInSimulator()
    recommender = StandInRecommender(dataset_tmdb_ids(url))
    health = f"http://127.0.0.1:{free_port()}"
    with (
        stand_in_services(simulator, recommender) as services,
        # the API alone: every run is the worker's to execute
        orchestrator(url, orchestrator_workers=0, **services) as api,
    ):
        env = {
            **{k: v for k, v in os.environ.items() if k != "PREFSHIFT_API_TOKEN"},
            "PREFSHIFT_DATABASE_URL": url,
            "PREFSHIFT_SIMULATOR_URL": services["simulator_url"],
            "PREFSHIFT_RECOMMENDER_URL": services["recommender_url"],
            "PREFSHIFT_TMDB_PROXY_URL": UNREACHABLE,
            "PREFSHIFT_ORCHESTRATOR_DATASET": "seed-cohort",
            "PREFSHIFT_ORCHESTRATOR_WORKER_ID": WORKER_ID,
            "PREFSHIFT_ORCHESTRATOR_POLL_SECONDS": "0.1",
            "PREFSHIFT_ORCHESTRATOR_HEARTBEAT_SECONDS": "0.3",
            "PREFSHIFT_ORCHESTRATOR_STALL_SECONDS": "600",
            "PREFSHIFT_ORCHESTRATOR_CALL_RETRIES": "0",
            "PREFSHIFT_ORCHESTRATOR_STEP_RETRIES": "50",
            "PREFSHIFT_ORCHESTRATOR_STEP_BACKOFF_SECONDS": "0.2",
            "PREFSHIFT_LOG_LEVEL": "WARNING",
        }
        port = health.rsplit(":", 1)[1]
        command = [sys.executable, "-m", "prefshift.cli.main", "worker", "--port", port]
        process = subprocess.Popen([*command, "--workers", "1", "--log-level", "warning"], env=env)
        try:
            _wait_ready(process, health)
            first = api.post(f"/simulate/{USER}", json={**PROTOCOL, "seed": 1}).json()["run_id"]
            run = wait_for_run(api, first, timeout=120)
            assert run["status"] == "completed", run
            assert httpx.get(f"{health}/healthz", timeout=5).json()["status"] == "ok"
            # no API on the worker
            assert httpx.get(f"{health}/runs/{first}", timeout=5).status_code == 404
            # its /metrics: what its workers did, and the queue as the database holds it
            worked = httpx.get(f"{health}/metrics", timeout=5).text
            assert sample(worked, "prefshift_orchestrator_runs_completed_total") == 1
            assert sample(worked, "prefshift_orchestrator_runs", status="completed") == 1
            served = api.get("/metrics").text  # the API process has no workers
            assert sample(served, "prefshift_orchestrator_runs_claimed_total") == 0

            simulator.fail_after = len(simulator.requests)  # from now on: 503, retried
            second = api.post(f"/simulate/{USER}", json={**PROTOCOL, "seed": 2}).json()["run_id"]
            deadline = time.monotonic() + 60
            while len(simulator.requests) <= simulator.fail_after + 2:
                assert time.monotonic() < deadline, "the second run never reached its retries"
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            try:
                process.wait(GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"still running {GRACE_SECONDS:.0f} s after SIGTERM") from None
            took = time.monotonic() - sent
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    rows = _query(url, "SELECT id, status, claimed_by, claim_token FROM runs ORDER BY id")
    assert [tuple(row[:3]) for row in rows] == [
        (first, "completed", WORKER_ID),
        (second, "queued", None),  # handed back to the queue, for any other worker
    ]
    assert rows[1][3] is None
    # uvicorn re-raises the SIGTERM it handled once it has shut down
    assert process.returncode == -signal.SIGTERM, f"exit {process.returncode} after {took:.1f} s"


def _wait_ready(process: subprocess.Popen[bytes], health: str, timeout: float = 120) -> None:
    """Until the worker answers ``/readyz`` (its database is open, its pool started)."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"the worker exited with {process.returncode}"
        try:
            if httpx.get(f"{health}/readyz", timeout=1).json().get("status") == "ready":
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the worker never became ready"
        time.sleep(0.1)
