"""`prefshift persona calibrate` on an experiment in the database: the seed study's layout
imported like any run, read back as recorded pages, fitted, and saved as a parameter set."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine
from typer.testing import CliRunner

from prefshift.cli.main import app
from prefshift.recorded_runs import load_recorded_experiment
from prefshift_common.db import sync_url
from tests.orchestrator.replication_release import RELEASE_USER, SECOND_USER, write_release


def test_calibrate_reads_an_experiment_fits_and_saves_a_set(
    seed_cohort_database_url: str, shared_data: Path, tmp_path: Path
) -> None:
    released = tmp_path / "released"
    write_release(released, shared_data)
    write_release(released, shared_data, SECOND_USER)
    env = {
        "PREFSHIFT_DATABASE_URL": seed_cohort_database_url,
        "PREFSHIFT_TMDB_PROXY_URL": "http://127.0.0.1:9",
        "COLUMNS": "200",
    }
    runner = CliRunner()
    imported = runner.invoke(app, ["experiment", "import-seed-results", str(released)], env=env)
    assert imported.exit_code == 0, imported.output

    engine = create_engine(sync_url(seed_cohort_database_url))
    try:
        with engine.connect() as connection:
            recorded = load_recorded_experiment(connection, 1)
    finally:
        engine.dispose()
    assert sorted(u.user_id for u in recorded.users) == sorted([RELEASE_USER, SECOND_USER])
    for user in recorded.users:
        assert user.baseline and set(user.baseline) <= set(user.test)
        assert set(user.arms) == {"llm", "llm-persuasive", "study-svd", "random"}
        assert all(len(pages) >= 3 for pages in user.arms.values())

    result = runner.invoke(
        app,
        [
            "persona",
            "calibrate",
            "--experiment",
            "1",
            "--name",
            "tiny",
            "--bootstrap",
            "2",
            "--generations",
            "3",
            "--output-dir",
            str(tmp_path / "sets"),
            "--fixed",
            "lasting_noise",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "recorded vs simulated" in result.output and "occasion_noise" in result.output
    saved = json.loads((tmp_path / "sets" / "tiny.json").read_text())
    assert saved["name"] == "tiny" and "experiment 1" in saved["source"]
    assert set(saved["intervals"]) == {
        "exposure_rate",
        "reinforcement_rate",
        "occasion_noise",
        "drift_noise",
    }
    assert saved["parameters"]["lasting_noise"] == 0.0
    for name, (low, high) in saved["intervals"].items():
        assert low <= high, name
    assert saved["fit"]["users"] == 2 and saved["fit"]["moments"]

    fidelity = runner.invoke(
        app,
        [
            "persona",
            "fidelity",
            "--experiment",
            "1",
            "--persona-model",
            "literature",
            "--persona-model",
            "seed-gpt5",
            "--resamples",
            "100",
        ],
        env=env,
    )
    assert fidelity.exit_code == 0, fidelity.output
    # both users' never-seen test movies, the recorded persona as the reference
    assert "2 users" in fidelity.output and "recorded persona" in fidelity.output
    assert "literature" in fidelity.output and "seed-gpt5, as rated (seed 0)" in fidelity.output

    missing = runner.invoke(
        app,
        ["persona", "calibrate", "--experiment", "99", "--output-dir", str(tmp_path)],
        env=env,
    )
    assert missing.exit_code == 1 and "experiment 99 does not exist" in missing.output
