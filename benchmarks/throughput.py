"""Throughput per core (issue 24): CPU per user-run of every process and user-runs per minute.

A ``--users``-user experiment of ml-latest-small (default arms — the LLM arms are left out, no
LLM is configured — and the embedded persona) on Postgres, through the orchestrator's HTTP API,
once for each worker count of ``--workers``: the four services as processes on loopback, the
orchestrator serving the API alone (``PREFSHIFT_ORCHESTRATOR_WORKERS=0``) and N ``prefshift
worker`` processes claiming the runs (each executing ``--concurrency`` runs at once). For each N
it prints the CPU seconds (user + system, from ``/proc/<pid>/stat``) each process spent per
user-run — the orchestrator API, the workers, the simulator, the recommender, the tmdb-proxy and
the Postgres cluster's processes (every process named ``postgres``: its backends, autovacuum and
the writers; a backend that exits between two readings is missed) — user-runs per minute and the
load average; then the cost of one progress poll of the finished experiment, the whole
``GET /experiments/{id}`` against ``GET /experiments/{id}/progress`` (the orchestrator's CPU per
poll and the client's latency). The issue's figures, measured before this work, are printed
beside. Run it alone: every figure is CPU time of processes on this machine.

    uv run python benchmarks/throughput.py [--users 300] [--workers 1,2,3] [--concurrency 4]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/postgres] [--database-url URL]
        [--polls 20]

A fresh database is created on the ``--postgres-url`` server (and dropped at the end), migrated,
and ml-latest-small imported; ``--database-url`` uses a database already migrated with
ml-latest-small imported instead (and keeps it). A smoke check: ``--users 5 --workers 1``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service_stack import service_stack  # noqa: E402

from prefshift_common.db import sync_url  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DATASET = "ml-latest-small"
TICKS = os.sysconf("SC_CLK_TCK")
#: Issue 24's figures before this work (300 users, 2 cores): ms of CPU per user-run.
BASELINE_MS = {
    "orchestrator": 238.0,
    "simulator": 109.0,
    "postgres": 60.0,
    "recommender": 46.0,
    "tmdb-proxy": 6.0,
}
BASELINE_TOTAL_MS = 470.0
BASELINE_RUNS_PER_MINUTE = 205.0
BASELINE_POLL_MS = 167.0
TARGET_ORCHESTRATOR_MS = 35.0
TARGET_TOTAL_MS = 150.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def postgres_pids() -> list[int]:
    """Every process named ``postgres`` (the cluster this machine runs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name == "postgres" or name.startswith("postgres:"):
            found.append(int(entry.name))
    return found


@dataclass
class Processes:
    """The processes whose CPU is counted, by role."""

    orchestrator_url: str
    roles: dict[str, list[int]] = field(default_factory=dict)

    def reading(self) -> dict[str, Any]:
        cpu = {role: sum(cpu_seconds(pid) for pid in pids) for role, pids in self.roles.items()}
        return {**cpu, "postgres": {pid: cpu_seconds(pid) for pid in postgres_pids()}}

    @staticmethod
    def spent(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
        """CPU seconds spent between two readings, by role (a Postgres process that started
        in between counts from 0)."""
        spent = {role: after[role] - before[role] for role in after if role != "postgres"}
        spent["postgres"] = sum(
            cpu - before["postgres"].get(pid, 0.0) for pid, cpu in after["postgres"].items()
        )
        return spent


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    """The benchmark's database: ``--database-url`` as it is, or a fresh one on the server."""
    if args.database_url:
        yield args.database_url
        return
    from prefshift import migrate
    from prefshift_datasets.importer import import_dataset

    server = make_url(args.postgres_url)
    name = f"prefshift_throughput_{os.getpid()}"
    admin = create_engine(sync_url(args.postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        started = time.perf_counter()
        migrate.upgrade(url)
        import_dataset(url, SHARED / DATASET, name=DATASET)
        print(f"database ready in {time.perf_counter() - started:.1f} s (postgres, {DATASET})")
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def stack(database_url: str, data_dir: Path, workers: int, concurrency: int) -> Iterator[Processes]:
    """The four services (the orchestrator's own workers off) and ``workers`` worker
    processes; yields their pids by role once every one is ready."""
    services, urls, environment = service_stack(
        database_url,
        data_dir,
        DATASET,
        # the orchestrator serves the API alone; the workers are the processes below
        {"PREFSHIFT_SIMULATOR_BACKEND": "embedded", "PREFSHIFT_ORCHESTRATOR_WORKERS": "0"},
    )
    worker_env = {**os.environ, **environment, "PREFSHIFT_ORCHESTRATOR_WORKERS": str(concurrency)}
    started: list[subprocess.Popen[bytes]] = []
    services.start()
    try:
        services.wait_ready(timeout=900)
        for _ in range(workers):
            command = [
                sys.executable,
                "-c",
                "from prefshift.cli.main import main; main()",
                "worker",
                "--log-level",
                "warning",
            ]
            started.append(subprocess.Popen(command, env=worker_env))
        roles = {
            name: [process.pid]
            for name, process in services.processes.items()
            if process.pid is not None
        }
        roles["workers"] = [process.pid for process in started]
        yield Processes(urls["orchestrator"], roles)
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        services.stop()


def wait_experiment(client: httpx.Client, experiment_id: int) -> dict[str, Any]:
    """Poll the cheap progress once a second until the experiment is no longer running."""
    while True:
        state: dict[str, Any] = client.get(f"/experiments/{experiment_id}/progress").json()
        if state["status"] != "running":
            return state
        time.sleep(1.0)


def experiment(client: httpx.Client, users: int, seed: int) -> tuple[int, dict[str, Any]]:
    response = client.post(
        "/experiments",
        json={"seed": seed, "cohort": {"kind": "sample", "size": users, "seed": seed}},
    )
    response.raise_for_status()
    experiment_id = int(response.json()["experiment_id"])
    return experiment_id, wait_experiment(client, experiment_id)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def measure(
    database_url: str, data_dir: Path, args: argparse.Namespace, workers: int, seed: int
) -> int:
    print(f"== {workers} worker process(es) × {args.concurrency} runs at once ==")
    with (
        stack(database_url, data_dir, workers, args.concurrency) as processes,
        httpx.Client(base_url=processes.orchestrator_url, timeout=300) as client,
    ):
        # a one-user warm-up (models loaded, connections opened): not counted
        _, state = experiment(client, 1, seed + 1000)
        print(f"warm-up: {state['status']}; {load()}")
        before, started = processes.reading(), time.perf_counter()
        experiment_id, state = experiment(client, args.users, seed)
        wall = time.perf_counter() - started
        spent = Processes.spent(before, processes.reading())
        progress = state["progress"]
        done = max(1, int(progress["completed"]) + int(progress["failed"]))
        print(
            f"{args.users}-user experiment {experiment_id}: {state['status']} "
            f"({progress['completed']} completed, {progress['failed']} failed) in {wall:.1f} s: "
            f"{done / wall * 60:.0f} user-runs/min (issue 24 before: "
            f"{BASELINE_RUNS_PER_MINUTE:.0f} on 2 cores); {load()}"
        )
        print("CPU per user-run (ms)      now   before (issue 24)")
        shown = {**spent, "orchestrator": spent["orchestrator"] + spent["workers"]}
        labels = {"orchestrator": "orchestrator (all)", "workers": "  of it the workers"}
        for role in ("orchestrator", "workers", "simulator", "recommender", "tmdb-proxy"):
            before_ms = BASELINE_MS.get(role)
            label = labels.get(role, role)
            print(
                f"  {label:<22} {shown[role] / done * 1000:7.1f}   "
                f"{'' if before_ms is None else f'{before_ms:.0f}'}"
            )
        print(f"  {'postgres':<22} {spent['postgres'] / done * 1000:7.1f}   60")
        total = sum(spent.values()) / done * 1000
        print(
            f"  {'all':<22} {total:7.1f}   {BASELINE_TOTAL_MS:.0f}  "
            f"(targets: orchestrator ≤ {TARGET_ORCHESTRATOR_MS:.0f}, all ≤ "
            f"{TARGET_TOTAL_MS:.0f})"
        )
        polls(client, processes, experiment_id, args.polls, progress["runs"])
    return done


def polls(
    client: httpx.Client, processes: Processes, experiment_id: int, n: int, runs: int
) -> None:
    """The orchestrator's CPU and the client's latency per progress poll, whole and cheap."""
    (orchestrator,) = processes.roles["orchestrator"]
    for label, path in (
        ("GET /experiments/{id}         ", f"/experiments/{experiment_id}"),
        ("GET /experiments/{id}/progress", f"/experiments/{experiment_id}/progress"),
    ):
        client.get(path).raise_for_status()
        cpu, started = cpu_seconds(orchestrator), time.perf_counter()
        for _ in range(n):
            client.get(path).raise_for_status()
        latency = (time.perf_counter() - started) / n * 1000
        per_poll = (cpu_seconds(orchestrator) - cpu) / n * 1000
        print(
            f"one poll of a {runs}-run experiment, {label}: {per_poll:6.1f} ms orchestrator CPU, "
            f"{latency:6.1f} ms latency (issue 24 before, the whole GET of 300 runs: "
            f"{BASELINE_POLL_MS:.0f} ms CPU)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--workers", default="1,2,3", help="Worker process counts, in turn.")
    parser.add_argument("--concurrency", type=int, default=4, help="Runs per worker at once.")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "PREFSHIFT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--database-url", help="A migrated database with ml-latest-small.")
    parser.add_argument("--polls", type=int, default=20, help="Polls timed of each kind.")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",") if n]
    print(f"machine: {os.cpu_count()} CPUs, {load()}")
    with tempfile.TemporaryDirectory(prefix="prefshift-throughput-") as tmp, database(args) as url:
        data_dir = Path(tmp) / "data"  # one for every stack: the models are trained once
        for index, workers in enumerate(counts):
            measure(url, data_dir, args, workers, seed=7001 + index)
    print(f"done; {load()}")


if __name__ == "__main__":
    main()
