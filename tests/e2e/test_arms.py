"""Arms beyond the defaults: the LLM recommenders against a fake OpenAI-compatible server, an
external recommender written here as an extra arm, and a planted shift that must be recovered."""

from __future__ import annotations

import itertools
import re
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from prefshift_common.contracts import (
    RecommendationRequest,
    RecommendationResponse,
    RecommendedItem,
)
from prefshift_common.db import sync_connection
from prefshift_common.movies import display_title
from tests.e2e.conftest import DATASET, USER, Services
from tests.fakes.live import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Reply, json_content
from tests.polling import wait_for_run

# SQLite pass only: the arms' protocol over HTTP; runs, pages and ratings are stored as in
# test_default_run.py and tests/orchestrator/, which run on both databases.
pytestmark = pytest.mark.sqlite_only


def external_recommender(catalogue: list[int]) -> tuple[FastAPI, list[dict[str, Any]]]:
    """An independent service speaking the recommender contract: the first ``n`` movies of its
    catalogue that are neither in the history nor excluded."""
    app = FastAPI()
    requests: list[dict[str, Any]] = []

    @app.post("/recommendations")
    async def recommendations(request: RecommendationRequest) -> RecommendationResponse:
        requests.append(request.model_dump())
        seen = {m.tmdb_id for m in request.history} | set(request.exclude)
        picks = [movie for movie in catalogue if movie not in seen][: request.n]
        return RecommendationResponse(
            recommender=request.recommender,
            model_version="external-1",
            request_id=str(len(requests)),
            items=[
                RecommendedItem(tmdb_id=t, title=str(t), score=1 / (i + 1))
                for i, t in enumerate(picks)
            ],
        )

    return app, requests


def _movies(database_url: str) -> pd.DataFrame:
    with sync_connection(database_url) as connection:
        rows = connection.execute(
            text(
                # ratings are counted per movie first: ratings' key (dataset, user, movie) has
                # no index by movie, and a join per rating took 100 s on SQLite (under 4 s so)
                "SELECT m.tmdb_id, m.title, m.year, CAST(m.tmdb_genres AS TEXT), "
                "CAST(COALESCE(SUM(r.n), 0) AS INTEGER) FROM movies m "
                "JOIN datasets d ON d.id = m.dataset_id "
                "LEFT JOIN (SELECT dataset_id, movielens_id, COUNT(*) AS n FROM ratings "
                "GROUP BY dataset_id, movielens_id) r ON r.dataset_id = m.dataset_id "
                "AND r.movielens_id = m.movielens_id WHERE d.name = :name "
                "AND m.tmdb_id IS NOT NULL GROUP BY m.tmdb_id, m.title, m.year, "
                "CAST(m.tmdb_genres AS TEXT)"
            ),
            {"name": DATASET},
        )
        frame = pd.DataFrame(rows, columns=["tmdb_id", "title", "year", "genres", "ratings"])
    return frame.sort_values(["ratings", "tmdb_id"], ascending=[False, True])


class TitleModel:
    """The fake LLM: each answer names 40 well-known titles of the seed cohort, in turn."""

    def __init__(self, pool: list[tuple[str, int]]) -> None:
        self.pool = itertools.cycle(pool)
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            named = [next(self.pool) for _ in range(40)]
        payload = {"recommendations": [{"title": t, "year": y} for t, y in named]}
        return Reply(content=json_content(payload))


