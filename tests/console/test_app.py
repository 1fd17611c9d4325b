"""The console app itself: health, plotly.js from the installed package, the token kept off
pages and URLs, bounded request bodies."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi.testclient import TestClient
from pydantic import SecretStr

from prefshift_console.config import Settings
from prefshift_console.main import create_app
from prefshift_console.sessions import COOKIE

TOKEN = "console-test-token-7f3a"
UNREACHABLE = "http://127.0.0.1:9"


def _client(tmp_path: Path, **overrides: object) -> TestClient:
    values: dict[str, object] = {
        "api_token": None,
        "orchestrator_url": UNREACHABLE,
        "recommender_url": UNREACHABLE,
        "simulator_url": UNREACHABLE,
        "tmdb_proxy_url": UNREACHABLE,
        "data_dir": tmp_path,
        **overrides,
    }
    return TestClient(create_app(Settings(_env_file=None, **values)))  # type: ignore[call-arg]


def test_health_and_plotly_from_the_package(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        assert client.get("/healthz").json() == {"status": "ok", "service": "console"}
        assert client.get("/readyz").status_code == 200
        served = client.get("/vendor/plotly.min.js")
        bundled = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
        assert served.status_code == 200 and served.content == bundled.read_bytes()
        assert client.get("/static/console.js").status_code == 200


def test_an_unreachable_service_is_named_not_a_500(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        page = client.get("/experiments")
        assert page.status_code == 503 and "orchestrator" in page.text
        api = client.get("/api/experiments/1")
        assert api.status_code == 503 and api.json()["error"] == "unavailable"


def test_with_a_token_the_console_asks_for_it_and_keeps_it_on_the_server(
    tmp_path: Path,
) -> None:
    with _client(tmp_path, api_token=SecretStr(TOKEN)) as client:
        page = client.get("/experiments/3", follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == "/signin?next=/experiments/3"
        assert client.get("/api/experiments/3").status_code == 401
        form = client.get("/signin?next=/experiments/3")
        assert 'type="password"' in form.text and TOKEN not in form.text
        wrong = client.post("/signin", data={"token": "nope", "next": "/"})
        assert wrong.status_code == 401 and "nope" not in wrong.text
        signed = client.post(
            "/signin", data={"token": TOKEN, "next": "//elsewhere.example/"}, follow_redirects=False
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/"  # never offsite
        cookie = signed.headers["set-cookie"]
        assert TOKEN not in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert client.cookies.get(COOKIE)
        # signed in: the page is served (here: the orchestrator is down, and says so)
        after = client.get("/experiments")
        assert after.status_code == 503 and TOKEN not in after.text
        client.post("/signout")
        assert client.get("/experiments", follow_redirects=False).status_code == 303


def test_request_bodies_are_bounded(tmp_path: Path) -> None:
    with _client(tmp_path, request_max_body_bytes=1024) as client:
        big = client.post("/api/experiments/preview", content=b"x" * 4096)
        assert big.status_code == 413
