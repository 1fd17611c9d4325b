"""A step's ratings are one bulk insert in the step's one transaction: stored whole with the
step's checkpoint or not at all, never twice, never by a worker that lost the claim, and read
back in the order they were rated."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from prefshift_common.db import create_async_db_engine, create_session_factory
from prefshift_orchestrator.execution.checkpoints import CheckpointStore, Progress
from prefshift_orchestrator.models import RunPage, RunRating
from prefshift_orchestrator.repository import (
    Claim,
    LostClaim,
    NewRating,
    RunRepository,
    new_run,
)
from prefshift_orchestrator.work_queue import WorkQueue


def _ratings(*tmdb_ids: int) -> list[NewRating]:
    return [NewRating(tmdb_id=t, rating=3.5, feeling=f"f{t}") for t in tmdb_ids]


async def _scenario(database_url: str) -> dict[str, Any]:
    engine = create_async_db_engine(database_url)
    sessions = create_session_factory(engine)
    statements: list[str] = []
    try:
        async with sessions() as session:
            await RunRepository(session).add(
                [new_run(user_id=1, dataset="d", params={}, seed=1, params_hash="h")]
            )
            await session.commit()
            claim = await WorkQueue(session).claim("w")
            await session.commit()
        assert claim is not None
        store = CheckpointStore(sessions, database_url=database_url)
        progress = Progress(total=2)

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            statements.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", record)
        # 40 experiences (rated in this order) with their blind copies: one step
        order = [90 - i for i in range(40)]
        await store.save_experiences(
            claim,
            arm="als",
            page=1,
            ratings=_ratings(*order),
            latency_ms=1.0,
            blind=_ratings(*order),
        )
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        await store.save_test_ratings(
            claim, arm="als", page=1, ratings=_ratings(5, 6), latency_ms=1.0, progress=progress
        )
        # the same step again (a resumed run never makes it: the constraint refuses a copy)
        with pytest.raises(IntegrityError):
            await store.save_test_ratings(
                claim,
                arm="als",
                page=1,
                ratings=_ratings(7, 5),
                latency_ms=1.0,
                progress=Progress(total=2),
            )
        # a worker that lost the claim writes nothing
        with pytest.raises(LostClaim):
            await store.save_test_ratings(
                Claim(run_id=claim.run_id, token="stolen"),
                arm="als",
                page=2,
                ratings=_ratings(8),
                latency_ms=1.0,
                progress=progress,
            )
        stored = await store.stored(claim.run_id)
        async with sessions() as session:
            counts = dict(
                (
                    await session.execute(
                        select(RunRating.phase, func.count()).group_by(RunRating.phase)
                    )
                ).all()
            )
            page = await session.get(RunPage, (claim.run_id, "als", 1))
            run = await RunRepository(session).get(claim.run_id)
        assert page is not None and run is not None
        return {
            "order": order,
            "stored": stored,
            "counts": counts,
            "completed": page.completed_at is not None,
            "progress": run.progress,
            "statements": statements,
        }
    finally:
        await engine.dispose()


def test_a_step_is_stored_whole_once_in_order(database_url: str) -> None:
    result = asyncio.run(_scenario(database_url))
    page = result["stored"][("als", 1)]
    assert [e.tmdb_id for e in page.experiences] == result["order"]
    assert page.completed
    # the refused copy and the lost claim's step left nothing: 40 + 40 + 2
    assert result["counts"] == {"experience": 40, "blind": 40, "test": 2}
    assert ("als", 2) not in result["stored"]
    assert result["completed"] and result["progress"] == 0.5
    # the fence first, then the 80 ratings in one INSERT statement (not one per rating)
    inserts = [s for s in result["statements"] if s.lower().startswith("insert into run_ratings")]
    assert result["statements"][0].lower().startswith("update runs")
    assert len(inserts) == 1
