"""Without a TMDB key: imported records first, then the datasets' own movies; offline search
with fuzzy titles, filtered and ranked by the year (the MovieLens year where TMDB has no release
date); idempotent imports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from prefshift_common.movies import TMDB_GENRES
from prefshift_common.tmdb_client import TmdbProxyClient
from prefshift_tmdb_proxy.importer import import_tmdb_jsonl
from tests.tmdb_proxy.conftest import ProxyFactory, make_proxy_factory


def _seed_records(shared_data: Path) -> dict[int, dict[str, Any]]:
    records: dict[int, dict[str, Any]] = {}
    with (shared_data / "seed-cohort" / "tmdb_movies.jsonl").open() as lines:
        for line in lines:
            record = json.loads(line)
            records[record["id"]] = record
    return records


async def _serve_all(client: Any, ids: list[int]) -> dict[int, dict[str, Any]]:
    served: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        response = await client.post("/movies/batch", json={"tmdb_ids": ids[start : start + 500]})
        assert response.status_code == 200, response.text
        assert response.json()["missing"] == []
        served.update({movie["id"]: movie for movie in response.json()["movies"]})
    return served


@pytest.mark.slow
@pytest.mark.parametrize("imported", [False, True], ids=["dataset-only", "imported-jsonl"])
async def test_every_seed_cohort_movie_is_served_with_overview_and_genres(
    seed_cohort_database_url: str, shared_data: Path, imported: bool
) -> None:
    expected = _seed_records(shared_data)
    if imported:
        summary = import_tmdb_jsonl(
            seed_cohort_database_url, shared_data / "seed-cohort" / "tmdb_movies.jsonl"
        )
        assert summary.skipped == 0 and summary.lines == 17_357  # 7 ids twice: the last wins
    async with make_proxy_factory(seed_cohort_database_url)() as client:
        served = await _serve_all(client, sorted(expected))
        sample = await client.get(f"/3/movie/{min(expected)}")

    assert set(served) == set(expected)
    assert sample.headers["x-prefshift-source"] == ("offline" if imported else "movielens")
    for tmdb_id, record in expected.items():
        movie = served[tmdb_id]
        assert movie["overview"] == (record["overview"] or ""), tmdb_id
        if record["genres"] or imported:
            assert movie["genres"] == record["genres"], tmdb_id
        else:  # TMDB had no genres: the dataset's MovieLens genres, mapped, fill in
            assert all(TMDB_GENRES[g["id"]] == g["name"] for g in movie["genres"]), tmdb_id
    # the seed files themselves lack a handful of overviews and genres; everything else is there
    assert sum(1 for m in served.values() if m["overview"]) >= len(expected) - 9
    assert sum(1 for m in served.values() if m["genres"]) >= len(expected) - 40


async def test_movielens_only_movies_get_mapped_genres_and_year(
    ml_small_database_url: str,
) -> None:
    async with make_proxy_factory(ml_small_database_url)() as client:
        toy_story_response = await client.get("/3/movie/862")
        toy_story = toy_story_response.json()
        batch = (await client.post("/movies/batch", json={"tmdb_ids": [862]})).json()
        merged = (await TmdbProxyClient(client).movies([862])).movies[0]
        unknown = await client.get("/3/movie/2000000000")
    assert toy_story_response.headers["x-prefshift-source"] == "movielens"
    # MovieLens: Adventure|Animation|Children|Comedy|Fantasy; Children is TMDB's Family
    assert toy_story["title"] == "Toy Story"  # MovieLens: "Toy Story (1995)"
    # the MovieLens year: beside TMDB's body (prefshift's batch), never in it
    assert batch["movies"] == [toy_story] and batch["movielens_years"] == {"862": 1995}
    assert not [key for key in toy_story if key.startswith("_")]
    assert (merged.movielens_year, merged.year) == (1995, 1995)  # what the services read
    assert toy_story["release_date"] == ""
    assert {g["name"] for g in toy_story["genres"]} == {
        "Adventure", "Animation", "Family", "Comedy", "Fantasy",
    }  # fmt: skip
    assert {g["id"] for g in toy_story["genres"]} == {12, 16, 10751, 35, 14}
    assert unknown.status_code == 404 and unknown.json()["status_code"] == 34


async def test_imported_records_win_over_dataset_movies(
    ml_small_offline_database_url: str,
) -> None:
    async with make_proxy_factory(ml_small_offline_database_url)() as client:
        matrix_response = await client.get("/3/movie/603")
    matrix = matrix_response.json()
    assert matrix_response.headers["x-prefshift-source"] == "offline"
    assert matrix["release_date"] == "1999-03-30"
    assert matrix["runtime"] == 136


async def test_import_is_idempotent_and_replaces_records(
    database_url: str, tmp_path: Path, proxy: ProxyFactory
) -> None:
    records = [
        {"id": 11, "title": "Star Wars", "release_date": "1977-05-25", "genres": []},
        {"id": 12, "title": "Finding Nemo", "release_date": "2003-05-30", "genres": []},
    ]
    path = tmp_path / "movies.jsonl"
    lines = [json.dumps(r) for r in records]
    path.write_text(
        "\n".join([*lines, "not json", '{"id": "x"}', '{"id": 13, "title": "a\\u0000b"}'])
    )
    first = import_tmdb_jsonl(database_url, path)
    second = import_tmdb_jsonl(database_url, path)
    assert (first.imported, first.skipped) == (second.imported, second.skipped) == (2, 3)

    records[0]["title"] = "Star Wars: Episode IV"
    path.write_text("\n".join(json.dumps(r) for r in records))
    import_tmdb_jsonl(database_url, path, batch_size=1)
    async with proxy() as client:
        stats = (await client.get("/cache/stats")).json()
        star_wars = (await client.get("/3/movie/11")).json()
    assert stats["offline_records"] == 2 and stats["mode"] == "offline"
    assert star_wars["title"] == "Star Wars: Episode IV"


@pytest.fixture
async def offline_proxy(ml_small_offline_database_url: str) -> Any:
    async with make_proxy_factory(ml_small_offline_database_url)() as client:
        yield client


async def _first(client: Any, query: str, year: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"query": query}
    if year is not None:
        params["year"] = year
    response = await client.get("/3/search/movie", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["results"], query
    return response.json()["results"][0]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("query", "year", "tmdb_id"),
    [
        ("The Matrix", None, 603),
        ("Matrix, The", None, 603),
        ("the matrix", 1999, 603),
        ("Se7en", None, 807),
        ("Seven", 1995, 807),
        ("Toy Story 2", None, 863),
        ("Hamlet", 1996, 10549),
        ("Hamlet", 1948, 23383),
        ("Hamlet", 1990, 10264),
        ("Amelie", None, 194),
        ("Shawshank Redemption", None, 278),
        ("Shawshank Redemtion", None, 278),  # a typo
        ("Shawshank", None, 278),  # part of the title
        ("Star Wars: Episode IV - A New Hope", None, 11),  # MovieLens's title; TMDB: "Star Wars"
        ("Star Wars", 1977, 11),
        ("Empire Strikes Back", None, 1891),
    ],
)
async def test_offline_search_finds_the_movie(
    offline_proxy: Any, query: str, year: int | None, tmdb_id: int
) -> None:
    assert (await _first(offline_proxy, query, year))["id"] == tmdb_id


async def test_offline_search_filters_by_year_and_carries_the_movielens_year(
    offline_proxy: Any,
) -> None:
    """A seed-cohort record has no release date: its MovieLens year comes with it, and a year
    more than one off leaves it out, as TMDB's ``year`` filter would."""

    async def ids(**params: Any) -> list[int]:
        response = await offline_proxy.get(
            "/3/search/movie", params={"query": "Amanda Knox", **params}
        )
        return [result["id"] for result in response.json()["results"]]

    first = await _first(offline_proxy, "Amanda Knox")
    assert first["id"] == 411009 and first["release_date"] == ""
    assert not [key for key in first if key.startswith("_")]
    # the year comes in a header, which prefshift's client merges
    found = (await TmdbProxyClient(offline_proxy).search("Amanda Knox")).results[0]
    assert (found.id, found.movielens_year) == (411009, 2016)
    assert (await ids(year=2017))[0] == 411009
    assert 411009 not in await ids(year=1973)


