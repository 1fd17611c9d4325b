"""`prefshift persona calibrate` on an experiment in the database: the seed study's layout
imported like any run, read back as recorded pages, fitted, and saved as a parameter set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from prefshift.cli.main import app
from prefshift.recorded_runs import load_recorded_experiment
from prefshift_common.db import sync_url
from tests.orchestrator.replication_release import RELEASE_USER, SECOND_USER, write_release
from tests.reference_population import write_population


@pytest.mark.slow
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
            "--set",
            "satiation_rate=0",
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
    # a parameter the fit does not touch keeps the start's changed value, and says so
    assert saved["parameters"]["satiation_rate"] == 0.0
    assert "started from 'literature' with satiation_rate=0" in saved["estimator"]
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
    assert "mean error" in fidelity.output

    # the recommended movies the two users really rated, on the same two recorded runs
    recommended = runner.invoke(
        app,
        [
            *("persona", "fidelity", "--experiment", "1", "--movies", "recommended"),
            *("--persona-model", "seed-gpt5-v2", "--resamples", "100"),
        ],
        env=env,
    )
    assert recommended.exit_code == 0, recommended.output
    assert "recommended movies the users really rated" in recommended.output
    assert "seed-gpt5-v2, noise-free" in recommended.output

    for bad in ("satiation=0", "satiation_rate=much", "satiation_rate", "satiation_rate=nan"):
        refused = runner.invoke(
            app,
            [
                "persona",
                "calibrate",
                "--experiment",
                "1",
                "--output-dir",
                str(tmp_path),
                "--set",
                bad,
            ],
            env=env,
        )
        assert refused.exit_code == 2, (bad, refused.output)
        assert "--set" in refused.output

    missing = runner.invoke(
        app,
        ["persona", "calibrate", "--experiment", "99", "--output-dir", str(tmp_path)],
        env=env,
    )
    assert missing.exit_code == 1 and "experiment 99 does not exist" in missing.output


def _noise_free_row(output: str) -> str:
    # the first table's row: its values (the second gives its difference from GPT-5)
    values, _difference = [line for line in output.splitlines() if "seed-gpt5, noise-free" in line]
    return values


@pytest.mark.slow
def test_fidelity_takes_its_statistics_from_the_population_the_users_were_drawn_from(
    both_datasets_database_url: str, shared_data: Path, tmp_path: Path
) -> None:
    release = write_release(tmp_path / "released", shared_data)
    env = {
        "PREFSHIFT_DATABASE_URL": both_datasets_database_url,
        "PREFSHIFT_TMDB_PROXY_URL": "http://127.0.0.1:9",
        "COLUMNS": "250",
    }
    runner = CliRunner()
    imported = runner.invoke(
        app, ["experiment", "import-seed-results", str(tmp_path / "released")], env=env
    )
    assert imported.exit_code == 0, imported.output
    fidelity = ["persona", "fidelity", "--experiment", "1", "--persona-model", "seed-gpt5"]
    fidelity += ["--resamples", "100"]
    own = runner.invoke(app, fidelity, env=env)
    assert own.exit_code == 0, own.output
    assert "collaborative statistics of seed-cohort" in own.output

    # Other people entirely: the cohort's users are not in it under their ids, so it cannot
    # be shown not to hold the same person twice.
    other = runner.invoke(app, [*fidelity, "--reference-dataset", "ml-latest-small"], env=env)
    assert other.exit_code == 1
    assert "holds 0.0% of 'seed-cohort''s ratings under the same user ids" in other.output

    # The population the cohort was drawn from: its users under their own ids, and 30 more
    # people who disliked the test movies and loved the persona movies.
    disliked = {m["movieId"]: 0.5 for m in release.test}
    loved = {m["movieId"]: 5.0 for m in release.persona if m["movieId"] not in disliked}
    population = write_population(tmp_path / "population", shared_data, disliked | loved)
    added = runner.invoke(app, ["data", "import", str(population)], env=env)
    assert added.exit_code == 0, added.output
    drawn = runner.invoke(app, [*fidelity, "--reference-dataset", "population"], env=env)
    assert drawn.exit_code == 0, drawn.output
    assert "collaborative statistics of population" in drawn.output
    assert "holds 100.0% of 'seed-cohort''s ratings" in drawn.output
    # the crowd's verdict on the test movies reached the persona's ratings of them
    assert _noise_free_row(drawn.output) != _noise_free_row(own.output)


@pytest.mark.slow
def test_calibrate_fit_human_fits_the_retest_noise_and_a_given_slope(
    seed_cohort_database_url: str, shared_data: Path, tmp_path: Path
) -> None:
    released = tmp_path / "released"
    write_release(released, shared_data)
    write_release(released, shared_data, SECOND_USER)
    env = {
        "PREFSHIFT_DATABASE_URL": seed_cohort_database_url,
        "PREFSHIFT_TMDB_PROXY_URL": "http://127.0.0.1:9",
        "COLUMNS": "250",
    }
    runner = CliRunner()
    imported = runner.invoke(app, ["experiment", "import-seed-results", str(released)], env=env)
    assert imported.exit_code == 0, imported.output
    common = ["persona", "calibrate", "--experiment", "1", "--fit", "human", "--bootstrap", "2"]
    common += ["--start", "seed-gpt5-v2", "--output-dir", str(tmp_path / "sets")]
    result = runner.invoke(app, [*common, "--name", "people"], env=env)
    assert result.exit_code == 0, result.output
    assert "retest_rmse" in result.output and "Amatriain" in result.output
    assert "slope of 0.277" in result.output
    saved = json.loads((tmp_path / "sets" / "people.json").read_text())
    low, high = saved["intervals"]["occasion_noise"]
    assert low < saved["parameters"]["occasion_noise"] < high
    # two users' few movies: the weight may need the bracket's end (1) to reach the slope
    weight = saved["parameters"]["anchoring_weight"]
    low, high = saved["intervals"]["anchoring_weight"]
    assert 0 < low <= weight <= high <= 1
    retest = saved["fit"]["measures"]["retest_rmse"]["value"]
    assert 0.557 <= retest <= 0.8156
    assert saved["fit"]["measures"]["anchoring_slope"]["value"] > 0.1

    # a smaller slope figure gives a smaller weight
    result = runner.invoke(
        app,
        [*common, "--name", "weak", "--anchoring-slope", "0.05", "--anchoring-slope-se", "0.01"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    weaker = json.loads((tmp_path / "sets" / "weak.json").read_text())
    assert 0 < weaker["parameters"]["anchoring_weight"] < weight - 0.05

    mixed = runner.invoke(app, [*common, "--fit", "spread"], env=env)
    assert mixed.exit_code != 0 and "alone" in mixed.output
