"""What reading a dataset gives back: small frozen records and parallel rating arrays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from prefshift_common.movies import split_movielens_genres
from prefshift_datasets.models import Movie


@dataclass(frozen=True)
class DatasetInfo:
    """An imported dataset and its counts."""

    id: int
    name: str
    source: str
    n_users: int
    n_movies: int
    n_ratings: int
    has_tmdb_metadata: bool
    imported_at: datetime | None
    fingerprint: str = ""  #: of the imported files; model versions derive from it


@dataclass(frozen=True)
class MovieRecord:
    """A movie of a dataset. ``genres`` are MovieLens's, ``tmdb_genres`` TMDB's (may be empty)."""

    dataset_id: int
    movielens_id: int
    tmdb_id: int | None
    imdb_id: str | None
    title: str
    year: int | None
    genres: tuple[str, ...]
    overview: str | None
    tmdb_genres: tuple[str, ...]
    tmdb_vote_average: float | None
    tmdb_vote_count: int | None


@dataclass(frozen=True)
class UserRating:
    """One rating of a dataset user, with what a persona prompt needs to know of the movie."""

    movielens_id: int
    tmdb_id: int | None
    title: str
    year: int | None
    genres: tuple[str, ...]
    tmdb_genres: tuple[str, ...]
    overview: str | None
    rating: float


@dataclass(frozen=True)
class DatasetUserInfo:
    """A user of a dataset with the counts cohort rules filter on."""

    user_id: int
    n_ratings: int
    mean_rating: float
    archetype: str | None


def dataset_info(row: Any) -> DatasetInfo:
    return DatasetInfo(
        id=row.id,
        name=row.name,
        source=row.source,
        n_users=row.n_users,
        n_movies=row.n_movies,
        n_ratings=int(row.n_ratings),
        has_tmdb_metadata=bool(row.has_tmdb_metadata),
        imported_at=row.imported_at,
        fingerprint=row.fingerprint,
    )


def movie_record(movie: Movie) -> MovieRecord:
    return MovieRecord(
        dataset_id=movie.dataset_id,
        movielens_id=movie.movielens_id,
        tmdb_id=movie.tmdb_id,
        imdb_id=movie.imdb_id,
        title=movie.title,
        year=movie.year,
        genres=split_movielens_genres(movie.genres),
        overview=movie.overview,
        tmdb_genres=tuple(movie.tmdb_genres or ()),
        tmdb_vote_average=movie.tmdb_vote_average,
        tmdb_vote_count=movie.tmdb_vote_count,
    )


@dataclass(frozen=True)
class RatingArrays:
    """A dataset's ratings of movies with a TMDB id as parallel arrays, ordered by user then
    MovieLens id (one entry per rating; ml-32m's 32 million take about 0.5 GB)."""

    user_ids: npt.NDArray[np.int64]
    tmdb_ids: npt.NDArray[np.int64]
    ratings: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.ratings)