def test_llm_arms_and_an_external_arm(services: Services, tmp_path: Path) -> None:
    movies = _movies(services.env["PREFSHIFT_DATABASE_URL"])
    well_known = movies.dropna(subset=["year"]).head(400)
    pool = [
        (display_title(t), int(y)) for t, y in zip(well_known.title, well_known.year, strict=True)
    ]
    fake = FakeOpenAI(responder=TitleModel(pool), api_key="sk-e2e-test")
    external, external_requests = external_recommender(list(movies.tmdb_id[400:1400]))
    with (
        fake.serve() as openai_url,
        LiveServer(external) as outside,
        services.start(
            OPENAI_BASE_URL=openai_url,
            OPENAI_API_KEY="sk-e2e-test",
            PREFSHIFT_ARM_URL_ALLOW="127.0.0.1",
        ),
        services.client() as client,
    ):
        arms = ["llm", "llm-persuasive", {"name": "outside", "url": outside.url}, "control"]
        body = {"pages": 2, "page_size": 10, "arms": arms, "seed": 5}
        response = client.post(f"/simulate/{USER}", json=body)
        assert response.status_code == 202, response.text
        run = wait_for_run(client, response.json()["run_id"])
        assert run["status"] == "completed", run
        assert [arm["name"] for arm in run["arms"]] == [
            "llm",
            "llm-persuasive",
            "outside",
            "control",
        ]
        assert not any("left out" in message for message in run["messages"])
        ratings = pd.DataFrame(client.get(f"/runs/{run['run_id']}/ratings").json()["ratings"])
        shift = client.get(f"/runs/{run['run_id']}/shift").json()
    counts = ratings.groupby(["arm", "phase"]).size().to_dict()
    assert counts[("baseline", "test")] == 30
    for arm in ("llm", "llm-persuasive", "outside"):
        assert counts[(arm, "test")] == 2 * 30
        assert counts[(arm, "experience")] == 2 * 10
        shown = ratings[(ratings.arm == arm) & (ratings.phase == "experience")].tmdb_id
        assert shown.is_unique
    # The LLM arms really asked the fake (the persuasive prompt talks of bridge movies) …
    prompts = [" ".join(str(m.get("content")) for m in r["messages"]) for r in fake.requests]
    assert any("bridge" in prompt for prompt in prompts)
    assert len(fake.requests) >= 4
    # … and the external arm got the persona's history plus its own experiences.
    assert [len(r["history"]) for r in external_requests] == [40, 50]
    assert {p["arm"] for p in shift["pages"]} == {"llm", "llm-persuasive", "outside", "control"}


def _horror_fan(database_url: str) -> int:
    with sync_connection(database_url) as connection:
        return int(
            connection.execute(
                text(
                    "SELECT r.user_id FROM ratings r JOIN movies m ON m.dataset_id = "
                    "r.dataset_id AND m.movielens_id = r.movielens_id "
                    "WHERE CAST(m.tmdb_genres AS TEXT) LIKE :horror "
                    "GROUP BY r.user_id ORDER BY COUNT(*) DESC, r.user_id LIMIT 1"
                ),
                {"horror": '%"Horror"%'},
            ).scalar_one()
        )


def test_a_planted_shift_is_recovered(services: Services) -> None:
    database_url = services.env["PREFSHIFT_DATABASE_URL"]
    movies = _movies(database_url)
    horror = [
        int(t)
        for t, g in zip(movies.tmdb_id, movies.genres, strict=True)
        if g and re.search(r'"Horror"', g)
    ]
    user = _horror_fan(database_url)
    app, _ = external_recommender(horror)
    with (
        LiveServer(app) as horror_only,
        services.start(
            PREFSHIFT_SIMULATOR_EXPOSURE_RATE="0.1",
            PREFSHIFT_SIMULATOR_REINFORCEMENT_RATE="0",
            PREFSHIFT_SIMULATOR_SATIATION_RATE="0",
            # noise-free, so the planted shift is the only thing that moves a rating
            PREFSHIFT_SIMULATOR_OCCASION_NOISE="0",
            PREFSHIFT_SIMULATOR_LASTING_NOISE="0",
            PREFSHIFT_SIMULATOR_DRIFT_NOISE="0",
            PREFSHIFT_ARM_URL_ALLOW="127.0.0.1",
        ),
        services.client() as client,
    ):
        arms = [{"name": "horror", "url": horror_only.url}, "control"]
        response = client.post(f"/simulate/{user}", json={"arms": arms, "seed": 2})
        run = wait_for_run(client, response.json()["run_id"])
        assert run["status"] == "completed", run
        shift = client.get(f"/runs/{run['run_id']}/shift").json()
    genre = {(g["arm"], g["page"], g["genre"]): g for g in shift["genres"]}
    planted = genre[("horror", 4, "Horror")]
    assert planted["n"] >= 3
    assert planted["net_shift"] > 0.5
    # The shift grows with exposure, page by page.
    by_page = [genre[("horror", page, "Horror")]["net_shift"] for page in range(1, 5)]
    assert by_page == sorted(by_page) and by_page[0] > 0
    # control saw nothing and did not move.
    for page in shift["pages"]:
        if page["arm"] == "control":
            assert abs(page["shift"]) < 0.05 and page["share_changed"] < 0.1
    # Movies without Horror moved less than the Horror ones.
    others = [
        g["net_shift"]
        for (arm, page, name), g in genre.items()
        if arm == "horror"
        and page == 4
        and name not in ("Horror", "Thriller", "Mystery")
        and g["net_shift"] is not None
    ]
    assert max(others, default=0.0) < planted["net_shift"]