async def test_imported_records_without_a_date_get_the_datasets_year(
    ml_small_database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "movies.jsonl"
    path.write_text(json.dumps({"id": 862, "title": "Toy Story", "release_date": None}))
    import_tmdb_jsonl(ml_small_database_url, path)
    async with make_proxy_factory(ml_small_database_url)() as client:
        found = (await TmdbProxyClient(client).search("Toy Story", year=1995)).results[0]
        elsewhere = await client.get("/3/search/movie", params={"query": "Toy Story", "year": 1980})
    assert (found.id, found.movielens_year) == (862, 1995)  # MovieLens's year
    assert 862 not in [result["id"] for result in elsewhere.json()["results"]]


async def test_offline_search_answers_in_tmdbs_shape_and_pages(offline_proxy: Any) -> None:
    first = (await offline_proxy.get("/3/search/movie", params={"query": "Star"})).json()
    second = (
        await offline_proxy.get("/3/search/movie", params={"query": "Star", "page": 2})
    ).json()
    nothing = (await offline_proxy.get("/3/search/movie", params={"query": "qzxqzxqzx"})).json()
    assert first["page"] == 1 and second["page"] == 2
    assert len(first["results"]) == 20 and first["total_results"] > 40
    assert first["total_pages"] == (first["total_results"] + 19) // 20
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}
    item = first["results"][0]
    assert set(item) >= {
        "id", "title", "original_title", "release_date", "overview", "genre_ids",
        "vote_average", "vote_count", "popularity", "poster_path",
    }  # fmt: skip
    assert nothing == {"page": 1, "results": [], "total_pages": 0, "total_results": 0}


@pytest.mark.parametrize(
    ("movielens", "title", "original_title"),
    [
        ("Matrix, The (1999)", "The Matrix", "The Matrix"),
        ("Seven (a.k.a. Se7en) (1995)", "Seven", "Seven"),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            "The City of Lost Children",
            "La Cité des enfants perdus",
        ),
        ("Avventura, L' (1960)", "L'Avventura", "L'Avventura"),
        ("Babe: Pig in the City", "Babe: Pig in the City", "Babe: Pig in the City"),
    ],
)
def test_movielens_titles_are_written_as_tmdb_writes_them(
    movielens: str, title: str, original_title: str
) -> None:
    from prefshift_common.movies import display_titles

    assert display_titles(movielens) == (title, original_title)
