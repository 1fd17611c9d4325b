"""The ``Host`` allowlist every service and the console answer with (docs/security.md).

A web page can make a browser send requests to a name it controls and then re-point that name
at 127.0.0.1 (DNS rebinding): the browser treats the answers as the page's own, so the page can
read them and post to an unauthenticated local stack. Such requests carry the page's host name
in ``Host``. So a request is served only when its ``Host`` is a loopback name (``localhost``,
``127.0.0.1``, ``::1``), the host of one of the configured service URLs (``PREFSHIFT_*_URL``,
e.g. ``recommender`` in docker-compose), or a name in ``PREFSHIFT_ALLOWED_HOSTS``
(comma-separated; ``*`` turns the check off). Anything else is a **400** in the error envelope.

A page may also post to a service without becoming its origin: a body with no content type is
a "simple" request (no CORS preflight) that FastAPI reads as JSON. So a request that changes
something (not GET, HEAD or OPTIONS) and that a browser marks as coming from another site —
``Sec-Fetch-Site`` other than ``same-origin`` or ``none``, or an ``Origin`` other than the
request's own — is a **403**. Programs (the CLI, scripts, the services) send neither header.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from prefshift_common.settings import CommonSettings

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def allowed_hosts(settings: CommonSettings) -> frozenset[str] | None:
    """The host names ``settings`` allow (lower case, no port); ``None`` when any is."""
    extra = {name.strip().lower() for name in settings.allowed_hosts.split(",") if name.strip()}
    if "*" in extra:
        return None
    configured = {
        urlsplit(url).hostname or ""
        for url in (
            settings.orchestrator_url,
            settings.recommender_url,
            settings.simulator_url,
            settings.tmdb_proxy_url,
            settings.console_url,
        )
    }
    return frozenset(LOOPBACK_NAMES | extra | (configured - {""}))


def host_name(host: str) -> str:
    """``Host`` without its port, lower case (``[::1]:8100`` → ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostAllowlistMiddleware:
    """400 for a request whose ``Host`` is not allowed (``allowed`` ``None``: any is), 403 for
    a cross-site request that changes something."""

    def __init__(self, app: ASGIApp, *, allowed: frozenset[str] | None) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {name: value.decode("latin-1") for name, value in scope.get("headers") or []}
        host = headers.get(b"host", "")
        if self.allowed is not None and host_name(host) not in self.allowed:
            shown = host[:100] if host else "(none)"
            detail = (
                f"Host {shown!r} is not one this server answers to; a name it should answer to"
                " goes in PREFSHIFT_ALLOWED_HOSTS"
            )
            await _refuse(send, 400, "host_not_allowed", detail)
            return
        if scope.get("method") not in _SAFE_METHODS and _cross_site(headers, host):
            await _refuse(send, 403, "forbidden", "a request from another site is not accepted")
            return
        await self.app(scope, receive, send)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", None})


def _cross_site(headers: dict[bytes, str], host: str) -> bool:
    """Whether a browser says this request comes from a page of another site."""
    site = headers.get(b"sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = headers.get(b"origin")
    return origin is not None and urlsplit(origin).netloc.lower() != host.lower()


async def _refuse(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
