"""Request limits on every service (issue case 6), through real HTTP on loopback with the
server options ``serve()`` uses: a huge body is a 413 before it is read, a stalled body or
half-sent headers a 408, connections past the limit a 503; the service stays up."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from prefshift_common.limits import server_options
from tests.fakes.live import LiveServer

LIMITS: dict[str, Any] = {
    "_env_file": None,
    "request_max_body_bytes": 64 * 1024,
    "request_body_timeout_s": 0.5,
    "request_header_timeout_s": 0.5,
    "server_limit_concurrency": 8,
    "api_token": None,
}


def _orchestrator(**overrides: Any) -> FastAPI:
    from prefshift_orchestrator.config import Settings
    from prefshift_orchestrator.main import create_app

    return create_app(Settings(**{**LIMITS, **overrides}))


def _recommender(**overrides: Any) -> FastAPI:
    from prefshift_recommender.config import Settings
    from prefshift_recommender.main import create_app

    return create_app(Settings(**{**LIMITS, **overrides}))


def _simulator(**overrides: Any) -> FastAPI:
    from prefshift_simulator.config import Settings
    from prefshift_simulator.main import create_app

    return create_app(Settings(**{**LIMITS, **overrides}))


def _tmdb_proxy(**overrides: Any) -> FastAPI:
    from prefshift_tmdb_proxy.config import Settings
    from prefshift_tmdb_proxy.main import create_app

    return create_app(Settings(**{**LIMITS, **overrides}))


SERVICES: dict[str, tuple[Callable[..., FastAPI], str]] = {
    "orchestrator": (_orchestrator, "/simulate/1"),
    "recommender": (_recommender, "/recommendations"),
    "simulator": (_simulator, "/ratings"),
    "tmdb-proxy": (_tmdb_proxy, "/movies/batch"),
}

# no database involved: the rule of docs/development.md runs these in the SQLite pass only


def _serve(app: FastAPI) -> LiveServer:
    # no lifespan: the limits sit in front of the app and need no database
    return LiveServer(app, lifespan="off", options=server_options(app.state.settings))


def _raw(port: int, data: bytes) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    connection.sendall(data)
    return connection


def _one_response(connection: socket.socket) -> bytes:
    """One response from a connection that stays open: its head, then content-length bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"closed after {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.lower().split(b"\r\n")
        if line.startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, f"closed after {data[:200]!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def _answer(connection: socket.socket) -> bytes:
    chunks = []
    while chunk := connection.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(params=list(SERVICES))
def service(request: pytest.FixtureRequest) -> Iterator[tuple[LiveServer, str]]:
    build, path = SERVICES[request.param]
    with _serve(build()) as server:
        yield server, path


