"""Reads of imported datasets that the recommender needs, on top of
``prefshift_datasets.repository`` (the dataset tables belong to it; this service never writes
them). Added here: datasets as :class:`DatasetRef` (model versions derive from the content
fingerprint) and the catalogue with per-movie rating counts.

Async queries serve requests; the synchronous ones run in the training thread and return NumPy
arrays rather than one Python object per rating, because ml-32m has 32 million of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Connection, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_datasets import repository as datasets
from prefshift_datasets.loaders import load_rating_arrays
from prefshift_datasets.models import Rating
from prefshift_datasets.records import DatasetInfo, RatingArrays


@dataclass(frozen=True)
class DatasetRef:
    """An imported dataset: its id, name and content fingerprint."""

    id: int
    name: str
    fingerprint: str


@dataclass(frozen=True)
class MovieRows:
    """A dataset's movies that have a TMDB id, with how often each was rated."""

    tmdb_ids: list[int]
    movielens_ids: list[int]
    titles: list[str]
    years: list[int | None]
    genres: list[list[str]]
    rating_counts: list[int]


def _ref(info: DatasetInfo) -> DatasetRef:
    return DatasetRef(id=info.id, name=info.name, fingerprint=info.fingerprint)


async def list_datasets(session: AsyncSession) -> list[DatasetRef]:
    """Every imported dataset, by name."""
    return [_ref(info) for info in await datasets.list_datasets(session)]


async def find_dataset(session: AsyncSession, name: str) -> DatasetRef | None:
    """The dataset of that name, if imported."""
    info = await datasets.find_dataset(session, name)
    return _ref(info) if info is not None else None


async def choose_dataset(
    session: AsyncSession, requested: str | None, *, default: str | None
) -> DatasetRef:
    """The dataset a request means (``prefshift_datasets.reads.choose_dataset``)."""
    info = await datasets.choose_dataset(
        session, requested, default=default, setting="PREFSHIFT_RECOMMENDER_DATASET"
    )
    return _ref(info)


async def user_ratings(
    session: AsyncSession, dataset_id: int, user_id: int
) -> list[tuple[int, float]] | None:
    """A dataset user's ratings as (tmdb_id, rating); ``None`` when the user does not exist."""
    if await datasets.find_user(session, dataset_id, user_id) is None:
        return None
    ratings = await datasets.user_ratings(session, dataset_id, user_id)
    return [(r.tmdb_id, r.rating) for r in ratings if r.tmdb_id is not None]


def load_movie_rows(connection: Connection, dataset_id: int) -> MovieRows:
    """The dataset's movies with a TMDB id, their titles, years, genres and rating counts."""
    counts = dict(
        connection.execute(
            select(Rating.movielens_id, func.count())
            .where(Rating.dataset_id == dataset_id)
            .group_by(Rating.movielens_id)
        ).all()
    )
    frame = datasets.load_movies(connection, dataset_id)
    frame = frame[frame["tmdb_id"].notna()]
    movielens_ids = [int(v) for v in frame["movielens_id"].tolist()]
    tmdb_genres: list[list[str]] = frame["tmdb_genres"].tolist()
    movielens_genres: list[list[str]] = frame["genres"].tolist()
    return MovieRows(
        tmdb_ids=[int(v) for v in frame["tmdb_id"].tolist()],
        movielens_ids=movielens_ids,
        titles=[str(v) for v in frame["title"].tolist()],
        years=[None if pd.isna(v) else int(v) for v in frame["year"].tolist()],
        genres=[list(t) or list(m) for t, m in zip(tmdb_genres, movielens_genres, strict=True)],
        rating_counts=[int(counts.get(m, 0)) for m in movielens_ids],
    )


def dataset_id(connection: Connection, name: str) -> int:
    """The id of an imported dataset (``DatasetNotFoundError`` when there is none)."""
    return datasets.get_dataset(connection, name).id


__all__ = [
    "DatasetRef",
    "MovieRows",
    "RatingArrays",
    "choose_dataset",
    "dataset_id",
    "find_dataset",
    "list_datasets",
    "load_movie_rows",
    "load_rating_arrays",
    "user_ratings",
]
