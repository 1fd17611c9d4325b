"""The ``recorded`` arm over real HTTP: a hand-made release in the seed study's layout is
imported, then the embedded persona (simulator and tmdb-proxy as processes) is shown exactly the
recorded pages, in the same order, and re-rates the recorded run's test movies."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from prefshift.cli.main import app
from prefshift_common.db import sync_url
from prefshift_orchestrator.models import RunPage
from tests.e2e.conftest import DATASET, Services
from tests.orchestrator.replication_release import RELEASE_USER, SECOND_USER, write_release
from tests.polling import wait_for_run

# SQLite pass only: the recorded pages' order over HTTP; importing and storing them is checked on
# both databases in tests/orchestrator/test_replication.py.
pytestmark = pytest.mark.sqlite_only


def _pages(database_url: str, run_id: int) -> dict[tuple[str, int], list[int] | None]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(RunPage).where(RunPage.run_id == run_id))
            return {
                (row.arm, row.page): None
                if row.recommended is None
                else [int(item["tmdb_id"]) for item in row.recommended]
                for row in rows
            }
    finally:
        engine.dispose()


def test_a_recorded_arm_shows_the_recorded_pages_in_order(
    services: Services, shared_data: Path, tmp_path: Path
) -> None:
    release = write_release(tmp_path / "released", shared_data)
    imported = CliRunner().invoke(
        app,
        ["experiment", "import-seed-results", str(tmp_path / "released"), "--name", "study"],
        env={"PREFSHIFT_DATABASE_URL": services.env["PREFSHIFT_DATABASE_URL"]},
    )
    assert imported.exit_code == 0, imported.output
    with services.start(("tmdb-proxy", "simulator", "orchestrator")), services.client() as client:
        study = next(e for e in client.get("/experiments").json()["experiments"])
        recorded_run = client.get(f"/experiments/{study['experiment_id']}").json()["runs"][0]
        source = {"experiment": study["experiment_id"]}
        body = {
            "dataset": DATASET,
            "backend": "embedded",
            "arms": [
                {"name": "llm", "recorded": source},
                {"name": "random-replayed", "recorded": {**source, "arm": "random"}},
                "control",
            ],
        }
        response = client.post(f"/simulate/{RELEASE_USER}", json=body)
        assert response.status_code == 202, response.text
        run = wait_for_run(client, response.json()["run_id"], timeout=180)
        assert run["status"] == "completed", run
        assert [arm["kind"] for arm in run["arms"]] == ["recorded", "recorded", "control"]
        assert run["arms"][1]["recorded"] == {"run": recorded_run["run_id"], "arm": "random"}

        # The recorded run's split: the same test and persona movies, real ratings included.
        mine = client.get(f"/runs/{run['run_id']}/selection").json()
        theirs = client.get(f"/runs/{recorded_run['run_id']}/selection").json()
        assert mine["test"] == theirs["test"] and mine["persona"] == theirs["persona"]

        ratings = client.get(f"/runs/{run['run_id']}/ratings").json()["ratings"]
        test_ids = {int(m["tmdbId"]) for m in release.test}
        for arm in ("llm", "random-replayed", "control"):
            for page in (1, 2, 3, 4):
                rerated = {
                    r["tmdb_id"]
                    for r in ratings
                    if (r["arm"], r["page"], r["phase"]) == (arm, page, "test")
                }
                assert rerated == test_ids

        # Another user's run cannot be replayed: the run fails, saying why.
        other = client.post(
            f"/simulate/{SECOND_USER}",
            json={**body, "arms": [{"name": "llm", "recorded": {"run": recorded_run["run_id"]}}]},
        )
        assert other.status_code == 202, other.text
        failed = wait_for_run(client, other.json()["run_id"], timeout=60)
        assert failed["status"] == "failed" and failed["error"]["status"] == 422
        assert f"not of user {SECOND_USER}" in failed["error"]["detail"]

    database_url = services.env["PREFSHIFT_DATABASE_URL"]
    shown = _pages(database_url, run["run_id"])
    recorded = _pages(database_url, recorded_run["run_id"])
    for page in (1, 2, 3, 4):
        # Exactly the recorded movies, in the recorded order.
        assert shown[("llm", page)] == recorded[("llm", page)]
        assert shown[("random-replayed", page)] == recorded[("random", page)]
        rated = [
            r["tmdb_id"]
            for r in ratings
            if (r["arm"], r["page"], r["phase"]) == ("llm", page, "experience")
        ]
        assert sorted(rated) == sorted(recorded[("llm", page)] or [])
    assert shown[("llm", 1)] == release.page_tmdb_ids["path_2"][0]
    assert shown[("llm", 3)] == []  # the recorded page showed nothing: only a re-rating
