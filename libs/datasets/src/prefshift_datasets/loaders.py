"""Synchronous reads of imported datasets for threads, CLIs and benchmarks: a dataset's ratings
as arrays (the one fast loader: primary-key order, binary COPY on Postgres, ``fetchmany`` blocks
on SQLite, never one Python object per rating), its movies and users as frames.

Each function takes a SQLAlchemy :class:`~sqlalchemy.Connection`
(``prefshift_common.db.sync_connection`` opens a short-lived one).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Connection, select

from prefshift_common.db import sync_connection
from prefshift_common.movies import split_movielens_genres
from prefshift_datasets.errors import DatasetNotFoundError
from prefshift_datasets.models import Dataset, DatasetUser, Movie
from prefshift_datasets.records import DatasetInfo, RatingArrays, dataset_info

_CHUNK_ROWS = 500_000


def get_dataset(connection: Connection, name: str) -> DatasetInfo:
    """The dataset called ``name``; raises :class:`DatasetNotFoundError` when none is."""
    row = connection.execute(select(Dataset.__table__).where(Dataset.name == name)).one_or_none()
    if row is None:
        raise DatasetNotFoundError(f"no dataset named {name!r} has been imported")
    return dataset_info(row)


def get_dataset_by_id(connection: Connection, dataset_id: int) -> DatasetInfo:
    """The dataset with this id; raises :class:`DatasetNotFoundError` when none has it."""
    row = connection.execute(
        select(Dataset.__table__).where(Dataset.id == dataset_id)
    ).one_or_none()
    if row is None:
        raise DatasetNotFoundError(f"no dataset with id {dataset_id}")
    return dataset_info(row)


def all_datasets(connection: Connection) -> list[DatasetInfo]:
    """Every imported dataset, by name."""
    rows = connection.execute(select(Dataset.__table__).order_by(Dataset.name)).all()
    return [dataset_info(row) for row in rows]


def get_all_datasets(database_url: str) -> list[DatasetInfo]:
    """Every imported dataset of the database at ``database_url`` (for CLIs)."""
    with sync_connection(database_url) as connection:
        return all_datasets(connection)


# In primary-key order, so neither database sorts or joins 32M rows; TMDB ids are mapped in numpy.
_RATINGS_IN_KEY_ORDER = (
    "SELECT user_id, movielens_id, rating FROM ratings WHERE dataset_id = {dataset_id} "
    "ORDER BY dataset_id, user_id, movielens_id"
)
# COPY … (FORMAT BINARY) rows of three non-null 4-byte columns: field count, (length, value)…
_COPY_ROW = np.dtype(
    [
        ("n", ">i2"),
        ("l_user", ">i4"),
        ("user_id", ">i4"),
        ("l_movie", ">i4"),
        ("movielens_id", ">i4"),
        ("l_rating", ">i4"),
        ("rating", ">f4"),
    ]
)
_COPY_HEADER_SIZE = 19
_COPY_BLOCK_BYTES = 4 << 20


class _RatingColumns:
    """Preallocated numpy columns, filled block by block with the rated movies' TMDB ids."""

    def __init__(
        self, capacity: int, movielens_ids: npt.NDArray[np.int64], tmdb_ids: npt.NDArray[np.int64]
    ) -> None:
        self.user_id = np.empty(capacity, dtype=np.int32)
        self.movielens_id = np.empty(capacity, dtype=np.int32)
        self.tmdb_id = np.empty(capacity, dtype=np.int32)
        self.rating = np.empty(capacity, dtype=np.float32)
        self.filled = 0
        self._movielens_ids = movielens_ids  # sorted; tmdb_ids[i] is theirs, -1 for none
        self._tmdb_ids = tmdb_ids

    def add(
        self,
        user_id: npt.NDArray[Any],
        movielens_id: npt.NDArray[Any],
        rating: npt.NDArray[Any],
    ) -> None:
        tmdb_id = np.full(len(movielens_id), -1, dtype=np.int64)
        if len(self._movielens_ids):
            position = np.searchsorted(self._movielens_ids, movielens_id)
            position = np.minimum(position, len(self._movielens_ids) - 1)
            found = self._movielens_ids[position] == movielens_id
            tmdb_id[found] = self._tmdb_ids[position[found]]
        keep = tmdb_id >= 0
        n = int(keep.sum())
        end = self.filled + n
        if end > len(self.user_id):  # more rows than the dataset row said: grow
            for name in ("user_id", "movielens_id", "tmdb_id", "rating"):
                column = getattr(self, name)
                setattr(self, name, np.resize(column, max(end, 2 * len(column))))
        self.user_id[self.filled : end] = user_id[keep]
        self.movielens_id[self.filled : end] = movielens_id[keep]
        self.tmdb_id[self.filled : end] = tmdb_id[keep]
        self.rating[self.filled : end] = rating[keep]
        self.filled = end

    def frame(self) -> pd.DataFrame:
        n = self.filled
        return pd.DataFrame(
            {
                "user_id": self.user_id[:n],
                "movielens_id": self.movielens_id[:n],
                "tmdb_id": self.tmdb_id[:n],
                "rating": self.rating[:n],
            },
            copy=False,
        )


