"""``prefshift data import-tmdb`` and ``prefshift tmdb prefetch`` (through a proxy running on
loopback, online against the fake TMDB)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefshift.cli.main import app
from prefshift_tmdb_proxy.config import Settings
from prefshift_tmdb_proxy.main import create_app
from tests.fakes.live import LiveServer
from tests.fakes.tmdb_server import FakeTmdb
from tests.tmdb_proxy.conftest import TMDB_KEY

USERS = "128179,163695"  # the two smallest users of the seed cohort (401 and 402 ratings)


def test_import_tmdb_command_imports_and_reports(
    database_url: str, shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PREFSHIFT_DATABASE_URL", database_url)
    lines = (shared_data / "tmdb-offline" / "movies.jsonl").read_text().splitlines()[:300]
    source = tmp_path / "movies.jsonl"
    source.write_text("\n".join([*lines, '{"id": 0, "title": "bad id"}']) + "\n")
    result = CliRunner().invoke(app, ["data", "import-tmdb", str(source)])
    assert result.exit_code == 0, result.output
    assert "imported 300 records, skipped 1" in result.output
    assert "line 301: 'id' is not a TMDB id" in result.output

    missing = CliRunner().invoke(app, ["data", "import-tmdb", "/nonexistent.jsonl"])
    assert missing.exit_code != 0


@pytest.mark.slow
def test_prefetch_warms_the_cache_for_some_users(
    seed_cohort_database_url: str, fake_tmdb: FakeTmdb, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=seed_cohort_database_url,
        tmdb_api_key=TMDB_KEY,
        tmdb_api_base_url=fake_tmdb.base_url,
        tmdb_proxy_rate_limit=2000,
    )
    monkeypatch.setenv("PREFSHIFT_DATABASE_URL", seed_cohort_database_url)
    runner = CliRunner()
    with LiveServer(create_app(settings)) as proxy:
        first = runner.invoke(
            app,
            ["tmdb", "prefetch", "--dataset", "seed-cohort", "--users", USERS, "--url", proxy.url],
        )
        calls = fake_tmdb.count()
        second = runner.invoke(
            app,
            ["tmdb", "prefetch", "--dataset", "seed-cohort", "--users", USERS, "--url", proxy.url],
        )
        unknown = runner.invoke(app, ["tmdb", "prefetch", "--dataset", "nope", "--url", proxy.url])

    assert first.exit_code == 0, first.output
    assert "cached" in first.output
    wanted = int(re.search(r"(\d+) TMDB ids in seed-cohort for 2 users", first.output).group(1))
    assert 500 < wanted <= 803  # the two users' movies, some shared
    assert calls == wanted  # each fetched once
    assert f"cached {wanted} movies" in first.output
    assert len(fake_tmdb.per_path()) == calls
    assert fake_tmdb.count() == calls  # the second run was all cache hits
    assert second.exit_code == 0
    assert unknown.exit_code != 0 and "no dataset named 'nope'" in unknown.output
