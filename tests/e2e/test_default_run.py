"""The whole default run of a seed-cohort user on the embedded persona, all four services as
processes: every arm and page is there, and the shift and fidelity the orchestrator reports are
the ones recomputed here, independently, from the stored ratings and the real ones."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from prefshift_common.db import sync_connection
from tests.e2e.conftest import DATASET, USER, Services
from tests.polling import wait_for_run


def _real_ratings(database_url: str, user_id: int) -> dict[int, float]:
    with sync_connection(database_url) as connection:
        rows = connection.execute(
            text(
                "SELECT m.tmdb_id, r.rating FROM ratings r JOIN movies m "
                "ON m.dataset_id = r.dataset_id AND m.movielens_id = r.movielens_id "
                "JOIN datasets d ON d.id = r.dataset_id "
                "WHERE d.name = :name AND r.user_id = :user AND m.tmdb_id IS NOT NULL"
            ),
            {"name": DATASET, "user": user_id},
        )
        return {int(t): float(r) for t, r in rows}


def test_default_run_of_a_seed_cohort_user(services: Services) -> None:
    with services.start(), services.client() as client:
        response = client.post(f"/simulate/{USER}")
        assert response.status_code == 202, response.text
        run = wait_for_run(client, response.json()["run_id"])
        assert run["status"] == "completed", run
        run_id = run["run_id"]
        # No LLM is configured: the LLM arms are left out, with a message, never faked.
        assert [arm["name"] for arm in run["arms"]] == ["als", "random", "control"]
        assert sum("left out" in message for message in run["messages"]) == 2
        assert run["params"] | {"arms": None} == {
            "test_size": 30,
            "persona_size": 40,
            "pages": 4,
            "page_size": 30,
            "arms": None,
            "backend": None,
        }
        # the parameters leave backend and persona set to the simulator; the run says who rated
        assert run["rated_by"] == [
            {
                "backend": "embedded",
                "model": None,
                "persona_model": "seed-gpt5-v2",
                "population": "seed-cohort",
            }
        ]
        csv = client.get(f"/runs/{run_id}/ratings", headers={"accept": "text/csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        ratings = pd.read_csv(io.StringIO(csv.text))
        shift = client.get(f"/runs/{run_id}/shift").json()
        latest = client.get(f"/simulate/{USER}").json()

    # Every arm and page: 30 test re-ratings each, 30 experiences per recommending arm and page.
    counts = ratings.groupby(["arm", "page", "phase"]).size().to_dict()
    expected = {("baseline", 0, "test"): 30}
    for arm in ("als", "random", "control"):
        for page in range(1, 5):
            expected[(arm, page, "test")] = 30
            if arm != "control":
                expected[(arm, page, "experience")] = 30
    assert counts == expected
    assert ratings["rating"].between(0.5, 5.0).all()
    assert ((ratings["rating"] * 2) % 1 == 0).all()
    test_ids = set(ratings[ratings["arm"] == "baseline"]["tmdb_id"])
    for arm in ("als", "random"):
        shown = ratings[(ratings["arm"] == arm) & (ratings["phase"] == "experience")]["tmdb_id"]
        assert shown.is_unique and not set(shown) & test_ids

    # Shift, net shift, |Δ| and changed share, recomputed.
    tests = ratings[ratings["phase"] == "test"]
    base = tests[tests["arm"] == "baseline"].set_index("tmdb_id")["rating"]
    mine: dict[tuple[str, int], tuple[float, float, float]] = {}
    for (arm, page), group in tests[tests["arm"] != "baseline"].groupby(["arm", "page"]):
        delta = group.set_index("tmdb_id")["rating"] - base
        assert delta.notna().all() and len(delta) == 30
        mine[(str(arm), int(page))] = (
            float(delta.mean()),
            float(delta.abs().mean()),
            float((delta != 0).mean()),
        )
    reported = {(p["arm"], p["page"]): p for p in shift["pages"]}
    assert set(reported) == set(mine)
    for key, (delta, absolute, changed) in mine.items():
        assert reported[key]["shift"] == pytest.approx(delta)
        assert reported[key]["mean_abs_shift"] == pytest.approx(absolute)
        assert reported[key]["share_changed"] == pytest.approx(changed)
        net = None if key[0] == "control" else delta - mine[("control", key[1])][0]
        assert reported[key]["net_shift"] == pytest.approx(net)
    experiences = ratings[ratings["phase"] == "experience"]
    for (arm, page), group in experiences.groupby(["arm", "page"]):
        assert reported[(arm, page)]["appraisal"] == pytest.approx(group["rating"].mean())

    # Fidelity of the baseline against the user's real ratings of the test movies.
    real = _real_ratings(services.env["PREFSHIFT_DATABASE_URL"], USER)
    truth = np.array([real[int(m)] for m in base.index])
    error = base.to_numpy() - truth
    fidelity = shift["fidelity"]
    assert fidelity["n"] == 30
    assert fidelity["bias"] == pytest.approx(error.mean())
    assert fidelity["mae"] == pytest.approx(np.abs(error).mean())
    assert fidelity["rmse"] == pytest.approx(np.sqrt((error**2).mean()))
    assert fidelity["pearson_r"] == pytest.approx(np.corrcoef(base.to_numpy(), truth)[0, 1])

    assert latest["run_id"] == run_id
    summary = {s["arm"]: s for s in latest["shift_summary"]}
    assert summary["als"]["page"] == 4
    assert summary["als"]["shift"] == pytest.approx(mine[("als", 4)][0])
