"""A fake OpenAI-compatible chat completions server, for the real ``openai`` client to talk to.

It answers ``POST /v1/chat/completions`` (and ``/chat/completions``) in OpenAI's response shape.
What it answers is scripted: queue :class:`Reply` objects with :meth:`FakeOpenAI.script`, or set a
``responder`` that builds a reply from the request body. Every request is logged in
:attr:`FakeOpenAI.requests`.

    fake = FakeOpenAI(responder=lambda body: Reply(content='{"ratings": []}'))
    with fake.serve() as base_url:
        client = AsyncOpenAI(base_url=base_url, api_key="test-key")
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.fakes.live import LiveServer


@dataclass
class Reply:
    """One scripted answer: assistant ``content``, or an error ``status``; optional ``delay``."""

    content: str | None = None
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    error_message: str = "fake error"


Responder = Callable[[dict[str, Any]], Reply]


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def prompt_text(body: dict[str, Any]) -> str:
    """All message contents of a chat request, joined (handy for responders)."""
    parts = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "\n".join(parts)


class FakeOpenAI:
    """The fake server's state: the script, the responder and the request log."""

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        reject_json_schema: bool = False,
        api_key: str | None = None,
    ) -> None:
        self.responder = responder
        self.reject_json_schema = reject_json_schema
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.app = self._build_app()

    def script(self, *replies: Reply) -> None:
        """Queue replies; they are used in order before the responder."""
        with self._lock:
            self._script.extend(replies)

    @property
    def calls(self) -> int:
        return len(self.requests)

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        if self.responder is None:
            return Reply(status=500, error_message="fake has no reply scripted")
        return self.responder(body)

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        async def completions(request: Request) -> JSONResponse:
            body = await request.json()
            with self._lock:
                self.requests.append(body)
                self.headers.append(dict(request.headers))
            expected = f"Bearer {self.api_key}"
            if self.api_key is not None and request.headers.get("authorization") != expected:
                return _error(401, "Incorrect API key provided", "invalid_api_key")
            if self.reject_json_schema and body.get("response_format", {}).get("type") == (
                "json_schema"
            ):
                return _error(400, "response_format json_schema is not supported", "bad_request")
            reply = self._next_reply(body)
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.status != 200:
                return _error(reply.status, reply.error_message, "fake", headers=reply.headers)
            content = reply.content or ""
            prompt_tokens = _tokens(prompt_text(body))
            completion_tokens = _tokens(content)
            return JSONResponse(
                {
                    "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake-model"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                },
                headers=reply.headers,
            )

        app.add_api_route("/v1/chat/completions", completions, methods=["POST"])
        app.add_api_route("/chat/completions", completions, methods=["POST"])

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": "fake-model", "object": "model"}]}

        return app

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Run on a free loopback port; yields the base URL (``http://127.0.0.1:PORT/v1``)."""
        with LiveServer(self.app) as server:
            yield f"{server.url}/v1"


def _error(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": "fake_error", "param": None, "code": code}},
        headers=headers or {},
    )


def json_content(payload: Any) -> str:
    """Serialise a payload the way a model's JSON answer would look."""
    return json.dumps(payload)
