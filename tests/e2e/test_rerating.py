"""The re-rating designs and shown predictions on the real stack (the four services and the
console as processes), with both persona backends: the embedded persona, and the LLM persona
through the real ``openai`` client against the fake OpenAI-compatible server — a persona that
takes the prediction shown beside a movie as its rating. The prompts carry exactly the
predictions the orchestrator assigned, the report's figures follow from the stored ratings, a
forced re-run replays every call (the predictions are part of the replay key), and the
console's pages show the design and the predictions."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.e2e.conftest import ALL_SERVICES, DATASET, Services
from tests.fakes.openai_server import FakeOpenAI, Reply, json_content, prompt_text
from tests.polling import wait_for_run

# SQLite pass only: both backends through both designs over HTTP; the designs' storage, reports and
# resumption are checked on both databases in tests/orchestrator/test_shown_predictions.py.
pytestmark = pytest.mark.sqlite_only

SMALL: dict[str, Any] = {"test_size": 8, "persona_size": 10, "seed": 3, "dataset": DATASET}
COHORT = {"kind": "sample", "size": 3, "seed": 4}
ITEM = re.compile(r"^\[(\d+)\] (.*)$", re.MULTILINE)
PREDICTED = re.compile(r"\| Predicted for you: ★ ([0-9.]+)")


def anchored_persona(body: dict[str, Any]) -> Reply:
    """Rates a movie shown with a prediction at the prediction, any other at a rating read off
    its number."""
    last = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    ratings = {}
    for number, line in ITEM.findall(str(last)):
        predicted = PREDICTED.search(line)
        ratings[number] = (
            float(predicted.group(1)) if predicted else 0.5 + (int(number) * 3 % 10) * 0.5
        )
    if "role-playing" not in prompt_text(body):
        return Reply(content=json_content({"recommendations": []}))
    return Reply(
        content=json_content(
            {"ratings": {n: {"rating": r, "feeling": f"F{n}."} for n, r in ratings.items()}}
        )
    )


def _finish(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    created = client.post("/experiments", json=body)
    assert created.status_code == 202, created.text
    deadline = time.monotonic() + 600
    experiment_id = created.json()["experiment_id"]
    while (state := client.get(f"/experiments/{experiment_id}").json())["status"] == "running":
        assert time.monotonic() < deadline, state
        time.sleep(0.3)
    assert state["status"] == "completed", state
    return state


def _ratings(client: httpx.Client, run_id: int) -> pd.DataFrame:
    return pd.DataFrame(client.get(f"/runs/{run_id}/ratings").json()["ratings"])


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_both_backends_run_both_designs_and_the_shown_predictions(services: Services) -> None:
    fake = FakeOpenAI(responder=anchored_persona, api_key="sk-e2e-rerate")
    with fake.serve() as openai_url:
        env = {"OPENAI_BASE_URL": openai_url, "OPENAI_API_KEY": "sk-e2e-rerate"}
        with (
            services.start((*ALL_SERVICES, "console"), **env) as stack,
            services.client() as client,
        ):
            console = stack.url("console")
            # --- the embedded persona: rerate, retest and shown-prediction arms ----------
            rerate = _finish(
                client,
                {**SMALL, "design": "rerate", "backend": "embedded", "cohort": COHORT},
            )
            retest = _finish(
                client,
                {**SMALL, "design": "retest", "backend": "embedded", "cohort": COHORT},
            )
            shown_arms = _finish(
                client,
                {
                    **SMALL,
                    "pages": 1,
                    "page_size": 5,
                    "backend": "embedded",
                    "arms": [
                        {"name": "popularity", "shown_prediction": {"offset": 1}},
                        {"name": "popularity", "shown_prediction": {"offset": -1}},
                        "control",
                    ],
                    "cohort": COHORT,
                },
            )
            embedded_report = client.get(f"/experiments/{rerate['experiment_id']}/report").json()
            retest_report = client.get(f"/experiments/{retest['experiment_id']}/report").json()
            shown_report = client.get(f"/experiments/{shown_arms['experiment_id']}/report").json()
            shown_run = shown_arms["runs"][0]["run_id"]
            shown_ratings = _ratings(client, shown_run)
            embedded_run = client.get(f"/runs/{rerate['runs'][0]['run_id']}").json()

            # --- the LLM persona through the fake endpoint: rerate and retest -------------
            before = fake.calls
            llm_rerate = _finish(
                client, {**SMALL, "design": "rerate", "backend": "llm", "cohort": COHORT}
            )
            llm_bodies = fake.requests[before:]
            llm_retest = _finish(
                client,
                {**SMALL, "seed": 4, "design": "retest", "backend": "llm", "cohort": COHORT},
            )
            llm_report = client.get(f"/experiments/{llm_rerate['experiment_id']}/report").json()
            llm_retest_report = client.get(
                f"/experiments/{llm_retest['experiment_id']}/report"
            ).json()
            llm_runs = {
                run["run_id"]: _ratings(client, run["run_id"]) for run in llm_rerate["runs"]
            }
            # a forced re-run asks the same prompts, predictions included: all replayed
            calls = fake.calls
            first = llm_rerate["runs"][0]
            again = client.post(
                f"/simulate/{first['user_id']}?force=true",
                json={**SMALL, "design": "rerate", "backend": "llm"},
            )
            assert again.status_code == 202, again.text
            assert wait_for_run(client, again.json()["run_id"])["status"] == "completed"
            assert fake.calls == calls
            assert _ratings(client, again.json()["run_id"])[
                ["arm", "tmdb_id", "rating", "shown", "condition"]
            ].equals(llm_runs[first["run_id"]][["arm", "tmdb_id", "rating", "shown", "condition"]])

            experiment_page = httpx.get(
                f"{console}/experiments/{rerate['experiment_id']}", timeout=30
            ).text
            run_page = httpx.get(f"{console}/runs/{rerate['runs'][0]['run_id']}", timeout=30).text
            shown_page = httpx.get(f"{console}/runs/{shown_run}", timeout=30).text

    # embedded: every design completed and reported, rated by the embedded persona
    assert embedded_run["rated_by"][0]["backend"] == "embedded"
    assert embedded_run["arms"] == [
        {"name": "rerate", "kind": "rerate", "url": None, "recommender": None}
    ]
    for report, design in ((embedded_report, "rerate"), (retest_report, "retest")):
        assert report["design"] == design and report["rerating"]["n_users"] == 3
        assert report["rerating"]["retest_rmse"]["n"] > 0
    assert embedded_report["rerating"]["slope"]["n"] > 0
    assert {c["condition"] for c in embedded_report["rerating"]["conditions"]} == {
        "none",
        "accurate",
        "up",
        "down",
    }
    assert {s["arm"] for s in shown_report["shown_predictions"]} == {
        "popularity_up1",
        "popularity_down1",
    }
    counts = shown_ratings.groupby(["arm", "phase"]).size().to_dict()
    assert counts[("popularity_up1", "experience")] == counts[("popularity_up1", "blind")] == 5

    # LLM: session 2's prompts show exactly the predictions the orchestrator assigned
    shown_prompts = [b for b in llm_bodies if "Predicted for you" in prompt_text(b)]
    assert len(shown_prompts) == 3  # one re-rating session per user
    for ratings in llm_runs.values():
        second = ratings[ratings["arm"] == "rerate"]
        with_prediction = second[second["shown"].notna()]
        assert len(with_prediction) == (second["condition"] != "none").sum() > 0
        # the fake persona takes the shown prediction as its rating
        assert (with_prediction["rating"] == with_prediction["shown"]).all()
    rerating = llm_report["rerating"]
    assert rerating["design"] == "rerate"
    up = next(c for c in rerating["conditions"] if c["condition"] == "up")
    # every re-rating with a prediction went to it: toward, wherever there was room to move
    assert up["toward"] == 1.0 and up["away"] == 0.0
    # the fake persona rates an unshown movie by its number alone: same in both sessions
    assert rerating["retest_rmse"]["value"] == 0.0
    assert llm_retest_report["rerating"]["retest_rmse"]["value"] == 0.0

    # the console shows the design, the measures and the predictions
    assert "Design <strong>rerate</strong>" in experiment_page
    assert 'id="anchoring-slope"' in experiment_page and "rerating_ratings (CSV)" in experiment_page
    assert 'id="design"' in run_page and "shown ★" in run_page
    assert "popularity_up1" in shown_page and "blind" in shown_page
