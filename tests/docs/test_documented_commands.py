"""The commands of README.md and docs/*.md, run as written (``tests/docs/blocks.py`` collects
them) and checked on what they print and write.

Only the environment moves them: free ports (``PREFSHIFT_*_URL``), a fresh data directory
(``PREFSHIFT_DATA_DIR``, which holds the default SQLite database), no key, GroupLens out of
reach. The one other change is the placeholder ``path/to/`` (and ``../shared/data/``), read as
the shared data folder. Commands run in a scratch folder (``uv run`` finds the project through
``UV_PROJECT``), ``make`` in the checkout. A command with no check here fails the suite: a new
command in the documentation gets a check, or a skip mark with its reason (see blocks.py).
"""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.docs.blocks import ROOT, Block, Command, command_blocks
from tests.fakes.live import free_port

SERVICES = ("orchestrator", "recommender", "simulator", "tmdb_proxy", "console")
#: Variables of the developer's environment that must not reach the documented commands.
SCRUB = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TMDB_API_KEY", "TMDB_READ_TOKEN")


@dataclass
class Workspace:
    """A scratch folder, a data directory and ports of one documented session."""

    root: Path
    shared: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path, shared: Path) -> Workspace:
        env = {k: v for k, v in os.environ.items() if k not in SCRUB}
        env.update(
            {
                "PREFSHIFT_DATA_DIR": str(root / "data"),
                "PREFSHIFT_DATASETS_DOWNLOAD_URL": f"http://127.0.0.1:{free_port()}/datasets",
                "PREFSHIFT_LOG_LEVEL": "WARNING",
                "UV_PROJECT": str(ROOT),
                # the documented `prefshift …` lines run the checkout's command
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "COLUMNS": "200",  # rich tables as wide as they need
                "NO_COLOR": "1",
            }
        )
        env.pop("PREFSHIFT_DATABASE_URL", None)
        env.pop("VIRTUAL_ENV", None)
        for service in SERVICES:
            env[f"PREFSHIFT_{service.upper()}_URL"] = f"http://127.0.0.1:{free_port()}"
        (root / "work").mkdir(parents=True)
        return cls(root, shared, env)

    @property
    def cwd(self) -> Path:
        return self.root / "work"

    def line(self, command: Command) -> str:
        text = command.text.replace("path/to/", f"{self.shared}/")
        return text.replace("../shared/data/", f"{self.shared}/")

    def run(self, command: Command, timeout: float = 900) -> Result:
        cwd = ROOT if command.text.startswith("make ") else self.cwd
        done = subprocess.run(
            ["bash", "-c", self.line(command)],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Result(command, done.returncode, done.stdout, done.stderr)


@dataclass
class Result:
    command: Command
    code: int
    out: str
    err: str

    def ok(self, *texts: str) -> str:
        """The output (stdout then stderr) of a command that exited 0 and printed ``texts``."""
        both = self.out + self.err
        assert self.code == 0, (
            f"{self.command.id} `{self.command.text}` exited {self.code}:\n{both}"
        )
        for text in texts:
            assert text in both, f"{self.command.id}: {text!r} not in:\n{both}"
        assert "Traceback" not in both, both
        return both


class Background:
    """A documented command that runs until Ctrl-C (``prefshift up``)."""

    def __init__(self, workspace: Workspace, command: Command) -> None:
        self.command = command
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {workspace.line(command)}"],
            cwd=workspace.cwd,
            env=workspace.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def wait_for(self, text: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.output):
            assert self.process.poll() is None, "".join(self.output)
            assert time.monotonic() < deadline, "".join(self.output)
            time.sleep(0.2)

    def ctrl_c(self, timeout: float = 30) -> Result:
        """What Ctrl-C does in a terminal: SIGINT to the whole foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise
        self._reader.join(5)
        return Result(self.command, code, "".join(self.output), "")


# --- what each documented command must do --------------------------------------------------


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _counts(folder: Path) -> tuple[int, int, int]:
    """(ratings, movies, users) of a MovieLens folder, read from its files."""
    ratings = _csv_rows(folder / "ratings.csv")
    movies = _csv_rows(folder / "movies.csv")
    return len(ratings), len(movies), len({row["userId"] for row in ratings})


def _imported(name: str, folder: str) -> Check:
    def check(result: Result, workspace: Workspace) -> None:
        ratings, movies, users = _counts(workspace.shared / folder)
        result.ok(f"{name}: imported — {ratings:,} ratings, {movies:,} movies, {users:,} users")

    return check


def _listed(*names: str) -> Check:
    def check(result: Result, workspace: Workspace) -> None:
        output = result.ok("datasets")
        for name in names:
            folder = {"cohort": "seed-cohort"}.get(name, name)
            ratings, _, users = _counts(workspace.shared / folder)
            row = next((line for line in output.splitlines() if f" {name} " in line), None)
            assert row is not None, output
            assert f"{users:,}" in row and f"{ratings:,}" in row, row

    return check


def _shift_table(*arms: str) -> Check:
    def check(result: Result, workspace: Workspace) -> None:
        output = result.ok("Preference shift", "Baseline fidelity to the real ratings")
        for arm in arms:
            assert re.search(rf"│ {re.escape(arm)}\s+│ [+-]\d\.\d\d", output), (arm, output)
        assert "'llm' left out" in output  # no LLM here: said so, never faked

    return check


def _experiment(users: int) -> Check:
    """Every run of the experiment completed: ``users`` of them, or fewer when the seed study's
    cohort rule says which archetype it was short of (the seed cohort has too few Specialists
    below the 3% entropy quantile for some sizes)."""

    def check(result: Result, workspace: Workspace) -> None:
        output = result.ok()
        runs = int(re.search(r"experiment \d+: (\d+) runs", output).group(1))  # type: ignore[union-attr]
        assert runs == users or (runs < users and "cohort short of" in output), output
        assert f"completed — {runs}/{runs} completed" in output, output

    return check


def _report(folder: str, users: int) -> Check:
    def check(result: Result, workspace: Workspace) -> None:
        output = result.ok(f"report written to {folder}")
        across = re.search(r"net_shift across (\d+) users", output)
        assert across is not None and 0 < int(across.group(1)) <= users, output
        written = sorted(path.name for path in (workspace.cwd / folder).iterdir())
        plots = [
            f"{p}.{f}" for p in ("shift_by_page", "genre_shift", "fidelity") for f in ("png", "svg")
        ]
        assert written == sorted(["report.json", "statistics.csv", "users.csv", *plots])

    return check


def _prints(*texts: str) -> Check:
    def check(result: Result, workspace: Workspace) -> None:
        result.ok(*texts)

    return check


def _offline_demo(result: Result, workspace: Workspace) -> None:
    assert result.code != 0
    output = result.out + result.err
    assert "offline?" in output and "make demo DATASET=path/to/ml-latest-small" in output, output
    assert "Traceback" not in output


Check = Callable[[Result, Workspace], None]
README_SEED_STUDY = 10

CHECKS: dict[str, Check] = {
    # README: the two commands. Offline (as here), `make demo` says how to give it a local copy;
    # test_make_demo_with_a_local_dataset runs the one with DATASET= end to end.
    "make demo": _offline_demo,
    # README: using it
    "uv run prefshift data import path/to/ml-latest-small": _imported(
        "ml-latest-small", "ml-latest-small"
    ),
    "uv run prefshift data import path/to/seed-cohort": _imported("seed-cohort", "seed-cohort"),
    "uv run prefshift data list": _listed("ml-latest-small", "seed-cohort"),
    "uv run prefshift simulate 42 --dataset ml-latest-small --wait": _shift_table(
        "als", "random", "control"
    ),
    f"uv run prefshift experiment run --seed-study {README_SEED_STUDY} --dataset seed-cohort "
    "--wait": _experiment(README_SEED_STUDY),
    "uv run prefshift experiment report 1 --out reports/": _report("reports", README_SEED_STUDY),
    "uv run prefshift eval recommenders --dataset ml-latest-small": _prints("als", "nDCG@10"),
    "uv run prefshift eval personas --dataset seed-cohort": _prints("MAE"),
    "uv run prefshift persona fidelity --experiment 1": _prints(
        "Each persona's first ratings against the real ones"
    ),
    "uv run prefshift persona list": _prints(
        "embedded persona parameter sets", "seed-gpt5-v2", "seed-gpt5-spread"
    ),
    f"uv run prefshift experiment run --seed-study {README_SEED_STUDY} --dataset seed-cohort "
    "--persona-model seed-gpt5-spread --wait": _experiment(README_SEED_STUDY),
    f"uv run prefshift experiment run --seed-study {README_SEED_STUDY} --dataset seed-cohort "
    "--design rerate --delta 1 --wait": _experiment(README_SEED_STUDY),
    "uv run prefshift experiment run --users 42,57 --dataset ml-latest-small --arm "
    """'{"name": "als", "shown_prediction": {"offset": 1}}' --arm control --wait""": _experiment(2),
    # docs/datasets.md
    "prefshift data import ../shared/data/ml-latest-small": _imported(
        "ml-latest-small", "ml-latest-small"
    ),
    "prefshift data import ../shared/data/seed-cohort --name cohort": _imported(
        "cohort", "seed-cohort"
    ),
    "prefshift data list": _listed("ml-latest-small", "cohort"),
    # docs/tmdb-proxy.md
    "prefshift data import-tmdb ../shared/data/tmdb-offline/movies.jsonl --tmdb-5000 "
    "../shared/data/tmdb-5000/tmdb_5000_movies.csv": _prints("imported"),
}
#: Commands that run until Ctrl-C: started, used by the block's next commands, then stopped.
SERVING = {"uv run prefshift up": "Ctrl-C stops all services."}


def _blocks() -> list[Block]:
    return [block for block in command_blocks() if block.commands]


def test_every_documented_command_is_checked_or_marked() -> None:
    """A command added to the documentation needs a check here or a skip mark with a reason."""
    unchecked = [
        f"{command.id}: {command.text}"
        for block in _blocks()
        for command in block.commands
        if command.skip is None and command.text not in CHECKS and command.text not in SERVING
    ]
    assert unchecked == []
    stale = set(CHECKS) - {c.text for b in _blocks() for c in b.commands}
    assert stale == set(), "checks of commands the documentation no longer has"


@pytest.fixture
def workspace(tmp_path: Path, shared_data: Path) -> Workspace:
    return Workspace.create(tmp_path, shared_data)


def _params() -> list[Any]:
    return [pytest.param(block, id=f"{block.file}:{block.line}") for block in _blocks()]


@pytest.mark.slow
@pytest.mark.parametrize("block", _params())
def test_documented_block(block: Block, workspace: Workspace) -> None:
    """Every command of the block in order, in one fresh workspace (one database, one stack
    when the block starts one); skipped commands say why."""
    skipped = [f"{c.id} `{c.text}`: {c.skip}" for c in block.commands if c.skip]
    runnable = [c for c in block.commands if c.skip is None]
    if not runnable:
        pytest.skip("; ".join(skipped))
    serving: list[Background] = []
    try:
        for command in runnable:
            if command.text in SERVING:
                serving.append(Background(workspace, command))
                serving[-1].wait_for(SERVING[command.text])
                continue
            CHECKS[command.text](workspace.run(command), workspace)
        for background in serving:
            stopped = background.ctrl_c()
            stopped.ok("stopping…")
            serving.remove(background)
    finally:
        for background in serving:
            if background.process.poll() is None:
                os.killpg(background.process.pid, signal.SIGKILL)
    for line in skipped:  # the block ran; its marked commands are reported, not hidden
        print(f"skipped {line}")


@pytest.mark.slow
def test_make_demo_with_a_local_dataset(workspace: Workspace, shared_data: Path) -> None:
    """README: `make demo DATASET=path/to/ml-latest-small`, offline, on SQLite, end to end."""
    command = Command(f"make demo DATASET={shared_data / 'ml-latest-small'}", "README.md", 0)
    result = workspace.run(command)
    output = result.ok("dataset: ml-latest-small (local)", "services up; simulating user")
    _shift_table("als", "random", "control")(result, workspace)
    assert "make up" in output  # the closing hint names a command that is on the PATH
    assert "Running pip as the 'root' user" not in output
