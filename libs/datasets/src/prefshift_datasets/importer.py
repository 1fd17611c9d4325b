"""Import a dataset (MovieLens folder or zip, the seed study's per-user files, or both) into the
database, in one transaction, streaming the ratings.

>>> import_dataset("sqlite:///prefshift.db", Path("../shared/data/ml-latest-small"))
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from psycopg.errors import UniqueViolation
from sqlalchemy import Connection, bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from prefshift_common.db import create_sync_db_engine
from prefshift_datasets.errors import (
    DatasetConflictError,
    DatasetError,
    DatasetLayoutError,
    MalformedFileError,
)
from prefshift_datasets.models import Dataset, DatasetUser, Movie, Rating
from prefshift_datasets.parsing import (
    MovieRow,
    RatingsChunk,
    read_archetypes,
    read_links,
    read_movies,
    read_per_user_file,
    read_ratings,
)
from prefshift_datasets.sources import DatasetSource, default_name, open_source
from prefshift_datasets.writers import PostgresCopyWriter, ratings_writer

log = structlog.get_logger()

DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MOVIE_BATCH = 5_000


@dataclass(frozen=True)
class ImportProgress:
    """Where an import is: ``stage`` is fingerprint, movies, ratings, users or done."""

    stage: str
    done: int
    total: int | None
    unit: str  # "bytes", "files" or "rows"


ProgressCallback = Callable[[ImportProgress], None]


@dataclass(frozen=True)
class ImportResult:
    """What an import did. ``created`` is False when the same content was already imported."""

    dataset_id: int
    name: str
    n_ratings: int
    n_movies: int
    n_users: int
    fingerprint: str
    created: bool
    replaced: bool
    seconds: float


def validate_name(name: str) -> str:
    """A dataset name: letters, digits, ``.``, ``_`` and ``-``, at most 64 characters."""
    if not DATASET_NAME.match(name):
        raise DatasetError(
            f"invalid dataset name {name!r}: use letters, digits, '.', '_' and '-' (at most 64)"
        )
    return name


def import_dataset(
    database_url: str,
    path: Path | str,
    name: str | None = None,
    progress: ProgressCallback | None = None,
    *,
    replace: bool = False,
    chunk_rows: int = 1_000_000,
) -> ImportResult:
    """Import the dataset at ``path`` under ``name`` (default: the folder name or zip stem).

    Idempotent: the same content under the same name changes nothing. Different content under
    an existing name raises :class:`DatasetConflictError` unless ``replace``. Any malformed file
    raises :class:`MalformedFileError` (file and line) and leaves the database as it was.
    """
    started = time.perf_counter()
    path = Path(path)
    source = open_source(path)
    name = validate_name(default_name(path) if name is None else name)
    report = progress or (lambda _progress: None)
    report(ImportProgress("fingerprint", 0, len(source.used_files()), "files"))
    fingerprint = source.fingerprint()
    report(
        ImportProgress("fingerprint", len(source.used_files()), len(source.used_files()), "files")
    )
    engine = create_sync_db_engine(database_url)
    try:
        with engine.begin() as connection:
            existing = connection.execute(
                select(Dataset.id, Dataset.fingerprint).where(Dataset.name == name)
            ).one_or_none()
            if existing is not None and existing.fingerprint == fingerprint:
                log.info("dataset unchanged", dataset=name)
                counts = _counts(connection, existing.id)
                report(ImportProgress("done", counts[0], counts[0], "rows"))
                return ImportResult(
                    dataset_id=existing.id,
                    name=name,
                    n_ratings=counts[0],
                    n_movies=counts[1],
                    n_users=counts[2],
                    fingerprint=fingerprint,
                    created=False,
                    replaced=False,
                    seconds=time.perf_counter() - started,
                )
            if existing is not None and not replace:
                raise DatasetConflictError(
                    f"a dataset named {name!r} exists with different content; "
                    "import under another name or replace it"
                )
            if existing is not None:
                _delete_dataset(connection, existing.id)
            dataset_id = _load(connection, source, name, path, fingerprint, report, chunk_rows)
            n_ratings, n_movies, n_users = _counts(connection, dataset_id)
        if engine.dialect.name == "postgresql":
            with engine.connect() as connection:
                # fresh statistics so the planner sees the new rows at once
                connection.execute(text("ANALYZE ratings, movies, dataset_users"))
                connection.commit()
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    log.info("dataset imported", dataset=name, ratings=n_ratings, seconds=round(seconds, 2))
    report(ImportProgress("done", n_ratings, n_ratings, "rows"))
    return ImportResult(
        dataset_id=dataset_id,
        name=name,
        n_ratings=n_ratings,
        n_movies=n_movies,
        n_users=n_users,
        fingerprint=fingerprint,
        created=True,
        replaced=existing is not None,
        seconds=seconds,
    )


def _counts(connection: Connection, dataset_id: int) -> tuple[int, int, int]:
    row = connection.execute(
        select(Dataset.n_ratings, Dataset.n_movies, Dataset.n_users).where(Dataset.id == dataset_id)
    ).one()
    return int(row.n_ratings), int(row.n_movies), int(row.n_users)


def _delete_dataset(connection: Connection, dataset_id: int) -> None:
    # ratings has no foreign key (and so no cascade): delete them explicitly
    for table in (Rating, DatasetUser, Movie):
        connection.execute(delete(table).where(table.dataset_id == dataset_id))
    connection.execute(delete(Dataset).where(Dataset.id == dataset_id))


def _load(
    connection: Connection,
    source: DatasetSource,
    name: str,
    path: Path,
    fingerprint: str,
    report: ProgressCallback,
    chunk_rows: int,
) -> int:
    if not source.has_movielens and not source.per_user_files:
        raise DatasetLayoutError(f"{path}: no ratings.csv/movies.csv and no per-user files")
    dataset_id: int = connection.execute(
        insert(Dataset)
        .values(
            name=name,
            source=str(path.resolve()),
            fingerprint=fingerprint,
            n_users=0,
            n_movies=0,
            n_ratings=0,
            has_tmdb_metadata=False,
        )
        .returning(Dataset.id)
    ).scalar_one()

    movies: dict[int, MovieRow] = {}
    if source.has_movielens:
        with source.open("movies.csv") as stream:
            movies = read_movies(stream, "movies.csv")
        if source.has("links.csv"):
            with source.open("links.csv") as stream:
                read_links(stream, "links.csv", movies)
    per_user_ratings = _read_per_user_files(source, movies, report)
    _insert_movies(connection, dataset_id, movies)
    report(ImportProgress("movies", len(movies), len(movies), "rows"))

    known = np.fromiter(movies.keys(), dtype=np.int32, count=len(movies))
    known.sort()
    if source.has_movielens:
        _load_ratings_csv(connection, source, dataset_id, known, report, chunk_rows)
    else:
        _load_per_user_ratings(connection, dataset_id, per_user_ratings)

    _fill_users(connection, dataset_id)
    if source.has("archetypes.csv"):
        with source.open("archetypes.csv") as stream:
            archetypes = read_archetypes(stream, "archetypes.csv")
        _set_archetypes(connection, dataset_id, archetypes)

    n_ratings, n_users = connection.execute(
        text(
            "SELECT COUNT(*), COUNT(DISTINCT user_id) FROM ratings WHERE dataset_id = :dataset_id"
        ),
        {"dataset_id": dataset_id},
    ).one()
    if not n_ratings:
        file = "ratings.csv" if source.has_movielens else "the per-user files"
        raise MalformedFileError(file, None, "no ratings (a header only?); nothing imported")
    has_tmdb = any(movie.overview is not None for movie in movies.values())
    connection.execute(
        update(Dataset)
        .where(Dataset.id == dataset_id)
        .values(
            n_ratings=n_ratings,
            n_users=n_users,
            n_movies=len(movies),
            has_tmdb_metadata=has_tmdb,
        )
    )
    return dataset_id


def _read_per_user_files(
    source: DatasetSource, movies: dict[int, MovieRow], report: ProgressCallback
) -> dict[int, list[tuple[int, float]]]:
    """Merge the per-user files' movies (with TMDB fields) into ``movies``; return their ratings."""
    ratings: dict[int, list[tuple[int, float]]] = {}
    total = len(source.per_user_files)
    for done, per_user in enumerate(source.per_user_files, start=1):
        with source.open(per_user.relative_path) as stream:
            rows = read_per_user_file(stream, per_user.relative_path)
        ratings[per_user.user_id] = rows.ratings
        for movie in rows.movies:
            known = movies.get(movie.movielens_id)
            if known is None:
                movies[movie.movielens_id] = movie
            elif known.overview is None:
                _enrich(known, movie)
        report(ImportProgress("per-user files", done, total, "files"))
    return ratings


