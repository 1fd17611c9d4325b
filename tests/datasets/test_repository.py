"""The read API every service uses, on the real imported datasets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_common.db import (
    create_async_db_engine,
    create_session_factory,
    sync_connection,
)
from prefshift_datasets import repository
from prefshift_datasets.errors import DatasetNotFoundError


@pytest.fixture
async def session(both_datasets_database_url: str) -> AsyncIterator[AsyncSession]:
    # a clone: a Postgres template that other workers clone must have no open connection
    engine = create_async_db_engine(both_datasets_database_url)
    async with create_session_factory(engine)() as session:
        yield session
    await engine.dispose()


def test_load_ratings_and_movies(both_datasets_database_url: str) -> None:
    with sync_connection(both_datasets_database_url) as connection:
        dataset = repository.get_dataset(connection, "ml-latest-small")
        assert (dataset.n_ratings, dataset.n_movies, dataset.n_users) == (100_836, 9_742, 610)
        ratings = repository.load_ratings(connection, dataset.id)
        movies = repository.load_movies(connection, dataset.id)
        users = repository.load_users(connection, dataset.id)
        with pytest.raises(DatasetNotFoundError):
            repository.get_dataset(connection, "nope")
    assert dict(ratings.dtypes.astype(str)) == {
        "user_id": "int32",
        "movielens_id": "int32",
        "tmdb_id": "int32",
        "rating": "float32",
    }
    # 8 movies lack a TMDB id; their ratings are left out
    unlinked = set(movies.loc[movies["tmdb_id"].isna(), "movielens_id"])
    assert len(unlinked) == 8
    assert len(ratings) == 100_836 - 13  # those 8 movies have 13 ratings between them
    assert not ratings["movielens_id"].isin(unlinked).any()
    assert ratings["rating"].between(0.5, 5.0).all()
    first = ratings.iloc[0]
    assert (first.user_id, first.movielens_id, first.tmdb_id, first.rating) == (1, 1, 862, 4.0)
    assert ratings["user_id"].is_monotonic_increasing
    assert len(movies) == 9_742
    toy = movies.set_index("movielens_id").loc[1]
    assert toy["genres"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert toy["year"] == 1995 and toy["tmdb_id"] == 862
    assert toy["tmdb_genres"] == []
    assert len(users) == 610 and int(users["n_ratings"].sum()) == 100_836
    assert np.isclose(users.set_index("user_id").loc[1, "mean_rating"], 4.366379, atol=1e-5)


async def test_find_and_list_datasets(session: AsyncSession) -> None:
    names = [dataset.name for dataset in await repository.list_datasets(session)]
    assert names == ["ml-latest-small", "seed-cohort"]
    seed = await repository.find_dataset(session, "seed-cohort")
    assert seed is not None and seed.has_tmdb_metadata and seed.n_users == 150
    assert await repository.find_dataset(session, "missing") is None
    assert await repository.find_dataset_by_id(session, seed.id) == seed


async def test_user_ratings_carry_the_movie(session: AsyncSession) -> None:
    seed = await repository.find_dataset(session, "seed-cohort")
    assert seed is not None
    users = await repository.list_users(session, seed.id)
    user = users[0]
    ratings = await repository.user_ratings(session, seed.id, user.user_id)
    assert len(ratings) == user.n_ratings
    assert all(rating.tmdb_id is not None and rating.overview is not None for rating in ratings)
    assert all(rating.tmdb_genres for rating in ratings)
    assert np.isclose(np.mean([rating.rating for rating in ratings]), user.mean_rating)
    assert await repository.user_ratings(session, seed.id, -1) == []
    assert await repository.find_user(session, seed.id, user.user_id) == user
    assert await repository.find_user(session, seed.id, -1) is None


async def test_list_users_filters(session: AsyncSession) -> None:
    small = await repository.find_dataset(session, "ml-latest-small")
    seed = await repository.find_dataset(session, "seed-cohort")
    assert small is not None and seed is not None
    everyone = await repository.list_users(session, small.id)
    assert len(everyone) == 610
    middle = await repository.list_users(session, small.id, min_ratings=70, max_ratings=200)
    assert middle and all(70 <= user.n_ratings <= 200 for user in middle)
    expected = sum(1 for user in everyone if 70 <= user.n_ratings <= 200)
    assert len(middle) == expected
    explorers = await repository.list_users(session, seed.id, archetype="Explorer")
    assert len(explorers) == 37


async def test_movies_by_tmdb_ids(session: AsyncSession) -> None:
    small = await repository.find_dataset(session, "ml-latest-small")
    assert small is not None
    in_small = await repository.movies_by_tmdb_ids(session, small.id, [862, 807, 999_999_999])
    assert set(in_small) == {862, 807}
    assert in_small[862].title == "Toy Story (1995)" and in_small[862].overview is None
    anywhere = await repository.movies_by_tmdb_ids(session, None, [862])
    # the seed cohort's copy has TMDB metadata, so it wins
    assert anywhere[862].overview is not None
    assert anywhere[862].tmdb_genres == ("Family", "Comedy", "Animation")


async def test_search_movies_by_title(session: AsyncSession) -> None:
    found = await repository.search_movies_by_title(session, "toy story", year=1995)
    assert found and found[0].tmdb_id == 862
    # "%" is matched literally, not as a LIKE wildcard (which would match every title)
    percent = await repository.search_movies_by_title(session, "%", limit=50)
    assert len(percent) < 50 and all("%" in movie.title for movie in percent)
    assert await repository.search_movies_by_title(session, "   ") == []
