"""How fast a dataset's ratings become arrays: the one loader the recommender and the simulator
share (``prefshift_datasets.loaders.load_rating_arrays``: primary-key order, binary COPY on
Postgres, ``fetchmany`` blocks on SQLite) beside, in the same run, the baseline of reading the
same rows through SQLAlchemy's ORM join in chunks of plain tuples (the simulator's former
loader).

    uv run python benchmarks/dataset_loader.py        # seed cohort, SQLite in a temp dir
    uv run python benchmarks/dataset_loader.py --dataset ml-latest-small \\
        --database-url postgresql://postgres@127.0.0.1:5432/bench_loader

The dataset (from ``../shared/data``) is imported into a fresh database first; each loader then
runs ``--repeat`` times and the best and median times are printed with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, and_, select

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def orm_tuples(connection: Connection, dataset_id: int) -> npt.NDArray[np.float64]:
    """The baseline: the ratings⋈movies join through the ORM, 500,000 rows at a time."""
    from prefshift_datasets.models import Movie, Rating

    query = (
        select(Rating.user_id, Movie.tmdb_id, Rating.rating)
        .join(
            Movie,
            and_(Movie.dataset_id == Rating.dataset_id, Movie.movielens_id == Rating.movielens_id),
        )
        .where(Rating.dataset_id == dataset_id, Movie.tmdb_id.is_not(None))
    )
    result = connection.execution_options(stream_results=True, yield_per=500_000).execute(query)
    blocks = [
        np.array([tuple(row) for row in part], dtype=np.float64) for part in result.partitions()
    ]
    return np.concatenate(blocks) if blocks else np.zeros((0, 3))


def timed(run: Callable[[], int], repeat: int) -> tuple[float, float, int]:
    seconds: list[float] = []
    rows = 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = run()
        seconds.append(time.perf_counter() - started)
    return min(seconds), statistics.median(seconds), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="seed-cohort", help="a folder of ../shared/data")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temp dir")
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()

    from prefshift import migrate
    from prefshift_common.db import sync_connection
    from prefshift_datasets.importer import import_dataset
    from prefshift_datasets.loaders import get_dataset, load_rating_arrays

    with tempfile.TemporaryDirectory() as workdir:
        url = options.database_url or f"sqlite:///{workdir}/loader.db"
        migrate.upgrade(url)
        import_dataset(url, SHARED / options.dataset, name=options.dataset)
        with sync_connection(url) as connection:
            dataset_id = get_dataset(connection, options.dataset).id
            shared = timed(
                lambda: len(load_rating_arrays(connection, dataset_id).ratings), options.repeat
            )
            baseline = timed(lambda: len(orm_tuples(connection, dataset_id)), options.repeat)
    load = os.getloadavg()
    print(f"{options.dataset} on {url.split(':')[0]}, best / median of {options.repeat}:")
    for name, (best, median, rows) in (
        ("load_rating_arrays (shared)", shared),
        ("ORM join, tuples (baseline)", baseline),
    ):
        print(f"  {name:30s} {best * 1000:8.1f} ms  {median * 1000:8.1f} ms  {rows:,} ratings")
    print(f"  speed-up over the baseline: {baseline[0] / shared[0]:.1f}x (best times)")
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
