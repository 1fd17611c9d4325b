"""Dataset import benchmarks: ml-latest-small on SQLite and Postgres, and an ml-32m-sized file.

    uv run python benchmarks/datasets_import.py                      # everything, 32M ratings
    uv run python benchmarks/datasets_import.py --ratings 2000000     # smaller synthetic set
    uv run python benchmarks/datasets_import.py --skip-sqlite-large  # 32M on Postgres only

Every measured step runs in a child process of its own, so its peak memory (RSS high-water
mark, ``getrusage``) is its own. The baseline, measured in the same run on the same file, is
``pandas.read_csv`` of the whole ratings.csv (what a naive import would start with). Postgres's
own server memory is not counted: only the importing process.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ML32M_USERS = 200_948
ML32M_MOVIES = 87_585
ML32M_RATINGS = 32_000_204
GENRES = [
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- synthetic ml-32m -----------------------------------------------------------------------


def generate(folder: Path, n_ratings: int, seed: int = 7) -> dict[str, int]:
    """Write ``folder/ml-32m/{ratings,movies,links}.csv`` shaped like ml-32m, in blocks.

    Users and movies scale with ``n_ratings`` (200k users, 87k movies at 32M). Movie popularity
    is long-tailed (Zipf-like, exponent 0.9); user activity is log-normal with a floor of 20,
    as in MovieLens. Rows are sorted by user then movie, as GroupLens ships them.
    """
    rng = np.random.default_rng(seed)
    scale = n_ratings / ML32M_RATINGS
    n_users = max(100, int(ML32M_USERS * scale))
    n_movies = max(1_000, min(ML32M_MOVIES, int(ML32M_MOVIES * max(scale, 0.05))))
    root = folder / "ml-32m"
    root.mkdir(parents=True, exist_ok=True)

    movie_ids = np.sort(rng.choice(np.arange(1, n_movies * 3), size=n_movies, replace=False))
    years = rng.integers(1920, 2024, size=n_movies)
    genres = [
        "|".join(rng.choice(GENRES, size=rng.integers(1, 4), replace=False))
        for _ in range(n_movies)
    ]
    pd.DataFrame(
        {
            "movieId": movie_ids,
            "title": [f"Synthetic Movie {i} ({y})" for i, y in zip(movie_ids, years, strict=True)],
            "genres": genres,
        }
    ).to_csv(root / "movies.csv", index=False)
    tmdb = pd.array(rng.permutation(n_movies * 2)[:n_movies] + 1, dtype="Int64")
    tmdb[rng.random(n_movies) < 0.001] = pd.NA  # a few movies without a TMDB id, as in ml-32m
    pd.DataFrame(
        {
            "movieId": movie_ids,
            "imdbId": [f"{i:07d}" for i in rng.integers(1, 9_999_999, size=n_movies)],
            "tmdbId": tmdb,
        }
    ).to_csv(root / "links.csv", index=False)

    # long-tailed popularity over a random order of the movies
    weights = 1.0 / np.power(np.arange(1, n_movies + 1) + 10.0, 0.9)
    cumulative = np.cumsum(weights[rng.permutation(n_movies)])
    cumulative /= cumulative[-1]
    activity = rng.lognormal(mean=0.0, sigma=1.1, size=n_users)
    per_user = np.maximum(20, np.round(activity / activity.sum() * n_ratings * 1.02)).astype(
        np.int64
    )
    per_user = np.minimum(per_user, n_movies // 2)
    per_user = np.maximum(1, np.round(per_user * n_ratings / per_user.sum())).astype(np.int64)

    written = 0
    asked = 0
    block_users = 5_000
    with (root / "ratings.csv").open("w") as out:
        out.write("userId,movieId,rating,timestamp\n")
        for start in range(0, n_users, block_users):
            # repeated picks of a popular movie collapse into one rating: ask for more, by the
            # loss seen so far, so that the total lands on n_ratings
            oversample = asked / written if written else 1.05
            counts = per_user[start : start + block_users]
            counts = np.minimum(np.round(counts * oversample), n_movies // 2).astype(np.int64)
            asked += int(counts.sum())
            users = np.repeat(np.arange(start + 1, start + 1 + len(counts)), counts)
            picks = np.searchsorted(cumulative, rng.random(len(users)), side="right")
            picks = np.minimum(picks, n_movies - 1)
            keys = np.unique(users.astype(np.int64) * n_movies * 4 + movie_ids[picks])
            user_col = keys // (n_movies * 4)
            movie_col = keys % (n_movies * 4)
            rating = np.clip(np.round(rng.normal(3.6, 1.0, size=len(keys)) * 2) / 2, 0.5, 5.0)
            stamp = rng.integers(820_000_000, 1_700_000_000, size=len(keys))
            pd.DataFrame(
                {"userId": user_col, "movieId": movie_col, "rating": rating, "timestamp": stamp}
            ).to_csv(out, header=False, index=False)
            written += len(keys)
    return {"users": n_users, "movies": n_movies, "ratings": written}


# --- children -----------------------------------------------------------------------------------


def child_import(url: str, path: str, name: str) -> dict[str, float]:
    from prefshift_datasets.importer import import_dataset

    started = time.perf_counter()
    result = import_dataset(url, Path(path), name=name)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "ratings": result.n_ratings, "peak_rss_mb": peak_rss_mb()}


def child_pandas(path: str) -> dict[str, float]:
    started = time.perf_counter()
    frame = pd.read_csv(Path(path) / "ml-32m" / "ratings.csv")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "ratings": len(frame), "peak_rss_mb": peak_rss_mb()}


def child_load(url: str, name: str) -> dict[str, float]:
    from prefshift_common.db import create_sync_db_engine
    from prefshift_datasets import repository

    engine = create_sync_db_engine(url)
    started = time.perf_counter()
    with engine.connect() as connection:
        dataset = repository.get_dataset(connection, name)
        frame = repository.load_ratings(connection, dataset.id)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "ratings": len(frame), "peak_rss_mb": peak_rss_mb()}


def run_child(*args: str) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    result: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


# --- databases --------------------------------------------------------------------------------


class Databases:
    """Fresh migrated databases for each measurement; Postgres ones are dropped afterwards."""

    def __init__(self, workdir: Path, postgres_url: str | None) -> None:
        self.workdir = workdir
        self.postgres_url = postgres_url
        self.created: list[str] = []

    def new(self, kind: str) -> str:
        from prefshift import migrate

        name = f"prefshift_bench_{uuid.uuid4().hex[:10]}"
        if kind == "sqlite":
            url = f"sqlite:///{self.workdir / name}.db"
        else:
            url = self._create_postgres(name)
        migrate.upgrade(url)
        return url

    def _create_postgres(self, name: str) -> str:
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        from prefshift_common.db import create_sync_db_engine

        assert self.postgres_url is not None
        admin = create_sync_db_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = make_url(self.postgres_url).set(database=name).render_as_string(hide_password=False)
        self.created.append(url)
        return url

    def drop(self) -> None:
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        from prefshift_common.db import create_sync_db_engine

        if not self.created or self.postgres_url is None:
            return
        admin = create_sync_db_engine(self.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for url in self.created:
                name = make_url(url).database
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_reachable(url: str) -> bool:
    from sqlalchemy import text

    from prefshift_common.db import create_sync_db_engine

    try:
        engine = create_sync_db_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def line(label: str, figures: dict[str, float]) -> str:
    rate = figures["ratings"] / figures["seconds"] if figures["seconds"] else float("nan")
    return (
        f"  {label:<34} {figures['seconds']:8.2f} s  {rate:>12,.0f} ratings/s  "
        f"peak RSS {figures['peak_rss_mb']:7.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--ratings", type=int, default=ML32M_RATINGS, help="synthetic ratings")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--skip-small", action="store_true")
    parser.add_argument("--skip-sqlite-large", action="store_true")
    parser.add_argument("--skip-postgres-large", action="store_true")
    parser.add_argument("--read-back", action="store_true", help="also time load_ratings")
    parser.add_argument("--workdir", type=Path, default=None, help="keep files here")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse a synthetic dataset already in --workdir"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, *rest = args.child
        figures = {"import": child_import, "pandas": child_pandas, "load": child_load}[kind](*rest)
        print(json.dumps(figures))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="prefshift-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    has_postgres = postgres_reachable(args.postgres_url)
    kinds = ["sqlite", "postgres"] if has_postgres else ["sqlite"]
    if not has_postgres:
        print(f"Postgres at {args.postgres_url} not reachable: SQLite only")
    databases = Databases(workdir, args.postgres_url if has_postgres else None)
    try:
        if not args.skip_small:
            print("ml-latest-small (100,836 ratings), import into a fresh migrated database:")
            for kind in kinds:
                url = databases.new(kind)
                figures = run_child(
                    "import", url, str(SHARED / "ml-latest-small"), "ml-latest-small"
                )
                print(line(kind, figures))

        print(f"synthetic ml-32m layout, {args.ratings:,} ratings requested:")
        started = time.perf_counter()
        data = workdir / "synthetic"
        ratings_csv = data / "ml-32m" / "ratings.csv"
        if args.reuse and ratings_csv.exists():
            print(f"  reusing {ratings_csv}")
        else:
            shape = generate(data, args.ratings)
            print(
                f"  generated {shape['ratings']:,} ratings, {shape['users']:,} users, "
                f"{shape['movies']:,} movies ({ratings_csv.stat().st_size / 1e9:.2f} GB "
                f"ratings.csv) in {time.perf_counter() - started:.0f} s"
            )
        print(line("baseline: pandas.read_csv (no DB)", run_child("pandas", str(data))))
        for kind in kinds:
            if (kind == "sqlite" and args.skip_sqlite_large) or (
                kind == "postgres" and args.skip_postgres_large
            ):
                continue
            url = databases.new(kind)
            figures = run_child("import", url, str(data), "synthetic")
            print(line(f"import into {kind}", figures))
            if args.read_back:
                print(line(f"load_ratings from {kind}", run_child("load", url, "synthetic")))
            if kind == "sqlite":
                Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    finally:
        databases.drop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
