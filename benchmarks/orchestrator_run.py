"""Orchestrator benchmark: wall time of runs, users per minute, and the orchestrator's own
overhead, with the four services as processes on loopback (``prefshift.stack.Stack``).

Part A — embedded persona (no LLM), seed cohort:
  * one default run (arms als, random, control: no LLM is configured, so the LLM arms are left
    out) per user, for a few users one after the other: wall time, and the orchestrator's
    overhead = run time − its critical path of service calls (baseline call + the slowest arm's
    recommend/rate/re-rate calls, as timed by the orchestrator around each HTTP call);
  * a 50-user experiment (a seeded sample of the cohort) with PREFSHIFT_ORCHESTRATOR_WORKERS
    runs at once: wall time and users per minute.
Part B — the simulator on a fake OpenAI-compatible LLM answering after a fixed 1 s:
  * one run (arms als, random, control) next to its critical path: baseline + pages × 2
    simulator calls = 9 s with the defaults;
  * wall time of experiments of 1, 10 and 50 users at a given concurrency.

    uv run python benchmarks/orchestrator_run.py [--database-url URL] [--users 50]
        [--workers 4] [--llm-users 1,10,50] [--llm-concurrency 16] [--skip-llm]

Without ``--database-url`` a fresh SQLite file is migrated and the seed cohort imported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fake LLM lives with the tests

from service_stack import service_stack  # noqa: E402

from prefshift_common.db import sync_connection  # noqa: E402
from tests.fakes.openai_server import FakeOpenAI, Reply  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DATASET = "seed-cohort"
ARMS = ["als", "random", "control"]
LATENCY_S = 1.0


def prepare_database(url: str | None, workdir: Path) -> str:
    from prefshift import migrate
    from prefshift_datasets.importer import import_dataset

    url = url or f"sqlite:///{workdir / 'bench.db'}"
    migrate.upgrade(url)
    import_dataset(url, SHARED / DATASET, name=DATASET)
    return url


@contextmanager
def stack(database_url: str, data_dir: Path, **env: str) -> Iterator[str]:
    """The four services (``service_stack``), ALS and random trained at start; the
    orchestrator's URL."""
    services, urls, _ = service_stack(
        database_url, data_dir, DATASET, {"PREFSHIFT_RECOMMENDER_AUTOTRAIN": "als,random", **env}
    )
    services.start()
    try:
        services.wait_ready(timeout=600)
        yield urls["orchestrator"]
    finally:
        services.stop()


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def wait_run(client: httpx.Client, run_id: int) -> dict[str, Any]:
    while True:
        run: dict[str, Any] = client.get(f"/runs/{run_id}").json()
        if run["status"] in ("completed", "failed", "cancelled"):
            if run["status"] != "completed":
                raise RuntimeError(f"run {run_id} {run['status']}: {run['error']}")
            return run
        time.sleep(0.1)


def wait_experiment(client: httpx.Client, experiment_id: int) -> dict[str, Any]:
    while True:  # the cheap poll, then the whole experiment (its runs) once
        state: dict[str, Any] = client.get(f"/experiments/{experiment_id}/progress").json()
        if state["status"] != "running":
            experiment: dict[str, Any] = client.get(f"/experiments/{experiment_id}").json()
            return experiment
        time.sleep(0.25)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def critical_path(database_url: str, run_id: int) -> tuple[float, float]:
    """(critical path, sum of all call latencies) of a run in seconds, from the latencies the
    orchestrator stored around each service call: the prepare step's two concurrent calls
    (tmdb-proxy genres, the arms' state), the baseline, then the slowest arm."""
    with sync_connection(database_url) as connection:
        rows = connection.execute(
            text("SELECT arm, timings FROM run_pages WHERE run_id = :r"), {"r": run_id}
        ).all()
        selection = connection.execute(
            text("SELECT selection FROM runs WHERE id = :r"), {"r": run_id}
        ).scalar_one()
    prepare = (_json(selection) or {}).get("prepare_ms", {})
    prepare_calls = max(prepare.get("tmdb_proxy", 0.0), prepare.get("recommenders", 0.0)) / 1000
    per_arm: dict[str, float] = {}
    total = 0.0
    for arm, timings in rows:
        values = _json(timings)
        spent = sum(float(v) for v in values.values()) / 1000
        per_arm[arm] = per_arm.get(arm, 0.0) + spent
        total += spent
    baseline = per_arm.pop("baseline", 0.0)
    return prepare_calls + baseline + max(per_arm.values(), default=0.0), total + prepare_calls


def run_figures(database_url: str, run: dict[str, Any]) -> dict[str, float]:
    wall = _ts(run["finished_at"]) - _ts(run["started_at"])
    path, total = critical_path(database_url, run["run_id"])
    return {"wall": wall, "critical": path, "calls": total, "overhead": wall - path}


def sample_users(database_url: str, n: int, offset: int = 0) -> list[int]:
    with sync_connection(database_url) as connection:
        rows = connection.execute(
            text(
                "SELECT u.user_id FROM dataset_users u JOIN datasets d ON d.id = u.dataset_id "
                "WHERE d.name = :name ORDER BY u.user_id LIMIT :n OFFSET :o"
            ),
            {"name": DATASET, "n": n, "o": offset},
        )
        return [int(r[0]) for r in rows]