def test_a_body_over_the_limit_is_a_413_before_it_is_read(
    service: tuple[LiveServer, str],
) -> None:
    server, path = service
    # declares 300 MB and sends a few bytes: refused from the header alone
    connection = _raw(
        server.port,
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: 300000000\r\n\r\n{{".encode(),
    )
    answer = _answer(connection)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"payload_too_large"' in answer

    # streamed without a length: refused once it passes the limit
    def chunks() -> Iterator[bytes]:
        yield b'{"tmdb_ids": ['
        for _ in range(10_000):
            yield b"1," * 512

    with httpx.Client(base_url=server.url, timeout=10) as client:
        streamed = client.post(path, content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413, streamed.text
        assert streamed.json()["error"] == "payload_too_large"
        assert client.get("/healthz").status_code == 200


def test_a_body_still_arriving_after_its_413_does_not_make_the_next_request_late(
    service: tuple[LiveServer, str],
) -> None:
    """The client keeps sending the refused body for longer than the header timeout (0.5 s),
    without a gap as long: the server discards it, and the same connection then serves the
    next request (not a 408 meant for late headers, queued behind the 413)."""
    server, path = service
    connection = _raw(
        server.port,
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"transfer-encoding: chunked\r\n\r\n".encode(),
    )
    piece = b"1," * 512
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    connection.sendall(chunk * 80)  # 80 KB: past the 64 KB limit
    refused = _one_response(connection)
    assert refused.startswith(b"HTTP/1.1 413"), refused[:200]
    assert b"connection: close" not in refused.lower()  # the connection stays open
    deadline = time.monotonic() + 1.2
    while time.monotonic() < deadline:
        connection.sendall(chunk)
        time.sleep(0.1)
    connection.sendall(b"0\r\n\r\nGET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
    try:
        answer = _one_response(connection)
    finally:
        connection.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_half_sent_headers_and_stalled_bodies_get_a_408_and_are_closed(
    service: tuple[LiveServer, str],
) -> None:
    server, path = service
    slow = [
        _raw(server.port, f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n".encode()) for _ in range(5)
    ]
    stalled = _raw(
        server.port,
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: 100\r\n\r\n{{".encode(),
    )
    started = time.monotonic()
    for connection in slow:
        assert _answer(connection).startswith(b"HTTP/1.1 408")
    stalled_answer = _answer(stalled)
    assert stalled_answer.startswith(b"HTTP/1.1 408"), stalled_answer[:200]
    assert b"stalled" in stalled_answer
    assert time.monotonic() - started < 4  # closed at the timeouts (0.5 s), not held
    assert httpx.get(f"{server.url}/healthz").status_code == 200


@pytest.mark.parametrize("name", list(SERVICES))
def test_requests_past_the_limit_are_refused_with_503(name: str) -> None:
    """8 requests running at once (each waiting for the rest of its body); a 9th is a 503 in
    the error envelope, and once they end the service answers again."""
    build, path = SERVICES[name]
    with _serve(build(request_body_timeout_s=5.0)) as server:
        running = [
            _raw(
                server.port,
                f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                f"content-length: 100\r\n\r\n{{".encode(),
            )
            for _ in range(8)
        ]
        try:
            time.sleep(0.3)  # the 8 have reached the app
            over = _answer(_raw(server.port, b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"))
            assert over.startswith(b"HTTP/1.1 503"), over[:200]
            assert b'"unavailable"' in over
        finally:
            for connection in running:
                connection.close()
        time.sleep(0.2)
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_waiting_connections_past_the_limit_are_shed_from_the_greediest_client() -> None:
    """At most 16 connections may wait (no request running): 40 idle sockets from 127.0.0.2
    leave 16 open, and an idle keep-alive connection of 127.0.0.1 is not among those closed —
    the client holding the most loses its oldest."""
    build, _ = SERVICES["orchestrator"]
    settings = {"server_max_waiting_connections": 16, "request_header_timeout_s": 30.0}
    with _serve(build(**settings, server_keep_alive_s=30.0)) as server:
        kept = _raw(server.port, b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        assert _one_response(kept).startswith(b"HTTP/1.1 200")
        idle = [
            socket.create_connection(("127.0.0.1", server.port), source_address=("127.0.0.2", 0))
            for _ in range(40)
        ]
        try:
            time.sleep(0.5)
            closed = []
            for connection in idle:
                connection.settimeout(0.01)
                try:
                    closed.append(connection.recv(1) == b"")
                except TimeoutError:
                    closed.append(False)
            assert closed == [True] * 25 + [False] * 15  # the oldest 25 went; 15 + kept = 16
            kept.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            assert _one_response(kept).startswith(b"HTTP/1.1 200")
        finally:
            kept.close()
            for connection in idle:
                connection.close()


@pytest.mark.parametrize("name", list(SERVICES))
def test_hundreds_of_idle_and_slow_connections_do_not_keep_others_out(name: str) -> None:
    """300 idle or slowloris sockets (renewed as soon as they are closed) against a server that
    runs at most 64 requests at once: the sockets wait, they run no request, so a client
    arriving meanwhile — and an idle keep-alive connection of another client — are served, and
    ``/healthz`` answers fast. When waiting connections counted against the limit, every probe
    was a 503 until the header timeout (here 10 s) closed the sockets.

    The issue's acceptance bound is 50 ms; the test takes the median of 15 fresh-connection
    probes, so one probe delayed by the busy machine does not decide it. The attacker is its own
    process (``tests/common/slowloris.py``), as a real one is."""
    build, _ = SERVICES[name]
    app = build(
        server_limit_concurrency=64,
        request_header_timeout_s=10.0,
        server_keep_alive_s=10.0,
    )
    with _serve(app) as server:
        # a client's keep-alive connection, idle while the attack runs
        kept = _raw(server.port, b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        assert _one_response(kept).startswith(b"HTTP/1.1 200")
        attacker = subprocess.Popen(
            [sys.executable, "-m", "tests.common.slowloris", str(server.port), "300", "30"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert attacker.stdout is not None
            assert attacker.stdout.readline().strip() == "ready"
            time.sleep(0.5)  # the 300 sockets are open and being renewed
            latencies = []
            for _ in range(15):
                started = time.perf_counter()
                answer = _answer(
                    _raw(
                        server.port,
                        b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
                    )
                )
                latencies.append(time.perf_counter() - started)
                assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
                time.sleep(0.05)
            kept.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            assert _one_response(kept).startswith(b"HTTP/1.1 200")
        finally:
            attacker.kill()
            attacker.wait(timeout=10)
            kept.close()
        assert statistics.median(latencies) < 0.050, [f"{s * 1000:.0f} ms" for s in latencies]
