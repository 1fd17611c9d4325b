"""The LLM recommenders against a fake OpenAI-compatible server (the real ``openai`` client over
loopback HTTP) and the real tmdb-proxy app in front of a fake TMDB, both on loopback.

The fake model answers like a real one does on a bad day: real titles, misspelled titles,
alternate and foreign titles, duplicates, movies the user already rated, movies outside the
dataset (only TMDB search can resolve those) and a title that does not exist."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import SecretStr

from prefshift_common.movies import display_title
from tests.fakes.live import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Reply, json_content, prompt_text
from tests.fakes.tmdb_server import FakeTmdb
from tests.recommender.conftest import ServiceFactory

TMDB_KEY = "tmdb-key-for-recommender-tests-5d1e"

# (as the model writes it, year, MovieLens movieId it means; None: outside ml-latest-small)
ODD_TITLES: list[tuple[str, int, int | None]] = [
    ("The Shawshenk Redemtion", 1994, 318),  # misspelled, article in front
    ("Se7en", 1995, 47),  # MovieLens: "Seven (a.k.a. Se7en)"
    ("The City of Lost Children", 1995, 29),  # MovieLens: "City of Lost Children, The (Cité …)"
    ("Léon", 1994, 293),  # MovieLens: "Léon: The Professional (a.k.a. The Professional) (Léon)"
    ("The Professional", 1994, 293),  # the same movie again, by another name
    ("Amélie", 2001, 4973),  # MovieLens: "Amelie (Fabuleux destin d'Amélie Poulain, Le)"
    ("The Good, the Bad and the Ugly", 1966, 1201),
    ("Spirited Away", 2001, 5618),
    ("Forest Gump", 1994, 356),  # misspelled; excluded by the request below
    ("Seven", 1995, 47),  # duplicate
    ("Parasite", 2019, None),  # not in ml-latest-small: TMDB search (via the proxy) finds it
    ("Joker", 2019, None),
    ("Zzyzx Quorble and the Nonexistent Film", 2021, None),  # no such movie
    # invented sequels of movies above, a year or two on: dropped, never the original
    ("Amélie 2", 2002, None),
    ("Spirited Away: The Return", 2001, None),
    ("The Good, the Bad and the Ugly II", 1967, None),
]
INVENTED = 4
OUTSIDE = {"Parasite": 496243, "Joker": 475557}
HISTORY_LINE = re.compile(r"^- (.+) \((\d{4})\)(?: \[.*\])?: [\d.]+/5$", re.M)


def links(shared_data: Path) -> dict[int, int]:
    frame = pd.read_csv(shared_data / "ml-latest-small" / "links.csv").dropna(subset=["tmdbId"])
    return {int(r.movieId): int(r.tmdbId) for r in frame.itertuples()}


def odd_title_ids(shared_data: Path) -> dict[str, int | None]:
    ids = links(shared_data)
    return {
        title: (ids[movie_id] if movie_id else OUTSIDE.get(title))
        for title, _, movie_id in ODD_TITLES
    }


def popular_pool(shared_data: Path) -> list[tuple[str, int]]:
    """Well-known movies of ml-latest-small as a model would name them."""
    folder = shared_data / "ml-latest-small"
    movies = pd.read_csv(folder / "movies.csv")
    counts = pd.read_csv(folder / "ratings.csv").groupby("movieId").size()
    movies["count"] = movies.movieId.map(counts).fillna(0)
    pool = []
    for row in movies.sort_values("count", ascending=False).head(150).itertuples():
        match = re.search(r"\((\d{4})\)\s*$", row.title)
        if match:
            pool.append((display_title(row.title), int(match.group(1))))
    return pool


def history_without_odd_titles(shared_data: Path, size: int = 40) -> list[dict[str, Any]]:
    folder = shared_data / "ml-latest-small"
    ratings = pd.read_csv(folder / "ratings.csv")
    odd = {movie_id for _, _, movie_id in ODD_TITLES if movie_id}
    mine = ratings[(ratings.userId == 414) & ~ratings.movieId.isin(odd)]
    ids = links(shared_data)
    mine = mine[mine.movieId.isin(ids)].sample(n=size, random_state=1)
    return [{"tmdb_id": ids[int(r.movieId)], "rating": float(r.rating)} for r in mine.itertuples()]


class MessyModel:
    """Answers the first call with the odd titles plus five movies from the prompt's own
    history; later calls with popular movies (some of them rated by the user)."""

    def __init__(self, pool: list[tuple[str, int]]) -> None:
        self.pool = pool
        self.calls = 0

    def __call__(self, body: dict[str, Any]) -> Reply:
        self.calls += 1
        prompt = prompt_text(body)
        rated = [(t, int(y)) for t, y in HISTORY_LINE.findall(prompt)][:5]
        if self.calls == 1:
            named = [(t, y) for t, y, _ in ODD_TITLES] + rated + [("Se7en", 1995)]
        else:
            start = (self.calls - 2) * 25
            named = self.pool[start : start + 25] + rated[:2]
        payload = {"recommendations": [{"title": t, "year": y} for t, y in named]}
        if self.calls == 2:  # one answer wrapped in prose and a code fence, as models do
            return Reply(content=f"Sure! Here you go:\n```json\n{json.dumps(payload)}\n```")
        return Reply(content=json_content(payload))


@pytest.fixture
def fake_tmdb() -> Iterator[FakeTmdb]:
    fake = FakeTmdb(api_key=TMDB_KEY)
    with fake.serve():
        yield fake


@pytest.fixture
def live_proxy(ml_small_database_url: str, fake_tmdb: FakeTmdb) -> Iterator[str]:
    """The real tmdb-proxy app on a loopback port, online against the fake TMDB."""
    from prefshift_tmdb_proxy.config import Settings as ProxySettings
    from prefshift_tmdb_proxy.main import create_app as create_proxy

    settings = ProxySettings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=ml_small_database_url,
        tmdb_api_key=SecretStr(TMDB_KEY),
        tmdb_read_token=None,
        tmdb_api_base_url=fake_tmdb.base_url,
        tmdb_proxy_max_attempts=1,
    )
    with LiveServer(create_proxy(settings)) as server:
        yield server.url


@pytest.mark.slow
@pytest.mark.parametrize("name", ["llm", "llm-persuasive"])
async def test_llm_page_from_a_messy_model(
    name: str, trained_service: ServiceFactory, live_proxy: str, shared_data: Path
) -> None:
    model = MessyModel(popular_pool(shared_data))
    fake = FakeOpenAI(responder=model, api_key="sk-test-recommender")
    history = history_without_odd_titles(shared_data)
    seen = {h["tmdb_id"] for h in history}
    expected = odd_title_ids(shared_data)
    excluded = [expected["Forest Gump"]]
    with fake.serve() as base_url:
        async with trained_service(
            openai_base_url=base_url,
            openai_api_key=SecretStr("sk-test-recommender"),
            recommender_model="fake-model",
            tmdb_proxy_url=live_proxy,
        ) as client:
            listing = {e["name"]: e for e in (await client.get("/recommenders")).json()}
            response = await client.post(
                "/recommendations",
                json={"recommender": name, "history": history, "n": 30, "exclude": excluded},
            )
    assert listing[name]["status"] == "ready"
    assert response.status_code == 200, response.text
    page = response.json()
    ids = [item["tmdb_id"] for item in page["items"]]
    assert len(ids) == 30 and len(set(ids)) == 30
    assert not set(ids) & seen
    assert not set(ids) & set(excluded)
    assert page["short"] is False
    assert page["unresolved_titles"] == INVENTED
    assert page["model_version"] == f"{name}:fake-model@t0.7"
    # Misspelled, alternate-title and outside-the-dataset movies were all resolved, and the
    # first answer's 16 odd titles yield these 9 movies in order (duplicates, the excluded
    # movie and the invented titles dropped).
    resolved = [
        "The Shawshenk Redemtion",
        "Se7en",
        "The City of Lost Children",
        "Léon",
        "Amélie",
        "The Good, the Bad and the Ugly",
        "Spirited Away",
        "Parasite",
        "Joker",
    ]
    assert ids[: len(resolved)] == [expected[title] for title in resolved]
    parasite = next(item for item in page["items"] if item["tmdb_id"] == OUTSIDE["Parasite"])
    assert parasite["movielens_id"] is None and parasite["title"] == "Parasite"
    assert 2 <= fake.calls <= 4
    first_prompt = prompt_text(fake.requests[0])
    assert fake.requests[0]["model"] == "fake-model"
    assert fake.requests[0]["temperature"] == 0.7
    # Follow-up prompts tell the model what it already named.
    assert "Se7en (1995)" in prompt_text(fake.requests[1])
    if name == "llm-persuasive":
        assert "bridge" in first_prompt and "dislikes" in first_prompt
    else:
        assert "bridge" not in first_prompt


async def test_llm_page_is_short_when_the_model_never_delivers(
    trained_service: ServiceFactory, shared_data: Path
) -> None:
    history = history_without_odd_titles(shared_data)
    fake = FakeOpenAI(
        responder=lambda body: Reply(
            content=json_content({"recommendations": [{"title": "Se7en", "year": 1995}] * 5})
        )
    )
    with fake.serve() as base_url:
        async with trained_service(
            openai_base_url=base_url, openai_api_key=SecretStr("k"), recommender_llm_rounds=3
        ) as client:
            response = await client.post(
                "/recommendations", json={"recommender": "llm", "history": history, "n": 10}
            )
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["short"] is True
    assert [item["title"] for item in page["items"]] == ["Seven"]
    # two title rounds, then (the last round) a candidate round the answer does not fit
    assert fake.calls == 3
    assert "numbered" in prompt_text(fake.requests[2])
    assert page["note"].startswith("1 of 10 movies found; 10 named: 0 unresolved"), page


@pytest.mark.parametrize(
    ("reply", "status", "error"),
    [
        (Reply(status=500, error_message="model crashed"), 503, "unavailable"),
        (Reply(status=401, error_message="bad key"), 502, "upstream_error"),
    ],
)
async def test_llm_upstream_failures(
    trained_service: ServiceFactory, reply: Reply, status: int, error: str
) -> None:
    fake = FakeOpenAI(responder=lambda body: reply)
    with fake.serve() as base_url:
        async with trained_service(
            openai_base_url=base_url, openai_api_key=SecretStr("k"), recommender_llm_max_retries=0
        ) as client:
            response = await client.post(
                "/recommendations",
                json={"recommender": "llm", "history": [{"tmdb_id": 603, "rating": 5}]},
            )
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


async def test_llm_endpoint_down_is_unavailable(trained_service: ServiceFactory) -> None:
    from tests.fakes.live import free_port

    async with trained_service(
        openai_base_url=f"http://127.0.0.1:{free_port()}/v1",
        openai_api_key=SecretStr("k"),
        recommender_llm_max_retries=0,
    ) as client:
        response = await client.post(
            "/recommendations",
            json={"recommender": "llm-persuasive", "history": [{"tmdb_id": 603, "rating": 5}]},
        )
    assert response.status_code == 503, response.text
    assert "unreachable" in response.json()["detail"]
