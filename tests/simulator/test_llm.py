"""The llm backend through the real ``openai`` client against a fake OpenAI-compatible server:
JSON and line answers, wrong echoed titles, missing and invalid items, garbage, 429/500, a slow
answer past the timeout, recorded calls replayed, and the key kept out of everything."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from prefshift_common.db import create_sync_db_engine
from prefshift_simulator.models import LlmCall
from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.simulator.conftest import PersonaCase, SimulatorFactory

API_KEY = "sk-test-5f0c2b7d9e114a3c8f6e"
ITEM_LINE = re.compile(r"^\[(\d+)\] (.+?) \|", re.MULTILINE)


def last_user_message(body: dict[str, Any]) -> str:
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


def asked_items(body: dict[str, Any]) -> list[int]:
    """Numbers of the movies the latest message asks about."""
    return [int(n) for n, _ in ITEM_LINE.findall(last_user_message(body))]


def rating_for(number: int) -> float:
    """A rating that differs between neighbouring numbers, to prove matching by number."""
    return 0.5 + (number * 7 % 10) * 0.5


def json_answer(numbers: list[int], *, title: str = "Some Other Film") -> str:
    entries = [
        {"item": n, "title": f"{title} {n + 1}", "rating": rating_for(n), "feeling": f"F{n}."}
        for n in reversed(numbers)
    ]
    return json.dumps({"ratings": entries})


def line_answer(numbers: list[int]) -> str:
    return "\n".join(
        f"MOVIE: [{n}] Definitely Not The Title; RATING: {rating_for(n)}; FEELING: F{n}.;"
        for n in numbers
    )


def answer_all(body: dict[str, Any]) -> Reply:
    numbers = asked_items(body)
    if body.get("response_format", {}).get("type") == "json_schema":
        return Reply(content=json_answer(numbers))
    return Reply(content=line_answer(numbers))


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(responder=answer_all, api_key=API_KEY)
    with server.serve() as base_url:
        server.base_url = base_url  # type: ignore[attr-defined]
        yield server


def llm_settings(fake: FakeOpenAI, **overrides: Any) -> dict[str, Any]:
    return {
        "openai_base_url": fake.base_url,  # type: ignore[attr-defined]
        "openai_api_key": SecretStr(API_KEY),
        "simulator_model": "persona-model-1",
        "simulator_max_retries": 1,
        "simulator_timeout": 20.0,
        **overrides,
    }


def body_for(case: PersonaCase, **extra: Any) -> dict[str, Any]:
    experiences = [
        {"tmdb_id": case.test[0], "rating": 4.5, "feeling": "Gripping from start to finish."}
    ]
    return {
        "persona": case.persona(experiences=experiences),
        "items": case.test[1:11],
        "seed": 3,
        **extra,
    }


def expected(case: PersonaCase) -> dict[int, float]:
    return {t: rating_for(n) for n, t in enumerate(case.test[1:11], start=1)}


def records(database_url: str) -> list[LlmCall]:
    engine = create_sync_db_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(LlmCall.__table__).order_by(LlmCall.id)).all()
            return [LlmCall(**row._mapping) for row in rows]
    finally:
        engine.dispose()


async def test_json_answer_is_matched_by_number_and_the_prompt_is_grounded(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    async with simulator(**llm_settings(fake)) as client:
        backends = (await client.get("/backends")).json()["backends"]
        response = await client.post("/ratings", json=body_for(case))
    assert {b["name"]: b["default"] for b in backends} == {"embedded": False, "llm": True}
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["backend"] == "llm" and body["model"] == "persona-model-1"
    assert {r["tmdb_id"]: r["rating"] for r in body["ratings"]} == expected(case)
    assert body["ratings"][0]["feeling"] == "F1."
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["cached"] is False

    assert fake.calls == 1
    sent = fake.requests[0]
    assert sent["model"] == "persona-model-1" and sent["temperature"] == 0.3
    assert sent["seed"] == 3
    assert sent["response_format"]["type"] == "json_schema"
    prompt = last_user_message(sent)
    # history: title, the user's own rating, TMDB genres, overview
    assert "your rating:" in prompt and "genres:" in prompt
    history_ratings = {f"your rating: {m.rating:.1f}" for m in case.history}
    assert all(text in prompt for text in history_ratings)
    assert "you felt: Gripping from start to finish." in prompt
    assert asked_items(sent) == list(range(1, 11))


async def test_endpoint_without_json_schema_gets_the_seed_line_format(
    simulator: SimulatorFactory, case: PersonaCase, seed_cohort_database_url: str
) -> None:
    fake = FakeOpenAI(responder=answer_all, api_key=API_KEY, reject_json_schema=True)
    with fake.serve() as base_url:
        fake.base_url = base_url  # type: ignore[attr-defined]
        async with simulator(**llm_settings(fake)) as client:
            response = await client.post("/ratings", json=body_for(case))
            again = await client.post("/ratings", json=body_for(case, seed=4))
        assert response.status_code == 200, response.text
        # titles echoed wrongly ("Definitely Not The Title"): matched by the number anyway
        assert {r["tmdb_id"]: r["rating"] for r in response.json()["ratings"]} == expected(case)
        assert again.status_code == 200
        # one 400 about the response format, then line-format calls only
        assert [r.get("response_format") is not None for r in fake.requests] == [
            True,
            False,
            False,
        ]
        assert "MOVIE: [number] title; RATING: rating; FEELING: one sentence;" in (
            last_user_message(fake.requests[1])
        )
        statuses = [r.status for r in records(seed_cohort_database_url)]
        assert statuses == ["unsupported", "ok", "ok"]

        # a restarted simulator knows the refusal from the records: the identical request is
        # replayed without any call, the refused one included
        async with simulator(**llm_settings(fake)) as client:
            replayed = await client.post("/ratings", json=body_for(case))
        assert replayed.json()["usage"]["cached"] is True
        assert replayed.json()["ratings"] == response.json()["ratings"]
        assert fake.calls == 3


async def test_missing_and_invalid_items_are_asked_again(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    first = [n for n in range(1, 11) if n not in (3, 5)]
    broken = json.loads(json_answer(first))
    broken["ratings"].append({"item": 5, "rating": 7.5, "feeling": "Off the scale."})
    fake.script(Reply(content=json.dumps(broken)))
    async with simulator(**llm_settings(fake)) as client:
        response = await client.post("/ratings", json=body_for(case))
    assert response.status_code == 200, response.text
    assert {r["tmdb_id"]: r["rating"] for r in response.json()["ratings"]} == expected(case)
    assert fake.calls == 2
    reask = last_user_message(fake.requests[1])
    assert asked_items(fake.requests[1]) == [3, 5]
    assert "missing from the answer" in reask and "7.5" in reask
    # the re-ask continues the conversation: the model sees its own first answer
    assert fake.requests[1]["messages"][2]["role"] == "assistant"


async def test_items_still_missing_after_the_reasks_fail_naming_them(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    def never_item_2(body: dict[str, Any]) -> Reply:
        return Reply(content=json_answer([n for n in asked_items(body) if n != 2]))

    fake.responder = never_item_2
    async with simulator(**llm_settings(fake, simulator_reasks=2)) as client:
        response = await client.post("/ratings", json=body_for(case))
    assert response.status_code == 502
    error = response.json()
    assert error["error"] == "upstream_error"
    assert "[2]" in error["detail"] and f"tmdb {case.test[2]}" in error["detail"]
    assert "1 of 10" in error["detail"]
    assert fake.calls == 3


async def test_garbage_is_asked_again_then_reported(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    fake.script(Reply(content="I'm sorry, but I can't help with rating movies."))
    async with simulator(**llm_settings(fake, simulator_reasks=1)) as client:
        recovered = await client.post("/ratings", json=body_for(case))
        assert recovered.status_code == 200, recovered.text
        assert fake.calls == 2

        fake.responder = lambda body: Reply(content="<html>not json, not lines</html>")
        failed = await client.post("/ratings", json=body_for(case, seed=9))
    assert failed.status_code == 502
    assert "10 of 10" in failed.json()["detail"]
    assert fake.calls == 4


async def test_rate_limit_is_retried_by_the_client_only(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    limited = Reply(status=429, headers={"retry-after": "0"}, error_message="Rate limit reached")
    async with simulator(**llm_settings(fake, simulator_max_retries=2)) as client:
        fake.script(limited)
        recovered = await client.post("/ratings", json=body_for(case))
        assert recovered.status_code == 200
        assert fake.calls == 2

        fake.script(limited, limited, limited, limited)
        response = await client.post("/ratings", json=body_for(case, seed=5))
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert fake.calls == 2 + 3  # 1 call + max_retries, not multiplied by the re-asks


async def test_server_errors_become_502_after_the_client_retries(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    fake.script(Reply(status=500), Reply(status=500))
    async with simulator(**llm_settings(fake, simulator_max_retries=1)) as client:
        response = await client.post("/ratings", json=body_for(case))
    assert response.status_code == 502
    assert "500" in response.json()["detail"]
    assert fake.calls == 2


async def test_slow_answer_past_the_timeout_is_504(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    fake.script(Reply(content=json_answer(list(range(1, 11))), delay=5.0))
    settings = llm_settings(fake, simulator_timeout=0.5, simulator_max_retries=0)
    async with simulator(**settings) as client:
        response = await client.post("/ratings", json=body_for(case))
    assert response.status_code == 504
    assert response.json()["error"] == "upstream_timeout"


async def test_identical_request_is_replayed_without_a_second_call(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    async with simulator(**llm_settings(fake)) as client:
        first = await client.post("/ratings", json=body_for(case))
        second = await client.post("/ratings", json=body_for(case))
        assert fake.calls == 1
        other_seed = await client.post("/ratings", json=body_for(case, seed=99))
        assert fake.calls == 2
    assert second.json()["ratings"] == first.json()["ratings"]
    assert second.json()["usage"]["cached"] is True
    assert second.json()["usage"]["prompt_tokens"] == 0
    assert other_seed.json()["usage"]["cached"] is False

    async with simulator(**llm_settings(fake, simulator_replay=False)) as client:
        await client.post("/ratings", json=body_for(case))
    assert fake.calls == 3


async def test_calls_are_recorded_without_the_key(
    simulator: SimulatorFactory,
    case: PersonaCase,
    fake: FakeOpenAI,
    seed_cohort_database_url: str,
) -> None:
    fake.script(Reply(status=500, error_message=f"upstream echoed {API_KEY}"))
    async with simulator(**llm_settings(fake, simulator_max_retries=0)) as client:
        failed = await client.post("/ratings", json=body_for(case))
        ok = await client.post("/ratings", json=body_for(case))
    assert failed.status_code == 502 and API_KEY not in failed.text
    assert ok.status_code == 200
    calls = records(seed_cohort_database_url)
    assert [c.status for c in calls] == ["error", "ok"]
    good = calls[1]
    assert good.model == "persona-model-1" and len(good.request_hash) == 64
    assert good.prompt[1]["content"] == last_user_message(fake.requests[1])
    assert good.response == fake_response_text(fake)
    assert good.prompt_tokens > 0 and good.completion_tokens > 0 and good.latency_ms > 0
    assert good.parameters["temperature"] == 0.3
    everything = json.dumps([{k: str(v) for k, v in vars(c).items()} for c in calls])
    assert API_KEY not in everything


def fake_response_text(fake: FakeOpenAI) -> str:
    return json_answer(asked_items(fake.requests[-1]))


async def test_wrong_key_is_a_502_that_does_not_echo_it(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    settings = llm_settings(fake, openai_api_key=SecretStr("sk-wrong-0000"))
    async with simulator(**settings) as client:
        response = await client.post("/ratings", json=body_for(case))
    assert response.status_code == 502
    assert "API key" in response.json()["detail"] and "sk-wrong" not in response.text


async def test_movies_tmdb_does_not_know_are_404_for_the_llm(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    async with simulator(**llm_settings(fake)) as client:
        response = await client.post(
            "/ratings", json=body_for(case, items=[case.test[1], 999_999_999])
        )
    assert response.status_code == 404
    assert "999999999" in response.json()["detail"]
    assert fake.calls == 0
