"""The ``llm`` backend: the persona prompt sent to any OpenAI-compatible endpoint.

One request is one conversation: the persona prompt, then (bounded by
``PREFSHIFT_SIMULATOR_REASKS``) follow-ups asking again for the movies whose rating was missing or
invalid. Every call is recorded (request hash, model, prompt, response, tokens, latency) and an
identical call is answered from its record when ``PREFSHIFT_SIMULATOR_REPLAY`` is on. Transport
retries (429, 5xx, timeouts) are the ``openai`` client's alone (``max_retries``); this module
adds none, so the two never multiply.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import openai
import structlog
from openai import AsyncOpenAI

from prefshift_common.contracts import Backend, ItemRating, RatingsRequest, Usage
from prefshift_common.errors import (
    NotFound,
    ServiceError,
    TooManyRequests,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from prefshift_simulator.config import Settings
from prefshift_simulator.llm.parsing import parse_answer
from prefshift_simulator.llm.prompts import (
    RESPONSE_FORMAT,
    ResponseFormat,
    persona_messages,
    reask_message,
)
from prefshift_simulator.metadata import MovieFacts
from prefshift_simulator.repository import LlmCallRepository
from prefshift_simulator.schemas import BackendResult

log = structlog.get_logger(__name__)


def create_openai_client(settings: Settings) -> AsyncOpenAI | None:
    """The client of the configured endpoint, or None when no LLM is configured."""
    if not settings.llm_configured:
        return None
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unused"
    return AsyncOpenAI(
        api_key=key,
        base_url=settings.openai_base_url,
        timeout=settings.simulator_timeout,
        max_retries=settings.simulator_max_retries,
    )


#: Status of the record of a call the endpoint refused for its JSON-schema response format.
UNSUPPORTED = "unsupported"


class _SchemaUnsupported(Exception):
    """The endpoint refused the JSON-schema response format."""


@dataclass
class _Spend:
    calls: int = 0
    replayed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LlmBackend:
    """Rates through an OpenAI-compatible chat completions endpoint."""

    name: Backend = "llm"

    def __init__(
        self, client: AsyncOpenAI | None, settings: Settings, calls: LlmCallRepository
    ) -> None:
        self.client = client
        self.settings = settings
        self.calls = calls
        self._semaphore = asyncio.Semaphore(settings.simulator_concurrency)
        self._json_schema = settings.simulator_json_schema

    @property
    def model(self) -> str:
        return self.settings.simulator_model

    @property
    def endpoint(self) -> str | None:
        return str(self.client.base_url) if self.client is not None else None

    def _secret_free(self, text: str) -> str:
        key = self.settings.openai_api_key
        if key is not None and key.get_secret_value():
            text = text.replace(key.get_secret_value(), "***")
        return text

    async def rate(
        self, request: RatingsRequest, items: list[int], facts: Mapping[int, MovieFacts]
    ) -> BackendResult:
        if self.client is None:
            raise Unavailable("the llm backend needs OPENAI_BASE_URL or OPENAI_API_KEY")
        unknown = [tmdb_id for tmdb_id in items if tmdb_id not in facts]
        if unknown:
            raise NotFound(
                f"TMDB does not know these movies, so the persona cannot be told what they "
                f"are: {unknown[:20]}"
            )
        persona = request.persona
        history = [(facts[m.tmdb_id], m.rating) for m in persona.history if m.tmdb_id in facts]
        experiences = [
            (facts[e.tmdb_id], e.rating, e.feeling)
            for e in persona.experiences
            if e.tmdb_id in facts
        ]
        movies = [facts[tmdb_id] for tmdb_id in items]
        started = time.perf_counter()
        spend = _Spend()

        response_format: ResponseFormat = "json_schema" if self._json_schema else "lines"
        conversation = persona_messages(
            history=history, experiences=experiences, items=movies, response_format=response_format
        )
        answers: dict[int, tuple[float, str]] = {}
        problems: dict[int, str] = {}
        wanted = set(range(1, len(movies) + 1))
        for attempt in range(self.settings.simulator_reasks + 1):
            try:
                content = await self._complete(
                    conversation, response_format, request, attempt, spend
                )
            except _SchemaUnsupported:
                # The endpoint has no structured outputs: ask again in the seed's line format.
                self._json_schema = False
                response_format = "lines"
                conversation = persona_messages(
                    history=history,
                    experiences=experiences,
                    items=movies,
                    response_format=response_format,
                )
                content = await self._complete(
                    conversation, response_format, request, attempt, spend
                )
            parsed = parse_answer(content, len(movies))
            for number in sorted(wanted):
                if number in parsed.ratings:
                    answers[number] = parsed.ratings[number]
                    problems.pop(number, None)
                else:
                    problems[number] = parsed.problems.get(number, "missing from the answer")
            wanted = {n for n in wanted if n not in answers}
            if not wanted:
                break
            log.info("llm_reask", attempt=attempt, missing=sorted(wanted)[:20], n=len(wanted))
            conversation = [
                *conversation,
                {"role": "assistant", "content": content},
                reask_message(
                    {n: problems[n] for n in wanted}, movies, response_format=response_format
                ),
            ]
        if wanted:
            described = "; ".join(
                f"[{n}] {movies[n - 1].label} (tmdb {movies[n - 1].tmdb_id}): {problems[n]}"
                for n in sorted(wanted)[:10]
            )
            raise UpstreamError(
                f"the LLM gave no valid rating for {len(wanted)} of {len(movies)} movies after "
                f"{self.settings.simulator_reasks + 1} attempts: {described}"
            )
        ratings = [
            ItemRating(tmdb_id=movies[n - 1].tmdb_id, rating=answers[n][0], feeling=answers[n][1])
            for n in range(1, len(movies) + 1)
        ]
        usage = Usage(
            prompt_tokens=spend.prompt_tokens,
            completion_tokens=spend.completion_tokens,
            cached=spend.calls == 0 and spend.replayed > 0,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )
        return BackendResult(ratings=ratings, usage=usage, model=self.model)

    def _parameters(
        self, messages: list[dict[str, str]], response_format: ResponseFormat, seed: int | None
    ) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.settings.simulator_temperature,
        }
        if seed is not None:
            parameters["seed"] = seed
        if response_format == "json_schema":
            parameters["response_format"] = RESPONSE_FORMAT
        return parameters

    def _hash(self, parameters: dict[str, Any]) -> str:
        canonical = json.dumps(
            {"endpoint": self.endpoint, **parameters}, sort_keys=True, ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    async def _complete(
        self,
        messages: list[dict[str, str]],
        response_format: ResponseFormat,
        request: RatingsRequest,
        attempt: int,
        spend: _Spend,
    ) -> str:
        assert self.client is not None
        parameters = self._parameters(messages, response_format, request.seed)
        request_hash = self._hash(parameters)
        if self.settings.simulator_replay:
            recorded = await self.calls.find(request_hash)
            if recorded is not None:
                spend.replayed += 1
                log.info("llm_replayed", call_id=recorded.id, request_hash=request_hash[:12])
                return recorded.response
            if response_format == "json_schema" and await self.calls.find(
                request_hash, status=UNSUPPORTED
            ):
                spend.replayed += 1  # the endpoint said so before: go to lines, no call
                raise _SchemaUnsupported()
        record: dict[str, Any] = {
            "request_hash": request_hash,
            "model": self.model,
            "endpoint": self.endpoint,
            "user_id": request.persona.user_id,
            "attempt": attempt,
            "response_format": response_format,
            "prompt": messages,
            "parameters": {k: v for k, v in parameters.items() if k != "messages"},
        }
        started = time.perf_counter()
        try:
            async with self._semaphore:
                completion = await self.client.chat.completions.create(**parameters)
        except openai.APIError as exc:
            latency = (time.perf_counter() - started) * 1000.0
            error = self._translate(exc, response_format)
            await self.calls.record(
                **record,
                response=None,
                status=UNSUPPORTED if isinstance(error, _SchemaUnsupported) else "error",
                error=self._secret_free(f"{type(exc).__name__}: {exc}")[:2000],
                prompt_tokens=0,
                completion_tokens=0,
                latency_ms=latency,
            )
            raise error from exc
        latency = (time.perf_counter() - started) * 1000.0
        spend.calls += 1
        content = completion.choices[0].message.content if completion.choices else None
        usage = completion.usage
        prompt_tokens = usage.prompt_tokens if usage else 0
        completion_tokens = usage.completion_tokens if usage else 0
        spend.prompt_tokens += prompt_tokens
        spend.completion_tokens += completion_tokens
        await self.calls.record(
            **record,
            response=content or "",
            status="ok" if content else "empty",
            error=None,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=latency,
        )
        return content or ""

    def _translate(self, exc: openai.APIError, response_format: ResponseFormat) -> Exception:
        """The typed error (or the schema fallback signal) for an error of the openai client."""
        message = self._secret_free(str(getattr(exc, "message", "") or exc))[:300]
        if isinstance(exc, openai.BadRequestError) and response_format == "json_schema":
            lowered = message.lower()
            if "response_format" in lowered or "json_schema" in lowered:
                return _SchemaUnsupported()
        error: ServiceError
        if isinstance(exc, openai.APITimeoutError):
            error = UpstreamTimeout(
                f"the LLM did not answer within {self.settings.simulator_timeout:g} s "
                f"({self.settings.simulator_max_retries} retries)"
            )
        elif isinstance(exc, openai.APIConnectionError):
            error = Unavailable(f"the LLM endpoint {self.endpoint} is unreachable")
        elif isinstance(exc, openai.RateLimitError):
            retry_after = exc.response.headers.get("retry-after")
            error = TooManyRequests(
                f"the LLM endpoint is rate limiting (429) after "
                f"{self.settings.simulator_max_retries} retries: {message}",
                headers={"Retry-After": retry_after} if retry_after else None,
            )
        elif isinstance(exc, openai.AuthenticationError):
            error = UpstreamError("the LLM endpoint rejected the API key (401)")
        elif isinstance(exc, openai.APIStatusError):
            error = UpstreamError(
                f"the LLM endpoint answered {exc.status_code}"
                f"{' after retries' if exc.status_code >= 500 else ''}: {message}"
            )
        else:
            error = UpstreamError(f"the LLM call failed: {type(exc).__name__}")
        return error
