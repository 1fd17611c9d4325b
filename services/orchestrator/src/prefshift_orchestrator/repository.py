"""SQL of runs, their ratings and checkpoints, and experiments (the work queue's is in
``work_queue``).

Writes made by a worker on behalf of a claimed run go through :meth:`RunRepository.fence`, an
``UPDATE`` that succeeds only while the worker still holds the claim (same claim token, status
``running``). It is the first statement of each such transaction, so a run re-queued after a
stall or cancelled is never written by a worker that lost it, and on SQLite the write lock is
taken at once (no read-then-write lock upgrade).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_orchestrator.models import (
    Experiment,
    ExperimentRun,
    Run,
    RunPage,
    RunRating,
)


@dataclass(frozen=True)
class RunState:
    """One user's run of an experiment, without the run's parameters and results."""

    run_id: int
    user_id: int
    archetype: str | None
    status: str
    progress: float
    error: dict[str, Any] | None


@dataclass(frozen=True)
class StatusCounts:
    """An experiment's runs by status: ``counts[status] = (runs, sum of their progress)``, and
    the errors of the failed ones."""

    counts: dict[str, tuple[int, float]]
    failure_errors: list[dict[str, Any] | None]


#: The ratings' table, for Core inserts (no ORM object per rating).
RUN_RATINGS = cast(Table, RunRating.__table__)
#: The pages' checkpoints, for Core statements.
RUN_PAGES = cast(Table, RunPage.__table__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class LostClaim(Exception):
    """The run is no longer this worker's (cancelled, re-queued or claimed by another)."""


@dataclass(frozen=True)
class Claim:
    run_id: int
    token: str


@dataclass(frozen=True)
class NewRating:
    tmdb_id: int
    rating: float
    feeling: str
    #: The predicted rating shown beside the movie (stars), and the rerate condition.
    shown: float | None = None
    condition: str | None = None


def new_run(
    *,
    user_id: int,
    dataset: str,
    params: dict[str, Any],
    seed: int,
    params_hash: str,
    error: dict[str, Any] | None = None,
) -> Run:
    """A submitted run: ``queued`` and holding its idempotency key, or — a member of an
    experiment that cannot run, with its ``error`` record — ``failed`` at once and holding no
    key (so it is checked afresh next time)."""
    now = utcnow()
    return Run(
        user_id=user_id,
        dataset=dataset,
        params=params,
        seed=seed,
        params_hash=params_hash,
        idempotency_key=None if error else params_hash,
        status="failed" if error else "queued",
        progress=0.0,
        error=error,
        messages=[],
        attempts=0,
        created_at=now,
        finished_at=now if error else None,
    )