def _enrich(movie: MovieRow, enriched: MovieRow) -> None:
    movie.tmdb_id = movie.tmdb_id if movie.tmdb_id is not None else enriched.tmdb_id
    movie.imdb_id = movie.imdb_id or enriched.imdb_id
    movie.overview = enriched.overview
    movie.tmdb_genres = enriched.tmdb_genres
    movie.tmdb_vote_average = enriched.tmdb_vote_average
    movie.tmdb_vote_count = enriched.tmdb_vote_count


def _insert_movies(connection: Connection, dataset_id: int, movies: dict[int, MovieRow]) -> None:
    rows = [
        {
            "dataset_id": dataset_id,
            "movielens_id": movie.movielens_id,
            "tmdb_id": movie.tmdb_id,
            "imdb_id": movie.imdb_id,
            "title": movie.title,
            "year": movie.year,
            "genres": movie.genres,
            "overview": movie.overview,
            "tmdb_genres": movie.tmdb_genres,
            "tmdb_vote_average": movie.tmdb_vote_average,
            "tmdb_vote_count": movie.tmdb_vote_count,
        }
        for movie in movies.values()
    ]
    for start in range(0, len(rows), _MOVIE_BATCH):
        connection.execute(insert(Movie), rows[start : start + _MOVIE_BATCH])


