"""`prefshift eval personas` on the seed study's cohort: the embedded persona beats the per-user
mean and the user + movie bias baseline, and scores RMSE under 0.95."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from prefshift.cli.main import app
from prefshift_simulator.config import Settings
from prefshift_simulator.evaluation import DatasetSnapshot, evaluate_personas
from tests.fakes.openai_server import FakeOpenAI, persona_responder
from tests.reference_population import write_population


@pytest.mark.slow
async def test_embedded_personas_on_the_seed_cohort_score_rmse_under_095(
    seed_snapshot: DatasetSnapshot, seed_cohort_database_url: str
) -> None:
    settings = Settings(_env_file=None, database_url=seed_cohort_database_url)  # type: ignore[call-arg]
    report = await evaluate_personas(seed_snapshot, settings=settings, seed=0)
    assert len(report.users) == 150 and not report.skipped
    metrics = report.metrics()
    persona = metrics["persona (embedded)"]
    assert persona.n == 150 * 30
    assert persona.rmse < 0.95
    assert persona.rmse < metrics["user + movie bias"].rmse < metrics["per-user mean"].rmse
    assert persona.mae < metrics["per-user mean"].mae
    assert persona.pearson > metrics["per-user mean"].pearson
    assert abs(persona.bias) < 0.1
    assert set(report.by_archetype()) == {"Explorer", "Generalist", "Specialist"}


@pytest.mark.slow
def test_cli_prints_the_table(seed_cohort_database_url: str) -> None:
    result = CliRunner().invoke(
        app,
        ["eval", "personas", "--dataset", "seed-cohort", "--users", "12"],
        env={"PREFSHIFT_DATABASE_URL": seed_cohort_database_url, "COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    assert "12 users" in result.output
    row = re.search(r"persona \(embedded\)\s*│\s*360\s*│[^│]*│[^│]*│\s*([0-9.]+)", result.output)
    assert row is not None, result.output
    assert 0.5 < float(row.group(1)) < 1.2
    assert "per-user mean" in result.output and "user + movie bias" in result.output


def test_cli_llm_backend_rates_through_the_endpoint(seed_cohort_database_url: str) -> None:
    fake = FakeOpenAI(responder=persona_responder(lambda n: 4.0))
    with fake.serve() as base_url:
        result = CliRunner().invoke(
            app,
            ["eval", "personas", "--dataset", "seed-cohort", "--users", "3", "--backend", "llm"],
            env={
                "PREFSHIFT_DATABASE_URL": seed_cohort_database_url,
                "OPENAI_BASE_URL": base_url,
                "OPENAI_API_KEY": "sk-test",
                "PREFSHIFT_SIMULATOR_MODEL": "eval-model",
                "COLUMNS": "120",
            },
        )
    assert result.exit_code == 0, result.output
    assert fake.calls == 3
    assert all(r["model"] == "eval-model" for r in fake.requests)
    assert "persona (llm)" in result.output


def test_cli_unknown_dataset_exits_1(database_url: str) -> None:
    result = CliRunner().invoke(
        app,
        ["eval", "personas", "--dataset", "nope"],
        env={"PREFSHIFT_DATABASE_URL": database_url},
    )
    assert result.exit_code == 1


def _json(stdout: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(stdout[stdout.index("{") :])
    return payload


@pytest.mark.slow
def test_cli_takes_the_statistics_from_the_population_the_users_were_drawn_from(
    both_datasets_database_url: str, shared_data: Path, tmp_path: Path
) -> None:
    env = {"PREFSHIFT_DATABASE_URL": both_datasets_database_url, "COLUMNS": "160"}
    runner = CliRunner()
    personas = ["eval", "personas", "--dataset", "seed-cohort", "--users", "3", "--json"]
    personas += ["--noise-free"]

    own = runner.invoke(app, personas, env=env)
    assert own.exit_code == 0, own.output
    assert _json(own.stdout)["population"] == "seed-cohort"

    other = runner.invoke(app, [*personas, "--reference-dataset", "ml-latest-small"], env=env)
    assert other.exit_code == 1
    assert "holds 0.0% of 'seed-cohort''s ratings under the same user ids" in other.output

    # the cohort's users under their own ids, and 30 more people with strong opinions
    movies = pd.read_csv(shared_data / "seed-cohort" / "ratings.csv")["movieId"].unique()
    opinions = {int(movie): 5.0 if movie % 2 else 0.5 for movie in movies}
    population = write_population(tmp_path / "population", shared_data, opinions)
    added = runner.invoke(app, ["data", "import", str(population)], env=env)
    assert added.exit_code == 0, added.output

    drawn = runner.invoke(app, [*personas, "--reference-dataset", "population"], env=env)
    assert drawn.exit_code == 0, drawn.output
    report = _json(drawn.stdout)
    assert report["population"] == "population"
    mine, theirs = _json(own.stdout)["metrics"], report["metrics"]
    # the same users and split, so the per-user mean is untouched; the crowd's movie means
    # reached both the persona and the user + movie bias baseline
    assert theirs["per-user mean"] == mine["per-user mean"]
    assert theirs["persona (embedded)"] != mine["persona (embedded)"]
    assert theirs["user + movie bias"] != mine["user + movie bias"]
