"""Experiments: cohorts (a list or the seed study's rule), progress and the report."""

from __future__ import annotations

import io
import time
from collections import Counter

import pandas as pd
import pytest

from tests.orchestrator.conftest import OrchestratorFactory, dataset_tmdb_ids
from tests.orchestrator.standins import (
    StandInRecommender,
    StandInSimulator,
    stand_in_services,
)

PROTOCOL = {"pages": 2, "page_size": 3, "test_size": 6, "persona_size": 6, "seed": 5}
USERS = [47425, 85795, 117669]
#: A user of the seed cohort with 401 rated movies that have a TMDB id (the fewest).
FEW_RATINGS = 128179


@pytest.mark.slow
def test_an_experiment_runs_its_users_and_reports(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator(exposure=1.0)
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    with (
        stand_in_services(simulator, recommender) as services,
        orchestrator(
            seed_cohort_database_url,
            **services,
            orchestrator_workers=3,
        ) as client,
    ):
        response = client.post(
            "/experiments",
            json={
                **PROTOCOL,
                # 406 movies: USERS have 432 or more with a TMDB id, FEW_RATINGS has 401
                "persona_size": 400,
                "name": "three",
                "arms": ["als", "control"],
                "cohort": {"kind": "users", "user_ids": [*USERS, FEW_RATINGS]},
            },
        )
        assert response.status_code == 202, response.text
        experiment = response.json()
        assert experiment["progress"]["runs"] == 4
        assert any(f"user {FEW_RATINGS} has 401" in m for m in experiment["messages"])
        deadline = time.monotonic() + 120
        while (state := client.get(f"/experiments/{experiment['experiment_id']}").json())[
            "progress"
        ]["queued"] + state["progress"]["running"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        # one run failed: the experiment says so, with the reason, and is not "completed"
        assert state["status"] == "completed_with_failures"
        assert state["progress"]["completed"] == 3 and state["progress"]["failed"] == 1
        assert sum(state["progress"]["failure_reasons"].values()) == 1
        by_user = {run["user_id"]: run for run in state["runs"]}
        assert by_user[FEW_RATINGS]["status"] == "failed"
        assert {by_user[user]["archetype"] for user in USERS} <= {
            "Specialist",
            "Explorer",
            "Generalist",
        }

        base = f"/experiments/{experiment['experiment_id']}/report"
        report = client.get(base).json()
        assert report["n_users"] == 4 and report["n_completed"] == 3
        assert report["fidelity"]["n"] == 3 * 6
        assert report["statistics"]["n_users"] == 3
        assert report["statistics"]["control_arm"] == "control"
        cells = {
            (c["metric"], c["arm"], c["page"])
            for c in report["statistics"]["cells"]
            if c["archetype"] is None and c["genre"] == ""
        }
        assert {("shift", arm, page) for arm in ("als", "control") for page in (1, 2)} <= cells
        assert ("net_shift", "als", 2) in cells
        # The stand-in persona likes what it is shown more with exposure: als moves up.
        net = next(
            c
            for c in report["statistics"]["cells"]
            if (c["metric"], c["arm"], c["page"], c["genre"], c["archetype"])
            == ("net_shift", "als", 2, "", None)
        )
        assert net["n"] == 3

        statistics_csv = pd.read_csv(io.StringIO(client.get(base, params={"format": "csv"}).text))
        assert {"metric", "arm", "page", "mean", "ci_low", "p_vs_control"} <= set(
            statistics_csv.columns
        )
        users_csv = pd.read_csv(
            io.StringIO(client.get(base, params={"format": "csv", "table": "users"}).text)
        )
        assert set(users_csv["user_id"]) == set(USERS)
        fidelity_csv = pd.read_csv(
            io.StringIO(client.get(base, params={"format": "csv", "table": "fidelity"}).text)
        )
        assert list(fidelity_csv.columns) == ["tmdb_id", "predicted", "real", "user_id", "seen"]
        assert len(fidelity_csv) == report["fidelity"]["n"]
        png = client.get(base, params={"format": "png", "plot": "shift_by_page"})
        assert png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG")
        svg = client.get(base, params={"format": "svg", "plot": "fidelity"})
        assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
        genre = client.get(base, params={"format": "png", "plot": "genre_shift"})
        assert genre.content.startswith(b"\x89PNG")
        assert client.get("/experiments/4242/report").status_code == 404


def test_a_cohort_of_unknown_users_is_refused_and_stores_nothing(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    unknown = list(range(900_001, 900_026))  # 25 users the dataset does not have
    with orchestrator(seed_cohort_database_url, orchestrator_workers=0) as client:
        refused = client.post(
            "/experiments",
            json={**PROTOCOL, "cohort": {"kind": "users", "user_ids": [*USERS, *unknown]}},
        )
        assert refused.status_code == 422, refused.text
        body = refused.json()
        assert body["error"] == "unprocessable"
        detail = body["detail"]
        assert "25 listed user(s) not in dataset 'seed-cohort'" in detail
        # the first 20 are named, the rest counted
        assert all(str(user) in detail for user in unknown[:20])
        assert str(unknown[20]) not in detail and "(and 5 more)" in detail
        assert not any(str(user) in detail for user in USERS)
        # nothing was stored: no experiment, no run, not even the known users'
        assert client.get("/experiments").json()["total"] == 0
        assert client.get("/runs").json()["total"] == 0

        # A cohort none of whose users can run could only fail: refused too.
        hopeless = client.post(
            "/experiments",
            json={
                **PROTOCOL,
                "test_size": 200,
                "persona_size": 1000,
                "cohort": {"kind": "users", "user_ids": USERS},
            },
        )
        assert hopeless.status_code == 422, hopeless.text
        assert "none of the cohort's 3 user(s) can run" in hopeless.json()["detail"]
        assert client.get("/runs").json()["total"] == 0

        # A user listed twice takes part once, and the experiment says so.
        repeated = client.post(
            "/experiments",
            json={**PROTOCOL, "cohort": {"kind": "users", "user_ids": [*USERS, USERS[0]]}},
        )
        assert repeated.status_code == 202, repeated.text
        experiment = repeated.json()
        assert [run["user_id"] for run in experiment["runs"]] == USERS
        assert "1 repeated user id(s) listed once: 3 users" in experiment["messages"]
        assert client.get("/runs").json()["total"] == 3


def test_the_seed_study_cohort_rule(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    with orchestrator(seed_cohort_database_url, orchestrator_workers=0) as client:
        response = client.post(
            "/experiments",
            json={**PROTOCOL, "cohort": {"kind": "seed-study", "size": 20, "seed": 3}},
        )
        assert response.status_code == 202, response.text
        experiment = response.json()
        archetypes = Counter(run["archetype"] for run in experiment["runs"])
        # 60/25/15 of 20; the seed cohort re-labelled has only 3% Specialists (its 150 users
        # were already the study's sample), and the shortfall is reported, not hidden.
        assert archetypes["Explorer"] == 5 and archetypes["Generalist"] == 3
        short = 12 - archetypes["Specialist"]
        assert short > 0
        assert f"cohort short of {short} users (Specialist)" in experiment["messages"]
        assert all(run["status"] == "queued" for run in experiment["runs"])
        assert any("entropy thresholds" in message for message in experiment["messages"])
        again = client.post(
            "/experiments",
            json={**PROTOCOL, "cohort": {"kind": "seed-study", "size": 20, "seed": 3}},
        ).json()
        # Same users, same protocol and seed: the runs are shared, not duplicated.
        assert sorted(r["run_id"] for r in again["runs"]) == sorted(
            r["run_id"] for r in experiment["runs"]
        )