def experiment(
    client: httpx.Client, database_url: str, users: list[int], seed: int
) -> tuple[float, list[dict[str, float]]]:
    started = time.perf_counter()
    response = client.post(
        "/experiments",
        json={"arms": ARMS, "seed": seed, "cohort": {"kind": "users", "user_ids": users}},
    )
    response.raise_for_status()
    state = wait_experiment(client, response.json()["experiment_id"])
    wall = time.perf_counter() - started
    if state["progress"]["completed"] != len(users):
        raise RuntimeError(f"experiment ended {state['progress']}")
    figures = [
        run_figures(database_url, client.get(f"/runs/{r['run_id']}").json()) for r in state["runs"]
    ]
    return wall, figures


def part_embedded(database_url: str, workdir: Path, n_users: int, workers: int) -> None:
    print(f"== A. embedded persona, seed cohort, {workers} workers ==")
    env = {
        "PREFSHIFT_ORCHESTRATOR_WORKERS": str(workers),
        "PREFSHIFT_SIMULATOR_BACKEND": "embedded",
    }
    with (
        stack(database_url, workdir / "data-a", **env) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        warm = sample_users(database_url, 1, offset=149)[0]
        wait_run(client, client.post(f"/simulate/{warm}", json={"seed": 99}).json()["run_id"])
        print("warm-up run done (models trained and loaded)")
        singles = []
        for user in sample_users(database_url, 3):
            started = time.perf_counter()
            run = wait_run(
                client, client.post(f"/simulate/{user}", json={"seed": 1}).json()["run_id"]
            )
            figures = run_figures(database_url, run)
            figures["client"] = time.perf_counter() - started
            singles.append(figures)
            print(
                f"user {user}: one default run {figures['client']:.2f} s (client), "
                f"{figures['wall']:.2f} s in the orchestrator; critical path of service calls "
                f"{figures['critical']:.2f} s; overhead {figures['overhead']:.3f} s "
                f"({figures['overhead'] / figures['wall']:.1%})"
            )
        wall, figures = experiment(client, database_url, sample_users(database_url, n_users), 2)
        overhead = sum(f["overhead"] for f in figures) / sum(f["wall"] for f in figures)
        per_run = statistics.median(f["wall"] for f in figures)
        print(
            f"{n_users}-user experiment: {wall:.1f} s wall, {n_users / wall * 60:.1f} users/min; "
            f"median run {per_run:.2f} s; orchestrator overhead {overhead:.1%} of run time "
            f"(Σ(run − critical path) / Σ run)"
        )


def answer(body: dict[str, Any]) -> Reply:
    import re

    last = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    numbers = [int(n) for n in re.findall(r"^\[(\d+)\] ", last, re.MULTILINE)]
    ratings = [
        {"item": n, "rating": 0.5 + (n * 7 % 10) * 0.5, "feeling": "A fine evening's film."}
        for n in numbers
    ]
    return Reply(content=json.dumps({"ratings": ratings}), delay=LATENCY_S)


def part_llm(database_url: str, workdir: Path, sizes: list[int], concurrency: int) -> None:
    print(
        f"== B. simulator on a fake LLM answering after {LATENCY_S:g} s, {concurrency} workers =="
    )
    fake = FakeOpenAI(responder=answer, api_key="sk-bench")
    with fake.serve() as llm_url:
        env = {
            "OPENAI_BASE_URL": llm_url,
            "OPENAI_API_KEY": "sk-bench",
            "PREFSHIFT_SIMULATOR_BACKEND": "llm",
            "PREFSHIFT_SIMULATOR_CONCURRENCY": "256",
            "PREFSHIFT_ORCHESTRATOR_WORKERS": str(concurrency),
        }
        with (
            stack(database_url, workdir / "data-b", **env) as url,
            httpx.Client(base_url=url, timeout=120) as client,
        ):
            user = sample_users(database_url, 1, offset=120)[0]
            calls_before = fake.calls
            run = wait_run(
                client,
                client.post(f"/simulate/{user}", json={"arms": ARMS, "seed": 7}).json()["run_id"],
            )
            figures = run_figures(database_url, run)
            path = (1 + 4 * 2) * LATENCY_S
            print(
                f"one run (4 pages, arms {', '.join(ARMS)}): {figures['wall']:.2f} s; critical "
                f"path baseline + 4 pages × 2 calls = {path:.0f} s of LLM latency; measured "
                f"critical path of calls {figures['critical']:.2f} s; overhead "
                f"{figures['overhead']:.2f} s; {fake.calls - calls_before} LLM calls"
            )
            offset = 0
            for seed, size in enumerate(sizes, start=100):
                users = sample_users(database_url, size, offset=offset % 100)
                offset += size
                wall, runs = experiment(client, database_url, users, seed)
                median = statistics.median(r["wall"] for r in runs)
                print(
                    f"{size:>3} users at {concurrency} concurrent runs: {wall:.1f} s wall "
                    f"({wall / size:.2f} s per user; median run {median:.2f} s)"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--llm-users", default="1,10,50")
    parser.add_argument("--llm-concurrency", type=int, default=16)
    parser.add_argument("--skip-llm", action="store_true")
    parser.add_argument("--skip-embedded", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prefshift-bench-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        database_url = prepare_database(args.database_url, workdir)
        kind = database_url.split(":")[0]
        print(f"database ready in {time.perf_counter() - started:.1f} s ({kind})")
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        if not args.skip_embedded:
            part_embedded(database_url, workdir, args.users, args.workers)
        if not args.skip_llm:
            sizes = [int(size) for size in args.llm_users.split(",") if size]
            part_llm(database_url, workdir, sizes, args.llm_concurrency)


if __name__ == "__main__":
    main()
