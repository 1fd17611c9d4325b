"""The LLM arms and the LLM persona against a fake OpenAI-compatible endpoint at its worst: a
3-user experiment per behaviour (omissions, prose ratings, 429 storms with Retry-After, answers
cut off mid-JSON, refusals of the response format with 400 and llama.cpp's 500, 5xx and hangs),
on one stack. Every run completes, with the losses counted; a forced re-run with the same seed
makes no LLM call for valid work."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import httpx
import pytest

from prefshift_common.movies import display_title
from tests.e2e.conftest import Services
from tests.e2e.test_arms import _movies
from tests.fakes.openai_server import (
    FakeOpenAI,
    Misbehaviour,
    Reply,
    json_content,
    persona_answer,
    prompt_text,
)
from tests.polling import wait_for_run

# SQLite pass only: the LLM client's storage (replayed calls, format decisions, the shared rate
# budget) is checked on both databases in tests/simulator/test_llm.py.
pytestmark = pytest.mark.sqlite_only

USERS = 3  # per behaviour: enough calls (about 60) that every misbehaviour happens

PROTOCOL: dict[str, Any] = {
    "pages": 1,
    "page_size": 3,
    "test_size": 4,
    "persona_size": 6,
    "arms": ["llm", "llm-persuasive", "control"],
    "backend": "llm",
}

BEHAVIOURS: dict[str, Misbehaviour] = {
    "omissions": Misbehaviour(omit_share=0.15, seed=1),
    "prose ratings": Misbehaviour(prose_share=0.6, seed=2),
    "429 storm": Misbehaviour(rate_limit_share=0.3, retry_after=0.2, seed=3),
    "truncation": Misbehaviour(truncate_share=0.3, seed=4),
    "400 on json_schema": Misbehaviour(refuse_formats=frozenset({"json_schema"}), seed=5),
    "500 on json_schema and json_object": Misbehaviour(
        refuse_formats=frozenset({"json_schema", "json_object"}), refusal_status=500, seed=6
    ),
    "5xx and hangs": Misbehaviour(server_error_share=0.2, hang_share=0.05, seed=7),
}


class Endpoint:
    """Answers the persona's rating prompts by movie, and the recommenders' prompts with 12
    well-known titles of the seed cohort in turn."""

    def __init__(self, pool: list[tuple[str, int]]) -> None:
        self.pool = itertools.cycle(pool)
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        if "role-playing" in prompt_text(body):
            return Reply(content=persona_answer(body, lambda n: 0.5 + (n * 3 % 10) * 0.5))
        with self.lock:
            named = [next(self.pool) for _ in range(12)]
        return Reply(
            content=json_content({"recommendations": [{"title": t, "year": y} for t, y in named]})
        )


def _wait(client: httpx.Client, experiment_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 600
    while (state := client.get(f"/experiments/{experiment_id}").json())["status"] == "running":
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
    return state


@pytest.mark.timeout(1500)
def test_every_run_completes_against_the_worst_endpoints(services: Services) -> None:
    movies = _movies(services.env["PREFSHIFT_DATABASE_URL"]).dropna(subset=["year"]).head(300)
    pool = [(display_title(t), int(y)) for t, y in zip(movies.title, movies.year, strict=True)]
    fake = FakeOpenAI(responder=Endpoint(pool), api_key="sk-e2e-worst")
    env = {
        "PREFSHIFT_SIMULATOR_TIMEOUT": "3",
        "PREFSHIFT_RECOMMENDER_LLM_TIMEOUT": "3",
        "PREFSHIFT_SIMULATOR_MAX_OUTPUT_TOKENS": "4000",
        "PREFSHIFT_ORCHESTRATOR_STEP_BACKOFF_SECONDS": "0.2",
        "PREFSHIFT_LLM_FORMAT_REVISIT_SECONDS": "3600",
    }
    with fake.serve() as openai_url:
        env |= {"OPENAI_BASE_URL": openai_url, "OPENAI_API_KEY": "sk-e2e-worst"}
        with services.start(**env), services.client() as client:
            for seed, (behaviour, misbehaviour) in enumerate(BEHAVIOURS.items(), start=100):
                fake.misbehaviour = misbehaviour
                fake._random.seed(misbehaviour.seed)
                fake._refusals = 0
                before = len(fake.outcomes)
                body = {
                    **PROTOCOL,
                    "seed": seed,
                    "cohort": {"kind": "sample", "size": USERS, "seed": seed},
                }
                created = client.post("/experiments", json=body)
                assert created.status_code in (200, 201, 202), created.text
                state = _wait(client, created.json()["experiment_id"])
                assert state["status"] == "completed", (behaviour, state)
                assert state["progress"]["completed"] == USERS, (behaviour, state)
                outcomes = fake.outcomes[before:]
                spoiled = [o for o in outcomes if o != "ok"]
                # the endpoint really misbehaved, and the runs absorbed it
                assert spoiled, (behaviour, outcomes)
                if behaviour in ("prose ratings", "429 storm"):
                    # every answer was valid: a forced re-run of a user replays them all
                    run_id = state["runs"][0]["run_id"]
                    user = state["runs"][0]["user_id"]
                    calls = fake.calls
                    again = client.post(
                        f"/simulate/{user}?force=true",
                        json={**PROTOCOL, "seed": seed, "dataset": "seed-cohort"},
                    )
                    assert again.status_code == 202, again.text
                    assert again.json()["run_id"] != run_id
                    rerun = wait_for_run(client, again.json()["run_id"])
                    assert rerun["status"] == "completed", rerun
                    assert fake.calls == calls, behaviour
