"""Cold-start top-30 latency at MovieLens-32M size, in-process and over HTTP.

    uv run python benchmarks/recommender_train.py --dataset synthetic-32m \\
        --save /tmp/prefshift-models --matrix-cache /tmp/synthetic-32m.npz
    uv run python benchmarks/recommender_latency.py --models /tmp/prefshift-models

A request is a persona's 40-movie history (movies drawn by popularity, as real histories are)
and ``n=30``; no refit. In-process times ``TrainedModel.recommend`` (fold-in, scoring 87,000
movies, top-30 without seen or excluded). Over HTTP, the real service (uvicorn on loopback,
SQLite database holding the synthetic catalogue) answers ``POST /recommendations``; ``GET
/healthz`` and ``popularity`` are the baselines of the same run (the cost of HTTP itself and of a
model that does no work). Goals: p99 under 20 ms in-process, under 50 ms over HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

DATASET = "synthetic-32m"
FINGERPRINT = "benchmark"


def percentiles(samples: list[float]) -> str:
    values = np.asarray(samples) * 1000
    return (
        f"p50 {np.percentile(values, 50):6.2f} ms   p99 {np.percentile(values, 99):6.2f} ms   "
        f"max {values.max():6.2f} ms   (n={values.size})"
    )


def histories(item_counts: np.ndarray, count: int, size: int = 40, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    weights = item_counts / item_counts.sum()
    result = []
    for _ in range(count):
        items = rng.choice(item_counts.size, size=size, replace=False, p=weights) + 1
        ratings = rng.choice(np.arange(1, 11) / 2, size=size)
        result.append({int(i): float(r) for i, r in zip(items, ratings, strict=True)})
    return result


def in_process(models_root: Path, names: list[str], requests: int) -> None:
    from prefshift_recommender.algorithms import limit_blas_threads
    from prefshift_recommender.artifacts import load_latest
    from prefshift_recommender.repository import DatasetRef

    limit_blas_threads()
    dataset = DatasetRef(id=0, name=DATASET, fingerprint=FINGERPRINT)
    print("in-process, cold start, top-30 from a 40-movie history:")
    for name in names:
        model = load_latest(models_root, dataset, name)
        if model is None:
            print(f"  {name:<12} no saved model under {models_root}")
            continue
        samples = []
        for history in histories(model.item_counts, requests + 20):
            started = time.perf_counter()
            page = model.recommend(history, n=30, exclude=[])
            samples.append(time.perf_counter() - started)
            assert len(page.tmdb_ids) == 30 and not set(page.tmdb_ids) & set(history)
        print(f"  {name:<12} {percentiles(samples[20:])}")


def _catalogue_database(path: Path, n_items: int) -> str:
    """A migrated SQLite database with the synthetic dataset's movies (no ratings needed)."""
    from sqlalchemy import insert

    from prefshift import migrate
    from prefshift_common.db import create_sync_db_engine
    from prefshift_datasets.models import Dataset, Movie

    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    engine = create_sync_db_engine(url)
    with engine.begin() as connection:
        connection.execute(
            insert(Dataset).values(
                id=1,
                name=DATASET,
                source="benchmarks/recommender_train.py",
                fingerprint=FINGERPRINT,
                n_users=200_000,
                n_movies=n_items,
                n_ratings=32_000_000,
                has_tmdb_metadata=False,
            )
        )
        connection.execute(
            insert(Movie),
            [
                {
                    "dataset_id": 1,
                    "movielens_id": i,
                    "tmdb_id": i,
                    "title": f"Synthetic Movie {i} ({1950 + i % 70})",
                    "year": 1950 + i % 70,
                    "genres": "Drama",
                }
                for i in range(1, n_items + 1)
            ],
        )
    engine.dispose()
    return url


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def over_http(models_root: Path, names: list[str], requests: int) -> None:
    import uvicorn

    from prefshift_recommender.artifacts import load_latest
    from prefshift_recommender.config import Settings
    from prefshift_recommender.main import create_app
    from prefshift_recommender.repository import DatasetRef

    probe = load_latest(models_root, DatasetRef(0, DATASET, FINGERPRINT), "popularity")
    if probe is None:
        print("over HTTP: needs the popularity model too (run recommender_train.py first)")
        return
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        (data_dir / "models").symlink_to(models_root.resolve())
        url = _catalogue_database(data_dir / "bench.db", int(probe.item_ids.size))
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=url,
            data_dir=data_dir,
            recommender_autotrain="",
            openai_api_key=None,
            openai_base_url=None,
            api_token=None,
            log_level="WARNING",
        )
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        started = time.perf_counter()
        thread.start()
        while not server.started:
            time.sleep(0.05)
        startup = time.perf_counter() - started
        print(f"over HTTP (uvicorn on loopback; models loaded from disk in {startup:.1f}s):")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            samples = []
            for _ in range(requests + 20):
                begun = time.perf_counter()
                client.get("/healthz").raise_for_status()
                samples.append(time.perf_counter() - begun)
            print(f"  {'GET /healthz':<12} {percentiles(samples[20:])}")
            for name in ["popularity", *[n for n in names if n != "popularity"]]:
                samples = []
                for history in histories(probe.item_counts, requests + 20, seed=1):
                    body = {
                        "recommender": name,
                        "history": [{"tmdb_id": i, "rating": r} for i, r in history.items()],
                        "n": 30,
                    }
                    begun = time.perf_counter()
                    response = client.post("/recommendations", json=body)
                    samples.append(time.perf_counter() - begun)
                    if response.status_code != 200:
                        print(f"  {name:<12} {response.status_code} {response.text[:200]}")
                        break
                else:
                    print(f"  {name:<12} {percentiles(samples[20:])}")
        server.should_exit = True
        thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--models", required=True, help="--save directory of recommender_train.py")
    parser.add_argument("--implementations", default="popularity,als,bpr,item-knn")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    names = args.implementations.split(",")
    in_process(Path(args.models), names, args.requests)
    over_http(Path(args.models), names, args.requests)


if __name__ == "__main__":
    main()
