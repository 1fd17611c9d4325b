"""``prefshift simulate`` and ``prefshift experiment`` against a running orchestrator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefshift.cli.main import app
from tests.orchestrator.conftest import USER, OrchestratorFactory, dataset_tmdb_ids
from tests.orchestrator.standins import (
    StandInRecommender,
    StandInSimulator,
    stand_in_services,
)

SMALL = ["--pages", "2", "--page-size", "3", "--test-size", "6", "--persona-size", "6"]


@pytest.mark.slow
def test_simulate_waits_and_prints_the_shift_table_and_experiment_writes_a_report(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory, tmp_path: Path
) -> None:
    simulator = StandInSimulator(exposure=2.0)
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    runner = CliRunner()
    with (
        stand_in_services(simulator, recommender) as services,
        orchestrator(seed_cohort_database_url, **services) as client,
    ):
        url = str(client.base_url)
        result = runner.invoke(app, ["simulate", str(USER), *SMALL, "--wait", "--url", url])
        assert result.exit_code == 0, result.output
        assert "Preference shift" in result.output
        for arm in ("als", "random", "control"):
            assert arm in result.output
        assert "Δ p1" in result.output and "Δ p2" in result.output
        assert "Baseline fidelity" in result.output
        assert "'llm' left out" in result.output  # the note about the unavailable LLM arms

        as_json = runner.invoke(
            app, ["simulate", str(USER), *SMALL, "--wait", "--json", "--url", url]
        )
        assert as_json.exit_code == 0
        shift = json.loads(as_json.stdout[as_json.stdout.index("{") :])
        run_id = client.get(f"/simulate/{USER}").json()["run_id"]
        assert shift == client.get(f"/runs/{run_id}/shift").json()

        missing = runner.invoke(app, ["simulate", "999999999", "--url", url])
        assert missing.exit_code == 1
        assert "error 404" in missing.output

        started = runner.invoke(
            app,
            [
                "experiment",
                "run",
                "--users",
                "47425,85795",
                *SMALL,
                "--arm",
                "als",
                "--arm",
                "control",
                "--persona-model",
                "literature",
                "--wait",
                "--url",
                url,
            ],
        )
        assert started.exit_code == 0, started.output
        assert "2/2 completed" in started.output
        experiment_id = started.output.split("experiment ")[1].split(":")[0]
        # the parameter set named on the command line is the experiment's, and its runs'
        assert client.get(f"/experiments/{experiment_id}").json()["params"]["persona_model"] == (
            "literature"
        )
        status = runner.invoke(app, ["experiment", "status", experiment_id, "--url", url])
        assert "completed" in status.output
        out = tmp_path / "report"
        report = runner.invoke(
            app, ["experiment", "report", experiment_id, "--out", str(out), "--url", url]
        )
        assert report.exit_code == 0, report.output
        assert "net_shift across 2 users" in report.output
        written = sorted(path.name for path in out.iterdir())
        assert written == sorted(
            ["report.json", "statistics.csv", "users.csv"]
            + [
                f"{p}.{f}"
                for p in ("shift_by_page", "genre_shift", "fidelity")
                for f in ("png", "svg")
            ]
        )
        written_report = json.loads((out / "report.json").read_text())
        assert written_report["n_completed"] == 2
        # who rated, as the simulator answered, on each run and in the report
        assert (
            "rated by the embedded persona, parameter set 'literature' (2 runs)"
            in (written_report["notes"])
        )
        for user in written_report["users"]:
            run = client.get(f"/runs/{user['run_id']}").json()
            assert run["rated_by"] == [
                {
                    "backend": "embedded",
                    "model": None,
                    "persona_model": "literature",
                    "population": None,
                }
            ]


@pytest.mark.slow
def test_experiment_run_takes_a_design_and_report_prints_its_measures(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory, tmp_path: Path
) -> None:
    simulator = StandInSimulator(anchoring=0.5)
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    runner = CliRunner()
    with (
        stand_in_services(simulator, recommender) as services,
        orchestrator(seed_cohort_database_url, **services) as client,
    ):
        url = str(client.base_url)
        bad = runner.invoke(
            app,
            ["experiment", "run", "--users", "47425", "--arm", "{not json", "--url", url],
        )
        assert bad.exit_code == 2 and "is not valid JSON" in bad.output
        started = runner.invoke(
            app,
            [
                "experiment",
                "run",
                "--users",
                "47425,85795",
                "--test-size",
                "12",
                "--persona-size",
                "6",
                "--design",
                "rerate",
                "--delta",
                "1.5",
                "--wait",
                "--url",
                url,
            ],
        )
        assert started.exit_code == 0, started.output
        experiment_id = started.output.split("experiment ")[1].split(":")[0]
        params = client.get(f"/experiments/{experiment_id}").json()["params"]
        assert params["design"] == "rerate" and params["delta"] == 1.5
        out = tmp_path / "rerate"
        report = runner.invoke(
            app, ["experiment", "report", experiment_id, "--out", str(out), "--url", url]
        )
        assert report.exit_code == 0, report.output
        assert "rerate: session 2 against session 1, 2 users, δ = 1.5" in report.output
        assert "anchoring slope (stars per star)" in report.output
        assert "test-retest RMSE" in report.output
        assert {"rerating.csv", "rerating_ratings.csv"} <= {p.name for p in out.iterdir()}

        shown = runner.invoke(
            app,
            [
                "experiment",
                "run",
                "--users",
                "47425,85795",
                *SMALL,
                "--arm",
                '{"name": "als", "shown_prediction": {"offset": 1}}',
                "--arm",
                "control",
                "--wait",
                "--url",
                url,
            ],
        )
        assert shown.exit_code == 0, shown.output
        shown_id = shown.output.split("experiment ")[1].split(":")[0]
        printed = runner.invoke(
            app,
            ["experiment", "report", shown_id, "--out", str(tmp_path / "shown"), "--url", url],
        )
        assert printed.exit_code == 0, printed.output
        assert "Shift on the shown movies" in printed.output and "als_up1" in printed.output

        single = runner.invoke(
            app,
            [
                "simulate",
                str(USER),
                *SMALL,
                "--arm",
                '{"name": "als", "shown_prediction": {"offset": -1}}',
                "--arm",
                "control",
                "--wait",
                "--url",
                url,
            ],
        )
        assert single.exit_code == 0, single.output
        assert "als_down1: shift on the shown movies" in single.output
