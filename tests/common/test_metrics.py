"""``/metrics`` as every service has it (``prefshift_common.metrics``): a registry per app (two
apps in one process count apart and never collide), requests per route template, the token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter
from pydantic import SecretStr

from prefshift_common.app import create_service_app
from prefshift_common.settings import CommonSettings
from tests.prometheus import sample

router = APIRouter()


@router.get("/things/{thing_id}")
async def thing(thing_id: int) -> dict[str, int]:
    """A route with a path parameter."""
    return {"thing_id": thing_id}


@asynccontextmanager
async def service(tmp_path: Path, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = CommonSettings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'metrics.db'}",
        **{"api_token": None, **overrides},
    )
    app = create_service_app(
        service="example", description="An example.", settings=settings, routers=[router]
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as c,
    ):
        yield c


async def test_requests_are_counted_per_route_template_in_each_apps_own_registry(
    tmp_path: Path,
) -> None:
    async with service(tmp_path) as first, service(tmp_path) as second:
        for thing_id in range(5):
            assert (await first.get(f"/things/{thing_id}")).status_code == 200
        assert (await first.get("/things/not-a-number")).status_code == 422
        assert (await first.get("/nowhere/1")).status_code == 404
        assert (await first.request("BREW", "/things/1")).status_code == 405
        assert (await second.get("/things/1")).status_code == 200
        answer = await first.get("/metrics")
        other = (await second.get("/metrics")).text

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    text = answer.text
    requests = "prefshift_http_requests_total"
    assert sample(text, requests, method="GET", route="/things/{thing_id}", status="200") == 5
    assert sample(text, requests, method="GET", route="/things/{thing_id}", status="422") == 1
    assert sample(text, requests, method="GET", route="<unmatched>", status="404") == 1
    assert "/things/3" not in text and "/nowhere" not in text  # raw paths never become labels
    assert sample(text, requests, method="<other>", route="/things/{thing_id}", status="405") == 1
    assert "BREW" not in text  # nor made-up methods
    durations = "prefshift_http_request_duration_seconds_count"
    assert sample(text, durations, method="GET", route="/things/{thing_id}") == 6
    assert sample(text, "process_cpu_seconds_total") > 0
    # the second app counted only its own request
    assert sample(other, requests, method="GET", route="/things/{thing_id}", status="200") == 1


async def test_metrics_need_the_token_when_one_is_set_and_stay_out_of_the_schema(
    tmp_path: Path,
) -> None:
    async with service(tmp_path, api_token=SecretStr("metrics-token-1234")) as client:
        refused = await client.get("/metrics")
        allowed = await client.get(
            "/metrics", headers={"authorization": "Bearer metrics-token-1234"}
        )
        health = await client.get("/healthz")
        schema = (await client.get("/openapi.json")).json()

    assert refused.status_code == 401
    assert refused.json()["error"] == "unauthorized"
    assert allowed.status_code == 200
    # the refused scrape is counted too (the token check is inside the route)
    requests = "prefshift_http_requests_total"
    assert sample(allowed.text, requests, route="/metrics", status="401") == 1
    assert health.status_code == 200
    assert "/metrics" not in schema["paths"]