def load_ratings(connection: Connection, dataset_id: int) -> pd.DataFrame:
    """All ratings of a dataset on movies that have a TMDB id.

    Columns ``user_id`` (int32), ``movielens_id`` (int32), ``tmdb_id`` (int32), ``rating``
    (float32), ordered by user then movie. Rows stream in primary-key order into preallocated
    numpy columns (binary COPY on Postgres, ``fetchmany`` blocks on SQLite), so ml-32m's 32
    million ratings take about 0.5 GB and never exist as Python objects all at once.
    """
    capacity = int(
        connection.execute(
            select(Dataset.n_ratings).where(Dataset.id == dataset_id)
        ).scalar_one_or_none()
        or 0
    )
    links = connection.execute(
        select(Movie.movielens_id, Movie.tmdb_id)
        .where(Movie.dataset_id == dataset_id, Movie.tmdb_id.is_not(None))
        .order_by(Movie.movielens_id)
    ).all()
    movielens_ids = np.array([link[0] for link in links], dtype=np.int64)
    tmdb_ids = np.array([link[1] for link in links], dtype=np.int64)
    columns = _RatingColumns(capacity, movielens_ids, tmdb_ids)
    sql = _RATINGS_IN_KEY_ORDER.format(dataset_id=int(dataset_id))
    driver: Any = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        _copy_ratings_out(driver, sql, columns)
    else:
        cursor = driver.cursor()
        try:
            cursor.execute(sql)
            while rows := cursor.fetchmany(_CHUNK_ROWS):
                block = np.array(rows, dtype=np.float64)
                columns.add(block[:, 0], block[:, 1], block[:, 2])
        finally:
            cursor.close()
    return columns.frame()


def _copy_ratings_out(driver: Any, sql: str, columns: _RatingColumns) -> None:
    # Postgres sends one message per row: gather ~4 MB before numpy parses a block of rows.
    pending = bytearray()
    size = _COPY_ROW.itemsize

    def parse() -> None:
        whole = len(pending) // size
        rows = np.frombuffer(bytes(pending[: whole * size]), dtype=_COPY_ROW)
        columns.add(rows["user_id"], rows["movielens_id"], rows["rating"])
        del pending[: whole * size]

    with driver.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)") as copy:
        header = bytearray()
        for data in copy:
            if len(header) < _COPY_HEADER_SIZE:
                header += data
                if len(header) < _COPY_HEADER_SIZE:
                    continue
                data = header[_COPY_HEADER_SIZE:]
            pending += data
            if len(pending) >= _COPY_BLOCK_BYTES:
                parse()
    if pending[-2:] != b"\xff\xff":
        raise RuntimeError("COPY output did not end with the binary trailer")
    del pending[-2:]
    parse()
    if pending:
        raise RuntimeError(f"{len(pending)} stray bytes at the end of COPY output")


def load_movies(connection: Connection, dataset_id: int) -> pd.DataFrame:
    """The movies of a dataset, one row each, ordered by MovieLens id.

    Columns: movielens_id, tmdb_id (nullable Int64), imdb_id, title, year (nullable Int64),
    genres (list of MovieLens genres), overview, tmdb_genres (list), tmdb_vote_average,
    tmdb_vote_count (nullable Int64).
    """
    rows = connection.execute(
        select(
            Movie.movielens_id,
            Movie.tmdb_id,
            Movie.imdb_id,
            Movie.title,
            Movie.year,
            Movie.genres,
            Movie.overview,
            Movie.tmdb_genres,
            Movie.tmdb_vote_average,
            Movie.tmdb_vote_count,
        )
        .where(Movie.dataset_id == dataset_id)
        .order_by(Movie.movielens_id)
    ).all()
    frame = pd.DataFrame(
        rows,
        columns=[
            "movielens_id",
            "tmdb_id",
            "imdb_id",
            "title",
            "year",
            "genres",
            "overview",
            "tmdb_genres",
            "tmdb_vote_average",
            "tmdb_vote_count",
        ],
    )
    frame["movielens_id"] = frame["movielens_id"].astype(np.int32)
    for column in ("tmdb_id", "year", "tmdb_vote_count"):
        frame[column] = frame[column].astype("Int64")
    frame["tmdb_vote_average"] = frame["tmdb_vote_average"].astype(np.float64)
    frame["genres"] = [list(split_movielens_genres(genres)) for genres in frame["genres"]]
    frame["tmdb_genres"] = [list(genres or ()) for genres in frame["tmdb_genres"]]
    return frame


def load_users(connection: Connection, dataset_id: int) -> pd.DataFrame:
    """The users of a dataset: user_id, n_ratings, mean_rating, archetype."""
    rows = connection.execute(
        select(
            DatasetUser.user_id,
            DatasetUser.n_ratings,
            DatasetUser.mean_rating,
            DatasetUser.archetype,
        )
        .where(DatasetUser.dataset_id == dataset_id)
        .order_by(DatasetUser.user_id)
    ).all()
    return pd.DataFrame(rows, columns=["user_id", "n_ratings", "mean_rating", "archetype"])


def load_rating_arrays(connection: Connection, dataset_id: int) -> RatingArrays:
    """Every rating of a movie with a TMDB id as :class:`RatingArrays` (see
    :func:`load_ratings`); what the recommender trains on and the embedded persona learns from."""
    return rating_arrays(load_ratings(connection, dataset_id))


def rating_arrays(frame: pd.DataFrame) -> RatingArrays:
    """:func:`load_ratings`' frame as :class:`RatingArrays` (for a caller that needs both)."""
    return RatingArrays(
        user_ids=frame["user_id"].to_numpy(np.int64),
        tmdb_ids=frame["tmdb_id"].to_numpy(np.int64),
        ratings=frame["rating"].to_numpy(np.float32),
    )
