"""All SQL of the simulator: the LLM call records, and the dataset reads of the embedded persona."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, and_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_datasets.models import Movie as MovieRow
from prefshift_datasets.models import Rating as RatingRow
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

    async def find(self, request_hash: str, *, status: str = "ok") -> RecordedCall | None:
        """The latest call with this hash and status, if any."""
        async with self._sessions() as session:
            call = await session.scalar(
                select(LlmCall)
                .where(LlmCall.request_hash == request_hash, LlmCall.status == status)
                .order_by(LlmCall.id.desc())
                .limit(1)
            )
            if call is None:
                return None
            return RecordedCall(
                id=call.id,
                response=call.response or "",
                prompt_tokens=call.prompt_tokens,
                completion_tokens=call.completion_tokens,
            )

    async def list_calls(self, *, limit: int = 100) -> list[LlmCall]:
        """The latest calls, newest first."""
        async with self._sessions() as session:
            rows = await session.scalars(select(LlmCall).order_by(LlmCall.id.desc()).limit(limit))
            return list(rows.all())


# --- dataset reads the embedded persona needs (datasets.repository has no equivalent) ----------

_RATINGS_CHUNK = 500_000


@dataclass(frozen=True, slots=True)
class RatingTriples:
    """Every rating of a dataset on a movie with a TMDB id, as three parallel arrays."""

    user_ids: npt.NDArray[np.int64]
    tmdb_ids: npt.NDArray[np.int64]
    ratings: npt.NDArray[np.float64]


def rating_triples(connection: Connection, dataset_id: int) -> RatingTriples:
    """(user, TMDB id, rating) of every rating, read in chunks of plain tuples.

    ``prefshift_datasets.repository.load_ratings`` returns the same rows, but turning SQLAlchemy
    rows into numpy costs it about 5 s per 100,000 ratings; tuples cost a tenth of that, which is
    the simulator's start-up time on the seed cohort.
    """
    query = (
        select(RatingRow.user_id, MovieRow.tmdb_id, RatingRow.rating)
        .join(
            MovieRow,
            and_(
                MovieRow.dataset_id == RatingRow.dataset_id,
                MovieRow.movielens_id == RatingRow.movielens_id,
            ),
        )
        .where(RatingRow.dataset_id == dataset_id, MovieRow.tmdb_id.is_not(None))
    )
    blocks: list[npt.NDArray[np.float64]] = []
    result = connection.execution_options(stream_results=True, yield_per=_RATINGS_CHUNK).execute(
        query
    )
    for partition in result.partitions():
        blocks.append(np.array([tuple(row) for row in partition], dtype=np.float64))
    table = np.concatenate(blocks) if blocks else np.zeros((0, 3))
    return RatingTriples(
        user_ids=table[:, 0].astype(np.int64),
        tmdb_ids=table[:, 1].astype(np.int64),
        ratings=table[:, 2],
    )
