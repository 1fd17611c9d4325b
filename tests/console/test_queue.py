"""The runs page's work-queue panel: the runs by status as the real orchestrator's ``/metrics``
counts them (orchestrator on loopback, no workers, so submitted runs stay queued)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr

from prefshift_console.config import Settings
from prefshift_console.csrf import CSRF_COOKIE
from prefshift_console.main import create_app
from tests.orchestrator.conftest import running_orchestrator

USERS = [47425, 85795, 117669]
PROTOCOL = {"pages": 2, "page_size": 3, "test_size": 6, "persona_size": 6, "seed": 5}
UNREACHABLE = "http://127.0.0.1:9"


def console(tmp_path: Path, orchestrator_url: str, **overrides: object) -> TestClient:
    values: dict[str, object] = {
        "api_token": None,
        "orchestrator_url": orchestrator_url,
        "recommender_url": UNREACHABLE,
        "simulator_url": UNREACHABLE,
        "tmdb_proxy_url": UNREACHABLE,
        "data_dir": tmp_path,
        **overrides,
    }
    return TestClient(create_app(Settings(_env_file=None, **values)))  # type: ignore[call-arg]


def panel(html: str) -> dict[str, int]:
    """The queue panel's figures, by status."""
    cells = re.findall(
        r'<div data-status="(\w+)"><dt>\w+</dt><dd class="num">([\d,]+)</dd></div>', html
    )
    return {status: int(count.replace(",", "")) for status, count in cells}


def test_the_runs_page_shows_the_queue_from_the_orchestrators_metrics(
    seed_cohort_database_url: str, tmp_path: Path
) -> None:
    with running_orchestrator(seed_cohort_database_url, orchestrator_workers=0) as orchestrator:
        submitted = orchestrator.post(
            "/experiments", json={**PROTOCOL, "cohort": {"kind": "users", "user_ids": USERS}}
        )
        assert submitted.status_code == 202, submitted.text
        first = submitted.json()["runs"][0]["run_id"]
        assert orchestrator.delete(f"/runs/{first}").status_code == 200
        with console(tmp_path, str(orchestrator.base_url)) as client:
            page = client.get("/runs")

    assert page.status_code == 200, page.text
    assert "Work queue" in page.text
    assert panel(page.text) == {
        "queued": 2,
        "running": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 1,
    }


def test_with_a_token_the_console_scrapes_with_the_callers_token(
    seed_cohort_database_url: str, tmp_path: Path
) -> None:
    token = "queue-panel-token-51c9"
    with running_orchestrator(
        seed_cohort_database_url, orchestrator_workers=0, api_token=SecretStr(token)
    ) as orchestrator:
        assert orchestrator.get("/metrics").status_code == 401
        with console(tmp_path, str(orchestrator.base_url), api_token=SecretStr(token)) as client:
            client.get("/signin")
            signed_in = client.post(
                "/signin",
                data={"token": token, "next": "/runs", "csrf_token": client.cookies[CSRF_COOKIE]},
            )
            page = client.get("/runs")
    assert signed_in.status_code == 200, signed_in.text
    assert "Work queue" in page.text and panel(page.text)["queued"] == 0
