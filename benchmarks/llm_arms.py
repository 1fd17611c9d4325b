"""LLM-bound runs: one user's run against its LLM critical path, and a cohort at the pace the
configured request budget allows.

    uv run python benchmarks/llm_arms.py
    uv run python benchmarks/llm_arms.py --users 20 --rpm 600

The seed cohort is imported into a fresh SQLite database; the four services run as processes on
loopback (``prefshift.stack.Stack``); the LLM is the fake OpenAI-compatible server of the tests,
answering every call after a fixed 1 s (valid keyed JSON for the persona's numbered movies,
well-known seed-cohort titles for the recommenders). The arms are ``llm``, ``llm-persuasive`` and
``control``, the persona is the ``llm`` backend, 4 pages.

- one user's run: wall time in the orchestrator next to the protocol's 13 LLM calls in sequence
  (the baseline, then per page a recommendation, a rating of the page and a re-rating of the test
  movies) = 13 s, the target being within 1.1×; and next to the run's real dependency chain, 10
  calls (a page's re-rating runs beside the next page's recommendation, which needs only the
  page's experiences: the baseline, a recommendation and a rating per page, the last re-rating);
- an N-user experiment with ``PREFSHIFT_LLM_REQUESTS_PER_MINUTE`` = ``--rpm``: wall time next to
  the budget's own bound, ``calls / (rpm / 60)`` (and the critical path, when larger); every run
  in flight at once (``--workers``), so the budget, not a fixed limit, sets the pace.

Figures are printed beside the machine's load average.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fake LLM lives with the tests
sys.path.insert(0, str(ROOT / "benchmarks"))

from orchestrator_run import (  # noqa: E402
    DATASET,
    prepare_database,
    run_figures,
    sample_users,
    stack,
    wait_experiment,
    wait_run,
)

from prefshift_common.db import sync_url  # noqa: E402
from prefshift_common.movies import display_title  # noqa: E402
from tests.fakes.openai_server import (  # noqa: E402
    FakeOpenAI,
    Reply,
    asked_count,
    json_content,
    persona_answer,
    prompt_text,
)

LATENCY_S = 1.0
PAGES = 4
ARMS = ["llm", "llm-persuasive", "control"]
#: The protocol's LLM calls in sequence: the baseline, then per page recommend, rate, re-rate.
CRITICAL_CALLS = 1 + 3 * PAGES
#: The calls a run must wait for one after the other: each page's re-rating overlaps the next
#: page's recommendation, so the baseline, per page recommend and rate, the last re-rating.
DEPENDENT_CALLS = 1 + 2 * PAGES + 1
#: LLM calls of one run: the baseline; per page 3 per LLM arm and 1 for control.
CALLS_PER_RUN = 1 + PAGES * (3 + 3 + 1)


def title_pool(database_url: str) -> list[tuple[str, int]]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT m.title, m.year, COUNT(*) AS n FROM movies m JOIN ratings r "
                    "ON r.dataset_id = m.dataset_id AND r.movielens_id = m.movielens_id "
                    "WHERE m.tmdb_id IS NOT NULL AND m.year IS NOT NULL "
                    "GROUP BY m.title, m.year ORDER BY n DESC LIMIT 600"
                )
            ).all()
    finally:
        engine.dispose()
    return [(display_title(title), int(year)) for title, year, _ in rows]


class Endpoint:
    """Every call answered after ``LATENCY_S``: persona ratings, or as many titles as the
    recommender's prompt asks for, well-known movies in turn (some of them the user's own test
    or persona movies, which the recommender drops, as a real model's would be)."""

    def __init__(self, pool: list[tuple[str, int]]) -> None:
        self.pool = itertools.cycle(pool)
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        if "role-playing" in prompt_text(body):
            content = persona_answer(body, lambda n: 0.5 + (n * 7 % 10) * 0.5)
        else:
            with self.lock:
                named = [next(self.pool) for _ in range(asked_count(body))]
            content = json_content({"recommendations": [{"title": t, "year": y} for t, y in named]})
        return Reply(content=content, delay=LATENCY_S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rpm", type=float, default=600.0)
    parser.add_argument("--workers", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="prefshift-bench-") as tmp:
        workdir = Path(tmp)
        database_url = prepare_database(args.database_url, workdir)
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        fake = FakeOpenAI(responder=Endpoint(title_pool(database_url)), api_key="sk-bench")
        with fake.serve() as llm_url:
            env = {
                "OPENAI_BASE_URL": llm_url,
                "OPENAI_API_KEY": "sk-bench",
                "PREFSHIFT_SIMULATOR_BACKEND": "llm",
                "PREFSHIFT_LLM_REQUESTS_PER_MINUTE": f"{args.rpm:g}",
                "PREFSHIFT_ORCHESTRATOR_WORKERS": str(args.workers),
                "PREFSHIFT_RECOMMENDER_AUTOTRAIN": "",
            }
            with (
                stack(database_url, workdir / "data", **env) as url,
                httpx.Client(base_url=url, timeout=120) as client,
            ):
                body = {"arms": ARMS, "pages": PAGES, "backend": "llm", "dataset": DATASET}
                user = sample_users(database_url, 1, offset=120)[0]
                calls = fake.calls
                started = time.perf_counter()
                run = wait_run(
                    client,
                    client.post(f"/simulate/{user}", json={**body, "seed": 7}).json()["run_id"],
                )
                client_wall = time.perf_counter() - started
                figures = run_figures(database_url, run)
                path = CRITICAL_CALLS * LATENCY_S
                chain = DEPENDENT_CALLS * LATENCY_S
                print(
                    f"one run ({PAGES} pages, arms {', '.join(ARMS)}, llm persona): "
                    f"{figures['wall']:.2f} s in the orchestrator ({client_wall:.2f} s seen by "
                    f"the client) vs the protocol's {CRITICAL_CALLS} calls in sequence × "
                    f"{LATENCY_S:g} s = {path:.0f} s: {figures['wall'] / path:.2f}× "
                    f"(target ≤ 1.10×); vs its dependency chain of {DEPENDENT_CALLS} calls = "
                    f"{chain:.0f} s: {figures['wall'] / chain:.2f}×; {fake.calls - calls} LLM "
                    f"calls ({CALLS_PER_RUN} the protocol's); load average "
                    f"{os.getloadavg()[0]:.1f}"
                )
                users = sample_users(database_url, args.users, offset=0)
                calls = fake.calls
                started = time.perf_counter()
                response = client.post(
                    "/experiments",
                    json={**body, "seed": 11, "cohort": {"kind": "users", "user_ids": users}},
                )
                response.raise_for_status()
                state = wait_experiment(client, response.json()["experiment_id"])
                wall = time.perf_counter() - started
                made = fake.calls - calls
                bound = max(made / (args.rpm / 60.0), chain)
                print(
                    f"{args.users}-user experiment ({state['status']}, "
                    f"{state['progress']['completed']} runs completed): {wall:.1f} s wall, "
                    f"{made} LLM calls ({made / wall * 60:.0f} per minute); budget "
                    f"{args.rpm:g} requests per minute allows {args.rpm:g}/min, so ≥ "
                    f"{bound:.1f} s: {wall / bound:.2f}× the budget's bound; load average "
                    f"{os.getloadavg()[0]:.1f}"
                )


if __name__ == "__main__":
    main()
