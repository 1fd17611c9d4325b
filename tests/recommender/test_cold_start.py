"""Cold start: a persona's 40-movie history (no user id) gets 30 distinct movies, none seen or
excluded, from every model-backed implementation, without refitting."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import pytest

from tests.recommender.conftest import COLLABORATIVE, MODEL_BACKED, ServiceFactory, registry_of

# Two TMDB ids that are not in ml-latest-small (2019 films): the models must ignore and count them.
OUTSIDE_DATASET = [496243, 475557]


@functools.cache
def rated_movies(shared_data: Path) -> pd.DataFrame:
    """ml-latest-small's ratings with their TMDB ids (read once)."""
    folder = shared_data / "ml-latest-small"
    ratings = pd.read_csv(folder / "ratings.csv")
    links = pd.read_csv(folder / "links.csv").dropna(subset=["tmdbId"])
    return ratings.merge(links, on="movieId")


def persona_history(
    shared_data: Path, user_id: int = 414, size: int = 40
) -> list[dict[str, float]]:
    """40 of a real ml-latest-small user's ratings, by TMDB id."""
    frame = rated_movies(shared_data)
    mine = frame[frame.userId == user_id]
    mine = mine.drop_duplicates("tmdbId").sample(n=size, random_state=0)
    return [{"tmdb_id": int(row.tmdbId), "rating": float(row.rating)} for row in mine.itertuples()]


def popular_ids(shared_data: Path, count: int = 60) -> list[int]:
    counts = rated_movies(shared_data).groupby("tmdbId").size()
    return [int(i) for i in counts.sort_values(ascending=False).index[:count]]


@pytest.mark.parametrize("name", MODEL_BACKED)
async def test_cold_start_page_is_full_distinct_and_unseen(
    name: str, trained_service: ServiceFactory, shared_data: Path
) -> None:
    history = persona_history(shared_data)
    seen = {h["tmdb_id"] for h in history}
    # The most popular movies are what every model would otherwise rank first.
    exclude = [i for i in popular_ids(shared_data) if i not in seen][:30]
    body = {
        "recommender": name,
        "history": history + [{"tmdb_id": i, "rating": 4.0} for i in OUTSIDE_DATASET],
        "n": 30,
        "exclude": exclude,
    }
    async with trained_service() as client:
        response = await client.post("/recommendations", json=body)
        assert response.status_code == 200, response.text
        page = response.json()
        # No refit: serving must not have queued a training.
        assert registry_of(client)._tasks == set()

    ids = [item["tmdb_id"] for item in page["items"]]
    assert len(ids) == 30
    assert len(set(ids)) == 30
    assert not set(ids) & seen
    assert not set(ids) & set(exclude)
    assert not set(ids) & set(OUTSIDE_DATASET)
    assert page["short"] is False
    assert page["unknown_history"] == len(OUTSIDE_DATASET)
    assert page["model_version"].startswith(f"{name}@ml-latest-small:")
    scores = [item["score"] for item in page["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(item["title"] and item["movielens_id"] for item in page["items"])


@pytest.mark.parametrize("name", COLLABORATIVE)
async def test_collaborative_pages_follow_the_history(
    name: str, trained_service: ServiceFactory, shared_data: Path
) -> None:
    """Two different personas get different pages; an empty history gets the popular ones."""
    first = persona_history(shared_data, user_id=414)
    second = persona_history(shared_data, user_id=599)
    async with trained_service() as client:
        pages = []
        for history in (first, second, []):
            response = await client.post(
                "/recommendations", json={"recommender": name, "history": history, "n": 20}
            )
            assert response.status_code == 200, response.text
            pages.append([item["tmdb_id"] for item in response.json()["items"]])
        popularity = await client.post(
            "/recommendations", json={"recommender": "popularity", "n": 20}
        )
    assert len(set(pages[0]) - set(pages[1])) >= 3
    assert pages[2] == [item["tmdb_id"] for item in popularity.json()["items"]]


async def test_dataset_user_never_gets_their_own_movies(
    trained_service: ServiceFactory, shared_data: Path
) -> None:
    frame = rated_movies(shared_data)
    rated = set(frame[frame.userId == 1].tmdbId.astype(int))
    async with trained_service() as client:
        response = await client.post(
            "/recommendations", json={"recommender": "als", "user_id": 1, "n": 50}
        )
    assert response.status_code == 200, response.text
    ids = {item["tmdb_id"] for item in response.json()["items"]}
    assert len(ids) == 50
    assert not ids & rated


async def test_random_is_reproducible_from_the_seed(trained_service: ServiceFactory) -> None:
    async with trained_service() as client:

        async def page(seed: int) -> list[int]:
            response = await client.post(
                "/recommendations", json={"recommender": "random", "n": 30, "seed": seed}
            )
            assert response.status_code == 200, response.text
            return [item["tmdb_id"] for item in response.json()["items"]]

        first, again, other = await page(7), await page(7), await page(8)
    assert first == again
    assert first != other
