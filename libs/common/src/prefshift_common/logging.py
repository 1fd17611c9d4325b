"""Structured logging (structlog) with a request id carried in contextvars."""

from __future__ import annotations

import logging
import sys
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Configure structlog and the standard library to write one line per event to stderr."""
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    """A logger on the stderr of the moment: a command run more than once in one process (the
    tests' CliRunner swaps sys.stderr and closes it after each run) must not write to a closed
    stream. With ``cache_logger_on_first_use=False`` this is called for every event."""
    return structlog.PrintLogger(file=sys.stderr)


class RequestIdMiddleware:
    """Takes ``X-Request-ID`` from the request (or makes one), binds it to the log context and
    echoes it on the response, so one id follows a call across the services."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode())
        request_id = incoming.decode("latin-1")[:64] if incoming else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


def current_request_id() -> str | None:
    """The request id bound to the current context, if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value is not None else None
