"""The llm backend through the real ``openai`` client against a fake OpenAI-compatible server at
its worst: wrong echoed titles, omitted and invalid items, answers cut off mid-JSON, ratings in
prose, refusals of the response format (400 and llama.cpp's 500), 429 with Retry-After, 5xx,
answers past the timeout; valid calls replayed, invalid ones never; the key kept out of it all."""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from prefshift_common.db import sync_connection
from prefshift_common.llm.models import LlmCall, LlmFormatDecision, LlmRateBudget
from tests.fakes.openai_server import (
    LLAMA_CPP_REFUSAL,
    FakeOpenAI,
    Misbehaviour,
    Reply,
    prompt_text,
)
from tests.simulator.conftest import PersonaCase, SimulatorFactory

API_KEY = "sk-test-5f0c2b7d9e114a3c8f6e"
ITEM_LINE = re.compile(r"^\[(\d+)\] (.+?) \|", re.MULTILINE)
GRID = [x / 2 for x in range(1, 11)]


def last_user_message(body: dict[str, Any]) -> str:
    return str(next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user"))


def asked(body: dict[str, Any]) -> dict[int, str]:
    """The movies a request asks about: number → label."""
    return {int(n): label for n, label in ITEM_LINE.findall(last_user_message(body))}


def rating_of(label: str) -> float:
    """The fake persona's rating of a movie, from its label alone (so re-asks that number the
    movies afresh still get the same rating)."""
    return GRID[zlib.crc32(label.encode()) % 10]


def keyed(numbers: dict[int, str]) -> str:
    return json.dumps(
        {
            "ratings": {
                str(n): {"rating": rating_of(t), "feeling": f"F {t}."} for n, t in numbers.items()
            }
        }
    )


def listed(numbers: dict[int, str]) -> str:
    entries = [
        {"item": n, "title": "Some Other Film", "rating": rating_of(t), "feeling": f"F {t}."}
        for n, t in reversed(numbers.items())
    ]
    return json.dumps({"ratings": entries})


def lines(numbers: dict[int, str]) -> str:
    return "\n".join(
        f"MOVIE: [{n}] Definitely Not The Title; RATING: {rating_of(t)}; FEELING: F {t}.;"
        for n, t in numbers.items()
    )


def answer_all(body: dict[str, Any]) -> Reply:
    numbers = asked(body)
    return Reply(content=keyed(numbers) if body.get("response_format") else lines(numbers))


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


def expected(case: PersonaCase, fake: FakeOpenAI) -> dict[int, float]:
    """What the fake persona rates each movie, read off the first request's numbered list."""
    labels = asked(fake.requests[0])
    return {t: rating_of(labels[n]) for n, t in enumerate(case.test[1:11], start=1)}


def ratings(response: Any) -> dict[int, float]:
    return {r["tmdb_id"]: r["rating"] for r in response.json()["ratings"]}


def rows(database_url: str, model: Any) -> list[Any]:
    with sync_connection(database_url) as connection:
        table = model.__table__
        order = table.c.id if "id" in table.c else table.c.scope
        return [model(**r._mapping) for r in connection.execute(select(table).order_by(order))]


async def test_json_answer_is_matched_by_number_and_the_prompt_is_grounded(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    fake.responder = lambda body: Reply(content=listed(asked(body)))
    async with simulator(**llm_settings(fake)) as client:
        backends = (await client.get("/backends")).json()["backends"]
        response = await client.post("/ratings", json=body_for(case))
    assert {b["name"]: b["default"] for b in backends} == {"embedded": False, "llm": True}
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["backend"] == "llm" and body["model"] == "persona-model-1"
    assert ratings(response) == expected(case, fake)
    assert body["missing"] == []
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["cached"] is False

    assert fake.calls == 1
    sent = fake.requests[0]
    assert sent["model"] == "persona-model-1" and sent["temperature"] == 0.3
    assert sent["seed"] == 3
    # constrained decoding cannot leave a movie out: every number a required key, the rating
    # one of the 0.5 grid
    assert sent["response_format"]["type"] == "json_schema"
    schema = sent["response_format"]["json_schema"]["schema"]["properties"]["ratings"]
    assert schema["required"] == [str(n) for n in range(1, 11)]
    assert schema["properties"]["7"]["properties"]["rating"]["enum"] == GRID
    prompt = last_user_message(sent)
    assert "your rating:" in prompt and "genres:" in prompt
    assert all(f"your rating: {m.rating:.1f}" in prompt for m in case.history)
    assert "you felt: Gripping from start to finish." in prompt
    assert list(asked(sent)) == list(range(1, 11))


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "response_format json_schema is not supported"),
        (422, "Unsupported value: 'response_format.type' json_schema"),
        (500, LLAMA_CPP_REFUSAL),
    ],
)
async def test_a_refused_response_format_steps_down_the_ladder_whatever_the_status(
    simulator: SimulatorFactory,
    case: PersonaCase,
    seed_cohort_database_url: str,
    status: int,
    message: str,
) -> None:
    bad = Misbehaviour(refuse_formats=frozenset({"json_schema"}), refusal_status=status)
    fake = FakeOpenAI(responder=answer_all, api_key=API_KEY, misbehaviour=bad)
    with fake.serve() as base_url:
        fake.base_url = base_url  # type: ignore[attr-defined]
        async with simulator(**llm_settings(fake)) as client:
            response = await client.post("/ratings", json=body_for(case))
            again = await client.post("/ratings", json=body_for(case, seed=4))
        assert response.status_code == 200, response.text
        assert again.status_code == 200
        assert ratings(response) == expected(case, fake)
        formats = [(r.get("response_format") or {}).get("type") for r in fake.requests]
        # json_schema refused once; json_object with the schema from then on
        assert formats == ["json_schema", "json_object", "json_object"]
        assert fake.requests[1]["response_format"]["schema"]["required"] == ["ratings"]
        calls = rows(seed_cohort_database_url, LlmCall)
        assert [c.status for c in calls] == ["unsupported", "valid", "valid"]
        (decision,) = rows(seed_cohort_database_url, LlmFormatDecision)
        assert decision.response_format == "json_object" and str(status) in decision.reason

        # a restarted simulator replays the valid call, whichever format answered it
        async with simulator(**llm_settings(fake)) as client:
            replayed = await client.post("/ratings", json=body_for(case))
        assert replayed.json()["usage"]["cached"] is True
        assert replayed.json()["ratings"] == response.json()["ratings"]
        assert fake.calls == 3


