"""Listings for browsing: datasets, experiments newest first, and a run's persona and test
movies with the real user's ratings."""

from __future__ import annotations

import time

from tests.orchestrator.conftest import OrchestratorFactory, dataset_tmdb_ids
from tests.orchestrator.standins import (
    StandInRecommender,
    StandInSimulator,
    stand_in_services,
)
from tests.polling import wait_for_run

PROTOCOL = {"pages": 1, "page_size": 3, "test_size": 5, "persona_size": 7, "seed": 2}


def test_datasets_experiments_and_a_runs_selection(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator(exposure=1.0)
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    with (
        stand_in_services(simulator, recommender) as services,
        orchestrator(seed_cohort_database_url, **services) as client,
    ):
        datasets = client.get("/datasets").json()
        assert [d["name"] for d in datasets] == ["seed-cohort"]
        assert datasets[0]["n_users"] == 150 and datasets[0]["n_ratings"] > 0
        assert client.get("/experiments").json() == {"experiments": [], "total": 0}

        ids = []
        # 128179 has 401 rated movies with a TMDB id: too few for the second's 405
        second = {"persona_size": 400}
        for name, users, protocol in (
            ("first", [47425], {}),
            ("second", [85795, 128179], second),
        ):
            response = client.post(
                "/experiments",
                json={
                    **PROTOCOL,
                    **protocol,
                    "name": name,
                    "arms": ["als", "control"],
                    "cohort": {"user_ids": users},
                },
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["experiment_id"])
        listed = client.get("/experiments").json()
        assert listed["total"] == 2
        assert [e["experiment_id"] for e in listed["experiments"]] == ids[::-1]
        assert [e["progress"]["runs"] for e in listed["experiments"]] == [2, 1]
        page = client.get("/experiments", params={"limit": 1, "offset": 1}).json()
        assert [e["name"] for e in page["experiments"]] == ["first"] and page["total"] == 2
        assert client.get("/experiments", params={"limit": 0}).status_code == 422

        deadline = time.monotonic() + 120
        while any(
            e["status"] == "running" for e in client.get("/experiments").json()["experiments"]
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        summaries = {e["name"]: e for e in client.get("/experiments").json()["experiments"]}
        assert summaries["first"]["status"] == "completed"
        # one of two runs failed (too few ratings): the experiment completed with a failure
        assert summaries["second"]["progress"]["failed"] == 1
        for name, experiment_id in zip(("first", "second"), ids, strict=True):
            full = client.get(f"/experiments/{experiment_id}").json()
            assert full["progress"] == summaries[name]["progress"]
            assert full["status"] == summaries[name]["status"]

        run_id = client.get(f"/experiments/{ids[0]}").json()["runs"][0]["run_id"]
        wait_for_run(client, run_id)
        selection = client.get(f"/runs/{run_id}/selection").json()
        assert len(selection["persona"]) == 7 and len(selection["test"]) == 5
        persona = {m["tmdb_id"] for m in selection["persona"]}
        test = {m["tmdb_id"] for m in selection["test"]}
        assert not persona & test
        assert all(0.5 <= m["rating"] <= 5.0 and m["title"] for m in selection["persona"])
        baseline = {
            r["tmdb_id"]
            for r in client.get(f"/runs/{run_id}/ratings").json()["ratings"]
            if r["arm"] == "baseline"
        }
        assert baseline == test
        runs = client.get("/runs").json()
        assert runs["total"] == 3
        assert [r["user_id"] for r in runs["runs"]] == [128179, 85795, 47425]
        assert runs["runs"][2]["run_id"] == run_id and runs["runs"][2]["status"] == "completed"
        assert (
            client.get("/runs", params={"limit": 1, "offset": 2}).json()["runs"][0]["run_id"]
            == run_id
        )
        missing = client.get("/runs/424242/selection")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
