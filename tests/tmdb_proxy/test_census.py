"""A census of the offline source: every ml-latest-small movie (``links.csv``'s TMDB ids) is served
with every field of TMDB's details record — ``null`` where unknown, never absent — and nothing
of ours in the body but ``_year_from_movielens``; where it came from is the response header."""

from __future__ import annotations

import csv
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


@pytest.mark.timeout(300)
async def test_every_ml_small_movie_has_every_tmdb_field_and_no_internal_one(
    ml_small_offline_database_url: str, shared_data: Path
) -> None:
    ids = _ml_small_tmdb_ids(shared_data)
    served: dict[int, dict[str, Any]] = {}
    missing: list[int] = []
    async with make_proxy_factory(ml_small_offline_database_url)() as client:
        for start in range(0, len(ids), 500):
            response = await client.post(
                "/movies/batch", json={"tmdb_ids": ids[start : start + 500]}
            )
            assert response.status_code == 200, response.text
            served.update({movie["id"]: movie for movie in response.json()["movies"]})
            missing.extend(response.json()["missing"])
        sources = Counter()
        for tmdb_id in ids[::97]:  # a sample of single GETs: the same body, the source in a header
            single = await client.get(f"/3/movie/{tmdb_id}")
            if single.status_code == 200:
                assert single.json() == served[tmdb_id]
                sources[single.headers["x-prefshift-source"]] += 1

    assert len(ids) == 9_733
    undated = _ml_small_undated(shared_data)
    # ids the dataset links to but no offline source knows (TMDB ids that the dataset has
    # without a movie row would be a bug): none
    assert missing == []
    absent = Counter(
        field for movie in served.values() for field in TMDB_DETAIL_FIELDS - movie.keys()
    )
    internal = Counter(
        field
        for movie in served.values()
        for field in movie.keys() - TMDB_DETAIL_FIELDS
        if field != "_year_from_movielens"
    )
    assert absent == Counter() and internal == Counter()
    for movie in served.values():
        assert all(isinstance(movie[name], list) for name in LISTS), movie["id"]
        assert isinstance(movie["release_date"], str) and isinstance(movie["overview"], str)
        assert isinstance(movie["title"], str) and movie["title"]
        assert isinstance(movie["original_title"], str) and movie["original_title"]
        if not movie["release_date"] and movie["id"] not in undated:  # the MovieLens year
            assert isinstance(movie["_year_from_movielens"], int), movie["id"]
    assert set(sources) == {"offline", "movielens"}
