"""The Host allowlist on every service (issue 22 item 4), through real HTTP on loopback: a DNS
rebinding page's requests carry its own host name and are refused; loopback names, the
configured services' hosts and PREFSHIFT_ALLOWED_HOSTS are served."""

from __future__ import annotations

import httpx
import pytest

from tests.common.test_request_limits import SERVICES, _serve

# no database involved: the rule of docs/development.md runs these in the SQLite pass only


@pytest.mark.parametrize("name", list(SERVICES))
def test_a_rebinding_host_is_refused_and_own_names_are_served(name: str) -> None:
    build, path = SERVICES[name]
    app = build(allowed_hosts="lab.example.org", recommender_url="http://recommender:8101")
    with _serve(app) as server:

        def status(host: str, method: str = "GET", target: str = "/healthz") -> int:
            return httpx.request(method, server.url + target, headers={"host": host}).status_code

        refused = httpx.post(
            server.url + path, json={}, headers={"host": f"rebind.evil.example:{server.port}"}
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == "host_not_allowed"
        assert status("evil.example") == 400
        assert status("127.0.0.1.evil.example") == 400
        assert status("") == 400
        for host in (f"127.0.0.1:{server.port}", "localhost", "[::1]:1", "recommender:8101"):
            assert status(host) == 200, host
        assert status("LAB.example.org:443") == 200  # PREFSHIFT_ALLOWED_HOSTS


def test_a_star_turns_the_check_off() -> None:
    build, _ = SERVICES["simulator"]
    with _serve(build(allowed_hosts="*")) as server:
        answer = httpx.get(server.url + "/healthz", headers={"host": "anything.example"})
        assert answer.status_code == 200


@pytest.mark.parametrize("name", list(SERVICES))
def test_a_cross_site_post_is_refused(name: str) -> None:
    """A page's post with no content type is a simple request (no CORS preflight) that FastAPI
    reads as JSON; the browser marks it as cross-site, and the service refuses it. The same
    request from a program (no Origin, no Sec-Fetch-Site) goes through to the route."""
    build, path = SERVICES[name]
    with _serve(build()) as server:
        for headers in (
            {"origin": "http://evil.example", "sec-fetch-site": "cross-site"},
            {"origin": "http://evil.example"},
            {"sec-fetch-site": "same-site"},
        ):
            answer = httpx.post(server.url + path, content=b"{}", headers=headers)
            assert answer.status_code == 403, (headers, answer.text)
            assert answer.json()["error"] == "forbidden"
        own = {"origin": server.url, "sec-fetch-site": "same-origin"}  # Swagger UI's "try it"
        for headers in (own, {}):
            answer = httpx.post(server.url + path, json={"x": [1] * 30_000}, headers=headers)
            assert answer.status_code == 422, answer.text  # past the check, to the shape limit
