"""External arm URLs pass a policy (no SSRF), their answers are never echoed, and a dead or
misbehaving arm fails its run fast with the documented status while the service stays up.

Issue cases 1 (SSRF, echoed body), 5 (a never-answering arm), 7 (non-JSON or redirect → 502)
and 11 (refused submissions store nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from sqlalchemy import text

from prefshift_common.db import sync_connection
from prefshift_orchestrator.arm_urls import ArmUrlPolicy, ArmUrlRefused, parse_arm_url
from tests.orchestrator.conftest import USER, OrchestratorFactory
from tests.orchestrator.standins import StandInSimulator, serving
from tests.polling import wait_for_run

PROTOCOL = {"pages": 2, "page_size": 4, "test_size": 6, "persona_size": 8, "seed": 3}
SECRET = "internal-secret-7f3a"


def _run_rows(database_url: str) -> int:
    with sync_connection(database_url) as connection:
        return int(connection.execute(text("SELECT COUNT(*) FROM runs")).scalar_one())


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/",
        "file:///etc/passwd",
        "http://127.0.0.1:9000/?path=/admin",
        "http://127.0.0.1:9000/#frag",
        "http://user:pw@127.0.0.1:9000",
        "http://127.0.0.1:9000/a/../admin",
        "http://127.0.0.1:9000/%2e%2e/admin",
        "http://127.0.0.1:99999",
        # host names the resolver cannot encode (found by the schema fuzzer: a 500 before)
        "http://\u0083\u00ad\u0018k\u00e9\ua955",
        "http://a..b:9000",
        "http://" + "x" * 64 + ".example",
    ],
)
def test_an_arm_url_is_a_plain_http_base(url: str) -> None:
    with pytest.raises(ArmUrlRefused):
        parse_arm_url(url)


def test_an_international_host_name_is_a_host_name() -> None:
    assert parse_arm_url("http://bücher.example:9000").host == "bücher.example"


async def test_the_policy_checks_addresses_not_only_names() -> None:
    policy = ArmUrlPolicy(allow=["127.0.0.0/8", "10.1.2.3", "lab-host", "169.254.0.0/16"])
    assert (await policy.pin("http://127.0.0.1:9000/base/")).request_url(
        "/recommendations"
    ) == "http://127.0.0.1:9000/base/recommendations"
    # a name is allowed when every address it resolves to is (localhost → 127.0.0.1 / ::1)
    pinned = await ArmUrlPolicy(allow=["localhost"]).pin("http://localhost:9000")
    assert pinned.headers == {"host": "localhost:9000"}
    assert str(pinned.address) in ("127.0.0.1", "::1")
    with pytest.raises(ArmUrlRefused, match="not allowed") as refused:
        await ArmUrlPolicy(allow=["10.0.0.0/8"]).pin("http://localhost:9000")
    # a refusal never names what the name resolved to (issue 22 item 10: internal DNS answers)
    assert "127.0.0.1" not in str(refused.value) and "::1" not in str(refused.value)
    # link-local and metadata addresses are refused even when the allowlist names them
    for url in (
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:169.254.169.254]/",
        "http://[fe80::1]:80/",
        "http://0.0.0.0:9000",
        "http://100.100.100.200/",
    ):
        with pytest.raises(ArmUrlRefused):
            await ArmUrlPolicy(allow=["0.0.0.0/0", "::/0", "100.100.100.200"]).pin(url)
    with pytest.raises(ArmUrlRefused, match="does not resolve"):
        await ArmUrlPolicy(allow=["no-such-host.invalid"]).pin("http://no-such-host.invalid")
    # nothing allowed: the default refuses every URL the operator did not configure
    with pytest.raises(ArmUrlRefused, match="PREFSHIFT_ARM_URL_ALLOW"):
        await ArmUrlPolicy().pin("http://10.1.2.3:9000")
    assert await ArmUrlPolicy(trusted=["http://10.1.2.3:9000"]).pin("http://10.1.2.3:9000/")


def test_refused_arm_urls_and_refused_users_store_no_row(
    seed_cohort_database_url: str, orchestrator: OrchestratorFactory
) -> None:
    before = _run_rows(seed_cohort_database_url)
    with orchestrator(seed_cohort_database_url, orchestrator_workers=0) as client:
        for url in (
            "http://169.254.169.254",
            "http://127.0.0.1:8100",  # loopback is not in the (empty) allowlist
            "http://127.0.0.1:8100/?x=/runs",
            "gopher://127.0.0.1:70",
            "http://\u0083\u00ad\u0018k\u00e9\ua955",  # not a host name: was a 500
        ):
            arms = [{"name": "probe", "url": url}, "control"]
            response = client.post(f"/simulate/{USER}", json={**PROTOCOL, "arms": arms})
            assert response.status_code == 422, response.text
            assert response.json()["error"] in ("unprocessable", "validation_error")
        for _ in range(20):
            refused = client.post("/simulate/999999999", json=PROTOCOL)
            assert refused.status_code == 404
            assert "recorded" not in refused.json()["detail"]
        assert client.get("/healthz").status_code == 200
    assert _run_rows(seed_cohort_database_url) == before


def _misbehaving_arm() -> tuple[FastAPI, list[str]]:
    """An external arm at its worst: error pages full of internal text, HTML with 200, a
    redirect to somewhere else, and an answer that never comes."""
    app = FastAPI()
    calls: list[str] = []

    @app.post("/{mode}/recommendations")
    async def recommend(mode: str) -> Any:
        calls.append(mode)
        if mode == "error":
            return PlainTextResponse(f"Traceback ... password={SECRET}", status_code=500)
        if mode == "refuse":
            return JSONResponse({"detail": f"db at {SECRET}"}, status_code=400)
        if mode == "html":
            return PlainTextResponse(f"<html>{SECRET}</html>", media_type="text/html")
        if mode == "redirect":
            return RedirectResponse("http://169.254.169.254/latest/meta-data", status_code=302)
        await asyncio.sleep(2.5)  # "hangs": far past the deadlines the tests set
        return None

    @app.get("/{mode}/recommenders")
    async def listing(mode: str) -> Any:
        if mode == "redirect":
            return RedirectResponse("http://169.254.169.254/", status_code=307)
        return JSONResponse({"detail": "Not Found"}, status_code=404)  # an external arm

    return app, calls


@contextmanager
def _arm_stack(
    database_url: str, orchestrator: OrchestratorFactory, **settings: Any
) -> Iterator[tuple[Any, str, list[str]]]:
    app, calls = _misbehaving_arm()
    simulator = StandInSimulator()
    with (
        serving(simulator.app) as simulator_url,
        serving(app) as arm_url,
        orchestrator(
            database_url,
            simulator_url=simulator_url,
            arm_url_allow="127.0.0.1",
            orchestrator_call_retries=1,
            orchestrator_step_retries=1,
            orchestrator_step_backoff_seconds=0.1,
            **settings,
        ) as client,
    ):
        yield client, arm_url, calls


@pytest.mark.parametrize(
    ("mode", "status", "error"),
    [
        ("error", 502, "upstream_error"),
        ("refuse", 502, "upstream_error"),
        ("html", 502, "upstream_error"),
        ("redirect", 502, "upstream_error"),
    ],
)
def test_a_misbehaving_arm_fails_its_run_with_our_words_only(
    seed_cohort_database_url: str,
    orchestrator: OrchestratorFactory,
    mode: str,
    status: int,
    error: str,
) -> None:
    with _arm_stack(seed_cohort_database_url, orchestrator) as (client, arm_url, calls):
        arms = [{"name": "theirs", "url": f"{arm_url}/{mode}"}, "control"]
        response = client.post(f"/simulate/{USER}", json={**PROTOCOL, "arms": arms})
        assert response.status_code == 202, response.text
        run = wait_for_run(client, response.json()["run_id"], timeout=60)
        assert run["status"] == "failed", run
        assert run["error"]["status"] == status and run["error"]["error"] == error, run
        assert SECRET not in client.get(f"/runs/{run['run_id']}").text
        assert "169.254" not in run["error"]["detail"]
        assert set(calls) <= {mode}  # no redirect was followed
        assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("limits", "said"),
    [
        # the per-call deadline covers the retries too
        (
            {
                "orchestrator_arm_call_timeout_seconds": 0.5,
                "orchestrator_arm_connect_timeout_seconds": 0.5,
            },
            "within 0.5 s",
        ),
        # the run's budget for the arm ends the call before the (long) deadline does
        (
            {
                "orchestrator_arm_call_timeout_seconds": 30,
                "orchestrator_arm_run_budget_seconds": 0.4,
            },
            "budget of 0.4 s",
        ),
    ],
)
@pytest.mark.slow
def test_a_never_answering_arm_fails_its_run_within_its_limits(
    seed_cohort_database_url: str,
    orchestrator: OrchestratorFactory,
    limits: dict[str, float],
    said: str,
) -> None:
    with _arm_stack(seed_cohort_database_url, orchestrator, **limits) as (client, arm_url, calls):
        arms = [{"name": "theirs", "url": f"{arm_url}/hang"}, "control"]
        run_id = client.post(f"/simulate/{USER}", json={**PROTOCOL, "arms": arms}).json()["run_id"]
        run = wait_for_run(client, run_id, timeout=30)
        assert run["status"] == "failed", run
        assert run["error"]["status"] == 504 and said in run["error"]["detail"], run
        assert 1 <= len(calls) <= 4  # a step retried once, each call bounded: not 30 minutes
        assert client.get("/healthz").status_code == 200
