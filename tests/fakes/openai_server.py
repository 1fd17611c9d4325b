"""A fake OpenAI-compatible chat completions server, for the real ``openai`` client to talk to.

It answers ``POST /v1/chat/completions`` (and ``/chat/completions``) in OpenAI's response shape.
What it answers is scripted: queue :class:`Reply` objects with :meth:`FakeOpenAI.script`, or set a
``responder`` that builds a reply from the request body. Every request is logged in
:attr:`FakeOpenAI.requests`.

It can behave like the worst real endpoints (:class:`Misbehaviour`, drawn per request from a
seeded generator): answers that omit items, ratings written in prose or stars, 429 storms with
``Retry-After``, answers cut off mid-JSON with ``finish_reason: "length"``, refusals of
``response_format`` (400, 422 or 500, as llama.cpp's server words them), 5xx, and hangs (the
server notices when the client gives up and closes the connection: :attr:`FakeOpenAI.abandoned`).
:func:`persona_responder` answers the simulator's rating prompts in whatever format was asked.

    fake = FakeOpenAI(responder=lambda body: Reply(content='{"ratings": []}'))
    with fake.serve() as base_url:
        client = AsyncOpenAI(base_url=base_url, api_key="test-key")
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
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
    finish_reason: str = "stop"


Responder = Callable[[dict[str, Any]], Reply]

#: What llama-cpp-python's server answers (with status 500) to a json_schema response format.
LLAMA_CPP_REFUSAL = (
    "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input should "
    "be 'text' or 'json_object' [type=literal_error, input_value='json_schema', input_type=str]"
)


@dataclass
class Misbehaviour:
    """How badly the endpoint behaves; each share is the chance per request (or per item)."""

    omit_share: float = 0.0  # each rated item left out of an answer
    prose_share: float = 0.0  # each rating written as "4 out of 5", "★★★½☆", "eight/10" …
    rate_limit_share: float = 0.0  # a request answered 429
    retry_after: float = 1.0
    truncate_share: float = 0.0  # an answer cut off mid-JSON, finish_reason "length"
    server_error_share: float = 0.0  # a request answered 500/502/503
    hang_share: float = 0.0  # a request that never answers (until the client gives up)
    hang_seconds: float = 3600.0
    refuse_formats: frozenset[str] = frozenset()  # response_format types refused
    refusal_status: int = 400
    refusals: int | None = None  # refuse this many times, then accept (None: always)
    seed: int = 0


#: Ratings as models write them in prose, each with the value it means.
PROSE_RATINGS: tuple[tuple[str, float], ...] = (
    ("4 out of 5", 4.0),
    ("★★★½☆", 3.5),
    ("8/10", 4.0),
    ("four stars", 4.0),
    ("2.5/5", 2.5),
    ("★★☆☆☆", 2.0),
    ("three and a half", 3.5),
    ("5 stars", 5.0),
    ("1/5", 1.0),
    ("3", 3.0),
)


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
        api_key: str | None = None,
        misbehaviour: Misbehaviour | None = None,
    ) -> None:
        self.responder = responder
        self.api_key = api_key
        self.misbehaviour = misbehaviour or Misbehaviour()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        #: what each request got: "ok", "omitted", "prose", "429", "truncated", "refused", …
        self.outcomes: list[str] = []
        #: requests whose client closed the connection before the answer came
        self.abandoned = 0
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._random = random.Random(self.misbehaviour.seed)
        self._refusals = 0
        self.app = self._build_app()

    async def abandoned_after(self, count: int, timeout: float = 5.0) -> int:
        """:attr:`abandoned` once it reaches ``count`` or ``timeout`` passes: the server notices
        a closed connection at its next look (every 50 ms, on its own thread), which can come
        after the client has already moved on and finished. Awaited, so that the caller's own
        event loop (where the client may still be closing the socket) goes on meanwhile."""
        deadline = time.monotonic() + timeout
        while self.abandoned < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.abandoned

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
        return self._misbehave(body, self.responder(body))

    def _chance(self, share: float) -> bool:
        return share > 0 and self._random.random() < share

    def _refusal(self, body: dict[str, Any]) -> Reply | None:
        bad = self.misbehaviour
        wanted = (body.get("response_format") or {}).get("type")
        if wanted not in bad.refuse_formats:
            return None
        if bad.refusals is not None and self._refusals >= bad.refusals:
            return None
        self._refusals += 1
        message = (
            LLAMA_CPP_REFUSAL.replace("json_schema", str(wanted))
            if bad.refusal_status == 500
            else f"response_format type {wanted!r} is not supported by this model"
        )
        return Reply(status=bad.refusal_status, error_message=message)

    def _misbehave(self, body: dict[str, Any], reply: Reply) -> Reply:
        """The reply as the configured misbehaviour spoils it (outcome logged)."""
        bad = self.misbehaviour
        with self._lock:
            refusal = self._refusal(body)
            if refusal is not None:
                outcome, reply = "refused", refusal
            elif self._chance(bad.rate_limit_share):
                outcome = "429"
                reply = Reply(
                    status=429,
                    headers={"retry-after": f"{bad.retry_after:g}"},
                    error_message="Rate limit reached for requests",
                )
            elif self._chance(bad.server_error_share):
                outcome = "5xx"
                status = self._random.choice((500, 502, 503))
                reply = Reply(status=status, error_message="upstream overloaded")
            elif self._chance(bad.hang_share):
                outcome, reply = "hang", replace(reply, delay=bad.hang_seconds)
            elif reply.status == 200 and reply.content is not None:
                outcome, reply = self._spoil(reply)
            else:
                outcome = "ok"
            self.outcomes.append(outcome)
        return reply

    def _spoil(self, reply: Reply) -> tuple[str, Reply]:
        bad = self.misbehaviour
        content = reply.content or ""
        outcome = "ok"
        payload = _loads(content)
        entries = payload.get("ratings") if isinstance(payload, dict) else None
        if isinstance(entries, dict) and (bad.omit_share or bad.prose_share):
            kept: dict[str, Any] = {}
            for key, entry in entries.items():
                if self._chance(bad.omit_share):
                    outcome = "omitted"
                    continue
                if self._chance(bad.prose_share) and isinstance(entry, dict):
                    prose, _ = self._random.choice(PROSE_RATINGS)
                    entry = {**entry, "rating": prose}
                    outcome = "prose" if outcome == "ok" else outcome
                kept[key] = entry
            content = json.dumps({"ratings": kept})
        if self._chance(bad.truncate_share) and len(content) > 20:
            cut = self._random.randint(len(content) // 3, 2 * len(content) // 3)
            return "truncated", replace(reply, content=content[:cut], finish_reason="length")
        return outcome, replace(reply, content=content)

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
            reply = self._next_reply(body)
            if reply.delay and not await self._wait(request, reply.delay):
                with self._lock:
                    self.abandoned += 1
                return _error(499, "client closed the connection", "abandoned")
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
                            "finish_reason": reply.finish_reason,
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

    @staticmethod
    async def _wait(request: Request, seconds: float) -> bool:
        """Sleep ``seconds``; False as soon as the client has gone away."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await request.is_disconnected():
                return False
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        return True

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


