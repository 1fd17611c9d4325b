"""The candidate-constrained round of the LLM recommenders: the pool of unseen catalogue movies,
the reading of picked numbers, and pages filled from candidates when a model's titles name no
movie (the fake OpenAI-compatible server over loopback, the real ``openai`` client)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from prefshift_recommender.candidates import candidate_pool, parse_choices
from prefshift_recommender.catalog import Catalog, CatalogMovie
from prefshift_recommender.repository import DatasetRef
from tests.fakes.openai_server import FakeOpenAI, Reply, json_content, prompt_text
from tests.recommender.conftest import ServiceFactory
from tests.recommender.test_llm import history_without_odd_titles

CANDIDATE_LINE = re.compile(r"^(\d+)\. (.+)$", re.M)


def _catalog() -> Catalog:
    genres = ["Drama", "Comedy", "Horror", "Western"]
    movies = [
        CatalogMovie(
            tmdb_id=100 + i,
            movielens_id=i,
            title=f"Movie {i}",
            year=1990 + i,
            genres=(genres[i % 4],),
            rating_count=1000 - i,
        )
        for i in range(40)
    ]
    return Catalog(
        dataset=DatasetRef(id=1, name="toy", fingerprint="toy"),
        movies=movies,
        _raw_titles=[f"Movie {i} ({1990 + i})" for i in range(40)],
    )


def test_the_pool_takes_every_genre_in_turn_and_nothing_blocked() -> None:
    catalog = _catalog()
    blocked = {100, 101, 102}  # the most-rated Drama, Comedy and Horror movies
    pool = candidate_pool(catalog, blocked, 8, seed=3)
    ids = {movie.tmdb_id for movie in pool}
    assert len(pool) == 8 and not ids & blocked
    # two per genre, each genre's most-rated unblocked movies (Western included)
    by_genre: dict[str, list[int]] = {}
    for movie in pool:
        by_genre.setdefault(movie.genres[0], []).append(movie.tmdb_id)
    assert {g: sorted(v) for g, v in by_genre.items()} == {
        "Drama": [104, 108],
        "Comedy": [105, 109],
        "Horror": [106, 110],
        "Western": [103, 107],
    }
    # seeded: the same seed gives the same order, another seed another order
    assert [m.tmdb_id for m in candidate_pool(catalog, blocked, 8, seed=3)] == [
        m.tmdb_id for m in pool
    ]
    assert [m.tmdb_id for m in candidate_pool(catalog, blocked, 8, seed=4)] != [
        m.tmdb_id for m in pool
    ]
    # the catalogue runs out: what is left
    assert len(candidate_pool(catalog, blocked, 100, seed=1)) == 37


def test_picked_numbers_are_read_from_json_cut_off_answers_and_lines() -> None:
    assert parse_choices('{"recommendations": [3, 1, 3, 9, 2]}', 5) == [3, 1, 2]
    assert parse_choices('{"recommendations": ["4", {"number": 2}]}', 5) == [4, 2]
    assert parse_choices('{"recommendations": [5, 2, 1', 5) == [5, 2, 1]  # cut off
    assert parse_choices("4\n2. Heat (1995)\n7", 5) == [4, 2]  # years, out of range: ignored
    assert parse_choices("no idea", 5) == []


def _schema(body: dict[str, Any]) -> dict[str, Any] | None:
    wanted = body.get("response_format") or {}
    schema = wanted.get("schema") or (wanted.get("json_schema") or {}).get("schema")
    return schema if isinstance(schema, dict) else None


class InventingModel:
    """Names only films that do not exist; picks candidates (the last ones of the list) when
    it is offered some, as constrained decoding would: numbers of the schema's enum."""

    def __call__(self, body: dict[str, Any]) -> Reply:
        schema = _schema(body)
        picks = (schema or {}).get("properties", {}).get("recommendations", {})
        if "enum" in picks.get("items", {}):
            numbers = picks["items"]["enum"][-picks["minItems"] :]
            return Reply(content=json_content({"recommendations": numbers[::-1]}))
        named = [{"title": f"Zzyzx Quorble {i}", "year": 2021} for i in range(12)]
        return Reply(content=json_content({"recommendations": named}))


@pytest.mark.parametrize(("mode", "calls"), [("fallback", 2), ("always", 1)])
async def test_a_page_is_filled_from_candidates_when_titles_name_no_movie(
    mode: str, calls: int, trained_service: ServiceFactory, shared_data: Path
) -> None:
    history = history_without_odd_titles(shared_data)
    seen = {h["tmdb_id"] for h in history}
    fake = FakeOpenAI(responder=InventingModel())
    with fake.serve() as base_url:
        async with trained_service(
            openai_base_url=base_url,
            openai_api_key=SecretStr("k"),
            recommender_llm_candidates=mode,
            recommender_llm_candidate_count=30,
        ) as client:
            response = await client.post(
                "/recommendations",
                json={"recommender": "llm-persuasive", "history": history, "n": 8},
            )
    assert response.status_code == 200, response.text
    page = response.json()
    assert fake.calls == calls
    if mode == "fallback":  # the title round first: every title dropped
        assert page["unresolved_titles"] == 12
        assert _schema(fake.requests[0]) is not None and "Zzyzx" not in prompt_text(
            fake.requests[0]
        )
    offer = fake.requests[-1]
    schema = _schema(offer)
    assert schema is not None
    picks = schema["properties"]["recommendations"]
    # 8 wanted, 11 asked (a quarter more, at least 3), 30 offered: the picks an enum of them
    assert picks["minItems"] == picks["maxItems"] == 11
    assert picks["items"]["enum"] == list(range(1, 31))
    offered = dict(CANDIDATE_LINE.findall(prompt_text(offer)))
    assert len(offered) == 30
    ids = [item["tmdb_id"] for item in page["items"]]
    assert len(ids) == len(set(ids)) == 8 and page["short"] is False and page["note"] is None
    assert not set(ids) & seen
    # the page is the model's picks in its order: candidates 30, 29, … 23
    for number, item in zip(range(30, 22, -1), page["items"], strict=True):
        assert offered[str(number)].startswith(f"{item['title']} ("), (number, item)
    assert "bridge" in prompt_text(offer)


async def test_a_page_nothing_fills_is_short_with_its_reason(
    trained_service: ServiceFactory, shared_data: Path
) -> None:
    history = history_without_odd_titles(shared_data)
    fake = FakeOpenAI(
        responder=lambda body: Reply(content=json.dumps({"recommendations": "none, sorry"}))
    )
    with fake.serve() as base_url:
        async with trained_service(
            openai_base_url=base_url, openai_api_key=SecretStr("k"), recommender_llm_rounds=2
        ) as client:
            response = await client.post(
                "/recommendations", json={"recommender": "llm", "history": history, "n": 5}
            )
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["items"] == [] and page["short"] is True
    assert page["note"].startswith("0 of 5 movies found; 0 named"), page
    # a title round, then (the last round) a candidate round
    assert _schema(fake.requests[1])["properties"]["recommendations"]["items"]["type"] == (
        "integer"
    )