class RunRepository:
    """Runs, ratings and checkpoints. The caller (request or worker step) commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- runs -------------------------------------------------------------------------------------

    async def get(self, run_id: int) -> Run | None:
        return await self.session.get(Run, run_id, populate_existing=True)

    async def by_idempotency_key(self, key: str) -> Run | None:
        """The current run for a (user, dataset, protocol, seed) hash, if any."""
        return (await self.session.scalars(select(Run).where(Run.idempotency_key == key))).first()

    async def by_idempotency_keys(self, keys: Sequence[str]) -> dict[str, Run]:
        found: dict[str, Run] = {}
        for start in range(0, len(keys), 1000):
            chunk = list(keys[start : start + 1000])
            for run in await self.session.scalars(
                select(Run).where(Run.idempotency_key.in_(chunk))
            ):
                assert run.idempotency_key is not None
                found[run.idempotency_key] = run
        return found

    async def latest_for_user(self, user_id: int, dataset: str | None) -> Run | None:
        statement = select(Run).where(Run.user_id == user_id)
        if dataset is not None:
            statement = statement.where(Run.dataset == dataset)
        statement = statement.order_by(Run.id.desc()).limit(1)
        return (await self.session.scalars(statement)).first()

    async def add(self, runs: Sequence[Run]) -> None:
        """Insert submitted runs (:func:`new_run`). Raises ``IntegrityError`` when another
        request holds one of their idempotency keys; the caller commits."""
        self.session.add_all(runs)
        await self.session.flush()

    async def release_idempotency_key(self, key: str) -> None:
        """The run holding ``key`` stops holding it (a forced re-run takes it over)."""
        await self.session.execute(
            update(Run).where(Run.idempotency_key == key).values(idempotency_key=None)
        )

    async def cancel(self, run_id: int) -> bool:
        """Cancel a queued or running run; False if it had already finished."""
        result = await self.session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status.in_(("queued", "running")))
            .values(status="cancelled", finished_at=utcnow(), claim_token=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def ratings(self, run_id: int) -> Sequence[RunRating]:
        statement = (
            select(RunRating)
            .where(RunRating.run_id == run_id)
            .order_by(RunRating.arm, RunRating.page, RunRating.phase, RunRating.id)
        )
        return (await self.session.scalars(statement)).all()

    async def pages(self, run_id: int) -> Sequence[RunPage]:
        statement = (
            select(RunPage).where(RunPage.run_id == run_id).order_by(RunPage.arm, RunPage.page)
        )
        return (await self.session.scalars(statement)).all()

    async def completed_pages(self, run_ids: Sequence[int]) -> dict[int, int]:
        if not run_ids:
            return {}
        statement = (
            select(RunPage.run_id, func.count())
            .where(RunPage.run_id.in_(run_ids), RunPage.completed_at.is_not(None))
            .group_by(RunPage.run_id)
        )
        return {
            int(run_id): int(count) for run_id, count in (await self.session.execute(statement))
        }

    # --- worker writes (fenced) ----------------------------------------------------------------

    async def fence(self, claim: Claim, **values: Any) -> None:
        """Refresh the heartbeat (and set ``values``) only if ``claim`` still holds the run."""
        result = await self.session.execute(
            update(Run)
            .where(Run.id == claim.run_id, Run.claim_token == claim.token, Run.status == "running")
            .values(heartbeat_at=utcnow(), **values)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise LostClaim(f"run {claim.run_id} is no longer claimed by this worker")

    async def page(self, run_id: int, arm: str, page: int) -> RunPage | None:
        return await self.session.get(RunPage, (run_id, arm, page), populate_existing=True)

    async def save_recommendations(
        self,
        claim: Claim,
        *,
        arm: str,
        page: int,
        recommended: list[dict[str, Any]],
        recommender_info: dict[str, Any],
        latency_ms: float,
    ) -> None:
        await self.fence(claim)
        await self._checkpoint(
            claim.run_id,
            arm,
            page,
            ("recommend_ms", latency_ms),
            recommended=recommended,
            recommender_info=recommender_info,
        )

    async def _checkpoint(
        self, run_id: int, arm: str, page: int, timing: tuple[str, float], **values: Any
    ) -> None:
        """Set ``values`` and one timing of a page's checkpoint, creating it if need be: two
        Core statements reading its timings alone (not the page's recommendations)."""
        key = (RUN_PAGES.c.run_id == run_id, RUN_PAGES.c.arm == arm, RUN_PAGES.c.page == page)
        row = (await self.session.execute(select(RUN_PAGES.c.timings).where(*key))).one_or_none()
        if row is None:
            await self.session.execute(
                insert(RUN_PAGES).values(
                    run_id=run_id, arm=arm, page=page, timings=dict([timing]), **values
                )
            )
        else:
            timings = {**(row[0] or {}), timing[0]: timing[1]}
            await self.session.execute(
                update(RUN_PAGES).where(*key).values(timings=timings, **values)
            )

    async def save_ratings(
        self,
        claim: Claim,
        *,
        arm: str,
        page: int,
        phase: str,
        ratings: Sequence[NewRating],
        latency_ms: float,
        progress: float | None = None,
        blind: Sequence[NewRating] = (),
    ) -> None:
        """Store one page step's ratings and mark the step done in the page's checkpoint
        (``experience`` → experienced, ``test`` → completed); ``blind``: the same movies rated
        with no prediction shown, stored with the experiences they belong to."""
        values: dict[str, Any] = {} if progress is None else {"progress": progress}
        await self.fence(claim, **values)
        # A step's ratings and its checkpoint commit together: a step that died before its
        # commit left nothing, one that committed is never run again (the unique constraint on
        # the ratings' position would refuse a second copy). One Core INSERT of every rating
        # (executemany, batched by the driver), not one ORM object per rating.
        rows = [
            {
                "run_id": claim.run_id,
                "arm": arm,
                "page": page,
                "phase": step_phase,
                "tmdb_id": rating.tmdb_id,
                "rating": rating.rating,
                "feeling": rating.feeling,
                "shown": rating.shown,
                "condition": rating.condition,
            }
            for step_phase, step in ((phase, ratings), ("blind", blind))
            for rating in step
        ]
        if rows:
            await self.session.execute(insert(RUN_RATINGS), rows)
        done = "experienced_at" if phase == "experience" else "completed_at"
        key = "experience_ms" if phase == "experience" else "test_ms"
        await self._checkpoint(claim.run_id, arm, page, (key, latency_ms), **{done: utcnow()})

    async def finish(
        self,
        claim: Claim,
        *,
        status: str,
        error: dict[str, Any] | None = None,
        notes: Sequence[str] = (),
        rated_by: Sequence[dict[str, Any]] = (),
    ) -> None:
        """End the run; ``notes`` are added to its messages (e.g. ratings an LLM left out),
        ``rated_by`` to who rated it, as the attempt that ends it saw (an attempt that dies
        records nothing; one that resumes adds what it saw to what is recorded)."""
        values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
        if notes or rated_by:
            run = await self.get(claim.run_id)
        if notes:
            values["messages"] = [*(run.messages or [] if run else []), *notes]
        if rated_by:
            known = list(run.rated_by or [] if run else [])
            values["rated_by"] = known + [entry for entry in rated_by if entry not in known]
        if status == "completed":
            values["progress"] = 1.0
        await self.fence(claim, **values)

    async def fail_unclaimed(self, run_id: int, error: dict[str, Any]) -> None:
        await self.session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status.in_(("queued", "running")))
            .values(status="failed", error=error, finished_at=utcnow(), claim_token=None)
        )


class ExperimentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        *,
        name: str | None,
        dataset: str,
        params: dict[str, Any],
        seed: int,
        cohort: dict[str, Any],
        messages: list[str],
    ) -> Experiment:
        experiment = Experiment(
            name=name,
            dataset=dataset,
            params=params,
            seed=seed,
            cohort=cohort,
            messages=messages,
            created_at=utcnow(),
        )
        self.session.add(experiment)
        await self.session.flush()
        return experiment

    async def add_run(
        self, experiment_id: int, run_id: int, user_id: int, archetype: str | None
    ) -> None:
        self.session.add(
            ExperimentRun(
                experiment_id=experiment_id, run_id=run_id, user_id=user_id, archetype=archetype
            )
        )

    async def get(self, experiment_id: int) -> Experiment | None:
        return await self.session.get(Experiment, experiment_id, populate_existing=True)

    async def run_of_user(self, experiment_id: int, user_id: int) -> Run | None:
        """The experiment's run of one user (the latest, should there be several)."""
        statement = (
            select(Run)
            .join(ExperimentRun, ExperimentRun.run_id == Run.id)
            .where(ExperimentRun.experiment_id == experiment_id, ExperimentRun.user_id == user_id)
            .order_by(Run.id.desc())
            .limit(1)
        )
        return (await self.session.scalars(statement)).first()

    async def exists(self, experiment_id: int) -> bool:
        """Whether the experiment exists (its id alone: no JSON column is read)."""
        found = await self.session.scalar(
            select(Experiment.id).where(Experiment.id == experiment_id)
        )
        return found is not None

    async def run_states(self, experiment_id: int) -> list[RunState]:
        """Each user's run of the experiment by user id: its state alone, none of the run's
        JSON columns but its error."""
        statement = (
            select(
                ExperimentRun.run_id,
                ExperimentRun.user_id,
                ExperimentRun.archetype,
                Run.status,
                Run.progress,
                Run.error,
            )
            .join(Run, Run.id == ExperimentRun.run_id)
            .where(ExperimentRun.experiment_id == experiment_id)
            .order_by(ExperimentRun.user_id)
        )
        return [RunState(*row) for row in await self.session.execute(statement)]

    async def status_counts(self, experiment_id: int) -> StatusCounts:
        """How many of the experiment's runs are in each status and the sum of their progress
        (one ``GROUP BY``), and the errors of its failed runs (read only when some failed): a
        progress poll whose cost does not grow with the number of runs."""
        return (await self.status_counts_of([experiment_id]))[experiment_id]

    async def status_counts_of(self, experiment_ids: Sequence[int]) -> dict[int, StatusCounts]:
        """:meth:`status_counts` of several experiments in two statements at most."""
        ids = list(experiment_ids)
        found: dict[int, StatusCounts] = {
            i: StatusCounts(counts={}, failure_errors=[]) for i in ids
        }
        if not ids:
            return found
        statement = (
            select(
                ExperimentRun.experiment_id,
                Run.status,
                func.count(),
                func.coalesce(func.sum(Run.progress), 0.0),
            )
            .join(Run, Run.id == ExperimentRun.run_id)
            .where(ExperimentRun.experiment_id.in_(ids))
            .group_by(ExperimentRun.experiment_id, Run.status)
        )
        for experiment_id, status, n, total in await self.session.execute(statement):
            found[int(experiment_id)].counts[status] = (int(n), float(total))
        with_failures = [i for i in ids if found[i].counts.get("failed", (0, 0.0))[0]]
        if with_failures:
            failed = (
                select(ExperimentRun.experiment_id, Run.error)
                .join(Run, Run.id == ExperimentRun.run_id)
                .where(ExperimentRun.experiment_id.in_(with_failures), Run.status == "failed")
            )
            for experiment_id, error in await self.session.execute(failed):
                found[int(experiment_id)].failure_errors.append(error)
        return found

    async def runs(self, experiment_id: int) -> list[tuple[ExperimentRun, Run]]:
        statement = (
            select(ExperimentRun, Run)
            .join(Run, Run.id == ExperimentRun.run_id)
            .where(ExperimentRun.experiment_id == experiment_id)
            .order_by(ExperimentRun.user_id)
        )
        return [(link, run) for link, run in await self.session.execute(statement)]


async def ping_tables(session: AsyncSession) -> None:
    """Raise if the orchestrator's tables are missing (database not migrated)."""
    await session.execute(text("SELECT 1 FROM runs WHERE 1 = 0"))
