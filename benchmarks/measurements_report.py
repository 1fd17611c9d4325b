"""Cost of the measurements behind ``GET /runs/{id}/shift`` and ``GET /experiments/{id}/report``.

Synthetic runs in the default protocol's shape (30 test movies with the seed cohort's real
genre mix, 5 arms × 4 pages, 30 recommendations per page), for cohorts of 1, 50 and 150 users:

- ``run_shift`` per user, against a baseline in the same run: the bare mean shift per arm and
  page with one pandas groupby (the least any implementation must do);
- ``summarize`` (bootstrap intervals and Wilcoxon p-values for every metric, cell and archetype),
  with the exact tie-aware Wilcoxon, against scipy's ``wilcoxon(method="auto")`` on the same
  samples (which falls back to a slow permutation test for small samples with ties);
- the four report plots in PNG and SVG.

Figures are CPU seconds of this process (BLAS limited to one thread).
Run: ``uv run python benchmarks/measurements_report.py [--users 1,50,150]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from threadpoolctl import threadpool_limits

from prefshift_orchestrator.measurements import run_shift, stack_shift_tables
from prefshift_orchestrator.plots import report_plots
from prefshift_orchestrator.statistics import summarize, wilcoxon_p

ARMS = ("llm", "llm-persuasive", "als", "random", "control")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def genre_pool() -> list[list[str]]:
    """Genre lists of real movies (seed cohort, TMDB genres), or a small fixed pool."""
    path = SHARED / "seed-cohort" / "tmdb_movies.jsonl"
    if not path.exists():
        return [["Drama"], ["Comedy", "Romance"], ["Action", "Thriller"], ["Horror"]]
    records = pd.read_json(path, lines=True, nrows=3000)
    return [[g["name"] for g in genres] or ["Drama"] for genres in records["genres"]]


def synthetic_run(rng: np.random.Generator, pool: list[list[str]]) -> tuple[pd.DataFrame, dict]:
    movies = np.arange(1, 31)
    base = rng.integers(1, 11, size=30) / 2
    rows: list[tuple[str, int, str, int, float]] = [
        ("baseline", 0, "test", int(m), float(r)) for m, r in zip(movies, base, strict=True)
    ]
    for arm in ARMS:
        for page in range(1, 5):
            ratings = np.clip(base + rng.choice([-0.5, 0.0, 0.0, 0.5], size=30), 0.5, 5.0)
            rows += [
                (arm, page, "test", int(m), float(r)) for m, r in zip(movies, ratings, strict=True)
            ]
            if arm != "control":
                seen = rng.integers(1000, 90000, size=30)
                liked = rng.integers(1, 11, size=30) / 2
                rows += [
                    (arm, page, "experience", int(m), float(r))
                    for m, r in zip(seen, liked, strict=True)
                ]
    genres = {int(m): pool[int(rng.integers(len(pool)))] for m in movies}
    real = {
        int(m): float(np.clip(b + rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0]), 0.5, 5.0))
        for m, b in zip(movies, base, strict=True)
    }
    frame = pd.DataFrame(rows, columns=["arm", "page", "phase", "tmdb_id", "rating"])
    return frame, {"genres": genres, "real": real}


def bare_shift(frame: pd.DataFrame) -> pd.Series:
    test = frame[frame["phase"] == "test"]
    base = test[test["arm"] == "baseline"].set_index("tmdb_id")["rating"]
    arms = test[test["arm"] != "baseline"]
    delta = arms["rating"].to_numpy() - base.reindex(arms["tmdb_id"]).to_numpy()
    return arms.assign(delta=delta).groupby(["arm", "page"])["delta"].mean()


def timed(function: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best CPU time of this process over ``repeat`` calls (CPU rather than wall time, so that
    other work on a shared machine does not inflate the figures)."""
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        start = time.process_time()
        result = function()
        best = min(best, time.process_time() - start)
    return best, result


def main() -> None:
    with threadpool_limits(limits=1):
        run()


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", default="1,50,150")
    args = parser.parse_args()
    pool = genre_pool()
    rng = np.random.default_rng(0)

    print("per run (default protocol: 30 test movies, 5 arms x 4 pages)")
    frame, extra = synthetic_run(rng, pool)
    t_shift, _ = timed(
        lambda: run_shift(frame, test_genres=extra["genres"], real_ratings=extra["real"]), 20
    )
    t_bare, _ = timed(lambda: bare_shift(frame), 20)
    print(f"  run_shift           {t_shift * 1000:8.1f} ms")
    print(
        f"  bare groupby shift  {t_bare * 1000:8.1f} ms"
        f"   (baseline; run_shift = {t_shift / t_bare:.1f}x)"
    )

    for n_users in (int(n) for n in args.users.split(",")):
        runs = []
        pairs = []
        start = time.process_time()
        for user in range(n_users):
            frame, extra = synthetic_run(rng, pool)
            archetype = ("Specialist", "Explorer", "Generalist")[user % 3]
            runs.append(
                (
                    user + 1,
                    archetype,
                    run_shift(frame, test_genres=extra["genres"], real_ratings=extra["real"]),
                )
            )
            pairs.append(
                pd.DataFrame(
                    {
                        "predicted": frame.query("arm == 'baseline'")["rating"].to_numpy(),
                        "real": list(extra["real"].values()),
                    }
                )
            )
        t_runs = time.process_time() - start
        t_stack, results = timed(partial(stack_shift_tables, runs))
        t_summary, summary = timed(partial(summarize, results))
        pooled = pd.concat(pairs)
        t_png, _ = timed(partial(report_plots, summary, pooled, fmt="png"))
        t_svg, _ = timed(partial(report_plots, summary, pooled, fmt="svg"))
        print(
            f"cohort of {n_users} users: {len(results)} result rows,"
            f" {len(summary.cells)} statistic cells"
        )
        print(f"  synthesize + run_shift x{n_users:<4} {t_runs:7.2f} s")
        print(f"  stack_shift_tables        {t_stack:7.2f} s")
        print(f"  summarize                 {t_summary:7.2f} s")
        print(f"  4 report plots png / svg  {t_png:7.2f} s / {t_svg:.2f} s")

    print("Wilcoxon p of 200 small tied samples (n=10, ratings on a 0.5 grid)")
    samples = [np.round(rng.normal(0.2, 1.0, 10) * 2) / 2 for _ in range(200)]
    samples = [s[s != 0] for s in samples]
    samples = [s for s in samples if s.size >= 2]
    t_ours, ours = timed(lambda: [wilcoxon_p(s) for s in samples])
    t_scipy, theirs = timed(lambda: [stats.wilcoxon(s, method="auto").pvalue for s in samples])
    gap = max(abs(a - b) for a, b in zip(ours, theirs, strict=True) if a is not None)
    print(f"  exact tie-aware (ours)    {t_ours * 1000:8.1f} ms")
    print(
        f"  scipy method='auto'       {t_scipy * 1000:8.1f} ms"
        f"   (ours {t_scipy / t_ours:.0f}x faster; max |p difference| {gap:.2e})"
    )


if __name__ == "__main__":
    main()
