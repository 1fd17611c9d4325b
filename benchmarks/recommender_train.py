"""Training time and peak memory of the recommender's implementations.

    uv run python benchmarks/recommender_train.py --dataset small
    uv run python benchmarks/recommender_train.py --dataset synthetic-32m --save /tmp/models

``small`` is ../shared/data/ml-latest-small (CSV, no database needed); ``synthetic-32m`` is a
long-tailed matrix the size of MovieLens-32M (200,000 users, 87,000 movies, 32 million ratings)
built directly with NumPy. Each implementation trains in its own process so that its peak resident
memory (VmHWM, which includes the ratings matrix it trains on) is its own; ``popularity`` is
the baseline of the same run (the cost of just holding the data). CPU seconds (user + system, all
threads) are printed next to wall time: on a shared machine they are the steadier figure. Goal
for ALS on the 32M matrix: under 10 minutes and under 4 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
# MovieLens-32M's rating histogram (0.5 … 5.0), so the confidence weights see realistic values.
RATING_VALUES = np.arange(1, 11, dtype=np.float32) / 2
RATING_SHARES = np.array([1.6, 3.3, 1.6, 6.2, 4.9, 19.5, 13.1, 26.6, 7.9, 15.3])


def small_matrix() -> sp.csr_matrix:
    import pandas as pd

    from prefshift_recommender.artifacts import build_matrix
    from prefshift_recommender.repository import RatingArrays

    folder = SHARED / "ml-latest-small"
    ratings = pd.read_csv(folder / "ratings.csv")
    links = pd.read_csv(folder / "links.csv").dropna(subset=["tmdbId"])
    joined = ratings.merge(links, on="movieId")
    arrays = RatingArrays(
        user_ids=joined["userId"].to_numpy(np.int64),
        tmdb_ids=joined["tmdbId"].to_numpy(np.int64),
        ratings=joined["rating"].to_numpy(np.float32),
    )
    return build_matrix(arrays).ratings


def synthetic_matrix(
    users: int = 200_000, items: int = 87_000, ratings: int = 32_000_000, seed: int = 0
) -> sp.csr_matrix:
    """Long-tailed like MovieLens: user activity log-normal, item popularity Zipf-like."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(mean=0.0, sigma=1.1, size=users)
    per_user = np.clip(np.round(activity / activity.sum() * ratings), 15, items // 8).astype(
        np.int64
    )
    per_user = np.round(per_user * ratings / per_user.sum()).astype(np.int64)
    popularity = 1.0 / (np.arange(items) + 20.0) ** 1.05
    cdf = np.cumsum(popularity / popularity.sum())
    draws = int(per_user.sum() * 1.25)
    rows = np.repeat(np.arange(users, dtype=np.int64), np.round(per_user * 1.25).astype(np.int64))
    cols = np.searchsorted(cdf, rng.random(rows.size)).astype(np.int64)
    del draws
    keys = np.unique(rows * items + np.minimum(cols, items - 1))
    if keys.size > ratings:
        keys = np.sort(rng.choice(keys, size=ratings, replace=False))
    values = rng.choice(RATING_VALUES, size=keys.size, p=RATING_SHARES / RATING_SHARES.sum())
    matrix = sp.csr_matrix(
        (
            values.astype(np.float32),
            ((keys // items).astype(np.int32), (keys % items).astype(np.int32)),
        ),
        shape=(users, items),
    )
    matrix.sort_indices()
    return matrix


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss on Linux, it does not carry
    over the parent's peak into a spawned child)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _train_child(
    name: str, matrix_path: str, params: dict[str, Any], save: str | None, out: Any
) -> None:
    from prefshift_recommender.algorithms import limit_blas_threads
    from prefshift_recommender.artifacts import TrainingMatrix, train
    from prefshift_recommender.artifacts import save as save_model
    from prefshift_recommender.repository import DatasetRef

    limit_blas_threads()
    matrix = sp.load_npz(matrix_path).tocsr()
    before = peak_rss_mb()
    training = TrainingMatrix(
        ratings=matrix,
        user_ids=np.arange(matrix.shape[0], dtype=np.int64),
        item_ids=np.arange(1, matrix.shape[1] + 1, dtype=np.int64),
    )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.perf_counter()
    dataset = DatasetRef(id=0, name=Path(matrix_path).stem, fingerprint="benchmark")
    model = train(name, dataset, training, params, progress=lambda _p: None)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = usage.ru_utime + usage.ru_stime - cpu_before
    if save:
        save_model(model, Path(save))
    out.send(
        {"seconds": seconds, "cpu_s": cpu_seconds, "peak_mb": peak_rss_mb(), "loaded_mb": before}
    )


def run(name: str, matrix_path: Path, params: dict[str, Any], save: str | None) -> dict[str, Any]:
    context = mp.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=_train_child, args=(name, str(matrix_path), params, save, child)
    )
    process.start()
    process.join()
    if process.exitcode != 0:
        return {"error": f"exit code {process.exitcode}"}
    return dict(parent.recv())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--dataset", choices=["small", "synthetic-32m"], default="small")
    parser.add_argument("--implementations", default="popularity,als,bpr,item-knn")
    parser.add_argument("--save", default=None, help="Also save the models under this directory.")
    parser.add_argument(
        "--matrix-cache",
        default=None,
        help="Keep the matrix in this .npz and reuse it (recommender_latency.py does).",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    cache = Path(args.matrix_cache) if args.matrix_cache else None
    if cache is not None and cache.is_file():
        matrix = sp.load_npz(cache).tocsr()
    else:
        matrix = small_matrix() if args.dataset == "small" else synthetic_matrix()
        if cache is not None:
            sp.save_npz(cache, matrix, compressed=False)
    built = time.perf_counter() - started
    counts = np.diff(matrix.indptr)
    items = np.bincount(matrix.indices, minlength=matrix.shape[1])
    print(
        f"{args.dataset}: {matrix.shape[0]:,} users × {matrix.shape[1]:,} movies, "
        f"{matrix.nnz:,} ratings (built in {built:.1f}s); ratings per user median "
        f"{int(np.median(counts))}, max {counts.max():,}; top 1% of movies hold "
        f"{np.sort(items)[::-1][: max(1, items.size // 100)].sum() / matrix.nnz:.0%} of ratings",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"{args.dataset}.npz"
        sp.save_npz(path, matrix, compressed=False)
        del matrix
        print(
            f"{'implementation':<16}{'train s':>10}{'CPU s':>10}{'peak RSS MB':>14}"
            f"{'data loaded MB':>16}"
        )
        for name in args.implementations.split(","):
            result = run(name, path, {}, args.save)
            if "error" in result:
                print(f"{name:<16}{result['error']}", flush=True)
                continue
            print(
                f"{name:<16}{result['seconds']:>10.1f}{result.get('cpu_s', 0):>10.1f}"
                f"{result['peak_mb']:>14.0f}"
                f"{result['loaded_mb']:>16.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
