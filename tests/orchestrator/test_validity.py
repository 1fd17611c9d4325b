"""`prefshift validity` end to end on a small size: the seed cohort's database, the seed
study's released runs of a few users imported as the split, both designs simulated for the
default set and `human`, one table against the human figures."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from prefshift.cli.main import app


def test_validity_imports_the_split_and_holds_each_set_against_people(
    seed_cohort_database_url: str, shared_data: Path
) -> None:
    env = {
        "PREFSHIFT_DATABASE_URL": seed_cohort_database_url,
        "PREFSHIFT_TMDB_PROXY_URL": "http://127.0.0.1:9",
        "COLUMNS": "260",
    }
    args = [
        "validity",
        "--seed-cohort",
        str(shared_data / "seed-cohort"),
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

    again = runner.invoke(app, [*args, "--persona-model", "literature"], env=env)
    assert again.exit_code == 0, again.output
    assert "already imported" in again.output and "literature" in again.output

    unknown = runner.invoke(app, [*args, "--persona-model", "nobody"], env=env)
    assert unknown.exit_code != 0 and "nobody" in unknown.output
