"""Bodies validated with bounded work (issue 22, item 2), through real HTTP on loopback: a JSON
body's keys, array lengths, values and nesting are bounded before pydantic sees it, and a 422
lists at most 20 problems and says how many more there were."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from prefshift_common.app import create_service_app
from prefshift_common.settings import CommonSettings
from tests.common.test_request_limits import SERVICES, _serve
from tests.fakes.live import LiveServer

# no database involved: the rule of docs/development.md runs these in the SQLite pass only


@pytest.mark.parametrize("name", list(SERVICES))
def test_300000_unknown_keys_are_a_small_422_at_once(name: str) -> None:
    """The issue's body: 3.5 MB of unknown keys made a 27 MB 422 after 6-26 s. Now it is a
    422 of a few hundred bytes, refused before any model looks at it."""
    build, path = SERVICES[name]
    body = json.dumps({f"k{i}": 1 for i in range(300_000)}).encode()
    assert len(body) > 3_500_000
    with _serve(build(request_max_body_bytes=8 << 20)) as server:
        started = time.monotonic()
        answer = httpx.post(
            server.url + path,
            content=body,
            headers={"content-type": "application/json"},
            timeout=60,
        )
        elapsed = time.monotonic() - started
        assert answer.status_code == 422, answer.text[:300]
        assert len(answer.content) < 1000
        assert answer.json()["error"] == "validation_error"
        assert "300,000 keys (at most 1,000)" in answer.json()["detail"]
        assert elapsed < 5, elapsed  # generous for a busy machine; it was 6-26 s
        assert httpx.get(server.url + "/healthz").status_code == 200


class _Probe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[int] = Field(max_length=500)


@pytest.fixture(scope="module")
def probe() -> Iterator[LiveServer]:
    """The common app factory with one route taking a list of at most 500 integers."""
    router = APIRouter()

    @router.post("/probe")
    async def take(body: _Probe) -> dict[str, int]:
        return {"ids": len(body.ids)}

    app = create_service_app(
        service="probe",
        description="",
        settings=CommonSettings(_env_file=None, api_token=None),  # type: ignore[call-arg]
        routers=[router],
    )
    with _serve(app) as server:
        yield server


@pytest.mark.parametrize(
    ("body", "said", "loc"),
    [
        (
            {"ids": list(range(20_001))},
            "an array with 20,001 items (at most 20,000)",
            ["body", "ids"],
        ),
        ({"ids": [1], "x": [{"y": list(range(20_001))}]}, "20,001 items", ["body", "x", 0, "y"]),
        ({"ids": json.loads("[" * 40 + "]" * 40)}, "nested more than 32 levels deep", None),
        ({"ids": [[0] * 20_000 for _ in range(13)]}, "more than 250,000 values", None),
    ],
    ids=["long-array", "long-array-inside", "deep", "many-values"],
)
def test_bodies_past_the_shape_limits_are_422_with_where(
    probe: LiveServer, body: Any, said: str, loc: list[Any] | None
) -> None:
    answer = httpx.post(probe.url + "/probe", json=body, timeout=30)
    assert answer.status_code == 422, answer.text[:300]
    assert said in answer.json()["detail"]
    if loc is not None:
        assert answer.json()["errors"][0]["loc"] == loc


def test_nesting_too_deep_for_the_parser_is_a_422_not_a_500(probe: LiveServer) -> None:
    body = b'{"ids": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    answer = httpx.post(
        probe.url + "/probe", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422, answer.text[:300]
    assert "nested more than 32 levels deep" in answer.json()["detail"]


def test_a_422_lists_at_most_20_problems_and_says_how_many_more(probe: LiveServer) -> None:
    answer = httpx.post(probe.url + "/probe", json={"ids": ["x"] * 400})
    assert answer.status_code == 422
    envelope = answer.json()
    assert len(envelope["errors"]) == 20
    assert envelope["errors_omitted"] == 380
    assert envelope["detail"].endswith("(and 395 more)")
    assert envelope["errors"][0]["loc"] == ["body", "ids", 0]


def test_bodies_within_the_limits_and_other_content_pass(probe: LiveServer) -> None:
    assert httpx.post(probe.url + "/probe", json={"ids": list(range(500))}).json() == {"ids": 500}
    # not JSON at all: the route's own parsing answers, as before
    broken = httpx.post(
        probe.url + "/probe", content=b"{", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["error"] == "validation_error"


def test_300000_unknown_keys_on_a_model_that_forbids_them(probe: LiveServer) -> None:
    """Without the shape check pydantic listed every unknown key: a 422 of tens of MB."""
    body = {"ids": [1], **{f"k{i}": 1 for i in range(300_000)}}
    answer = httpx.post(probe.url + "/probe", json=body, timeout=60)
    assert answer.status_code == 422
    assert len(answer.content) < 1000
    assert answer.json()["errors"] == [
        {"loc": ["body"], "msg": "an object with 300,001 keys (at most 1,000)", "type": "too_large"}
    ]
