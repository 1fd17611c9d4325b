"""Shown predictions and the re-rating designs: arms that show a predicted rating beside every
recommended movie (and the shift on the shown movies), the ``rerate`` and ``retest`` experiment
kinds and their report, checked against the stored ratings; resume keeps every rating once."""

from __future__ import annotations

import io
import json
import math
import time
from collections import Counter
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from prefshift_common.db import sync_connection
from prefshift_orchestrator.protocol import (
    RERATE_CONDITIONS,
    UserMovie,
    page_predictions,
    rerate_conditions,
)
from prefshift_orchestrator.schemas import ExperimentRequest, SimulationRequest
from prefshift_orchestrator.submission import protocol_params
from tests.orchestrator.conftest import USER, OrchestratorFactory, dataset_tmdb_ids
from tests.orchestrator.standins import (
    StandInRecommender,
    StandInSimulator,
    stand_in_services,
)
from tests.polling import wait_for_run

USERS = [47425, 85795, 117669, 5498]
SMALL = {"test_size": 24, "persona_size": 8, "seed": 5}
SHOWN_ARMS = [
    {"name": "als", "shown_prediction": {"offset": -1}},
    {"name": "als", "shown_prediction": {"offset": 0}},
    {"name": "als", "shown_prediction": {"offset": 1}},
    "control",
]


# --- the rules --------------------------------------------------------------------------------


