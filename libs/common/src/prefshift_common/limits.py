"""Request limits every service runs with (docs/security.md): body size, body and header
timeouts, and the uvicorn options that bound connections.

- :class:`BodyLimitMiddleware` (ASGI): a body larger than the limit is a **413** — refused from
  ``Content-Length`` before it is read, or as soon as a streamed body passes the limit, so a
  300 MB body never reaches memory; a body that stalls longer than the body timeout is a **408**.
  Routes where larger bodies are legitimate get their own limit (longest path prefix wins).
- :class:`HeaderTimeoutH11Protocol`: a connection that has not sent a request's complete headers
  within the header timeout (slowloris) is answered **408** and closed; idle keep-alive
  connections close after ``timeout_keep_alive``. Connections that wait (no request running:
  nothing sent yet, headers half-sent, or idle keep-alive) are bounded: past the limit the
  client holding the most waiting connections loses its oldest (:class:`WaitingConnections`),
  which bounds the sockets (and file descriptors) idle clients can hold.
- :func:`server_options`: uvicorn's options: the protocol above, with a limit on requests
  running at once (503 above it; waiting connections do not count) and h11's largest header
  block.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import h11
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from prefshift_common.settings import CommonSettings


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes`` (per path prefix in ``per_route``), 408 for bodies that
    stall longer than ``timeout_s`` between chunks."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        timeout_s: float,
        per_route: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        # longest prefix first, so "/a/b" wins over "/a"
        self.per_route = sorted((per_route or {}).items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.per_route:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, "payload_too_large", _too_large(limit))
            return
        received = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                raise HTTPException(
                    408, f"the request body stalled for more than {self.timeout_s:g} s"
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, _too_large(limit))
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracked_send)
        except HTTPException as exc:  # raised where no handler turned it into a response
            if started or exc.status_code not in (408, 413):
                raise
            code = "payload_too_large" if exc.status_code == 413 else "request_timeout"
            await _refuse(send, exc.status_code, code, str(exc.detail))


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit:,} bytes"


async def _refuse(send: Send, status: int, code: str, detail: str) -> None:
    import json

    body = json.dumps({"error": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_TIMEOUT_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: 74\r\nconnection: close\r\n\r\n"
    b'{"error": "request_timeout", "detail": "request headers took too long"}   '
)


class WaitingConnections:
    """A server's connections that have no request running, oldest first per client (peer
    address). Past ``limit``, the client with the most of them loses its oldest: one client's
    pile of idle sockets is shed before anyone else's, and a new connection is never the one
    closed (it is the newest of its client)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_client: dict[str, OrderedDict[HeaderTimeoutH11Protocol, None]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, connection: HeaderTimeoutH11Protocol) -> None:
        """``connection`` now waits (it is the newest of its client); shed past the limit."""
        waiting = self._by_client.setdefault(connection.client_host, OrderedDict())
        if waiting.pop(connection, 0) is not None:
            self._count += 1  # it was not there
        waiting[connection] = None
        while self._count > self.limit:
            client = max(self._by_client, key=lambda name: len(self._by_client[name]))
            oldest, _ = self._by_client[client].popitem(last=False)
            self._forget_if_empty(client)
            self._count -= 1
            oldest.shed()

    def discard(self, connection: HeaderTimeoutH11Protocol) -> None:
        waiting = self._by_client.get(connection.client_host)
        if waiting is not None and waiting.pop(connection, 0) is None:
            self._count -= 1
            self._forget_if_empty(connection.client_host)

    def _forget_if_empty(self, client: str) -> None:
        if not self._by_client[client]:
            del self._by_client[client]


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus: a request's headers must arrive within
    ``header_timeout_s`` of the connection opening (or of the previous response), and while it
    waits for them the connection counts in ``waiting`` (:class:`WaitingConnections`).

    A response can go out before its request's body has all arrived (a 413 for a streamed body
    past the limit): uvicorn then reads and discards the rest, and the next request's headers
    can only follow it. While that body keeps arriving (no gap longer than the timeout, the
    same rule as for a body being read), the deadline moves on; a body that stops is a 408."""

    header_timeout_s = 10.0
    waiting: WaitingConnections | None = None
    #: requests running at once (server-wide); past it a request is a 503. Unlike uvicorn's
    #: ``limit_concurrency``, connections that only wait do not count: they cannot fill it.
    max_requests: int | None = None
    _received = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.max_requests is not None:
            self.app = _RequestLimit(self.app, self.tasks, self.max_requests)

    @property
    def client_host(self) -> str:
        return self.client[0] if self.client else ""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()
        self._start_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiting is not None:
            self.waiting.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        waiting_for = self.cycle
        super().data_received(data)
        if self.cycle is not waiting_for and self.waiting is not None:
            self.waiting.discard(self)  # a request began: it runs, it does not wait

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_timer()
        if not self.transport.is_closing():
            self._start_waiting()

    def _start_waiting(self) -> None:
        if self.waiting is not None:
            self.waiting.add(self)

    def shed(self) -> None:
        """Close this waiting connection to make room (like an idle keep-alive's timeout)."""
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is running after all (pipelined): never cut it off
        if not self.transport.is_closing():
            self.transport.close()

    def _arm_header_timer(self) -> None:
        armed_for = self.cycle
        self.loop.call_later(
            self.header_timeout_s, self._header_deadline, armed_for, self._received
        )

    def _header_deadline(self, armed_for: object, received_then: int) -> None:
        if self.cycle is not armed_for or self.transport.is_closing():
            return  # a new request began since the timer was armed (or the connection is gone)
        if self.conn.their_state is h11.SEND_BODY and self._received > received_then:
            # the answered request's body is still arriving, to be discarded: wait on
            self._arm_header_timer()
        else:  # headers are late, or never came
            self.transport.write(_TIMEOUT_408)
            self.transport.close()


class _RequestLimit:
    """503 for a request that would be past ``limit`` running at once (``tasks`` holds the
    server's running requests, this one included)."""

    def __init__(self, app: ASGIApp, tasks: set[asyncio.Task[None]], limit: int) -> None:
        self.app = app
        self.tasks = tasks
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(self.tasks) > self.limit:
            await _refuse(send, 503, "unavailable", "too many requests at once; try again shortly")
            return
        await self.app(scope, receive, send)


def raise_open_file_limit() -> None:
    """Lift this process's soft limit on open files to the hard one: every waiting connection
    holds a descriptor, and a laptop's default soft limit (often 1024, 256 on macOS) would
    otherwise run out before ``PREFSHIFT_SERVER_MAX_WAITING_CONNECTIONS``, stalling accepts."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def server_options(settings: CommonSettings) -> dict[str, Any]:
    """uvicorn's options for a service: connection and header limits from ``settings``."""

    class Protocol(HeaderTimeoutH11Protocol):
        header_timeout_s = settings.request_header_timeout_s
        waiting = WaitingConnections(settings.server_max_waiting_connections)
        max_requests = settings.server_limit_concurrency

    return {
        "access_log": False,
        "http": Protocol,
        "timeout_keep_alive": settings.server_keep_alive_s,
        "h11_max_incomplete_event_size": 64 * 1024,
    }
