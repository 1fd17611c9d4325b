"""The one LLM client of prefshift: every chat-completion call of every service goes through it.

It owns the ``AsyncOpenAI`` client (its timeout; its own retries are off, so retries never
multiply), the structured-output ladder (:mod:`.formats`; the rung is decided per endpoint and
model, recorded, and revisited), the shared rate budget (:mod:`.ratelimit`), the record of every
call and the replay of valid ones, and the mapping of failures onto the service error envelope.

What it does with each kind of failure:

* the endpoint refuses the response format (by what it says, whatever the status): the call is
  made again one rung lower at once, and the decision is recorded for the endpoint and model;
* 429: the shared budget slows down (``Retry-After`` honoured) and the call waits its turn
  again, up to ``llm_rate_limit_retries`` times, then 429;
* 5xx or an unreachable endpoint: up to ``max_retries`` more tries with backoff, then 503 (the
  orchestrator retries a page step on it later);
* timeout: never retried with the identical request: 504 at once, naming the timeout, so the
  caller can ask for less (the connection of the abandoned call is closed by the client);
* an answer: the caller's ``validate`` says whether it is usable; only a ``valid`` answer is
  ever replayed, an ``invalid`` one is recorded with its cost and never served again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import openai
import structlog
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_common.errors import (
    ServiceError,
    TooManyRequests,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from prefshift_common.llm.formats import LADDER, Format, next_rung, refuses_format, response_format
from prefshift_common.llm.metrics import LlmMetrics
from prefshift_common.llm.models import ERROR, INVALID, UNSUPPORTED, VALID
from prefshift_common.llm.ratelimit import Budget, RateLimiter
from prefshift_common.llm.settings import LlmSettings
from prefshift_common.llm.store import LlmStore

log = structlog.get_logger(__name__)

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Verdict:
    """Whether an answer is usable (and so replayable), and what was wrong or missing."""

    valid: bool
    detail: str = ""


@dataclass(frozen=True)
class ChatTask:
    """One question to the model, worded for any rung of the ladder."""

    purpose: str
    messages: Callable[[Format], Messages]
    validate: Callable[[str, str | None], Verdict]
    schema: dict[str, Any] | None = None
    schema_name: str = "answer"
    seed: int | None = None
    max_tokens: int | None = None
    user_id: int | None = None


@dataclass(frozen=True)
class Answer:
    content: str
    finish_reason: str | None
    format: Format
    verdict: Verdict
    replayed: bool
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


def _scope(endpoint: str | None, model: str) -> str:
    return hashlib.sha256(f"{endpoint or ''}\n{model}".encode()).hexdigest()


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class LlmClient:
    """Chat completions of one model at one OpenAI-compatible endpoint, for one service."""

    def __init__(
        self,
        *,
        service: str,
        settings: LlmSettings,
        model: str,
        temperature: float,
        timeout: float,
        max_retries: int,
        sessions: async_sessionmaker[AsyncSession],
        replay: bool = True,
        top_format: Format = "json_schema",
        clock: Callable[[], float] = time.time,
        metrics: LlmMetrics | None = None,
    ) -> None:
        self.service = service
        self.metrics = metrics or LlmMetrics()
        self.settings = settings
        self.model = model
        self.temperature = temperature
        self.timeout = timeout
        self.max_retries = max_retries
        self.replay = replay
        self.top_format = top_format
        self.clock = clock
        self.store = LlmStore(sessions)
        self.openai: AsyncOpenAI | None = None
        if settings.openai_base_url or settings.openai_api_key is not None:
            key = settings.openai_api_key
            self.openai = AsyncOpenAI(
                api_key=key.get_secret_value() if key else "unused",
                base_url=settings.openai_base_url,
                timeout=timeout,
                max_retries=0,  # retries are this module's, by kind of failure
            )
        self.scope = _scope(self.endpoint, model)
        self.limiter = RateLimiter(
            self.store,
            self.scope,
            endpoint=self.endpoint,
            model=model,
            budget=Budget(
                settings.llm_requests_per_minute, settings.llm_tokens_per_minute, settings.llm_burst
            ),
            clock=clock,
        )
        self._in_flight = asyncio.Semaphore(settings.llm_max_in_flight)
        self._decision: tuple[Format, float] | None = None

    @property
    def configured(self) -> bool:
        return self.openai is not None

    @property
    def endpoint(self) -> str | None:
        return str(self.openai.base_url) if self.openai is not None else None

    async def aclose(self) -> None:
        if self.openai is not None:
            await self.openai.close()

    # --- the structured-output decision -------------------------------------------------------

    async def current_format(self) -> Format:
        """The rung to use now: the recorded decision, or the top once it is due a revisit."""
        if self._decision is None:
            row = await self.store.decision(self.scope)
            if row is not None and row.response_format in LADDER:
                self._decision = (row.response_format, row.decided_at)
            else:
                self._decision = (self.top_format, 0.0)
        used, decided_at = self._decision
        if LADDER.index(used) < LADDER.index(self.top_format):
            return self.top_format
        if used != self.top_format and (
            self.clock() - decided_at >= self.settings.llm_format_revisit_seconds
        ):
            return self.top_format  # revisit: the endpoint may accept it again
        return used

    async def _decide(self, used: Format, reason: str) -> None:
        now = self.clock()
        self._decision = (used, now)
        log.info("llm_format_decided", model=self.model, format=used, reason=reason[:200])
        await self.store.decide(
            self.scope, endpoint=self.endpoint, model=self.model, used=used, reason=reason, at=now
        )

    # --- calls --------------------------------------------------------------------------------

    def replay_key(self, task: ChatTask) -> str:
        """What the call asks, whichever rung words it: the key its valid answer replays by."""
        canonical = {
            "endpoint": self.endpoint,
            "model": self.model,
            "purpose": task.purpose,
            "temperature": self.temperature,
            "seed": task.seed,
            "max_tokens": task.max_tokens,
            "messages": task.messages(LADDER[0]),
            "schema": task.schema,
        }
        text = json.dumps(canonical, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def _secret_free(self, text: str) -> str:
        key = self.settings.openai_api_key
        if key is not None and key.get_secret_value():
            text = text.replace(key.get_secret_value(), "***")
        return text

    async def complete(self, task: ChatTask) -> Answer:
        """The model's answer to ``task`` (replayed when a valid one is recorded)."""
        if self.openai is None:
            raise Unavailable("no LLM configured: set OPENAI_BASE_URL or OPENAI_API_KEY")
        key = self.replay_key(task)
        if self.replay:
            recorded = await self.store.find_valid(key)
            if recorded is not None:
                log.debug("llm_replayed", call_id=recorded.id, purpose=task.purpose)
                self.metrics.calls.labels("replayed").inc()
                return Answer(
                    content=recorded.response,
                    finish_reason=recorded.finish_reason,
                    format=cast(Format, recorded.response_format),
                    verdict=task.validate(recorded.response, recorded.finish_reason),
                    replayed=True,
                    prompt_tokens=0,
                    completion_tokens=0,
                    latency_ms=0.0,
                )
        used = await self.current_format()
        failures = throttles = 0
        while True:
            messages = task.messages(used)
            parameters: dict[str, Any] = {"model": self.model, "temperature": self.temperature}
            if task.seed is not None:
                parameters["seed"] = task.seed
            if task.max_tokens is not None:
                parameters["max_tokens"] = task.max_tokens
            wanted = response_format(used, task.schema_name, task.schema)
            if wanted is not None:
                parameters["response_format"] = wanted
            record: dict[str, Any] = {
                "service": self.service,
                "purpose": task.purpose,
                "replay_key": key,
                "model": self.model,
                "endpoint": self.endpoint,
                "user_id": task.user_id,
                "response_format": used,
                "prompt": messages,
                "parameters": parameters,
            }
            estimate = sum(len(m["content"]) for m in messages) // 4 + (task.max_tokens or 512)
            waited = await self.limiter.acquire(estimate)
            if waited > 0:
                self.metrics.rate_limit_waits.inc()
                self.metrics.rate_limit_wait_seconds.inc(waited)
            started = time.perf_counter()
            try:
                async with self._in_flight:
                    completion = await self.openai.chat.completions.create(
                        messages=cast(list[ChatCompletionMessageParam], messages), **parameters
                    )
            except openai.APIError as exc:
                latency = (time.perf_counter() - started) * 1000.0
                self.metrics.call_seconds.observe(latency / 1000.0)
                message = self._secret_free(str(getattr(exc, "message", "") or exc))[:500]
                status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
                refused = refuses_format(status, message, used)
                self.metrics.calls.labels(UNSUPPORTED if refused else ERROR).inc()
                await self.store.record(
                    **record,
                    response=None,
                    finish_reason=None,
                    status=UNSUPPORTED if refused else ERROR,
                    detail=f"{type(exc).__name__}: {message}"[:2000],
                    prompt_tokens=0,
                    completion_tokens=0,
                    latency_ms=latency,
                )
                if refused:
                    lower = next_rung(used)
                    assert lower is not None
                    await self._decide(lower, f"{used} refused ({status}): {message}")
                    used = lower
                    continue
                if isinstance(exc, openai.RateLimitError):
                    self.metrics.throttled.inc()
                    throttles += 1
                    retry_after = _retry_after(exc)
                    await self.limiter.throttled(retry_after)
                    if throttles > self.settings.llm_rate_limit_retries:
                        raise TooManyRequests(
                            f"the LLM endpoint kept answering 429 ({throttles} times): {message}",
                            headers={"Retry-After": f"{retry_after:g}"} if retry_after else None,
                        ) from exc
                    log.info("llm_throttled", retry_after=retry_after, throttles=throttles)
                    continue
                error = self._error(exc, message)
                if isinstance(error, UpstreamTimeout) or not _transient(exc):
                    raise error from exc
                failures += 1
                if failures > self.max_retries:
                    raise error from exc
                log.info("llm_retry", error=error.detail[:200], failures=failures)
                await asyncio.sleep(min(0.5 * 2 ** (failures - 1), 8.0))
                continue
            latency = (time.perf_counter() - started) * 1000.0
            self.metrics.call_seconds.observe(latency / 1000.0)
            await self.limiter.succeeded()
            choice = completion.choices[0] if completion.choices else None
            content = (choice.message.content if choice else None) or ""
            finish_reason = choice.finish_reason if choice else None
            usage = completion.usage
            verdict = task.validate(content, finish_reason)
            self.metrics.calls.labels(VALID if verdict.valid else INVALID).inc()
            if usage:
                self.metrics.tokens.labels("prompt").inc(usage.prompt_tokens)
                self.metrics.tokens.labels("completion").inc(usage.completion_tokens)
            await self.store.record(
                **record,
                response=content,
                finish_reason=finish_reason,
                status=VALID if verdict.valid else INVALID,
                detail=verdict.detail[:2000] or None,
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                latency_ms=latency,
            )
            if self._decision is not None and used != self._decision[0]:
                await self._decide(used, f"{used} accepted")
            return Answer(
                content=content,
                finish_reason=finish_reason,
                format=used,
                verdict=verdict,
                replayed=False,
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
                latency_ms=latency,
            )

    def _error(self, exc: openai.APIError, message: str) -> ServiceError:
        """The envelope error of a failed call."""
        if isinstance(exc, openai.APITimeoutError):
            return UpstreamTimeout(
                f"the LLM did not answer within {self.timeout:g} s; the call was abandoned and "
                "its connection closed"
            )
        if isinstance(exc, openai.APIConnectionError):
            return Unavailable(f"the LLM endpoint {self.endpoint} is unreachable")
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return UpstreamError(f"the LLM endpoint rejected the API key ({exc.status_code})")
        if isinstance(exc, openai.APIStatusError) and _transient(exc):
            # it kept failing through our retries: unavailable for now (callers retry later)
            return Unavailable(
                f"the LLM endpoint answered {exc.status_code} {self.max_retries + 1} times: "
                f"{message}"
            )
        if isinstance(exc, openai.APIStatusError):
            return UpstreamError(f"the LLM endpoint answered {exc.status_code}: {message}")
        return UpstreamError(f"the LLM call failed: {type(exc).__name__}")


def _transient(exc: openai.APIError) -> bool:
    if isinstance(exc, openai.APIConnectionError):
        return True
    return (isinstance(exc, openai.APIStatusError) and exc.status_code in (408, 409)) or (
        isinstance(exc, openai.APIStatusError) and exc.status_code >= 500
    )
