"""Request and token budgets per endpoint and model, shared through the database.

Every simulator and recommender process on one database draws from the same budget row. A call
reserves its slot on a virtual schedule (the generic cell rate algorithm): the budget's next free
moment moves on by ``60 / rpm`` seconds per request and ``60 * tokens / tpm`` per token, and the
caller sleeps until its slot, so no process polls and the budget is never overdrawn by more than
``burst`` requests.

A 429 halves the budget's rate (``factor``) and blocks it until ``Retry-After``; every success
gives back a little of the rate (additive increase, multiplicative decrease), so a fleet settles
at what the endpoint really allows instead of failing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from prefshift_common.llm.store import LlmStore

#: The lowest share of the configured rate a run of 429s can bring a budget down to.
MIN_FACTOR = 0.05
#: Rate given back per successful call (additive increase).
INCREASE = 0.02
#: Seconds of token budget a burst may draw ahead.
TOKEN_BURST_SECONDS = 5.0
#: The pause after a 429 that names no Retry-After.
DEFAULT_BACKOFF = 1.0


@dataclass(frozen=True)
class Budget:
    requests_per_minute: float  # 0: unlimited
    tokens_per_minute: float  # 0: unlimited
    burst: int = 8


class RateLimiter:
    """The shared budget of one endpoint and model."""

    def __init__(
        self,
        store: LlmStore,
        scope: str,
        *,
        endpoint: str | None,
        model: str,
        budget: Budget,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.scope = scope
        self.endpoint = endpoint
        self.model = model
        self.budget = budget
        self.clock = clock
        self._ready = False
        self._factor = 1.0

    async def _ensure(self) -> None:
        if not self._ready:
            await self.store.ensure_budget(self.scope, endpoint=self.endpoint, model=self.model)
            self._ready = True

    async def reserve(self, tokens: int) -> float:
        """Reserve a slot for a call of about ``tokens`` tokens; the seconds to wait for it."""
        await self._ensure()
        budget = self.budget
        async with self.store.writing() as session:
            row = await self.store.locked_budget(session, self.scope)
            now = self.clock()
            self._factor = row.factor
            start = max(now, row.blocked_until)
            if budget.requests_per_minute > 0:
                interval = 60.0 / (budget.requests_per_minute * row.factor)
                start = max(start, row.next_request_at - budget.burst * interval)
                row.next_request_at = max(row.next_request_at, start) + interval
            if budget.tokens_per_minute > 0:
                cost = 60.0 * tokens / (budget.tokens_per_minute * row.factor)
                start = max(start, row.next_token_at - TOKEN_BURST_SECONDS)
                row.next_token_at = max(row.next_token_at, start) + cost
            await session.commit()
        return max(0.0, start - now)

    async def acquire(self, tokens: int) -> float:
        """Wait for a slot; the seconds waited."""
        wait = await self.reserve(tokens)
        if wait > 0:
            await asyncio.sleep(wait)
        return wait

    async def throttled(self, retry_after: float | None) -> None:
        """The endpoint answered 429: slow the shared budget down."""
        await self._ensure()
        async with self.store.writing() as session:
            row = await self.store.locked_budget(session, self.scope)
            now = self.clock()
            row.factor = self._factor = max(MIN_FACTOR, row.factor * 0.5)
            pause = retry_after if retry_after is not None and retry_after >= 0 else DEFAULT_BACKOFF
            row.blocked_until = max(row.blocked_until, now + min(pause, 600.0))
            row.next_request_at = max(row.next_request_at, row.blocked_until)
            row.throttled += 1
            await session.commit()

    async def succeeded(self) -> None:
        """A call went through: give back some of the rate a 429 took."""
        if self._factor >= 1.0:
            return
        await self._ensure()
        async with self.store.writing() as session:
            row = await self.store.locked_budget(session, self.scope)
            if row.factor < 1.0:
                row.factor = min(1.0, row.factor + INCREASE)
                self._factor = row.factor
                await session.commit()
            else:
                await session.rollback()

    async def factor(self) -> float:
        await self._ensure()
        async with self.store.writing() as session:
            row = await self.store.locked_budget(session, self.scope)
            value = row.factor
            await session.rollback()
            return value
