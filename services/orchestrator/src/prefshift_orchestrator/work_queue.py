"""The work queue in the database: claiming queued runs, heartbeats, handing runs back, and
re-queueing runs whose worker stopped heart-beating. The caller commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_orchestrator.models import Run
from prefshift_orchestrator.repository import Claim, utcnow


class WorkQueue:
    """Claiming queued runs, heartbeats and re-queueing of stalled runs."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def depth(self) -> dict[str, int]:
        """How many runs stand in each status (one ``COUNT ... GROUP BY``, no row loaded)."""
        rows = await self.session.execute(select(Run.status, func.count()).group_by(Run.status))
        return {status: count for status, count in rows}

    async def claim(self, worker_id: str) -> Claim | None:
        """Atomically move the oldest queued run to ``running`` for this worker."""
        token = uuid.uuid4().hex
        now = utcnow()
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            run_id = (
                await self.session.execute(
                    select(Run.id)
                    .where(Run.status == "queued")
                    .order_by(Run.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).scalar()
            if run_id is None:
                return None
            condition = and_(Run.id == run_id, Run.status == "queued")
        else:
            # SQLite serialises writers: one UPDATE with the pick in a subquery is atomic.
            oldest = (
                select(Run.id).where(Run.status == "queued").order_by(Run.id).limit(1)
            ).scalar_subquery()
            condition = and_(Run.id == oldest, Run.status == "queued")
        claimed = (
            await self.session.execute(
                update(Run)
                .where(condition)
                .values(
                    status="running",
                    claimed_by=worker_id,
                    claim_token=token,
                    heartbeat_at=now,
                    started_at=func.coalesce(Run.started_at, now),
                    attempts=Run.attempts + 1,
                )
                .returning(Run.id)
            )
        ).scalar()
        return None if claimed is None else Claim(run_id=int(claimed), token=token)

    async def heartbeat(self, claims: Sequence[Claim]) -> set[int]:
        """Refresh the heartbeat of the runs still held; returns the ids no longer held."""
        lost: set[int] = set()
        now = utcnow()
        for claim in claims:
            result = await self.session.execute(
                update(Run)
                .where(
                    Run.id == claim.run_id, Run.claim_token == claim.token, Run.status == "running"
                )
                .values(heartbeat_at=now)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                lost.add(claim.run_id)
        return lost

    async def release(self, claims: Sequence[Claim]) -> None:
        """Hand runs this process still holds back to the queue (at shutdown)."""
        for claim in claims:
            await self.session.execute(
                update(Run)
                .where(
                    Run.id == claim.run_id,
                    Run.claim_token == claim.token,
                    Run.status == "running",
                )
                .values(status="queued", claimed_by=None, claim_token=None)
            )

    async def requeue_stalled(self, *, stall_seconds: float, max_attempts: int) -> int:
        """Runs whose worker stopped heart-beating go back to the queue (or fail after
        ``max_attempts`` claims). Returns how many were re-queued or failed."""
        threshold = utcnow() - timedelta(seconds=stall_seconds)
        stalled = and_(
            Run.status == "running", or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < threshold)
        )
        failed = await self.session.execute(
            update(Run)
            .where(stalled, Run.attempts >= max_attempts)
            .values(
                status="failed",
                claim_token=None,
                finished_at=utcnow(),
                error={
                    "error": "stalled",
                    "status": 500,
                    "detail": f"the run stalled {max_attempts} times (its workers died)",
                },
            )
        )
        requeued = await self.session.execute(
            update(Run)
            .where(stalled, Run.attempts < max_attempts)
            .values(status="queued", claimed_by=None, claim_token=None)
        )
        return int(failed.rowcount + requeued.rowcount)  # type: ignore[attr-defined]
