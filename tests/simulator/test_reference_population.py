"""The simulator service with a reference population (PREFSHIFT_SIMULATOR_REFERENCE_DATASETS):
a dataset's personas take their collaborative statistics from the population its users were
drawn from, every answer names it, and a population that could hold a persona's own ratings
under another id is refused."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from prefshift.cli.main import app
from tests.reference_population import FIRST_EXTRA_USER, write_population
from tests.simulator.conftest import PersonaCase, SimulatorFactory


@pytest.fixture
def populations(
    seed_cohort_database_url: str, shared_data: Path, tmp_path: Path, case: PersonaCase
) -> None:
    """Two more datasets beside the seed cohort: ``population`` (the cohort's ratings under
    its users' ids, and 30 people who disliked the case's test movies and loved its history
    movies) and ``others`` (only
    those 30 people)."""
    links = pd.read_csv(shared_data / "seed-cohort" / "links.csv").dropna(subset=["tmdbId"])
    movie_of = dict(zip(links["tmdbId"].astype(int), links["movieId"].astype(int), strict=True))
    # disliked against the rest of what they rated: each person's ratings are centred on
    # their own mean, so a crowd that rates everything alike says nothing
    disliked = {movie_of[t]: 0.5 for t in case.test}
    loved = {movie_of[m.tmdb_id]: 5.0 for m in case.history}
    population = write_population(tmp_path / "population", shared_data, disliked | loved)
    others = tmp_path / "others"
    others.mkdir()
    for name in ("movies.csv", "links.csv"):
        (others / name).write_bytes((population / name).read_bytes())
    ratings = pd.read_csv(population / "ratings.csv")
    ratings[ratings["userId"] >= FIRST_EXTRA_USER].to_csv(others / "ratings.csv", index=False)
    env = {"PREFSHIFT_DATABASE_URL": seed_cohort_database_url}
    for folder in (population, others):
        imported = CliRunner().invoke(app, ["data", "import", str(folder)], env=env)
        assert imported.exit_code == 0, imported.output


async def test_a_reference_population_rates_the_personas_and_is_named(
    simulator: SimulatorFactory, case: PersonaCase, populations: None
) -> None:
    body = {
        "persona": case.persona(),
        "items": case.test,
        "backend": "embedded",
        "persona_model": "literature",  # noise-free: the statistics alone move the ratings
    }
    async with simulator() as client:
        own = await client.post("/ratings", json=body)
    assert own.status_code == 200, own.text
    assert own.json()["population"] == "seed-cohort"

    references = {"seed-cohort": "population"}
    async with simulator(simulator_reference_datasets=references) as client:
        drawn = await client.post("/ratings", json=body)
    assert drawn.status_code == 200, drawn.text
    assert drawn.json()["population"] == "population"
    mean = {
        name: sum(r["rating"] for r in answer.json()["ratings"]) / len(case.test)
        for name, answer in (("own", own), ("drawn", drawn))
    }
    assert mean["drawn"] < mean["own"] - 0.2  # the crowd that disliked them reached the persona

    async with simulator(simulator_reference_datasets={"seed-cohort": "others"}) as client:
        refused = await client.post("/ratings", json=body)
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "PREFSHIFT_SIMULATOR_REFERENCE_DATASETS" in detail
    assert "'others' holds 0.0% of 'seed-cohort''s ratings under the same user ids" in detail

    async with simulator(simulator_reference_datasets={"seed-cohort": "nope"}) as client:
        missing = await client.post("/ratings", json=body)
    assert missing.status_code == 404
    assert "'nope'" in missing.json()["detail"]
    assert "PREFSHIFT_SIMULATOR_REFERENCE_DATASETS" in missing.json()["detail"]
