"""The shape of a JSON request body, checked before pydantic sees it (docs/security.md).

pydantic's work — and the size of a 422 — grows with what a body holds: 300,000 unknown keys
in 3.5 MB made 300,000 errors, a 27 MB answer and seconds on the event loop. So every service
refuses, with a **422** that names where, a JSON body that has

- an object with more than ``max_keys`` keys,
- an array with more than ``max_items`` items,
- more than ``max_values`` values in all, or
- nesting deeper than ``max_depth``.

The limits sit above every model's own bounds (the largest list a model accepts has 20,000
items), so they only refuse bodies no model accepts. The check is one pass over the parsed
body; a large body is parsed and checked on a worker thread, not on the event loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from prefshift_common.errors import http_error_response
from prefshift_common.settings import CommonSettings

#: bodies larger than this are parsed and checked on a worker thread
_THREAD_ABOVE_BYTES = 64 * 1024


@dataclass(frozen=True)
class ShapeLimits:
    max_depth: int
    max_keys: int
    max_items: int
    max_values: int

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> ShapeLimits:
        return cls(
            max_depth=settings.request_max_json_depth,
            max_keys=settings.request_max_json_keys,
            max_items=settings.request_max_json_items,
            max_values=settings.request_max_json_values,
        )


@dataclass(frozen=True)
class ShapeProblem:
    loc: list[str | int]
    msg: str


def shape_problem(body: Any, limits: ShapeLimits) -> ShapeProblem | None:
    """The first limit ``body`` (parsed JSON) breaks, with where; ``None`` when it keeps all.
    One iterative pass: no recursion, however deep the body."""
    # (value, depth, parent entry, key in parent): the path is rebuilt only for a problem
    stack: list[tuple[Any, int, Any, str | int | None]] = [(body, 1, None, None)]
    values = 0
    while stack:
        entry = stack.pop()
        value, depth = entry[0], entry[1]
        values += 1
        if values > limits.max_values:
            return ShapeProblem([], f"more than {limits.max_values:,} values in the body")
        if isinstance(value, dict):
            if len(value) > limits.max_keys:
                msg = f"an object with {len(value):,} keys (at most {limits.max_keys:,})"
                return ShapeProblem(_path(entry), msg)
            children: list[tuple[str | int, Any]] = list(value.items())
        elif isinstance(value, list):
            if len(value) > limits.max_items:
                msg = f"an array with {len(value):,} items (at most {limits.max_items:,})"
                return ShapeProblem(_path(entry), msg)
            children = list(enumerate(value))
        else:
            continue
        if children and depth >= limits.max_depth:
            return ShapeProblem(_path(entry), f"nested more than {limits.max_depth} levels deep")
        stack.extend((child, depth + 1, entry, key) for key, child in children)
    return None


def _path(entry: tuple[Any, int, Any, str | int | None]) -> list[str | int]:
    path: list[str | int] = []
    while entry[2] is not None:
        key = entry[3]
        assert key is not None
        path.append(key)
        entry = entry[2]
    return ["body", *reversed(path)]


def _check(raw: bytes, limits: ShapeLimits) -> ShapeProblem | None:
    try:
        body = json.loads(raw)
    except RecursionError:
        return ShapeProblem(["body"], f"nested more than {limits.max_depth} levels deep")
    except ValueError:
        return None  # not JSON (or not UTF-8): the route's own parsing says so
    return shape_problem(body, limits)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True  # FastAPI reads a body without a content type as JSON


class BodyShapeMiddleware:
    """422 for a JSON body that breaks :class:`ShapeLimits`; other bodies pass untouched.

    The body is read whole (the body limit, outside this middleware, bounds it), checked, and
    handed on to the app as one message."""

    def __init__(self, app: ASGIApp, *, limits: ShapeLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        if not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            try:
                message = await receive()
            except HTTPException as exc:  # the body limit's 413 or 408, answered as the app would
                await http_error_response(exc)(scope, receive, send)
                return
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        if len(raw) > _THREAD_ABOVE_BYTES:
            problem = await anyio.to_thread.run_sync(_check, raw, self.limits)
        else:
            problem = _check(raw, self.limits) if raw else None
        if problem is not None:
            await _refuse_shape(send, problem)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": raw}], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _refuse_shape(send: Send, problem: ShapeProblem) -> None:
    where = ".".join(str(part) for part in problem.loc) or "body"
    body = json.dumps(
        {
            "error": "validation_error",
            "detail": f"{where}: {problem.msg}",
            "errors": [{"loc": problem.loc or ["body"], "msg": problem.msg, "type": "too_large"}],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
