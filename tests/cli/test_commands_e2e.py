"""Every ``prefshift`` command as a user runs it: a subprocess, its exit code, what it prints
and writes, and the errors a user meets first. The commands of README.md and docs/*.md run as
written in tests/docs; these cover the rest and the error paths, many commands per workspace
(one database, one stack) to keep it quick."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.docs.blocks import Command
from tests.docs.test_documented_commands import Background, Result, Workspace

USER = 117669  # a seed-cohort user
SMALL = "--pages 1 --page-size 5 --test-size 6 --persona-size 8 --arm random --arm control"


def _run(workspace: Workspace, text: str, timeout: float = 600) -> Result:
    return workspace.run(Command(text, "tests/cli", 0), timeout=timeout)


def _fails(result: Result, *texts: str) -> None:
    output = result.out + result.err
    assert result.code == 1, f"`{result.command.text}` exited {result.code}:\n{output}"
    flat = " ".join(output.split())  # rich wraps long lines at the terminal's width
    for text in texts:
        assert text in flat, f"{text!r} not in:\n{output}"
    assert "Traceback" not in output, output


@pytest.fixture
def workspace(tmp_path: Path, shared_data: Path) -> Workspace:
    return Workspace.create(tmp_path, shared_data)


@pytest.mark.slow  # fourteen commands, each a new process
def test_database_commands_and_the_first_errors_without_services(workspace: Workspace) -> None:
    """db upgrade/downgrade, a database behind its migrations, an unmigrated one, no dataset
    offline (download and demo), a dataset that is not imported."""
    database = workspace.root / "data" / "prefshift.db"
    workspace.env["PREFSHIFT_DATABASE_URL"] = f"sqlite:///{database}"
    database.parent.mkdir(parents=True)

    _run(workspace, "prefshift db upgrade 0007").ok("database at 0007")
    with sqlite3.connect(database) as connection:  # an experiment whose runs are then read
        connection.execute(
            "INSERT INTO experiments (id, dataset, params, seed, cohort, messages) "
            "VALUES (1, 'seed-cohort', '{}', 0, '{}', '[]')"
        )
    _fails(
        _run(workspace, "prefshift persona fidelity --experiment 1"),
        "schema is older than this prefshift",
        "run: prefshift db upgrade",
    )
    _run(workspace, "prefshift db upgrade").ok("database at head")
    _fails(
        _run(workspace, "prefshift persona fidelity --experiment 1"),
        "experiment 1 has no run with a baseline",
    )
    _run(workspace, "prefshift db downgrade base").ok("database at base")
    _fails(_run(workspace, "prefshift data list"), "run: prefshift db upgrade")

    # offline, no dataset: the download says so, the demo says how to give it a local copy
    _fails(
        _run(workspace, "prefshift data download ml-latest-small"),
        "offline? pass a local folder or zip",
    )
    _fails(
        _run(workspace, "prefshift demo"),
        "offline?",
        "make demo DATASET=path/to/ml-latest-small",
    )
    _fails(
        _run(workspace, "prefshift demo --dataset no-such-dataset"),
        "'no-such-dataset' is not an imported dataset",
        "make demo DATASET=",
    )
    _run(workspace, "prefshift data list").ok("no datasets imported (try: prefshift data import")
    _fails(
        _run(workspace, "prefshift eval personas --dataset seed-cohort --users 2"),
        "seed-cohort",
    )
    plan = _run(workspace, "prefshift experiment plan --effect 0.1 --sd 0.25")
    plan.ok("users")


@pytest.mark.slow
@pytest.mark.sqlite_only  # the subject is the command line, not the database
def test_commands_against_one_running_stack(
    workspace: Workspace, seed_cohort_database_url: str
) -> None:
    """`prefshift up` on a database with the seed cohort; a second `up` on the same ports, the
    commands that talk to the services, then Ctrl-C; and Ctrl-C while `up` is starting."""
    workspace.env["PREFSHIFT_DATABASE_URL"] = seed_cohort_database_url
    up = Command("prefshift up", "tests/cli", 0)

    # Ctrl-C while `up` is starting: once it says so (its handler is set by then; a Ctrl-C in the
    # interpreter's first tenth of a second is Python's own KeyboardInterrupt), mid-migration or
    # mid-start of the services, whichever the machine's speed makes it
    starting = Background(workspace, up)
    starting.wait_for("migrating the database…")
    time.sleep(0.5)
    stopped = starting.ctrl_c()
    assert stopped.code == 0, stopped.out
    assert "stopping…" in stopped.out and "Traceback" not in stopped.out, stopped.out

    stack = Background(workspace, up)
    try:
        stack.wait_for("Ctrl-C stops all services.")
        again = _run(workspace, "prefshift up", timeout=120)
        _fails(again, "already in use", "is prefshift up (or make demo) already running?")

        _fails(
            _run(workspace, f"prefshift simulate {USER} --dataset no-such-dataset --wait"),
            "no-such-dataset",
        )
        _run(workspace, f"prefshift simulate {USER} {SMALL} --wait").ok(
            "Preference shift", "random", "control"
        )
        started = _run(workspace, f"prefshift experiment run --users {USER},47425 {SMALL} --wait")
        started.ok("experiment 1: 2 runs", "2/2 completed")
        _run(workspace, "prefshift experiment status 1").ok("experiment 1 (seed-cohort): completed")
        _run(workspace, "prefshift experiment report 1 --out report").ok("net_shift across 2 users")
        assert (workspace.cwd / "report" / "report.json").is_file()
        _run(workspace, "prefshift experiment plan --effect 0.1 --experiment 1").ok("users")
        _run(workspace, f"prefshift tmdb prefetch --dataset seed-cohort --users {USER}").ok()
    finally:
        result = stack.ctrl_c()
    assert result.code == 0 and "stopping…" in result.out, result.out
    assert "Traceback" not in result.out, result.out
    # the ports are free again: a new stack could start
    again = Background(workspace, up)
    try:
        again.wait_for("Ctrl-C stops all services.")
    finally:
        assert again.ctrl_c().code == 0


@pytest.mark.slow
def test_ctrl_c_while_the_demo_starts_its_services_stops_them(workspace: Workspace) -> None:
    """Ctrl-C (the terminal's SIGINT to the whole process group) while `prefshift demo` starts
    the services: exit 130, what happened said, no traceback, and every service stopped (its
    port refuses connections)."""
    demo = Background(
        workspace, Command("prefshift demo --dataset path/to/ml-latest-small", "tests/cli", 0)
    )
    demo.wait_for("starting the four services and the console…")
    result = demo.ctrl_c()
    assert result.code == 130, result.out
    assert "interrupted: the services are stopped" in result.out, result.out
    assert "Traceback" not in result.out, result.out
    for service in ("orchestrator", "recommender", "simulator", "tmdb_proxy", "console"):
        url = workspace.env[f"PREFSHIFT_{service.upper()}_URL"]
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz", timeout=2)
