"""A census of the offline source: every ml-latest-small movie (``links.csv``'s TMDB ids) is served
with every field of TMDB's details record — ``null`` where unknown, never absent — and nothing
of ours in the body, nor in search results; where it came from is a response header, and the
MovieLens year of an undated movie comes beside the body (the batch's ``movielens_years``, the
search's ``X-Prefshift-Movielens-Years`` header)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from prefshift_common.movies import year_from_title
from tests.tmdb_proxy.conftest import make_proxy_factory

#: The fields of TMDB's ``GET /3/movie/{movie_id}`` (developer.themoviedb.org, "Details").
TMDB_DETAIL_FIELDS = {
    "adult", "backdrop_path", "belongs_to_collection", "budget", "genres", "homepage", "id",
    "imdb_id", "origin_country", "original_language", "original_title", "overview",
    "popularity", "poster_path", "production_companies", "production_countries",
    "release_date", "revenue", "runtime", "spoken_languages", "status", "tagline", "title",
    "video", "vote_average", "vote_count",
}  # fmt: skip
LISTS = {"genres", "origin_country", "production_companies", "production_countries"}
#: The fields of an item of TMDB's ``GET /3/search/movie``.
TMDB_SEARCH_FIELDS = {
    "adult", "backdrop_path", "genre_ids", "id", "original_language", "original_title",
    "overview", "popularity", "poster_path", "release_date", "title", "video", "vote_average",
    "vote_count",
}  # fmt: skip


def _ml_small_tmdb_ids(shared_data: Path) -> list[int]:
    with (shared_data / "ml-latest-small" / "links.csv").open() as rows:
        return sorted({int(row["tmdbId"]) for row in csv.DictReader(rows) if row["tmdbId"]})


def _ml_small_undated(shared_data: Path) -> set[int]:
    """TMDB ids of the MovieLens movies whose title carries no year."""
    folder = shared_data / "ml-latest-small"
    with (folder / "movies.csv").open() as rows:
        undated = {
            row["movieId"] for row in csv.DictReader(rows) if year_from_title(row["title"]) is None
        }
    with (folder / "links.csv").open() as rows:
        return {
            int(row["tmdbId"])
            for row in csv.DictReader(rows)
            if row["movieId"] in undated and row["tmdbId"]
        }


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_every_ml_small_movie_has_every_tmdb_field_and_no_internal_one(
    ml_small_offline_database_url: str, shared_data: Path
) -> None:
    ids = _ml_small_tmdb_ids(shared_data)
    served: dict[int, dict[str, Any]] = {}
    missing: list[int] = []
    years: dict[int, int] = {}
    searched: list[tuple[dict[str, Any], dict[int, int]]] = []
    async with make_proxy_factory(ml_small_offline_database_url)() as client:
        for start in range(0, len(ids), 500):
            response = await client.post(
                "/movies/batch", json={"tmdb_ids": ids[start : start + 500]}
            )
            assert response.status_code == 200, response.text
            served.update({movie["id"]: movie for movie in response.json()["movies"]})
            missing.extend(response.json()["missing"])
            years.update({int(key): y for key, y in response.json()["movielens_years"].items()})
        sources = Counter()
        for tmdb_id in ids[::97]:  # a sample of single GETs: the same body, the source in a header
            single = await client.get(f"/3/movie/{tmdb_id}")
            if single.status_code == 200:
                assert single.json() == served[tmdb_id]
                sources[single.headers["x-prefshift-source"]] += 1
                found = await client.get(
                    "/3/search/movie", params={"query": served[tmdb_id]["title"]}
                )
                assert found.status_code == 200, found.text
                header = found.headers.get("x-prefshift-movielens-years", "{}")
                found_years = {int(key): y for key, y in json.loads(header).items()}
                searched.extend((result, found_years) for result in found.json()["results"])

    assert len(ids) == 9_733
    undated = _ml_small_undated(shared_data)
    # ids the dataset links to but no offline source knows (TMDB ids that the dataset has
    # without a movie row would be a bug): none
    assert missing == []
    absent = Counter(
        field for movie in served.values() for field in TMDB_DETAIL_FIELDS - movie.keys()
    )
    internal = Counter(
        field for movie in served.values() for field in movie.keys() - TMDB_DETAIL_FIELDS
    )
    assert absent == Counter() and internal == Counter()
    assert len(searched) > 100
    assert all(result.keys() == TMDB_SEARCH_FIELDS for result, _ in searched)
    # a search gives the MovieLens year of its undated results, the same the batch gives
    for result, found_years in searched:
        if result["id"] in served:
            assert found_years.get(result["id"]) == years.get(result["id"]), result["id"]
    assert set(years) <= {tmdb_id for tmdb_id, movie in served.items() if not movie["release_date"]}
    for movie in served.values():
        assert all(isinstance(movie[name], list) for name in LISTS), movie["id"]
        assert isinstance(movie["release_date"], str) and isinstance(movie["overview"], str)
        assert isinstance(movie["title"], str) and movie["title"]
        assert isinstance(movie["original_title"], str) and movie["original_title"]
        if not movie["release_date"] and movie["id"] not in undated:  # the MovieLens year
            assert isinstance(years[movie["id"]], int), movie["id"]
    assert set(sources) == {"offline", "movielens"}
