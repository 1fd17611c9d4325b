"""Retrying one page step (a recommendation or a rating call) while a service is overloaded.

A step that ends in 429, 503 or 504 is made again after a pause (the answer's ``Retry-After``,
else exponential backoff from ``PREFSHIFT_ORCHESTRATOR_STEP_BACKOFF_SECONDS``, with jitter), up
to ``PREFSHIFT_ORCHESTRATOR_STEP_RETRIES`` times. Only the step's own call is made again: the
steps already stored are never repeated, and an LLM's valid answers are replayed from their
record, so a retry costs no LLM work already done.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TypeVar

import structlog

from prefshift_common.errors import TooManyRequests, Unavailable, UpstreamTimeout
from prefshift_orchestrator.config import Settings

log = structlog.get_logger(__name__)
T = TypeVar("T")

#: The longest pause between two tries of a step.
MAX_PAUSE = 120.0


async def retry_step(settings: Settings, what: str, call: Callable[[], Awaitable[T]]) -> T:
    """``call()``, retried while it fails with 429, 503 or 504."""
    retries = settings.orchestrator_step_retries
    for attempt in range(retries + 1):
        try:
            return await call()
        except (TooManyRequests, Unavailable, UpstreamTimeout) as error:
            if attempt == retries:
                raise
            pause = settings.orchestrator_step_backoff_seconds * 2**attempt
            retry_after = (error.headers or {}).get("Retry-After")
            if retry_after is not None:
                with suppress(ValueError):
                    pause = max(pause, float(retry_after))
            pause = min(pause, MAX_PAUSE) * random.uniform(0.8, 1.2)
            log.warning(
                "page_step_retry",
                step=what,
                attempt=attempt + 1,
                pause=round(pause, 2),
                error=error.detail[:200],
            )
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover
