"""What the orchestrator reads of imported datasets, through ``prefshift_datasets.repository``.
Read-only; the dataset tables belong to the importer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pandas as pd
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from prefshift_common.db import sync_connection
from prefshift_datasets import repository as datasets
from prefshift_orchestrator.protocol import UserMovie


class DatasetReads:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def dataset_id(self, name: str) -> int | None:
        dataset = await datasets.find_dataset(self.session, name)
        return dataset.id if dataset is not None else None

    async def user_exists(self, dataset_id: int, user_id: int) -> bool:
        return await datasets.find_user(self.session, dataset_id, user_id) is not None

    async def count_user_movies(self, dataset_id: int, user_id: int) -> int:
        """The user's distinct rated movies that have a TMDB id (what the protocol can use)."""
        counts = await datasets.usable_movie_counts(self.session, dataset_id, [user_id])
        return counts.get(user_id, 0)

    async def known_users(self, dataset_id: int, user_ids: Sequence[int]) -> set[int]:
        """Which of ``user_ids`` the dataset has."""
        return await datasets.known_users(self.session, dataset_id, user_ids)

    async def count_users_movies(self, dataset_id: int, user_ids: Sequence[int]) -> dict[int, int]:
        """:meth:`count_user_movies` of many users in one query per thousand users."""
        return await datasets.usable_movie_counts(self.session, dataset_id, user_ids)

    async def user_movies(self, dataset_id: int, user_id: int) -> list[UserMovie]:
        """The user's rated movies that have a TMDB id, with TMDB genres when the dataset has
        them (else MovieLens's); one per TMDB id (the lowest MovieLens id wins)."""
        return [
            UserMovie(
                tmdb_id=rating.tmdb_id,
                rating=rating.rating,
                movielens_id=rating.movielens_id,
                title=rating.title,
                genres=rating.tmdb_genres or rating.genres,
            )
            for rating in await datasets.user_movies(self.session, dataset_id, user_id)
            if rating.tmdb_id is not None
        ]

    async def archetypes(self, dataset_id: int, user_ids: Sequence[int]) -> dict[int, str]:
        wanted = set(user_ids)
        if not wanted:
            return {}
        return {
            user.user_id: user.archetype
            for user in await datasets.list_users(self.session, dataset_id)
            if user.user_id in wanted and user.archetype
        }

    async def cohort_inputs(self, dataset_id: int) -> tuple[pd.DataFrame, dict[int, list[str]]]:
        """Ratings (user_id, movielens_id, rating; movies with a TMDB id) and MovieLens genres
        by movie, the inputs of the cohort rules."""

        engine = self.session.bind
        assert isinstance(engine, AsyncEngine), "sessions are bound to an engine"
        url = engine.url.render_as_string(hide_password=False)

        def load() -> tuple[pd.DataFrame, dict[int, list[str]]]:
            # A synchronous engine in a thread: the loaders use the driver's own cursor (COPY on
            # Postgres) and a cohort of ml-32m's size must not block the event loop.
            with sync_connection(url) as connection:
                ratings = datasets.load_ratings(connection, dataset_id)
                movies = datasets.load_movies(connection, dataset_id)
            genres = dict(zip(movies["movielens_id"].astype(int), movies["genres"], strict=True))
            return ratings[["user_id", "movielens_id", "rating"]], genres

        return await asyncio.to_thread(load)
