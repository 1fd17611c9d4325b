"""The simulator's ``/metrics``: its requests per route, and its LLM client's calls, tokens,
429s and waits for the shared budget, against the fake OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.prometheus import sample
from tests.simulator.conftest import PersonaCase, SimulatorFactory
from tests.simulator.test_llm import API_KEY, answer_all, body_for, llm_settings


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI(responder=answer_all, api_key=API_KEY)
    with server.serve() as base_url:
        server.base_url = base_url  # type: ignore[attr-defined]
        yield server


async def test_ratings_requests_are_counted_and_timed(
    simulator: SimulatorFactory, case: PersonaCase
) -> None:
    async with simulator() as client:
        for seed in range(3):
            response = await client.post("/ratings", json=body_for(case, seed=seed))
            assert response.status_code == 200, response.text
        text = (await client.get("/metrics")).text

    assert response.json()["backend"] == "embedded"
    requests = "prefshift_http_requests_total"
    assert sample(text, requests, method="POST", route="/ratings", status="200") == 3
    durations = "prefshift_http_request_duration_seconds_count"
    assert sample(text, durations, method="POST", route="/ratings") == 3
    assert sample(text, "prefshift_llm_calls_total", outcome="valid") == 0


async def test_llm_calls_tokens_429s_and_budget_waits_are_counted(
    simulator: SimulatorFactory, case: PersonaCase, fake: FakeOpenAI
) -> None:
    limited = Reply(status=429, headers={"retry-after": "0.2"}, error_message="Rate limit")
    async with simulator(**llm_settings(fake, llm_rate_limit_retries=3)) as client:
        fake.script(limited)
        first = await client.post("/ratings", json=body_for(case))
        assert first.status_code == 200, first.text
        replayed = await client.post("/ratings", json=body_for(case))
        assert replayed.json()["usage"]["cached"] is True
        text = (await client.get("/metrics")).text

    assert fake.calls == 2  # the 429 and the answer; the second request was replayed
    assert sample(text, "prefshift_llm_calls_total", outcome="valid") == 1
    assert sample(text, "prefshift_llm_calls_total", outcome="error") == 1
    assert sample(text, "prefshift_llm_calls_total", outcome="replayed") == 1
    assert sample(text, "prefshift_llm_throttled_total") == 1
    usage = first.json()["usage"]
    assert sample(text, "prefshift_llm_tokens_total", kind="prompt") == usage["prompt_tokens"] > 0
    assert (
        sample(text, "prefshift_llm_tokens_total", kind="completion") == usage["completion_tokens"]
    )
    # after the 429 the shared budget is blocked for Retry-After: the next call waited for it
    assert sample(text, "prefshift_llm_rate_limit_waits_total") == 1
    assert sample(text, "prefshift_llm_rate_limit_wait_seconds_total") > 0.1
    assert sample(text, "prefshift_llm_call_duration_seconds_count") == 2
