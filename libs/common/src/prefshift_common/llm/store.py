"""The SQL of the LLM client: call records, format decisions, rate budgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_common.db import WriteSessions
from prefshift_common.llm.models import VALID, LlmCall, LlmFormatDecision, LlmRateBudget


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """A valid call found by its replay key."""

    id: int
    response: str
    finish_reason: str | None
    response_format: str
    prompt_tokens: int
    completion_tokens: int


class LlmStore:
    """Each write is committed in its own short session: a failed request must still leave the
    record of the calls it made (the audit trail and the cost).

    Writes go through :class:`~prefshift_common.db.WriteSessions`: on SQLite, dozens of calls in
    flight each holding a pooled connection while SQLite made them wait emptied the pool (its
    30 s checkout timeout failed a 20-user experiment)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        bind = sessions.kw.get("bind")
        self.writing = WriteSessions(
            sessions, sqlite=bind is not None and bind.dialect.name == "sqlite"
        )

    async def record(self, **fields: Any) -> int:
        response = fields.get("response")
        if response is not None:  # Postgres text cannot hold NUL; a model can emit one.
            fields["response"] = response.replace("\x00", "\ufffd")
        fields["model"] = fields["model"][:200]
        if fields.get("endpoint"):
            fields["endpoint"] = fields["endpoint"][:500]
        call = LlmCall(**fields)
        async with self.writing() as session:
            session.add(call)
            await session.commit()
            return call.id

    async def find_valid(self, replay_key: str) -> RecordedCall | None:
        """The latest valid call with this key, if any."""
        async with self.sessions() as session:
            call = await session.scalar(
                select(LlmCall)
                .where(LlmCall.replay_key == replay_key, LlmCall.status == VALID)
                .order_by(LlmCall.id.desc())
                .limit(1)
            )
            if call is None:
                return None
            return RecordedCall(
                id=call.id,
                response=call.response or "",
                finish_reason=call.finish_reason,
                response_format=call.response_format,
                prompt_tokens=call.prompt_tokens,
                completion_tokens=call.completion_tokens,
            )

    async def calls(self, *, service: str | None = None, limit: int = 100) -> list[LlmCall]:
        """The latest calls, newest first."""
        query = select(LlmCall).order_by(LlmCall.id.desc()).limit(limit)
        if service is not None:
            query = query.where(LlmCall.service == service)
        async with self.sessions() as session:
            return list((await session.scalars(query)).all())

    # --- format decisions -------------------------------------------------------------------

    async def decision(self, scope: str) -> LlmFormatDecision | None:
        async with self.sessions() as session:
            return await session.get(LlmFormatDecision, scope)

    async def decide(
        self, scope: str, *, endpoint: str | None, model: str, used: str, reason: str, at: float
    ) -> None:
        async with self.writing() as session:
            row = await session.get(LlmFormatDecision, scope)
            if row is None:
                row = LlmFormatDecision(scope=scope, endpoint=endpoint, model=model)
                session.add(row)
            row.response_format, row.reason, row.decided_at = used, reason[:2000], at
            try:
                await session.commit()
            except IntegrityError:  # another process decided at the same moment: theirs holds
                await session.rollback()

    # --- rate budgets -----------------------------------------------------------------------

    async def ensure_budget(self, scope: str, *, endpoint: str | None, model: str) -> None:
        async with self.writing() as session:
            if await session.get(LlmRateBudget, scope) is not None:
                return
            session.add(LlmRateBudget(scope=scope, endpoint=endpoint, model=model))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()

    async def locked_budget(self, session: AsyncSession, scope: str) -> LlmRateBudget:
        """The budget row, locked for this transaction (the no-op UPDATE takes the row lock on
        Postgres and the write lock on SQLite, so two processes never reserve the same slot)."""
        await session.execute(
            update(LlmRateBudget)
            .where(LlmRateBudget.scope == scope)
            .values(throttled=LlmRateBudget.throttled)
        )
        row = await session.get(LlmRateBudget, scope, populate_existing=True)
        assert row is not None
        return row
