"""SIGTERM to a real orchestrator process while its runs retry a failing simulator: it claims
no new run, hands back the runs it holds, and exits within the grace period a supervisor gives
before SIGKILL (``Stack.stop``'s and docker's 10 s)."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx
import pytest

from prefshift.stack import Stack
from prefshift_common.settings import CommonSettings
from tests.fakes.live import free_port
from tests.orchestrator.conftest import UNREACHABLE, USER, dataset_tmdb_ids
from tests.orchestrator.standins import StandInRecommender, StandInSimulator, stand_in_services
from tests.orchestrator.test_workers import _query

#: What a supervisor waits after SIGTERM before SIGKILL (``Stack.stop``, docker's default).
GRACE_SECONDS = 10.0
WORKERS = 2
RUNS = 4
pytestmark = pytest.mark.slow  # a real orchestrator process: about 15 s
PROTOCOL = {"pages": 1, "page_size": 3, "test_size": 6, "persona_size": 8, "arms": ["control"]}


def test_sigterm_mid_retry_claims_nothing_releases_its_runs_and_exits_in_time(
    seed_cohort_database_url: str,
) -> None:
    url = seed_cohort_database_url
    simulator = StandInSimulator()
    simulator.fail_after = 0  # every rating call: 503, which the orchestrator retries
    recommender = StandInRecommender(dataset_tmdb_ids(url))
    orchestrator_url = f"http://127.0.0.1:{free_port()}"
    with stand_in_services(simulator, recommender) as services:
        settings = CommonSettings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=url,
            orchestrator_url=orchestrator_url,
            api_token=None,
        )
        stack = Stack(
            settings,
            env={
                "PREFSHIFT_DATABASE_URL": url,
                "PREFSHIFT_ORCHESTRATOR_URL": orchestrator_url,
                "PREFSHIFT_SIMULATOR_URL": services["simulator_url"],
                "PREFSHIFT_RECOMMENDER_URL": services["recommender_url"],
                "PREFSHIFT_TMDB_PROXY_URL": UNREACHABLE,
                "PREFSHIFT_ORCHESTRATOR_DATASET": "seed-cohort",
                "PREFSHIFT_ORCHESTRATOR_WORKERS": str(WORKERS),
                "PREFSHIFT_ORCHESTRATOR_POLL_SECONDS": "0.1",
                "PREFSHIFT_ORCHESTRATOR_HEARTBEAT_SECONDS": "0.3",
                # nothing is re-queued as stalled while the test runs: every claim is a worker's
                "PREFSHIFT_ORCHESTRATOR_STALL_SECONDS": "600",
                "PREFSHIFT_ORCHESTRATOR_CALL_RETRIES": "0",
                "PREFSHIFT_ORCHESTRATOR_STEP_RETRIES": "50",
                "PREFSHIFT_ORCHESTRATOR_STEP_BACKOFF_SECONDS": "0.2",
                "PREFSHIFT_LOG_LEVEL": "WARNING",
            },
            services=("orchestrator",),
        )
        stack.start()
        try:
            stack.wait_ready(timeout=120)
            with httpx.Client(base_url=orchestrator_url, timeout=30) as client:
                runs = [
                    client.post(f"/simulate/{USER}", json={**PROTOCOL, "seed": seed}).json()[
                        "run_id"
                    ]
                    for seed in range(RUNS)
                ]
            # both workers hold a run whose baseline is being retried
            deadline = time.monotonic() + 60
            while len(simulator.requests) < 3 * WORKERS or _running(url) < WORKERS:
                assert time.monotonic() < deadline, "the runs never reached their retries"
                time.sleep(0.05)
            process = stack.processes["orchestrator"]
            process.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            try:
                process.wait(GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                claims = _query(url, "SELECT id, status, attempts FROM runs ORDER BY id")
                raise AssertionError(
                    f"still running {GRACE_SECONDS:.0f} s after SIGTERM; runs: {claims}"
                ) from None
            took = time.monotonic() - sent
        finally:
            stack.stop()
        calls_at_exit = len(simulator.requests)
        time.sleep(0.5)
        assert len(simulator.requests) == calls_at_exit  # nothing of it is left calling

    rows = _query(
        url,
        "SELECT id, status, claimed_by, claim_token, attempts FROM runs ORDER BY id",
    )
    assert [row[0] for row in rows] == runs
    # every run back in the queue, unclaimed: the held ones released, no other one claimed
    assert [(row[1], row[2], row[3]) for row in rows] == [("queued", None, None)] * RUNS
    assert sorted(row[4] for row in rows) == [0] * (RUNS - WORKERS) + [1] * WORKERS
    # uvicorn re-raises the SIGTERM it handled once it has shut down
    assert process.returncode == -signal.SIGTERM, f"exit {process.returncode} after {took:.1f} s"


def _running(url: str) -> int:
    return int(_query(url, "SELECT COUNT(*) FROM runs WHERE status = 'running'")[0][0])
