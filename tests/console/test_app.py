"""The console app itself: health, plotly.js from the installed package, the token kept off
pages and URLs, bounded request bodies."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi.testclient import TestClient
from pydantic import SecretStr

from prefshift_console.config import Settings
from prefshift_console.csrf import CSRF_COOKIE
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
        progress = client.get("/api/experiments/1/progress")
        assert progress.status_code == 503 and progress.json()["error"] == "unavailable"


def test_ids_and_offsets_are_ascii_digits(tmp_path: Path) -> None:
    """Refused before the orchestrator is asked (it is unreachable here: a 503 would mean the
    console read ``+1`` as 1 and went on)."""
    with _client(tmp_path) as client:
        for path in (
            "/api/experiments/+1",
            "/api/runs/1.0",
            "/experiments/%201",
            "/runs/\u0661",
            "/experiments?offset=+1",
            "/runs?offset=1_0",
        ):
            assert client.get(path).status_code == 422, path
        assert client.get("/api/experiments/1").status_code == 503


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
        csrf = client.cookies[CSRF_COOKIE]
        assert f'name="csrf_token" value="{csrf}"' in form.text
        wrong = client.post("/signin", data={"token": "nope", "next": "/", "csrf_token": csrf})
        assert wrong.status_code == 401 and "nope" not in wrong.text
        signed = client.post(
            "/signin",
            data={"token": TOKEN, "next": "//elsewhere.example/", "csrf_token": csrf},
            follow_redirects=False,
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/"  # never offsite
        cookie = signed.headers["set-cookie"]
        assert TOKEN not in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert client.cookies.get(COOKIE)
        # signed in: the page is served (here: the orchestrator is down, and says so)
        after = client.get("/experiments")
        assert after.status_code == 503 and TOKEN not in after.text
        assert client.post("/signout", data={"csrf_token": csrf}).status_code == 200
        assert client.get("/experiments", follow_redirects=False).status_code == 303


def test_request_bodies_are_bounded(tmp_path: Path) -> None:
    with _client(tmp_path, request_max_body_bytes=1024) as client:
        big = client.post("/api/experiments/preview", content=b"x" * 4096)
        assert big.status_code == 413


def _cross_site_posts(client: TestClient, path: str, data: dict[str, str]) -> list[int]:
    """The statuses of posts another site could make the browser send."""
    token = {"csrf_token": client.cookies[CSRF_COOKIE]}
    return [
        # a plain form post from evil.example: no token, foreign Origin, cross-site fetch
        client.post(
            path,
            data=data,
            headers={"origin": "http://evil.example", "sec-fetch-site": "cross-site"},
        ).status_code,
        # an old browser with neither header: the token alone decides
        client.post(path, data=data).status_code,
        # a token it cannot know
        client.post(path, data={**data, "csrf_token": "x" * 43}).status_code,
        # even with the right pair, a foreign Origin or a cross-site fetch is refused
        client.post(
            path, data={**data, **token}, headers={"origin": "http://evil.example"}
        ).status_code,
        client.post(
            path, data={**data, **token}, headers={"sec-fetch-site": "same-site"}
        ).status_code,
    ]


def test_cross_site_posts_are_refused_and_the_consoles_own_form_is_not(tmp_path: Path) -> None:
    """Issue 22 item 3: with no token set, a form post with ``Origin: evil.example`` started an
    experiment and a training. Every post the console takes now needs its own page's token,
    and a foreign ``Origin`` or ``Sec-Fetch-Site`` is refused even with it."""
    experiment = {"dataset": "ml-latest-small", "user_ids": "1", "arms": "popularity"}
    posts = {
        "/experiments": experiment,
        "/api/experiments/preview": experiment,
        "/recommenders/als/train": {"dataset": "ml-latest-small"},
        "/runs/1/again": {},
        "/signin": {"token": "x", "next": "/"},
        "/signout": {},
    }
    with _client(tmp_path) as client:
        page = client.get("/signin")
        assert page.status_code == 200
        token = client.cookies[CSRF_COOKIE]
        assert (
            "HttpOnly" in page.headers["set-cookie"]
            and "SameSite=strict" in page.headers["set-cookie"]
        )
        for path, data in posts.items():
            refused = _cross_site_posts(client, path, data)
            assert refused == [403] * 5, (path, refused)
        # the console's own page posts with its token, same-origin: past the check (the
        # orchestrator is unreachable here, so the experiment gets as far as saying so)
        own = client.post(
            "/experiments",
            data={**experiment, "csrf_token": token},
            headers={"origin": "http://testserver", "sec-fetch-site": "same-origin"},
        )
        assert own.status_code == 503 and "orchestrator" in own.text
        preview = client.post("/api/experiments/preview", data={**experiment, "csrf_token": token})
        assert preview.status_code == 200 and "request" in preview.json()


def test_the_console_answers_only_to_its_own_host_names(tmp_path: Path) -> None:
    """A rebinding page's Host (its own name, pointed at 127.0.0.1) is a 400; loopback names,
    the configured URLs' hosts and PREFSHIFT_ALLOWED_HOSTS are served."""
    with _client(tmp_path, allowed_hosts="") as client:
        rebinding = client.get("/", headers={"host": "rebind.evil.example:8104"})
        assert rebinding.status_code == 400 and rebinding.json()["error"] == "host_not_allowed"
        for host in ("127.0.0.1:8104", "localhost:8104", "[::1]:8104", "LOCALHOST"):
            assert client.get("/healthz", headers={"host": host}).status_code == 200, host
    with _client(tmp_path, allowed_hosts="lab.example.org") as client:
        assert client.get("/healthz", headers={"host": "lab.example.org:8104"}).status_code == 200
        assert client.get("/healthz", headers={"host": "evil.example"}).status_code == 400
