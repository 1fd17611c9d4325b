"""A database migrated by an older prefshift: a command that reads what a later migration
added says to run ``prefshift db upgrade`` instead of printing a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from prefshift import migrate
from prefshift.cli.main import main


def test_a_database_behind_the_code_is_named_with_the_command_that_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0007")  # before runs.rated_by
    engine = create_engine(url)
    with engine.begin() as connection:  # an experiment, so that its runs are read
        connection.execute(
            text(
                "INSERT INTO experiments (id, dataset, params, seed, cohort, messages) "
                "VALUES (1, 'seed-cohort', '{}', 0, '{}', '[]')"
            )
        )
    engine.dispose()
    monkeypatch.setenv("PREFSHIFT_DATABASE_URL", url)
    monkeypatch.setattr(sys, "argv", ["prefshift", "persona", "fidelity", "--experiment", "1"])
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 1
    error = capsys.readouterr().err
    assert "no such column: runs.rated_by" in error
    assert "run: prefshift db upgrade" in error

    migrate.upgrade(url)  # at head, the same command reaches the real answer
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 1
    assert "experiment 1 has no run with a baseline" in capsys.readouterr().err