def _load_ratings_csv(
    connection: Connection,
    source: DatasetSource,
    dataset_id: int,
    known_movies: np.ndarray[Any, np.dtype[np.int32]],
    report: ProgressCallback,
    chunk_rows: int,
) -> None:
    file = "ratings.csv"
    total = source.size(file)
    read = 0

    def on_read(size: int) -> None:
        nonlocal read
        read += size
        report(ImportProgress("ratings", min(read, total), total, "bytes"))

    writer = None
    try:
        with source.open(file) as stream:
            for chunk in read_ratings(stream, file, chunk_rows=chunk_rows, on_read=on_read):
                _check_movies_known(chunk, known_movies, file)
                if writer is None:
                    writer = ratings_writer(
                        connection, dataset_id, with_timestamp=chunk.timestamp is not None
                    )
                writer.write(chunk)
        if writer is not None:
            writer.close()
    except BaseException as error:
        if isinstance(writer, PostgresCopyWriter):
            writer.abort(error)
        if isinstance(error, IntegrityError | sqlite3.IntegrityError | UniqueViolation):
            detail = str(error).splitlines()[0]
            raise MalformedFileError(
                file, None, f"a user rates a movie twice ({detail})"
            ) from error
        raise


def _check_movies_known(
    chunk: RatingsChunk, known_movies: np.ndarray[Any, np.dtype[np.int32]], file: str
) -> None:
    positions = np.searchsorted(known_movies, chunk.movielens_id)
    positions[positions >= len(known_movies)] = 0
    unknown = known_movies[positions] != chunk.movielens_id if len(known_movies) else None
    if unknown is None or unknown.any():
        index = int(np.argmax(unknown)) if unknown is not None else 0
        raise MalformedFileError(
            file,
            int(chunk.lines[index]),
            f"movieId {int(chunk.movielens_id[index])} is not in movies.csv",
        )


def _load_per_user_ratings(
    connection: Connection, dataset_id: int, ratings: dict[int, list[tuple[int, float]]]
) -> None:
    n = sum(len(rows) for rows in ratings.values())
    users = np.empty(n, dtype=np.int32)
    movies = np.empty(n, dtype=np.int32)
    values = np.empty(n, dtype=np.float32)
    position = 0
    for user_id, rows in ratings.items():
        end = position + len(rows)
        users[position:end] = user_id
        movies[position:end] = [movie for movie, _ in rows]
        values[position:end] = [rating for _, rating in rows]
        position = end
    chunk = RatingsChunk(
        user_id=users,
        movielens_id=movies,
        rating=values,
        timestamp=None,
        lines=np.zeros(n, dtype=np.int64),
    )
    writer = ratings_writer(connection, dataset_id, with_timestamp=False)
    writer.write(chunk)
    writer.close()


def _fill_users(connection: Connection, dataset_id: int) -> None:
    connection.execute(
        text(
            "INSERT INTO dataset_users (dataset_id, user_id, n_ratings, mean_rating) "
            "SELECT dataset_id, user_id, COUNT(*), AVG(rating) FROM ratings "
            "WHERE dataset_id = :dataset_id GROUP BY dataset_id, user_id"
        ),
        {"dataset_id": dataset_id},
    )


def _set_archetypes(connection: Connection, dataset_id: int, archetypes: dict[int, str]) -> None:
    if not archetypes:
        return
    connection.execute(
        update(DatasetUser)
        .where(DatasetUser.dataset_id == dataset_id)
        .where(DatasetUser.user_id == bindparam("b_user_id"))
        .values(archetype=bindparam("b_archetype")),
        [{"b_user_id": user, "b_archetype": archetype} for user, archetype in archetypes.items()],
    )