def test_shown_arms_are_named_after_their_offsets_and_designs_keep_old_hashes() -> None:
    request = SimulationRequest.model_validate({"arms": SHOWN_ARMS})
    specs = request.arm_specs()
    assert [s.name for s in specs] == ["als_down1", "als_shown", "als_up1", "control"]
    assert [s.recommender for s in specs[:3]] == ["als"] * 3
    named = SimulationRequest.model_validate(
        {"arms": [{"name": "mine", "recommender": "als", "shown_prediction": {"offset": 0.5}}]}
    )
    assert named.arm_specs()[0].name == "mine"
    # a default protocol stores neither the design nor the shown predictions: old runs' hashes
    params = protocol_params(SimulationRequest.model_validate({"arms": ["als", "control"]}))
    assert "design" not in params and "delta" not in params
    assert all("shown_prediction" not in arm for arm in params["arms"])
    rerate = protocol_params(SimulationRequest.model_validate({"design": "rerate"}))
    assert rerate["design"] == "rerate" and rerate["pages"] == 1
    assert SimulationRequest.model_validate(rerate).arm_specs()[0].name == "rerate"


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"arms": [*SHOWN_ARMS, {"name": "als", "shown_prediction": {"offset": 1}}]}, "distinct"),
        ({"arms": ["rerate"]}, "rerate design"),
        ({"design": "rerate", "arms": ["als"]}, "has no arms"),
        ({"design": "rerate", "pages": 3}, "one re-rating session"),
        ({"design": "retest", "delta": 1}, "belongs to the rerate design"),
        ({"delta": 1}, "belongs to the rerate design"),
        ({"design": "replicate"}, "shift"),
        ({"arms": [{"name": "control", "shown_prediction": {}}]}, "shows nothing"),
        ({"arms": [{"name": "als", "shown_prediction": {"offset": 9}}]}, "less than or equal"),
    ],
)
def test_bad_designs_and_shown_arms_are_refused(body: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        ExperimentRequest.model_validate({**body, "cohort": {"user_ids": [1]}})


def test_page_predictions_map_the_ranking_onto_the_users_ratings() -> None:
    persona = [1.0, 2.0, 3.0, 3.0, 4.0, 5.0]
    plain = page_predictions(6, persona)
    assert plain == [5.0, 4.0, 3.0, 3.0, 2.0, 1.0]  # best first: the user's own ladder
    assert page_predictions(6, persona, 1.0) == [5.0, 5.0, 4.0, 4.0, 3.0, 2.0]  # clipped at 5
    assert page_predictions(6, persona, -1.0) == [4.0, 3.0, 2.0, 2.0, 1.0, 0.5]
    assert page_predictions(2, persona) == [4.0, 2.0]  # quantiles 0.75 and 0.25
    assert page_predictions(0, persona) == []


def test_rerate_conditions_are_seeded_balanced_and_clipped() -> None:
    test = [UserMovie(tmdb_id=100 + i, rating=0.5 + (i % 10) / 2) for i in range(30)]
    shown = rerate_conditions(7, test, 1.0)
    assert shown == rerate_conditions(7, list(reversed(test)), 1.0)  # order of the input: none
    assert shown != rerate_conditions(8, test, 1.0)
    counts = Counter(s.condition for s in shown.values())
    assert (
        set(counts) == set(RERATE_CONDITIONS) and max(counts.values()) - min(counts.values()) <= 1
    )
    real = {m.tmdb_id: m.rating for m in test}
    for tmdb_id, s in shown.items():
        expected = {
            "none": None,
            "accurate": real[tmdb_id],
            "up": min(5.0, real[tmdb_id] + 1.0),
            "down": max(0.5, real[tmdb_id] - 1.0),
        }[s.condition or ""]
        assert s.stars == expected


# --- experiments on the stand-ins -------------------------------------------------------------


def _finish(client: httpx.Client, experiment_id: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (state := client.get(f"/experiments/{experiment_id}").json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return state


def _ratings(client: httpx.Client, run_id: int) -> pd.DataFrame:
    return pd.DataFrame(client.get(f"/runs/{run_id}/ratings").json()["ratings"])


def test_a_rerate_experiment_reports_what_its_ratings_say(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator(anchoring=0.6)
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    with (
        stand_in_services(simulator, recommender) as services,
        orchestrator(seed_cohort_database_url, **services) as client,
    ):
        response = client.post(
            "/experiments",
            json={**SMALL, "design": "rerate", "delta": 1.0, "cohort": {"user_ids": USERS}},
        )
        assert response.status_code == 202, response.text
        experiment = response.json()
        assert experiment["params"]["design"] == "rerate"
        state = _finish(client, experiment["experiment_id"])
        assert state["status"] == "completed"
        base = f"/experiments/{experiment['experiment_id']}/report"
        report = client.get(base).json()
        frames = []
        for run in state["runs"]:
            ratings = _ratings(client, run["run_id"])
            assert set(ratings["arm"]) == {"baseline", "rerate"}
            assert client.get(f"/runs/{run['run_id']}").json()["arms"][0]["kind"] == "rerate"
            first = ratings[ratings["arm"] == "baseline"].set_index("tmdb_id")["rating"]
            second = ratings[ratings["arm"] == "rerate"].set_index("tmdb_id")
            assert second["condition"].notna().all() and first.notna().all()
            assert second["shown"].isna().eq(second["condition"] == "none").all()
            real = _real_ratings(seed_cohort_database_url, run["run_id"])
            frame = second.assign(first=first, user_id=run["user_id"]).reset_index()
            frames.append(frame.assign(real=frame["tmdb_id"].map(real)))
        csv_rows = pd.read_csv(
            io.StringIO(client.get(base, params={"format": "csv", "table": "rerating"}).text)
        )
        every = pd.read_csv(
            io.StringIO(
                client.get(base, params={"format": "csv", "table": "rerating_ratings"}).text
            )
        )
    # the stand-in's session 1 saw nothing; rerate's requests carried the shown predictions
    shown_requests = [r for r in simulator.requests if r.get("shown")]
    assert len(shown_requests) == len(USERS) and all(r["occasion"] == 1 for r in shown_requests)
    rows = pd.concat(frames, ignore_index=True)
    rows["change"] = rows["rating"] - rows["first"]
    rerating = report["rerating"]
    assert report["design"] == "rerate" and rerating["delta"] == 1.0
    assert rerating["n_users"] == len(USERS) and len(every) == len(rows)

    by_condition = {c["condition"]: c for c in rerating["conditions"]}
    for condition, cell in by_condition.items():
        part = rows[rows["condition"] == condition]
        per_user = part.groupby("user_id")["change"].mean()
        assert cell["mean_change"]["value"] == pytest.approx(per_user.mean())
        assert cell["mean_change"]["ci_low"] <= per_user.mean() <= cell["mean_change"]["ci_high"]
    # a persona pulled 60% of the way to what it is shown: up moves up, down moves down, and the
    # slope of change on perturbation is positive, its interval away from 0
    assert (
        by_condition["up"]["mean_change"]["value"]
        > 0
        > by_condition["down"]["mean_change"]["value"]
    )
    slope = rerating["slope"]
    shown = rows[rows["condition"] != "none"]
    x = (shown["shown"] - shown["real"]).to_numpy()
    # accurate shows the real rating; up and down it ± 1, clipped
    assert (x[(shown["condition"] == "accurate").to_numpy()] == 0).all()
    assert set(x[(shown["condition"] == "up").to_numpy()]) <= {0.0, 0.5, 1.0}
    expected_slope = np.polyfit(x, shown["change"].to_numpy(), 1)[0]
    assert slope["value"] == pytest.approx(expected_slope)
    assert 0 < slope["ci_low"] <= slope["value"] <= slope["ci_high"]
    perturbed = rows[rows["condition"].isin(["up", "down"]) & (rows["shown"] != rows["first"])]
    pull = np.sign(perturbed["shown"] - perturbed["first"])
    toward = ((np.sign(perturbed["change"]) == pull) & (perturbed["change"] != 0)).mean()
    assert rerating["perturbed"]["toward"] == pytest.approx(toward)
    assert rerating["perturbed"]["toward"] > rerating["perturbed"]["away"]
    blind = rows[rows["condition"] == "none"]
    assert rerating["retest_rmse"]["value"] == pytest.approx(
        math.sqrt((blind["change"] ** 2).mean())
    )
    assert rerating["retest_rmse"]["n"] == len(blind)
    measures = set(csv_rows["measure"])
    assert {"mean_change", "share_toward", "anchoring_slope", "retest_rmse"} <= measures


def _real_ratings(database_url: str, run_id: int) -> dict[int, float]:
    """The user's real ratings of the run's test movies, as the run stored its selection."""
    with sync_connection(database_url) as connection:
        selection = connection.execute(
            text("SELECT selection FROM runs WHERE id = :run"), {"run": run_id}
        ).scalar_one()
    if isinstance(selection, str):
        selection = json.loads(selection)
    return {int(m["tmdb_id"]): float(m["rating"]) for m in selection["test"]}


def test_a_retest_experiment_reports_the_rmse_between_sessions(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator()
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    with (
        stand_in_services(simulator, recommender) as services,
        orchestrator(seed_cohort_database_url, **services) as client,
    ):
        experiment = client.post(
            "/experiments",
            json={**SMALL, "design": "retest", "pages": 2, "cohort": {"user_ids": USERS[:3]}},
        ).json()
        state = _finish(client, experiment["experiment_id"])
        report = client.get(f"/experiments/{experiment['experiment_id']}/report").json()
        changes: dict[int, list[float]] = {1: [], 2: []}
        for run in state["runs"]:
            ratings = _ratings(client, run["run_id"])
            assert set(ratings["arm"]) == {"baseline", "control"}
            assert ratings["shown"].isna().all()
            first = ratings[ratings["arm"] == "baseline"].set_index("tmdb_id")["rating"]
            for page in (1, 2):
                later = ratings[(ratings["arm"] == "control") & (ratings["page"] == page)]
                changes[page].extend((later.set_index("tmdb_id")["rating"] - first).tolist())
    rerating = report["rerating"]
    assert rerating["design"] == "retest" and rerating["slope"] is None
    assert [c["condition"] for c in rerating["conditions"]] == ["none"]
    rmse = math.sqrt(float(np.mean(np.square(changes[1]))))
    assert rerating["retest_rmse"]["value"] == pytest.approx(rmse) and rmse > 0
    low, high = rerating["retest_rmse"]["ci_low"], rerating["retest_rmse"]["ci_high"]
    assert low <= rmse <= high
    assert [e["value"] for e in rerating["retest_rmse_by_session"]] == pytest.approx(
        [rmse, math.sqrt(float(np.mean(np.square(changes[2]))))]
    )


def test_shown_prediction_arms_measure_the_shift_on_the_shown_movies(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator(anchoring=0.5)
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    protocol = {"pages": 2, "page_size": 5, "test_size": 6, "persona_size": 10, "seed": 3}
    with (
        stand_in_services(simulator, recommender) as services,
        orchestrator(seed_cohort_database_url, **services) as client,
    ):
        experiment = client.post(
            "/experiments",
            json={**protocol, "arms": SHOWN_ARMS, "cohort": {"user_ids": USERS}},
        ).json()
        state = _finish(client, experiment["experiment_id"])
        assert state["status"] == "completed"
        report = client.get(f"/experiments/{experiment['experiment_id']}/report").json()
        run = client.get(f"/runs/{state['runs'][0]['run_id']}").json()
        ratings = _ratings(client, run["run_id"])
        shift = client.get(f"/runs/{run['run_id']}/shift").json()
    assert [a["name"] for a in run["arms"]] == ["als_down1", "als_shown", "als_up1", "control"]
    assert run["arms"][2]["shown_prediction"] == {"offset": 1.0}
    # every shown movie was rated beside its prediction and once more without it
    experience = ratings[ratings["phase"] == "experience"]
    blind = ratings[ratings["phase"] == "blind"]
    assert experience["shown"].notna().all() and blind["shown"].isna().all()
    assert len(experience) == len(blind) == 3 * 2 * 5
    pairs = experience.merge(blind, on=["arm", "page", "tmdb_id"], suffixes=("", "_blind"))
    assert len(pairs) == len(experience)
    for arm, offset in (("als_down1", -1.0), ("als_shown", 0.0), ("als_up1", 1.0)):
        mine = pairs[pairs["arm"] == arm]
        plain = pairs[pairs["arm"] == "als_shown"]
        # same page 1 from the same recommender: the offset is the whole difference (clipped)
        merged = mine[mine["page"] == 1].merge(plain[plain["page"] == 1], on="tmdb_id")
        expected = (merged["shown_y"] + offset).clip(0.5, 5.0)
        assert (merged["shown_x"] == expected).all()
        arm_summary = next(a for a in shift["arms"] if a["arm"] == arm)
        assert arm_summary["shown_shift"] == pytest.approx(
            (mine["rating"] - mine["rating_blind"]).mean()
        )
    summary = {s["arm"]: s for s in report["shown_predictions"]}
    assert [summary[a]["offset"] for a in ("als_down1", "als_shown", "als_up1")] == [-1, 0, 1]
    assert summary["als_down1"]["mean"] < summary["als_shown"]["mean"] < summary["als_up1"]["mean"]
    assert summary["als_down1"]["ci_high"] < summary["als_up1"]["ci_low"]
    cells = {
        (c["metric"], c["arm"], c["page"])
        for c in report["statistics"]["cells"]
        if c["archetype"] is None
    }
    assert ("shown_shift", "als_up1", 2) in cells and ("shown_shift", "control", 1) not in cells


def test_a_stopped_shown_prediction_run_resumes_with_every_rating_once(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    simulator = StandInSimulator(anchoring=0.5, delay=0.1)
    recommender = StandInRecommender(dataset_tmdb_ids(seed_cohort_database_url))
    protocol = {"pages": 3, "page_size": 4, "test_size": 6, "persona_size": 8, "seed": 12}
    arms = [{"name": "als", "shown_prediction": {"offset": 1}}, "control"]
    with stand_in_services(simulator, recommender) as services:
        with orchestrator(seed_cohort_database_url, **services) as first:
            run_id = first.post(f"/simulate/{USER}", json={**protocol, "arms": arms}).json()[
                "run_id"
            ]
            deadline = time.monotonic() + 60
            while first.get(f"/runs/{run_id}").json()["pages_done"] < 3:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert first.is_closed
        with orchestrator(seed_cohort_database_url, **services) as second:
            run = wait_for_run(second, run_id)
            ratings = _ratings(second, run_id)
    assert run["status"] == "completed" and run["attempts"] == 2
    counts = Counter(zip(ratings["arm"], ratings["page"], ratings["phase"], strict=True))
    for page in (1, 2, 3):
        assert counts[("als_up1", page, "experience")] == counts[("als_up1", page, "blind")] == 4
        assert counts[("als_up1", page, "test")] == counts[("control", page, "test")] == 6
    assert not ratings.duplicated(["arm", "page", "phase", "tmdb_id"]).any()
