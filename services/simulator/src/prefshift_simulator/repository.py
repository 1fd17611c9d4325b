"""All SQL of the simulator: the LLM call records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_simulator.models import LlmCall


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """A successful call found by its request hash."""

    id: int
    response: str
    prompt_tokens: int
    completion_tokens: int


class LlmCallRepository:
    """Writes and finds LLM call records.

    Each record is written and committed in its own short session, not in the request's: a
    failed request must still leave the record of the calls it made (the audit trail and the
    cost), so these writes cannot wait for, or roll back with, the request boundary.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(
        self,
        *,
        request_hash: str,
        model: str,
        endpoint: str | None,
        user_id: int | None,
        attempt: int,
        response_format: str,
        prompt: list[dict[str, Any]],
        parameters: dict[str, Any],
        response: str | None,
        status: str,
        error: str | None,
        prompt_tokens: int,
        completion_tokens: int,
        latency_ms: float,
    ) -> int:
        call = LlmCall(
            request_hash=request_hash,
            model=model[:200],
            endpoint=endpoint[:500] if endpoint else None,
            user_id=user_id,
            attempt=attempt,
            response_format=response_format,
            prompt=prompt,
            parameters=parameters,
            # Postgres text cannot hold NUL; a model can emit one.
            response=response.replace("\x00", "\ufffd") if response is not None else None,
            status=status,
            error=error,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=latency_ms,
        )
        async with self._sessions() as session:
            session.add(call)
            await session.commit()
            return call.id

    async def find_ok(self, request_hash: str) -> RecordedCall | None:
        """The latest successful call with this hash, if any."""
        async with self._sessions() as session:
            call = await session.scalar(
                select(LlmCall)
                .where(LlmCall.request_hash == request_hash, LlmCall.status == "ok")
                .order_by(LlmCall.id.desc())
                .limit(1)
            )
            if call is None or call.response is None:
                return None
            return RecordedCall(
                id=call.id,
                response=call.response,
                prompt_tokens=call.prompt_tokens,
                completion_tokens=call.completion_tokens,
            )

    async def list_calls(self, *, limit: int = 100) -> list[LlmCall]:
        """The latest calls, newest first."""
        async with self._sessions() as session:
            rows = await session.scalars(select(LlmCall).order_by(LlmCall.id.desc()).limit(limit))
            return list(rows.all())
