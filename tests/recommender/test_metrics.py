"""The recommender's ``/metrics``: pages asked for and refused, per route template, and its LLM
client's calls (against the fake OpenAI-compatible server)."""

from __future__ import annotations

from pydantic import SecretStr

from tests.fakes.openai_server import FakeOpenAI, Reply
from tests.prometheus import sample
from tests.recommender.conftest import ServiceFactory

HISTORY = [{"tmdb_id": 603, "rating": 5.0}, {"tmdb_id": 862, "rating": 4.0}]


async def test_pages_and_refusals_are_counted_per_route_and_llm_calls_by_outcome(
    trained_service: ServiceFactory,
) -> None:
    fake = FakeOpenAI(responder=lambda body: Reply(status=500, error_message="model crashed"))
    with fake.serve() as base_url:
        async with trained_service(
            openai_base_url=base_url, openai_api_key=SecretStr("k"), recommender_llm_max_retries=0
        ) as client:
            for n in (5, 10):
                page = await client.post(
                    "/recommendations",
                    json={"recommender": "popularity", "history": HISTORY, "n": n},
                )
                assert page.status_code == 200, page.text
            unknown = await client.post("/recommenders/svd/train", json={})
            assert unknown.status_code == 404
            llm = await client.post(
                "/recommendations", json={"recommender": "llm", "history": HISTORY}
            )
            assert llm.status_code == 503, llm.text
            text = (await client.get("/metrics")).text

    requests = "prefshift_http_requests_total"
    route = "/recommendations"
    assert sample(text, requests, method="POST", route=route, status="200") == 2
    assert sample(text, requests, method="POST", route=route, status="503") == 1
    train = "/recommenders/{name}/train"
    assert sample(text, requests, method="POST", route=train, status="404") == 1
    assert sample(text, "prefshift_http_request_duration_seconds_count", route=route) == 3
    assert sample(text, "prefshift_llm_calls_total", outcome="error") == fake.calls >= 1
    assert sample(text, "prefshift_llm_calls_total", outcome="valid") == 0
