"""Reads of imported datasets that the orchestrator needs (a user's rated movies with TMDB ids
and genres, cohort inputs). Read-only; the dataset tables belong to ``prefshift_datasets``."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_datasets.models import Dataset, DatasetUser, Movie, Rating
from prefshift_orchestrator.protocol import UserMovie

#: MovieLens marks a movie without genres this way; it is not a genre.
NO_GENRES = "(no genres listed)"


def movie_genres(
    tmdb_genres: Sequence[str] | None, movielens_genres: str | None
) -> tuple[str, ...]:
    """TMDB genres when the dataset has them, else MovieLens's."""
    if tmdb_genres:
        return tuple(str(genre) for genre in tmdb_genres)
    return tuple(g for g in (movielens_genres or "").split("|") if g and g != NO_GENRES)


class DatasetReads:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def dataset_id(self, name: str) -> int | None:
        return (await self.session.scalars(select(Dataset.id).where(Dataset.name == name))).first()

    async def dataset_names(self) -> list[str]:
        return list((await self.session.scalars(select(Dataset.name).order_by(Dataset.id))).all())

    async def user_exists(self, dataset_id: int, user_id: int) -> bool:
        statement = select(func.count()).where(
            Rating.dataset_id == dataset_id, Rating.user_id == user_id
        )
        return bool(await self.session.scalar(statement))

    async def count_user_movies(self, dataset_id: int, user_id: int) -> int:
        """The user's distinct rated movies that have a TMDB id."""
        statement = (
            select(func.count(func.distinct(Movie.tmdb_id)))
            .select_from(Rating)
            .join(
                Movie,
                (Movie.dataset_id == Rating.dataset_id)
                & (Movie.movielens_id == Rating.movielens_id),
            )
            .where(
                Rating.dataset_id == dataset_id,
                Rating.user_id == user_id,
                Movie.tmdb_id.is_not(None),
            )
        )
        return int(await self.session.scalar(statement) or 0)

    async def user_movies(self, dataset_id: int, user_id: int) -> list[UserMovie]:
        """The user's rated movies that have a TMDB id (one per TMDB id: the lowest MovieLens
        id wins when two MovieLens movies share one)."""
        statement = (
            select(
                Movie.tmdb_id,
                Rating.rating,
                Movie.movielens_id,
                Movie.title,
                Movie.tmdb_genres,
                Movie.genres,
            )
            .join(
                Movie,
                (Movie.dataset_id == Rating.dataset_id)
                & (Movie.movielens_id == Rating.movielens_id),
            )
            .where(
                Rating.dataset_id == dataset_id,
                Rating.user_id == user_id,
                Movie.tmdb_id.is_not(None),
            )
            .order_by(Movie.movielens_id)
        )
        movies: dict[int, UserMovie] = {}
        for tmdb_id, rating, movielens_id, title, tmdb_genres, genres in await self.session.execute(
            statement
        ):
            if tmdb_id is None:
                continue
            movies.setdefault(
                int(tmdb_id),
                UserMovie(
                    tmdb_id=int(tmdb_id),
                    rating=float(rating),
                    movielens_id=int(movielens_id),
                    title=str(title),
                    genres=movie_genres(tmdb_genres, genres),
                ),
            )
        return list(movies.values())

    async def archetypes(self, dataset_id: int, user_ids: Sequence[int]) -> dict[int, str]:
        if not user_ids:
            return {}
        statement = select(DatasetUser.user_id, DatasetUser.archetype).where(
            DatasetUser.dataset_id == dataset_id,
            DatasetUser.user_id.in_(list(user_ids)),
            DatasetUser.archetype.is_not(None),
        )
        return {int(u): str(a) for u, a in await self.session.execute(statement)}

    async def cohort_inputs(self, dataset_id: int) -> tuple[pd.DataFrame, dict[int, list[str]]]:
        """All ratings (user_id, movielens_id, rating) and MovieLens genres, for cohort rules."""
        rows = (
            await self.session.execute(
                select(Rating.user_id, Rating.movielens_id, Rating.rating).where(
                    Rating.dataset_id == dataset_id
                )
            )
        ).all()
        ratings = pd.DataFrame(rows, columns=["user_id", "movielens_id", "rating"])
        genres = {
            int(movielens_id): list(movie_genres(None, text))
            for movielens_id, text in await self.session.execute(
                select(Movie.movielens_id, Movie.genres).where(Movie.dataset_id == dataset_id)
            )
        }
        return ratings, genres