async def test_the_format_decision_is_revisited_and_the_ladder_reaches_lines(
    simulator: SimulatorFactory, case: PersonaCase
) -> None:
    # refused twice (json_schema, then json_object): lines; the endpoint then accepts JSON again
    bad = Misbehaviour(refuse_formats=frozenset({"json_schema", "json_object"}), refusals=2)
    fake = FakeOpenAI(responder=answer_all, api_key=API_KEY, misbehaviour=bad)
    with fake.serve() as base_url:
        fake.base_url = base_url  # type: ignore[attr-defined]
        settings = llm_settings(fake, llm_format_revisit_seconds=0)
        async with simulator(**settings) as client:
            first = await client.post("/ratings", json=body_for(case))
            second = await client.post("/ratings", json=body_for(case, seed=4))
    assert first.status_code == 200 and second.status_code == 200, first.text
    formats = [(r.get("response_format") or {}).get("type") for r in fake.requests]
    # a 400 today does not bind the process forever: the next request offers json_schema again
    assert formats == ["json_schema", "json_object", None, "json_schema"]
    assert "MOVIE: [number] title; RATING: rating; FEELING: one sentence;" in (
        last_user_message(fake.requests[2])
    )
    assert ratings(first) == expected(case, fake)


async def test_omitted_and_invalid_items_are_asked_again_alone_in_a_fresh_request(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    def first_answer(body: dict[str, Any]) -> Reply:
        numbers = asked(body)
        payload = json.loads(keyed({n: t for n, t in numbers.items() if n not in (3, 5)}))
        payload["ratings"]["5"] = {"rating": "off the scale", "feeling": "?"}
        return Reply(content=json.dumps(payload))

    fake.responder = lambda body: first_answer(body) if fake.calls == 1 else answer_all(body)
    async with simulator(**llm_settings(fake)) as client:
        response = await client.post("/ratings", json=body_for(case))
    assert response.status_code == 200, response.text
    assert ratings(response) == expected(case, fake)
    assert fake.calls == 2
    again = fake.requests[1]
    first_labels = asked(fake.requests[0])
    # a fresh, smaller request naming only the two movies (the history kept, no old answer)
    assert list(asked(again).values()) == [first_labels[3], first_labels[5]]
    assert [m["role"] for m in again["messages"]] == ["system", "user"]
    assert again["response_format"]["json_schema"]["schema"]["properties"]["ratings"][
        "required"
    ] == ["1", "2"]


async def test_a_few_movies_still_missing_are_returned_as_missing_more_fail_the_request(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    hated: set[str] = set()

    def never(body: dict[str, Any]) -> Reply:
        numbers = asked(body)
        if not hated:
            hated.add(numbers[2])
        return Reply(content=keyed({n: t for n, t in numbers.items() if t not in hated}))

    fake.responder = never
    async with simulator(**llm_settings(fake, simulator_reasks=2)) as client:
        response = await client.post("/ratings", json=body_for(case))
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["ratings"]) == 9
        assert body["missing"] == [{"tmdb_id": case.test[2], "reason": "missing from the answer"}]
        assert fake.calls == 3  # asked once, then twice again alone

        hated.update(asked(fake.requests[0]).values())  # now it omits every movie
        failed = await client.post("/ratings", json=body_for(case, seed=8))
    assert failed.status_code == 502
    error = failed.json()
    assert error["error"] == "upstream_error"
    assert "10 of 10" in error["detail"] and "at most 1 may be missing" in error["detail"]


async def test_a_cut_off_answer_keeps_its_complete_entries_and_splits_the_rest(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    def cut_first(body: dict[str, Any]) -> Reply:
        content = keyed(asked(body))
        if fake.calls == 1:
            cut = content.index('"5":') + 12  # entries 1-4 complete, 5 cut mid-way
            return Reply(content=content[:cut], finish_reason="length")
        return Reply(content=content)

    fake.responder = cut_first
    settings = llm_settings(fake, simulator_max_output_tokens=4000)
    async with simulator(**settings) as client:
        response = await client.post("/ratings", json=body_for(case))
    assert response.status_code == 200, response.text
    assert ratings(response) == expected(case, fake)
    first = asked(fake.requests[0])
    later = [list(asked(r).values()) for r in fake.requests[1:]]
    # the six movies after the cut, in two smaller requests with a larger output budget
    assert sorted(later, key=len) == [[first[n] for n in (5, 6, 7)], [first[n] for n in (8, 9, 10)]]
    assert all(r["max_tokens"] >= 120 for r in fake.requests[1:])


async def test_ratings_written_as_people_write_them_are_understood(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    prose = [
        "4 out of 5",
        "★★★½☆",
        "8/10",
        "four",
        "4 stars",
        "4/5",
        "4.0",
        "two and a half",
        "★★★★★",
        "1/5",
    ]
    meant = [4.0, 3.5, 4.0, 4.0, 4.0, 4.0, 4.0, 2.5, 5.0, 1.0]

    def written(body: dict[str, Any]) -> Reply:
        entries = {str(n): {"rating": prose[n - 1], "feeling": "."} for n in asked(body)}
        return Reply(content=json.dumps({"ratings": entries}))

    fake.responder = written
    async with simulator(**llm_settings(fake)) as client:
        response = await client.post("/ratings", json=body_for(case))
    assert response.status_code == 200, response.text
    assert [r["rating"] for r in response.json()["ratings"]] == meant
    assert fake.calls == 1


async def test_429_slows_the_shared_budget_and_waits_instead_of_failing(
    simulator: SimulatorFactory,
    case: PersonaCase,
    fake: FakeOpenAI,
    seed_cohort_database_url: str,
) -> None:
    limited = Reply(status=429, headers={"retry-after": "0.2"}, error_message="Rate limit")
    async with simulator(**llm_settings(fake, llm_rate_limit_retries=3)) as client:
        fake.script(limited, limited)
        recovered = await client.post("/ratings", json=body_for(case))
        assert recovered.status_code == 200, recovered.text
        assert fake.calls == 3
        (budget,) = rows(seed_cohort_database_url, LlmRateBudget)
        assert budget.throttled == 2 and budget.factor < 1.0  # halved twice, +0.02 once

        fake.script(*[limited] * 5)
        response = await client.post("/ratings", json=body_for(case, seed=5))
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert fake.calls == 3 + 4  # one call and three waits, not multiplied by anything


async def test_server_errors_become_503_after_the_retries(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    fake.script(Reply(status=500), Reply(status=503))
    async with simulator(**llm_settings(fake, simulator_max_retries=1)) as client:
        response = await client.post("/ratings", json=body_for(case))
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"
    assert "503" in response.json()["detail"]
    assert fake.calls == 2


async def test_a_timed_out_request_is_split_with_a_shorter_prompt_and_abandoned_calls_close(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    fake.script(Reply(content="{}", delay=30.0))
    settings = llm_settings(fake, simulator_timeout=1.0)
    async with simulator(**settings) as client:
        response = await client.post("/ratings", json=body_for(case))
    assert response.status_code == 200, response.text
    assert ratings(response) == expected(case, fake)
    assert fake.calls == 3  # the 10 movies timed out; then 5 and 5, never the same request
    assert [len(asked(r)) for r in fake.requests] == [10, 5, 5]
    assert all(len(prompt_text(r)) < len(prompt_text(fake.requests[0])) for r in fake.requests[1:])
    assert await fake.abandoned_after(1) == 1  # the server saw the client close the abandoned call


async def test_a_single_movie_that_times_out_fails_fast_with_the_reason(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    fake.responder = lambda body: Reply(content="{}", delay=30.0)
    settings = llm_settings(fake, simulator_timeout=0.5)
    async with simulator(**settings) as client:
        response = await client.post("/ratings", json=body_for(case, items=case.test[1:2]))
    assert response.status_code == 502
    assert "did not answer within 0.5 s" in response.json()["detail"]
    assert fake.calls == 1


async def test_valid_calls_are_replayed_invalid_ones_never(
    simulator: SimulatorFactory,
    case: PersonaCase,
    fake: FakeOpenAI,
    seed_cohort_database_url: str,
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

        # garbage is recorded as invalid, with its cost, and asked again next time
        fake.script(Reply(content="I'm sorry, but I can't help with rating movies."))
        fake.script(Reply(content="<html>not json, not lines</html>"))
        fake.script(Reply(content="<html>still not</html>"))
        failed = await client.post("/ratings", json=body_for(case, seed=7))
        assert failed.status_code == 502 and "10 of 10" in failed.json()["detail"]
        retried = await client.post("/ratings", json=body_for(case, seed=7))
        assert retried.status_code == 200
    assert fake.calls == 2 + 3 + 1
    calls = rows(seed_cohort_database_url, LlmCall)
    assert [c.status for c in calls] == ["valid", "valid", "invalid", "invalid", "invalid", "valid"]
    assert all(c.completion_tokens > 0 for c in calls)
    assert calls[2].detail == "no valid rating of 10 movies"

    async with simulator(**llm_settings(fake, simulator_replay=False)) as client:
        await client.post("/ratings", json=body_for(case))
    assert fake.calls == 7


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
    assert failed.status_code == 503 and API_KEY not in failed.text
    assert ok.status_code == 200
    calls = rows(seed_cohort_database_url, LlmCall)
    assert [c.status for c in calls] == ["error", "valid"]
    good = calls[1]
    assert good.model == "persona-model-1" and len(good.replay_key) == 64
    assert good.service == "simulator" and good.purpose == "persona_ratings"
    assert good.prompt[1]["content"] == last_user_message(fake.requests[1])
    assert good.response == keyed(asked(fake.requests[1]))
    assert good.prompt_tokens > 0 and good.completion_tokens > 0 and good.latency_ms > 0
    assert good.parameters["temperature"] == 0.3
    everything = json.dumps([{k: str(v) for k, v in vars(c).items()} for c in calls])
    assert API_KEY not in everything


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


async def test_shown_predictions_are_in_the_prompt_and_the_replay_key(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    items = case.test[1:11]
    shown = [{"tmdb_id": items[1], "stars": 4.5}, {"tmdb_id": items[4], "stars": 1.0}]
    async with simulator(**llm_settings(fake)) as client:
        plain = await client.post("/ratings", json=body_for(case))
        with_predictions = await client.post("/ratings", json=body_for(case, shown=shown))
        again = await client.post("/ratings", json=body_for(case, shown=shown))
        lowered = [shown[0], {"tmdb_id": items[4], "stars": 1.5}]
        other = await client.post("/ratings", json=body_for(case, shown=lowered))
    assert [r.status_code for r in (plain, with_predictions, again, other)] == [200] * 4
    # each distinct set of shown predictions is its own call; the same one is replayed
    assert fake.calls == 3
    assert again.json()["usage"]["cached"] is True
    assert "Predicted for you" not in last_user_message(fake.requests[0])
    item_lines = [
        line for line in last_user_message(fake.requests[1]).splitlines() if line.startswith("[")
    ]
    assert "| Predicted for you: ★ 4.5" in item_lines[1]
    assert "| Predicted for you: ★ 1.0" in item_lines[4]
    assert sum("Predicted for you" in line for line in item_lines) == 2
    assert "Predicted for you: ★ 1.5" in last_user_message(fake.requests[2])


@pytest.mark.parametrize(
    ("shown", "complaint"),
    [
        ([{"tmdb_id": 1, "stars": 4.0}], "is not one of the items"),
        ("twice", "has two predictions"),
        ([{"tmdb_id": "first", "stars": 5.5}], "less than or equal to 5"),
    ],
)
async def test_shown_predictions_outside_the_items_are_refused(
    simulator: SimulatorFactory, case: PersonaCase, shown: Any, complaint: str
) -> None:
    items = case.test[1:11]
    if shown == "twice":
        shown = [{"tmdb_id": items[0], "stars": 3.0}, {"tmdb_id": items[0], "stars": 4.0}]
    shown = [{**p, "tmdb_id": items[0]} if p["tmdb_id"] == "first" else p for p in shown]
    async with simulator() as client:
        response = await client.post(
            "/ratings", json=body_for(case, shown=shown, backend="embedded")
        )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"
    assert complaint in response.json()["detail"]
