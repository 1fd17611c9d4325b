"""The checkpoint store: a run's progress in the database, step by step.

Every write made on behalf of a claimed run is *fenced* (:meth:`RunRepository.fence`): it lands
only while the worker still holds the claim, else :class:`LostClaim` is raised and the worker
drops the run. A step's ratings and its checkpoint commit together, so a step is either stored
whole or not at all; a resumed run reads back what is stored (:meth:`CheckpointStore.stored`)
and the plan skips it.

SQLite has one writer at a time and its busy handler sleeps (up to 100 ms a try) while another
connection writes, so this process's writers queue on one lock instead (none on Postgres).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_common.contracts import Experience
from prefshift_common.db import WriteSessions, is_sqlite
from prefshift_orchestrator.execution.arms import Page
from prefshift_orchestrator.execution.plan import PageKey, StoredPage
from prefshift_orchestrator.metrics import OrchestratorMetrics
from prefshift_orchestrator.models import Run
from prefshift_orchestrator.repository import Claim, LostClaim, NewRating, RunRepository

#: The longest feeling kept in an experience handed back to the simulator.
FEELING_CHARS = 2000


def experiences_of(ratings: list[NewRating]) -> list[Experience]:
    """The persona's experiences from its ratings of a page."""
    return [
        Experience(tmdb_id=r.tmdb_id, rating=r.rating, feeling=r.feeling[:FEELING_CHARS])
        for r in ratings
    ]


@dataclass
class Progress:
    """The share of a run's pages that are complete (the baseline counts as one page)."""

    total: int
    done: set[PageKey] = field(default_factory=set)

    def complete(self, arm: str, page: int) -> float:
        """Count a page as complete; the run's progress with it."""
        self.done.add((arm, page))
        return min(1.0, len(self.done) / self.total)


class CheckpointStore:
    """Reads and fenced writes of runs in execution."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        database_url: str,
        metrics: OrchestratorMetrics | None = None,
    ) -> None:
        self.sessions = sessions
        self.metrics = metrics or OrchestratorMetrics()
        #: A session for one write transaction (serialised within the process on SQLite).
        self.writing = WriteSessions(sessions, sqlite=is_sqlite(database_url))

    async def run(self, run_id: int) -> Run | None:
        """The run as stored now (detached: it stays readable after its session closes)."""
        async with self.sessions() as session:
            return await RunRepository(session).get(run_id)

    async def stored(self, run_id: int) -> dict[PageKey, StoredPage]:
        """What is stored of each page of the run (the input of the plan)."""
        async with self.sessions() as session:
            repository = RunRepository(session)
            pages = await repository.pages(run_id)
            ratings = await repository.ratings(run_id)
        experiences: dict[PageKey, list[Experience]] = {}
        for rating in sorted(ratings, key=lambda r: r.id):
            if rating.phase == "experience":
                experiences.setdefault((rating.arm, rating.page), []).append(
                    Experience(
                        tmdb_id=rating.tmdb_id,
                        rating=rating.rating,
                        feeling=(rating.feeling or "")[:FEELING_CHARS],
                    )
                )
        stored: dict[PageKey, StoredPage] = {}
        for page in pages:
            key = (page.arm, page.page)
            recommended = page.recommended
            stored[key] = StoredPage(
                recommended=None
                if recommended is None
                else tuple(int(item["tmdb_id"]) for item in recommended),
                experiences=None
                if page.experienced_at is None
                else tuple(experiences.get(key, ())),
                completed=page.completed_at is not None,
            )
        return stored

    async def save_preparation(
        self,
        claim: Claim,
        *,
        selection: dict[str, Any],
        arms: list[dict[str, Any]],
        messages: list[str],
    ) -> None:
        async with self.writing() as session:
            await RunRepository(session).fence(
                claim, selection=selection, arms=arms, messages=messages
            )
            await session.commit()

    async def save_recommendations(self, claim: Claim, *, arm: str, page: int, shown: Page) -> None:
        """Store the movies a page showed (and where they came from)."""
        async with self.writing() as session:
            await RunRepository(session).save_recommendations(
                claim,
                arm=arm,
                page=page,
                recommended=shown.items,
                recommender_info=shown.info,
                latency_ms=shown.latency_ms,
            )
            await session.commit()

    async def save_experiences(
        self,
        claim: Claim,
        *,
        arm: str,
        page: int,
        ratings: list[NewRating],
        latency_ms: float,
        blind: Sequence[NewRating] = (),
    ) -> None:
        """Store the persona's ratings of a page's recommendations (with ``blind``, a
        shown-prediction arm's ratings of the same movies with no prediction shown: one step)."""
        await self._save_ratings(claim, arm, page, "experience", ratings, latency_ms, None, blind)

    async def save_test_ratings(
        self,
        claim: Claim,
        *,
        arm: str,
        page: int,
        ratings: list[NewRating],
        latency_ms: float,
        progress: Progress,
    ) -> None:
        """Store the test re-ratings of a page (the baseline's ratings are page 0 of arm
        ``baseline``): the page is complete and the run's progress moves."""
        await self._save_ratings(claim, arm, page, "test", ratings, latency_ms, progress)

    async def _save_ratings(
        self,
        claim: Claim,
        arm: str,
        page: int,
        phase: str,
        ratings: list[NewRating],
        latency_ms: float,
        progress: Progress | None,
        blind: Sequence[NewRating] = (),
    ) -> None:
        async with self.writing() as session:
            # Counted inside the write lock, so the stored progress never goes back on SQLite.
            fraction = None if progress is None else progress.complete(arm, page)
            await RunRepository(session).save_ratings(
                claim,
                arm=arm,
                page=page,
                phase=phase,
                ratings=ratings,
                latency_ms=latency_ms,
                progress=fraction,
                blind=blind,
            )
            await session.commit()
        self.metrics.ratings_written.labels(phase).inc(len(ratings))
        if blind:
            self.metrics.ratings_written.labels("blind").inc(len(blind))

    async def finish(
        self,
        claim: Claim,
        status: str,
        error: dict[str, Any] | None,
        notes: Sequence[str] = (),
        *,
        rated_by: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Record how the run ended, with ``notes`` for its messages and who rated it (nothing
        when the claim was lost meanwhile)."""
        try:
            async with self.writing() as session:
                await RunRepository(session).finish(
                    claim, status=status, error=error, notes=notes, rated_by=rated_by
                )
                await session.commit()
        except LostClaim:
            return
        if status == "completed":
            self.metrics.runs_completed.inc()
        elif status == "failed":
            self.metrics.runs_failed.inc()


class WriteBehind:
    """Stores one arm's steps in order while the arm goes on with its next service call.

    A step's write starts when the step is done; the next write waits for it, so checkpoints are
    stored in protocol order and a later step is never stored before an earlier one (a failed
    write stops the arm at its next step). A process that dies loses at most the step being
    written, whose call is then made again on resume (it was never stored, so it is not
    completed work). The database's latency leaves the arm's critical path: a page costs its
    service calls, not its commits.
    """

    def __init__(self) -> None:
        self._pending: asyncio.Task[None] | None = None

    async def submit(self, write: Coroutine[Any, Any, None]) -> None:
        await self.flush()
        self._pending = asyncio.create_task(write)

    async def flush(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def abandon(self) -> None:
        """Stop the pending step and wait until it has let go of what it held (the run is
        being stopped: a step not stored is made again on resume)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
