"""`prefshift validity` end to end on a small size, from a fresh database (not even migrated):
a sample of the seed cohort (the released users' own ratings) and the seed study's released
runs of a few users imported as the split, both designs simulated for the default set and
`human`, one table against the human figures."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefshift.cli.main import app


def _sample_cohort(shared_data: Path, folder: Path, users: set[str]) -> Path:
    """The seed cohort with only ``users``' ratings (every movie, for the titles)."""
    folder.mkdir()
    source = shared_data / "seed-cohort"
    for name in ("movies.csv", "links.csv"):
        shutil.copyfile(source / name, folder / name)
    with (source / "ratings.csv").open() as stream, (folder / "ratings.csv").open("w") as out:
        rows = csv.reader(stream)
        writer = csv.writer(out)
        writer.writerow(next(rows))
        writer.writerows(row for row in rows if row[0] in users)
    return folder


@pytest.mark.slow
def test_validity_from_a_fresh_database_holds_each_set_against_people(
    empty_database_url: str, shared_data: Path, tmp_path: Path
) -> None:
    released = sorted(p.name for p in (shared_data / "seed-results").glob("user_*"))[:3]
    cohort = _sample_cohort(
        shared_data, tmp_path / "seed-cohort", {name.removeprefix("user_") for name in released}
    )
    env = {
        "PREFSHIFT_DATABASE_URL": empty_database_url,
        "PREFSHIFT_TMDB_PROXY_URL": "http://127.0.0.1:9",
        "PREFSHIFT_SIMULATOR_URL": "http://127.0.0.1:9",  # no simulator: no LLM persona
        "COLUMNS": "260",
    }
    args = [
        "validity",
        "--seed-cohort",
        str(cohort),
        "--seed-results",
        str(shared_data / "seed-results"),
        "--users",
        "3",
        "--resamples",
        "50",
    ]
    runner = CliRunner()
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "imported, 3 users" in result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert set(rows) >= {"retest_rmse", "share_toward", "anchoring_slope", "mean_change_up"}
    retest = rows["retest_rmse"].split("│")
    assert "0.557–0.816" in retest[2] and "Amatriain" in retest[2]
    # the default's persona re-rates almost alike: far below people's test-retest noise
    default_value = float(retest[3].split()[0])
    assert default_value < 0.557 and retest[3].strip().endswith("OUT")
    human_value = float(retest[4].split()[0])
    assert human_value > default_value + 0.2
    assert "0.245–0.309" in rows["anchoring_slope"] and "Adomavicius" in rows["anchoring_slope"]
    assert "no figure read" in rows["share_toward"]
    # human anchors toward what it is shown, the default does not
    slope = rows["anchoring_slope"].split("│")
    assert float(slope[4].split()[0]) > float(slope[3].split()[0]) + 0.1
    assert "LLM persona: not run (no simulator answers at http://127.0.0.1:9" in result.output

    again = runner.invoke(app, [*args, "--persona-model", "literature"], env=env)
    assert again.exit_code == 0, again.output
    assert "already imported" in again.output and "literature" in again.output

    unknown = runner.invoke(app, [*args, "--persona-model", "nobody"], env=env)
    assert unknown.exit_code != 0 and "nobody" in unknown.output