def _loads(content: str) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


_ITEM = re.compile(r"^\[(\d+)\] ", re.MULTILINE)


def asked_numbers(body: dict[str, Any]) -> list[int]:
    """Numbers of the movies the last user message of a rating prompt lists."""
    last = next(
        (m.get("content") for m in reversed(body.get("messages", [])) if m.get("role") == "user"),
        "",
    )
    return [int(n) for n in _ITEM.findall(str(last))]


def persona_answer(body: dict[str, Any], rating: Callable[[int], float]) -> str:
    """A well-behaved persona's answer to a rating prompt, in the format it asked for: keyed JSON
    when a response format was sent or the prompt asks for JSON, else the seed's lines."""
    numbers = asked_numbers(body)
    if body.get("response_format") or '{"ratings"' in prompt_text(body):
        return json.dumps(
            {"ratings": {str(n): {"rating": rating(n), "feeling": f"F{n}."} for n in numbers}}
        )
    return "\n".join(f"MOVIE: [{n}] A title; RATING: {rating(n)}; FEELING: F{n}.;" for n in numbers)


def persona_responder(
    rating: Callable[[int], float] = lambda n: 0.5 + (n * 7 % 10) * 0.5,
) -> Responder:
    """A responder answering every rating prompt with :func:`persona_answer`."""
    return lambda body: Reply(content=persona_answer(body, rating))


_ASKED = re.compile(r"\b(?:Recommend|Choose) (\d+) movies\b")


def asked_count(body: dict[str, Any], default: int = 10) -> int:
    """How many movies a recommender's prompt asks for (``Recommend 37 movies …``)."""
    match = _ASKED.search(prompt_text(body))
    return int(match.group(1)) if match else default
