"""Bulk writers of ratings: binary COPY on Postgres, batched executemany on SQLite.

Both write inside the caller's transaction, so a failed import leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Connection

from prefshift_datasets.parsing import RatingsChunk

_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_PGCOPY_TRAILER = b"\xff\xff"
_SQLITE_BATCH = 50_000


class RatingsWriter(Protocol):
    """Writes chunks of ratings of one dataset inside the current transaction."""

    def write(self, chunk: RatingsChunk) -> None: ...

    def close(self) -> None: ...


def ratings_writer(
    connection: Connection, dataset_id: int, *, with_timestamp: bool
) -> RatingsWriter:
    """The fastest writer the connection's database offers."""
    if connection.dialect.name == "postgresql":
        return PostgresCopyWriter(connection, dataset_id, with_timestamp=with_timestamp)
    return SqliteBatchWriter(connection, dataset_id, with_timestamp=with_timestamp)


class PostgresCopyWriter:
    """``COPY ratings … FROM STDIN (FORMAT BINARY)``; rows are packed by numpy, not Python."""

    def __init__(self, connection: Connection, dataset_id: int, *, with_timestamp: bool) -> None:
        self._dataset_id = dataset_id
        self._with_timestamp = with_timestamp
        columns = "dataset_id, user_id, movielens_id, rating"
        if with_timestamp:
            columns += ", timestamp"
        driver: Any = connection.connection.driver_connection
        self._cursor = driver.cursor()
        self._copy_context = self._cursor.copy(
            f"COPY ratings ({columns}) FROM STDIN (FORMAT BINARY)"
        )
        self._copy = self._copy_context.__enter__()
        self._closed = False
        self._copy.write(_PGCOPY_HEADER)
        fields: list[tuple[str, str]] = [
            ("n", ">i2"),
            ("l_dataset", ">i4"),
            ("dataset_id", ">i4"),
            ("l_user", ">i4"),
            ("user_id", ">i4"),
            ("l_movie", ">i4"),
            ("movielens_id", ">i4"),
            ("l_rating", ">i4"),
            ("rating", ">f4"),
        ]
        if with_timestamp:
            fields += [("l_timestamp", ">i4"), ("timestamp", ">i8")]
        self._dtype = np.dtype(fields)

    def write(self, chunk: RatingsChunk) -> None:
        rows = np.empty(len(chunk), dtype=self._dtype)
        rows["n"] = 5 if self._with_timestamp else 4
        rows["l_dataset"] = rows["l_user"] = rows["l_movie"] = rows["l_rating"] = 4
        rows["dataset_id"] = self._dataset_id
        rows["user_id"] = chunk.user_id
        rows["movielens_id"] = chunk.movielens_id
        rows["rating"] = chunk.rating
        if self._with_timestamp:
            assert chunk.timestamp is not None
            rows["l_timestamp"] = 8
            rows["timestamp"] = chunk.timestamp
        self._copy.write(rows.tobytes())

    def close(self) -> None:
        self._closed = True
        self._copy.write(_PGCOPY_TRAILER)
        try:
            self._copy_context.__exit__(None, None, None)
        finally:
            self._cursor.close()

    def abort(self, error: BaseException) -> None:
        """End a COPY that failed half-way (the transaction is then rolled back)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._copy_context.__exit__(type(error), error, error.__traceback__)
        finally:
            self._cursor.close()


class SqliteBatchWriter:
    """``executemany`` in batches of Python tuples made from one chunk at a time."""

    def __init__(self, connection: Connection, dataset_id: int, *, with_timestamp: bool) -> None:
        self._connection = connection
        self._dataset_id = dataset_id
        self._with_timestamp = with_timestamp
        if with_timestamp:
            self._sql = (
                "INSERT INTO ratings (dataset_id, user_id, movielens_id, rating, timestamp) "
                "VALUES (?, ?, ?, ?, ?)"
            )
        else:
            self._sql = (
                "INSERT INTO ratings (dataset_id, user_id, movielens_id, rating) "
                "VALUES (?, ?, ?, ?)"
            )

    def write(self, chunk: RatingsChunk) -> None:
        cursor: Any = self._connection.connection.cursor()
        try:
            for start in range(0, len(chunk), _SQLITE_BATCH):
                cursor.executemany(self._sql, self._rows(chunk, start, start + _SQLITE_BATCH))
        finally:
            cursor.close()

    def _rows(self, chunk: RatingsChunk, start: int, stop: int) -> Iterator[tuple[Any, ...]]:
        users = chunk.user_id[start:stop].tolist()
        movies = chunk.movielens_id[start:stop].tolist()
        ratings = chunk.rating[start:stop].astype(np.float64).tolist()
        dataset = [self._dataset_id] * len(users)
        if self._with_timestamp:
            assert chunk.timestamp is not None
            stamps = chunk.timestamp[start:stop].tolist()
            return zip(dataset, users, movies, ratings, stamps, strict=True)
        return zip(dataset, users, movies, ratings, strict=True)

    def close(self) -> None:
        return None
