"""TMDB's movie paths offline, in TMDB's shapes: ``append_to_response`` and the sub-resources,
find by IMDb id, genres, configuration, discover and the movie lists; TMDB's error bodies on
every ``/3`` path; ``api_key`` accepted like TMDB's when a token is set."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.tmdb_proxy.conftest import make_proxy_factory

MATRIX = 603
PARTS = (
    "credits", "keywords", "release_dates", "external_ids", "videos", "images", "similar",
    "recommendations",
)  # fmt: skip


@pytest.mark.slow
async def test_details_parts_and_lists_offline(
    ml_small_offline_database_url: str, shared_data: Path
) -> None:
    async with make_proxy_factory(ml_small_offline_database_url)() as client:
        whole = await client.get(
            f"/3/movie/{MATRIX}", params={"append_to_response": ",".join(PARTS)}
        )
        plain = await client.get(f"/3/movie/{MATRIX}")
        parts = {name: await client.get(f"/3/movie/{MATRIX}/{name}") for name in PARTS}
        popular = await client.get("/3/movie/popular", params={"page": 1})
        top = await client.get("/3/movie/top_rated", params={"page": 1})
        now_playing = await client.get("/3/movie/now_playing")
        latest = await client.get("/3/movie/latest")
        found = await client.get("/3/find/tt0133093", params={"external_source": "imdb_id"})
        nowhere = await client.get("/3/find/tt9999999999", params={"external_source": "imdb_id"})
        genres = await client.get("/3/genre/movie/list")
        configuration = await client.get("/3/configuration")
        discover = await client.get(
            "/3/discover/movie",
            params={
                "with_genres": "28,878",
                "primary_release_year": 1999,
                "sort_by": "vote_count.desc",
            },
        )

    assert whole.status_code == 200 and whole.headers["x-prefshift-source"] == "offline"
    body = whole.json()
    assert {k: v for k, v in body.items() if k not in PARTS} == plain.json()
    for name in PARTS:  # appended and alone: the same part
        assert parts[name].status_code == 200, name
        alone = parts[name].json()
        assert body[name] == alone, name
    assert body["credits"] == {"id": MATRIX, "cast": [], "crew": []}
    assert body["external_ids"]["imdb_id"] == "tt0133093"
    assert body["release_dates"] == {"id": MATRIX, "results": []}
    assert body["images"] == {"id": MATRIX, "backdrops": [], "logos": [], "posters": []}
    similar = body["similar"]
    assert similar["page"] == 1 and similar["results"], similar
    assert all({28, 878} & set(m["genre_ids"]) for m in similar["results"])
    assert MATRIX not in {m["id"] for m in similar["results"]}

    # popular offline: the most rated movies of the imported dataset, first
    with (shared_data / "ml-latest-small" / "ratings.csv").open() as rows:
        counts: dict[str, int] = {}
        for row in csv.DictReader(rows):
            counts[row["movieId"]] = counts.get(row["movieId"], 0) + 1
    with (shared_data / "ml-latest-small" / "links.csv").open() as rows:
        tmdb_of = {
            row["movieId"]: int(row["tmdbId"]) for row in csv.DictReader(rows) if row["tmdbId"]
        }
    most_rated = max(counts, key=lambda movie: counts[movie])
    page = popular.json()
    assert page["page"] == 1 and len(page["results"]) == 20 and page["total_results"] > 9_000
    assert page["results"][0]["id"] == tmdb_of[most_rated]
    ratings = [counts.get(m, 0) for m in counts]
    assert len(ratings) > 0
    averages = [m["vote_average"] for m in top.json()["results"]]
    assert averages == sorted(averages, reverse=True) and all(
        m["vote_count"] >= 300 for m in top.json()["results"]
    )
    assert set(now_playing.json()) == {"dates", "page", "results", "total_pages", "total_results"}
    assert latest.status_code == 200 and "genres" in latest.json()
    assert [m["id"] for m in found.json()["movie_results"]] == [MATRIX]
    assert nowhere.status_code == 200 and nowhere.json() == {
        "movie_results": [], "person_results": [], "tv_results": [], "tv_episode_results": [],
        "tv_season_results": [],
    }  # fmt: skip
    assert {"id": 878, "name": "Science Fiction"} in genres.json()["genres"]
    assert configuration.json()["images"]["secure_base_url"].startswith("https://")
    discovered = discover.json()["results"]
    assert MATRIX in {m["id"] for m in discovered}
    assert all({28, 878} <= set(m["genre_ids"]) for m in discovered)
    undated = [m["id"] for m in discovered if not m["release_date"]]
    assert all(m["release_date"].startswith("1999") for m in discovered if m["release_date"])
    assert not any(key.startswith("_") for m in discovered for key in m)
    if undated:  # their year is the MovieLens year, which prefshift's batch gives beside them
        async with make_proxy_factory(ml_small_offline_database_url)() as client:
            batch = (await client.post("/movies/batch", json={"tmdb_ids": undated})).json()
        assert batch["movielens_years"] == {str(tmdb_id): 1999 for tmdb_id in undated}
    votes = [m["vote_count"] for m in discovered]
    assert votes == sorted(votes, reverse=True)


async def test_errors_are_tmdbs_on_every_tmdb_path(ml_small_offline_database_url: str) -> None:
    async with make_proxy_factory(ml_small_offline_database_url)() as client:
        answers = {
            "unknown id": await client.get("/3/movie/2000000000"),
            "not an id": await client.get("/3/movie/abc"),
            # ids are ASCII digits: pydantic alone read these as the Matrix's id
            "a signed id": await client.get(f"/3/movie/+{MATRIX}"),
            "a decimal id": await client.get(f"/3/movie/{MATRIX}.0"),
            "an id in other digits": await client.get("/3/movie/\u0666\u0660\u0663"),
            "unknown path": await client.get("/3/tv/popular"),
            "unknown part": await client.get(f"/3/movie/{MATRIX}/bogus"),
            "unknown id's part": await client.get("/3/movie/2000000000/credits"),
        }
        page = await client.get("/3/movie/popular", params={"page": 501})
        too_many = await client.get(
            f"/3/movie/{MATRIX}",
            params={"append_to_response": ",".join(f"p{i}" for i in range(21))},
        )
        ours = await client.get("/movies/nothing")
    for what, response in answers.items():
        assert response.status_code == 404, what
        assert response.json() == {
            "success": False,
            "status_code": 34,
            "status_message": "The resource you requested could not be found.",
        }, what
    assert page.status_code == 400 and page.json()["status_code"] == 22
    assert too_many.status_code == 400 and too_many.json()["status_code"] == 27
    assert ours.status_code == 404 and set(ours.json()) >= {"error", "detail"}  # not a TMDB path


async def test_api_key_is_accepted_as_tmdb_accepts_it(ml_small_offline_database_url: str) -> None:
    factory = make_proxy_factory(ml_small_offline_database_url)
    async with factory(api_token="the-token") as client:
        by_key = await client.get(f"/3/movie/{MATRIX}", params={"api_key": "the-token"})
        by_bearer = await client.get(
            f"/3/movie/{MATRIX}", headers={"authorization": "Bearer the-token"}
        )
        wrong = await client.get(f"/3/movie/{MATRIX}", params={"api_key": "wrong"})
        missing = await client.get("/3/genre/movie/list")
        unknown_path = await client.get("/3/tv/1")
        batch_by_key = await client.post(
            "/movies/batch", params={"api_key": "the-token"}, json={"tmdb_ids": [MATRIX]}
        )
    async with factory() as client:
        any_key = await client.get(f"/3/movie/{MATRIX}", params={"api_key": "anything"})
    assert by_key.status_code == by_bearer.status_code == any_key.status_code == 200
    for response in (wrong, missing):
        assert response.status_code == 401
        assert response.json() == {
            "success": False,
            "status_code": 7,
            "status_message": "Invalid API key: You must be granted a valid key.",
        }
    assert unknown_path.status_code in (401, 404) and unknown_path.json()["success"] is False
    # the proxy's own routes keep the bearer token and the common envelope
    assert batch_by_key.status_code == 401 and "error" in batch_by_key.json()
