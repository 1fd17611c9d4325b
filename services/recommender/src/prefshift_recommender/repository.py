"""Reads of imported datasets that the recommender needs (the dataset tables belong to
prefshift_datasets; this service never writes them).

Async queries serve requests; the synchronous ones run in the training thread and return NumPy
arrays rather than one Python object per rating, because ml-32m has 32 million of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_datasets.models import Dataset, DatasetUser, Movie, Rating


@dataclass(frozen=True)
class DatasetRef:
    """An imported dataset: its id, name and content fingerprint."""

    id: int
    name: str
    fingerprint: str


@dataclass(frozen=True)
class RatingArrays:
    """A dataset's ratings of movies with a TMDB id, as parallel arrays."""

    user_ids: NDArray[np.int64]
    tmdb_ids: NDArray[np.int64]
    ratings: NDArray[np.float32]


@dataclass(frozen=True)
class MovieRows:
    """A dataset's movies that have a TMDB id, with how often each was rated."""

    tmdb_ids: list[int]
    movielens_ids: list[int]
    titles: list[str]
    years: list[int | None]
    genres: list[list[str]]
    rating_counts: list[int]


def _ref(row: Dataset) -> DatasetRef:
    return DatasetRef(id=row.id, name=row.name, fingerprint=row.fingerprint)


async def list_datasets(session: AsyncSession) -> list[DatasetRef]:
    """Every imported dataset, by name."""
    rows = (await session.scalars(select(Dataset).order_by(Dataset.name))).all()
    return [_ref(row) for row in rows]


async def find_dataset(session: AsyncSession, name: str) -> DatasetRef | None:
    """The dataset of that name, if imported."""
    row = await session.scalar(select(Dataset).where(Dataset.name == name))
    return _ref(row) if row is not None else None


async def user_ratings(
    session: AsyncSession, dataset_id: int, user_id: int
) -> list[tuple[int, float]] | None:
    """A dataset user's ratings as (tmdb_id, rating); ``None`` when the user does not exist."""
    exists = await session.scalar(
        select(DatasetUser.user_id).where(
            DatasetUser.dataset_id == dataset_id, DatasetUser.user_id == user_id
        )
    )
    if exists is None:
        return None
    rows = await session.execute(
        select(Movie.tmdb_id, Rating.rating)
        .join(
            Movie,
            (Movie.dataset_id == Rating.dataset_id) & (Movie.movielens_id == Rating.movielens_id),
        )
        .where(
            Rating.dataset_id == dataset_id,
            Rating.user_id == user_id,
            Movie.tmdb_id.is_not(None),
        )
    )
    return [(int(tmdb_id or 0), float(rating)) for tmdb_id, rating in rows.all()]


def load_rating_arrays(connection: Connection, dataset_id: int) -> RatingArrays:
    """Every rating of a movie with a TMDB id (for training; runs in a worker thread)."""
    # MovieLens id → TMDB id in NumPy, so the ratings come back as three plain columns.
    links = connection.execute(
        select(Movie.movielens_id, Movie.tmdb_id).where(
            Movie.dataset_id == dataset_id, Movie.tmdb_id.is_not(None)
        )
    ).all()
    link_ml = np.fromiter((row[0] for row in links), dtype=np.int64, count=len(links))
    link_tmdb = np.fromiter((row[1] for row in links), dtype=np.int64, count=len(links))
    order = np.argsort(link_ml)
    link_ml, link_tmdb = link_ml[order], link_tmdb[order]

    users: list[NDArray[np.int64]] = []
    movies: list[NDArray[np.int64]] = []
    values: list[NDArray[np.float32]] = []
    result = connection.execution_options(yield_per=200_000).execute(
        select(Rating.user_id, Rating.movielens_id, Rating.rating).where(
            Rating.dataset_id == dataset_id
        )
    )
    for partition in result.partitions():
        columns = list(zip(*partition, strict=True))
        users.append(np.asarray(columns[0], dtype=np.int64))
        movies.append(np.asarray(columns[1], dtype=np.int64))
        values.append(np.asarray(columns[2], dtype=np.float32))
    if not users:
        empty = np.zeros(0, dtype=np.int64)
        return RatingArrays(empty, empty, np.zeros(0, dtype=np.float32))
    user_ids, movielens_ids = np.concatenate(users), np.concatenate(movies)
    ratings = np.concatenate(values)
    position = np.searchsorted(link_ml, movielens_ids)
    position = np.minimum(position, max(link_ml.size - 1, 0))
    linked = (link_ml.size > 0) & (link_ml[position] == movielens_ids)
    return RatingArrays(
        user_ids=user_ids[linked],
        tmdb_ids=link_tmdb[position[linked]],
        ratings=ratings[linked],
    )


def load_movie_rows(connection: Connection, dataset_id: int) -> MovieRows:
    """The dataset's movies with a TMDB id, their titles, years, genres and rating counts."""
    counts = dict(
        connection.execute(
            select(Rating.movielens_id, func.count())
            .where(Rating.dataset_id == dataset_id)
            .group_by(Rating.movielens_id)
        ).all()
    )
    rows = connection.execute(
        select(
            Movie.movielens_id,
            Movie.tmdb_id,
            Movie.title,
            Movie.year,
            Movie.genres,
            Movie.tmdb_genres,
        )
        .where(Movie.dataset_id == dataset_id, Movie.tmdb_id.is_not(None))
        .order_by(Movie.movielens_id)
    ).all()
    movies = MovieRows([], [], [], [], [], [])
    for movielens_id, tmdb_id, title, year, genres, tmdb_genres in rows:
        movies.tmdb_ids.append(int(tmdb_id or 0))
        movies.movielens_ids.append(int(movielens_id))
        movies.titles.append(str(title))
        movies.years.append(int(year) if year is not None else None)
        names = list(tmdb_genres) if tmdb_genres else [g for g in str(genres).split("|") if g]
        movies.genres.append([g for g in names if g != "(no genres listed)"])
        movies.rating_counts.append(int(counts.get(movielens_id, 0)))
    return movies
