"""Replication benchmark: importing the seed study's released runs, and replaying them.

  * the import of ``../shared/data/seed-results`` (116 users) into a fresh database: wall time
    of each stage (read and check, resolve titles, write), beside the same-run baseline of
    importing the seed cohort's ratings (the dataset the runs belong to);
  * with the four services as processes (embedded persona): an experiment whose arms replay
    the imported pages (``recorded`` arms llm, llm-persuasive, study-svd, random, plus control)
    for N users, beside a default embedded experiment of the same users (arms als, random,
    control) — wall time and users per minute of each.

    uv run python benchmarks/replication.py [--users 116] [--workers 4] [--skip-runs]

The load average is printed before and after: the machine is shared, read the times with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from orchestrator_run import DATASET, SHARED, prepare_database, stack, wait_experiment  # noqa: E402

from prefshift.seed_release import CatalogResolver  # noqa: E402
from prefshift_common.db import create_async_db_engine, create_session_factory  # noqa: E402
from prefshift_common.logging import configure_logging  # noqa: E402
from prefshift_orchestrator.replication.importer import (  # noqa: E402
    ImportSummary,
    Step,
    import_seed_results,
)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f}) on {os.cpu_count()} CPUs"


async def _import(url: str) -> tuple[ImportSummary, dict[str, float]]:
    stages: dict[str, float] = {}
    started = {"at": time.perf_counter()}

    def progress(step: Step) -> None:
        # each stage's time: from the end of the previous one to its last step
        if step.done == step.total:
            stages[step.stage] = time.perf_counter() - started["at"]
            started["at"] = time.perf_counter()

    engine = create_async_db_engine(url)
    try:
        resolver = await asyncio.to_thread(CatalogResolver, url, DATASET, None)
        stages["catalogue"] = time.perf_counter() - started["at"]
        started["at"] = time.perf_counter()
        summary = await import_seed_results(
            create_session_factory(engine),
            SHARED / "seed-results",
            dataset=DATASET,
            resolver=resolver,
            progress=progress,
        )
    finally:
        await engine.dispose()
    return summary, stages


def _experiment(client: httpx.Client, body: dict[str, object]) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    response = client.post("/experiments", json=body)
    response.raise_for_status()
    done = wait_experiment(client, int(response.json()["experiment_id"]))
    return time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=116, help="Users replayed (of the 116).")
    parser.add_argument("--workers", type=int, default=4, help="Runs at once.")
    parser.add_argument("--skip-runs", action="store_true", help="Measure the import only.")
    args = parser.parse_args()
    configure_logging("WARNING")  # the resolver logs every dropped title at INFO
    print(f"before: {_load()}")
    with tempfile.TemporaryDirectory(prefix="prefshift-replication-") as workdir:
        started = time.perf_counter()
        url = prepare_database(None, Path(workdir))
        dataset_s = time.perf_counter() - started
        started = time.perf_counter()
        summary, stages = asyncio.run(_import(url))
        import_s = time.perf_counter() - started
        print(f"baseline — seed-cohort dataset import (100,630 ratings): {dataset_s:.1f} s")
        print(
            f"seed-results import ({len(summary.users)} users, {summary.titles:,} titles): "
            f"{import_s:.1f} s — "
            + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in stages.items())
        )
        print(f"after the import: {_load()}")
        if args.skip_runs:
            return
        users = [user.user_id for user in summary.users][: args.users]
        source = {"experiment": summary.experiment_id}
        recorded_arms = [
            {"name": arm, "recorded": {**source, "arm": arm}}
            for arm in ("llm", "llm-persuasive", "study-svd", "random")
        ]
        common = {"dataset": DATASET, "backend": "embedded", "cohort": {"user_ids": users}}
        env = {"PREFSHIFT_ORCHESTRATOR_WORKERS": str(args.workers)}
        with (
            stack(url, Path(workdir) / "data", **env) as orchestrator_url,
            httpx.Client(base_url=orchestrator_url, timeout=120) as client,
        ):
            recorded_s, recorded = _experiment(
                client, {**common, "name": "replayed", "arms": [*recorded_arms, "control"]}
            )
            default_s, default = _experiment(
                client, {**common, "name": "default", "arms": ["als", "random", "control"]}
            )
        for label, seconds, experiment, arms in (
            ("recorded arms (4 replayed + control)", recorded_s, recorded, 5),
            ("baseline — default protocol (als, random, control)", default_s, default, 3),
        ):
            progress = experiment["progress"]
            assert isinstance(progress, dict)
            print(
                f"{label}: {len(users)} users, {arms} arms × 4 pages: {seconds:.1f} s, "
                f"{len(users) / seconds * 60:.1f} users/min ({progress['completed']} completed, "
                f"{progress['failed']} failed)"
            )
    print(f"after: {_load()}")


if __name__ == "__main__":
    main()
