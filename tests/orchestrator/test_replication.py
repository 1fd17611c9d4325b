"""``prefshift experiment import-seed-results``: a hand-made release in the study's layout is
stored like any other run (read back over the orchestrator's HTTP API), re-importing changes
nothing, and a malformed file is refused by name with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from prefshift.cli.main import app
from prefshift_common.db import sync_url
from prefshift_orchestrator.models import Experiment, Run, RunPage, RunRating
from tests.orchestrator.conftest import OrchestratorFactory
from tests.orchestrator.replication_release import (
    RELEASE_USER,
    SECOND_USER,
    UNKNOWN_TITLE,
    write_release,
)


def _import(database_url: str, path: Path, *extra: str) -> str:
    result = CliRunner().invoke(
        app,
        ["experiment", "import-seed-results", str(path), *extra],
        env={
            "PREFSHIFT_DATABASE_URL": database_url,
            "PREFSHIFT_TMDB_PROXY_URL": "http://127.0.0.1:9",
        },
    )
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # rich wraps at 80 columns


def _count(database_url: str) -> dict[str, int]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            return {
                model.__tablename__: int(
                    connection.scalar(select(func.count()).select_from(model)) or 0
                )
                for model in (Experiment, Run, RunPage, RunRating)
            }
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_hand_made_release_is_stored_like_a_run(
    seed_cohort_database_url: str,
    orchestrator: OrchestratorFactory,
    shared_data: Path,
    tmp_path: Path,
) -> None:
    release = write_release(tmp_path / "released", shared_data)
    write_release(tmp_path / "released", shared_data, SECOND_USER)
    output = _import(seed_cohort_database_url, tmp_path / "released", "--name", "small")
    assert "2 users, 2 runs written" in output
    # One empty page per user (llm), counted; study-svd has 3 re-ratings per user; random
    # showed one title nothing knows in each user's page 1 (15 of 16 titles resolved).
    assert "llm 8 2 100.0% 100.0% 100.0% 8" in output
    assert "study-svd 8 0 100.0% 100.0% 100.0% 6" in output
    assert "random 8 0 93.8% 93.8% 100.0% 8" in output

    with orchestrator(seed_cohort_database_url, orchestrator_workers=0) as client:
        experiments = client.get("/experiments").json()
        experiment = next(e for e in experiments["experiments"] if e["name"] == "small")
        detail = client.get(f"/experiments/{experiment['experiment_id']}").json()
        assert detail["status"] == "completed" and detail["progress"]["runs"] == 2
        assert detail["provenance"]["kind"] == "imported"
        assert detail["provenance"]["persona"] == {"model": "gpt-5", "temperature": 0.3}
        run_id = next(r["run_id"] for r in detail["runs"] if r["user_id"] == RELEASE_USER)
        run = client.get(f"/runs/{run_id}").json()
        assert [arm["name"] for arm in run["arms"]] == [
            "llm",
            "llm-persuasive",
            "study-svd",
            "random",
        ]
        assert run["provenance"]["seen_test"] == 1
        assert run["provenance"]["files_sha256"]
        assert run["params"]["test_size"] == 6 and run["params"]["pages"] == 4

        ratings = client.get(f"/runs/{run_id}/ratings").json()["ratings"]
        by_cell: dict[tuple[str, int, str], dict[int, float]] = {}
        for rating in ratings:
            by_cell.setdefault((rating["arm"], rating["page"], rating["phase"]), {})[
                rating["tmdb_id"]
            ] = rating["rating"]
        # Every echoed test title (no year, article in front, alternate, label, brackets) matched.
        assert by_cell[("baseline", 0, "test")] == release.baseline
        for arm in ("llm", "llm-persuasive", "random"):
            assert {page for (a, page, phase) in by_cell if a == arm and phase == "test"} == {
                1,
                2,
                3,
                4,
            }
        # The arm with 3 re-ratings: page 4 shown and rated, its re-rating missing (not zero).
        assert {page for (a, page, phase) in by_cell if a == "study-svd" and phase == "test"} == {
            1,
            2,
            3,
        }
        assert ("study-svd", 4, "experience") in by_cell
        # The empty page: no experiences (missing, not zero), but its re-rating is there.
        assert ("llm", 3, "experience") not in by_cell and ("llm", 3, "test") in by_cell
        # Experiences carry the TMDB ids the shown titles resolve to; the unknown title none.
        assert set(by_cell[("llm", 1, "experience")]) == set(release.page_tmdb_ids["path_2"][0])
        assert set(by_cell[("random", 1, "experience")]) == set(release.page_tmdb_ids["path_5"][0])
        assert 0.0 in by_cell[("llm", 2, "experience")].values()  # the study's 0.0 is kept

        shift = client.get(f"/runs/{run_id}/shift").json()
        assert shift["control_arm"] is None
        assert shift["fidelity"]["n"] == 6 and shift["fidelity_unseen"]["n"] == 5
        assert shift["fidelity"]["mae"] == 0.0  # the baseline echoed the real ratings
        pages = {(p["arm"], p["page"]): p for p in shift["pages"]}
        # The hand-made persona re-rates half a star up after odd pages, back after even ones.
        assert pages[("llm", 1)]["shift"] == pytest.approx(
            sum(min(5.0, m["rating"] + 0.5) - m["rating"] for m in release.test) / 6
        )
        assert pages[("llm", 2)]["shift"] == 0.0 and pages[("llm", 2)]["share_changed"] == 0.0
        assert pages[("llm", 3)]["appraisal"] is None and pages[("llm", 3)]["n"] == 6

        report = client.get(f"/experiments/{experiment['experiment_id']}/report").json()
        assert report["n_completed"] == 2
        assert any("no control arm" in note for note in report["notes"])
        assert report["fidelity_unseen"]["n"] == report["fidelity"]["n"] - 2
        assert report["statistics"]["control_arm"] is None
        assert not [
            c
            for c in report["statistics"]["cells"]
            if c["metric"] == "net_shift" and c["mean"] is not None
        ]

    engine = create_engine(sync_url(seed_cohort_database_url))
    try:
        with engine.connect() as connection:
            pages = {
                (row.arm, row.page): row
                for row in connection.execute(select(RunPage).where(RunPage.run_id == run_id))
            }
    finally:
        engine.dispose()
    # The recorded pages: the shown titles that resolved, in the order shown.
    for source, arm in (("path_2", "llm"), ("path_5", "random")):
        assert [item["tmdb_id"] for item in pages[(arm, 1)].recommended] == release.page_tmdb_ids[
            source
        ][0]
    assert pages[("random", 1)].recommender_info["unresolved_titles"] == [UNKNOWN_TITLE]
    assert pages[("llm", 3)].recommended == [] and pages[("llm", 3)].recommender_info["empty"]


@pytest.mark.slow
def test_reimporting_changes_nothing(
    seed_cohort_database_url: str, shared_data: Path, tmp_path: Path
) -> None:
    write_release(tmp_path / "released", shared_data)
    _import(seed_cohort_database_url, tmp_path / "released")
    before = _count(seed_cohort_database_url)
    again = _import(seed_cohort_database_url, tmp_path / "released")
    assert "already imported" in again and "0 runs written, 1 unchanged" in again
    assert _count(seed_cohort_database_url) == before


@pytest.mark.parametrize(
    ("problem", "named"),
    [
        ("bad json", "_final_test_summary.json"),
        ("rating off the scale", "path_3_parsed_with_genres.json"),
        ("missing file", "_test_movies.json"),
    ],
)
def test_a_malformed_file_is_named_and_nothing_is_written(
    seed_cohort_database_url: str, shared_data: Path, tmp_path: Path, problem: str, named: str
) -> None:
    write_release(tmp_path / "released", shared_data)
    broken = write_release(tmp_path / "released", shared_data, SECOND_USER)
    file = broken.root / named
    if problem == "bad json":
        file.write_text(file.read_text()[:-20])
    elif problem == "rating off the scale":
        pages = json.loads(file.read_text())
        pages[1]["simulated_ratings"][0]["rating"] = 7.5
        file.write_text(json.dumps(pages))
    else:
        file.unlink()
    before = _count(seed_cohort_database_url)
    result = CliRunner().invoke(
        app,
        ["experiment", "import-seed-results", str(tmp_path / "released")],
        env={"PREFSHIFT_DATABASE_URL": seed_cohort_database_url},
    )
    assert result.exit_code == 1
    assert f"user_{SECOND_USER}/{named}" in result.output.replace("\n", "")
    assert "nothing was imported" in result.output
    assert _count(seed_cohort_database_url) == before
