"""A run of the protocol through the orchestrator's API, against contract-speaking services."""

from __future__ import annotations

import io

import pandas as pd
from sqlalchemy import create_engine, select

from prefshift_common.contracts import RatingsRequest
from prefshift_common.db import sync_url
from prefshift_orchestrator.models import RunPage
from tests.orchestrator.conftest import (
    USER,
    OrchestratorFactory,
    dataset_tmdb_ids,
)
from tests.orchestrator.standins import (
    StandInRecommender,
    StandInSimulator,
    stand_in_services,
)
from tests.polling import wait_for_run

SMALL = {"pages": 2, "page_size": 5, "test_size": 10, "persona_size": 12}


def test_a_run_follows_the_protocol_and_stores_every_rating(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator()
    pool = dataset_tmdb_ids(seed_cohort_database_url)
    recommender = StandInRecommender(pool)
    with (
        stand_in_services(simulator, recommender) as services,
        orchestrator(
            seed_cohort_database_url,
            **services,
        ) as client,
    ):
        response = client.post(f"/simulate/{USER}", json={**SMALL, "seed": 7})
        assert response.status_code == 202, response.text
        run = wait_for_run(client, response.json()["run_id"])
        assert run["status"] == "completed", run
        # The LLM arms are reported unavailable by the recommender: left out, with a message.
        assert [arm["name"] for arm in run["arms"]] == ["als", "random", "control"]
        assert any("'llm' left out" in message for message in run["messages"])
        assert run["progress"] == 1.0
        assert run["pages_done"] == run["pages_total"] == 1 + 3 * 2

        ratings = client.get(f"/runs/{run['run_id']}/ratings").json()["ratings"]
        frame = pd.DataFrame(ratings)
        cells = frame.groupby(["arm", "page", "phase"]).size().to_dict()
        assert cells == {
            ("baseline", 0, "test"): 10,
            **{(arm, page, "test"): 10 for arm in ("als", "random", "control") for page in (1, 2)},
            **{(arm, page, "experience"): 5 for arm in ("als", "random") for page in (1, 2)},
        }
        test_ids = set(frame[frame["arm"] == "baseline"]["tmdb_id"])
        for arm in ("als", "random"):
            shown = frame[(frame["arm"] == arm) & (frame["phase"] == "experience")]["tmdb_id"]
            assert shown.is_unique and not set(shown) & test_ids

        # The orchestrator asked the recommender with the persona history plus experiences, and
        # excluded test, persona and already-shown movies.
        als = [r for r in recommender.requests if r["recommender"] == "als"]
        assert len(als) == 2
        first, second = als
        assert len(second["history"]) == len(first["history"]) + 5 == 12 + 5
        assert test_ids <= set(first["exclude"])
        persona_ids = {m["tmdb_id"] for m in first["history"]}
        assert len(persona_ids) == 12 and not persona_ids & test_ids

        # Test re-ratings never become experiences; each page's experiences are the pages before.
        tests_of_als = [
            r
            for r in simulator.requests
            if set(r["items"]) == test_ids and len(r["persona"]["experiences"]) > 0
        ]
        assert sorted(len(r["persona"]["experiences"]) for r in tests_of_als) == [5, 5, 10, 10]
        # Every rating names its occasion, the page: 0 for the baseline, p on page p (5
        # experiences per page before it); no persona model asked: the simulator's default.
        for request in simulator.requests:
            experienced = len(request["persona"]["experiences"]) // 5
            if set(request["items"]) != test_ids:  # a page's recommendations
                assert request["occasion"] == experienced + 1
            elif experienced:  # a re-rating in a recommender arm
                assert request["occasion"] == experienced
            assert request.get("persona_model") is None
        unexposed = [r["occasion"] for r in simulator.requests if not r["persona"]["experiences"]]
        assert unexposed.count(0) == 1  # the baseline; control re-rates on pages 1 and 2
        assert {r["occasion"] for r in simulator.requests} == {0, 1, 2}

        # The stand-in's ratings are a known function of each request: the stored ones match.
        baseline_request = next(
            r
            for r in simulator.requests
            if set(r["items"]) == test_ids and not r["persona"]["experiences"]
        )
        expected = simulator.rate(RatingsRequest.model_validate(baseline_request))
        stored = frame[frame["arm"].isin(["baseline", "control"])]
        assert {r.tmdb_id: r.rating for r in expected} in [
            dict(zip(group["tmdb_id"], group["rating"], strict=True))
            for _, group in stored.groupby(["arm", "page"])
        ]

        csv = client.get(f"/runs/{run['run_id']}/ratings", params={"format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert len(pd.read_csv(io.StringIO(csv.text))) == len(frame)

        shift = client.get(f"/runs/{run['run_id']}/shift").json()
        assert {(p["arm"], p["page"]) for p in shift["pages"]} == {
            (arm, page) for arm in ("als", "random", "control") for page in (1, 2)
        }
        assert shift["fidelity"]["n"] == 10

        latest = client.get(f"/simulate/{USER}").json()
        assert latest["run_id"] == run["run_id"]
        assert {s["arm"] for s in latest["shift_summary"]} == {"als", "random", "control"}


def test_an_empty_page_is_recorded_with_its_reason_and_the_run_goes_on(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator()
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url), empty=["random"])
    with (
        stand_in_services(simulator, recommender) as services,
        orchestrator(seed_cohort_database_url, **services) as client,
    ):
        response = client.post(f"/simulate/{USER}", json={**SMALL, "seed": 8})
        run = wait_for_run(client, response.json()["run_id"])
        assert run["status"] == "completed", run
        empty = [m for m in run["messages"] if "pages showed no movies" in m]
        assert len(empty) == 1 and "arm 'random' page 1: 0 of 5 movies found" in empty[0], run
        frame = pd.DataFrame(client.get(f"/runs/{run['run_id']}/ratings").json()["ratings"])
        cells = frame.groupby(["arm", "page", "phase"]).size().to_dict()
        # random showed nothing, so the persona rated nothing on its pages, but re-rated
        assert ("random", 1, "experience") not in cells and cells[("random", 2, "test")] == 10
        assert cells[("als", 2, "experience")] == 5
    engine = create_engine(sync_url(seed_cohort_database_url))
    try:
        with engine.connect() as connection:
            pages = {
                (row.arm, row.page): row
                for row in connection.execute(
                    select(RunPage).where(RunPage.run_id == run["run_id"])
                )
            }
    finally:
        engine.dispose()
    for page in (1, 2):
        info = pages[("random", page)].recommender_info
        assert pages[("random", page)].recommended == [] and info["empty"], info
        assert info["reason"].startswith("0 of 5 movies found"), info
    assert not pages[("als", 1)].recommender_info.get("empty")
