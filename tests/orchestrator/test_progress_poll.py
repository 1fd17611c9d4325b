"""``GET /experiments/{id}/progress``: the same status and progress as the whole experiment's
(and as its summary in ``GET /experiments``), from a count of its runs by status — a poll whose
statements do not grow with the runs and that never reads a run's parameters, selection or
arms."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, insert, update

from prefshift_common.db import create_async_db_engine, create_session_factory, sync_connection
from prefshift_orchestrator.models import Experiment, ExperimentRun, Run
from prefshift_orchestrator.repository import ExperimentRepository
from tests.orchestrator.conftest import OrchestratorFactory

#: A run's JSON columns a progress poll must not read (``error`` is read for failed runs only).
HEAVY = ("params", "selection", "arms", "messages", "provenance", "rated_by", "cohort")
BULKY = {"arms": ["als", "control"], "padding": "x" * 2000}


def _experiment(database_url: str, runs: list[tuple[str, float, dict[str, Any] | None]]) -> int:
    """An experiment whose runs are in the given ``(status, progress, error)`` states."""
    with sync_connection(database_url, transaction=True) as connection:
        experiment_id = connection.execute(
            insert(Experiment)
            .values(dataset="d", params=BULKY, seed=1, cohort={"user_ids": []}, messages=[])
            .returning(Experiment.id)
        ).scalar_one()
        for user_id, (status, progress, error) in enumerate(runs, start=1):
            run_id = connection.execute(
                insert(Run)
                .values(
                    user_id=user_id,
                    dataset="d",
                    params=BULKY,
                    seed=1,
                    params_hash=f"{experiment_id}-{user_id}",
                    status=status,
                    progress=progress,
                    error=error,
                    messages=["m"],
                    selection=BULKY,
                    arms=[BULKY],
                    attempts=1,
                )
                .returning(Run.id)
            ).scalar_one()
            connection.execute(
                insert(ExperimentRun).values(
                    experiment_id=experiment_id, run_id=run_id, user_id=user_id, archetype=None
                )
            )
    return int(experiment_id)


UPSTREAM = {"status": 502, "error": "upstream"}
MIXED: list[tuple[str, float, dict[str, Any] | None]] = [
    ("completed", 1.0, None),
    ("completed", 1.0, None),
    ("failed", 0.25, UPSTREAM),
    ("failed", 0.5, UPSTREAM),
    ("failed", 0.0, {"error": "too_few_ratings"}),
    ("failed", 0.0, None),
    ("running", 0.5, None),
    ("queued", 0.0, None),
    ("cancelled", 0.25, None),
]


def test_progress_equals_the_whole_experiments(
    database_url: str, orchestrator: OrchestratorFactory
) -> None:
    mixed = _experiment(database_url, MIXED)
    done = _experiment(database_url, [("completed", 1.0, None)] * 3)
    failed = _experiment(database_url, [("failed", 0.5, UPSTREAM)] * 2)
    empty = _experiment(database_url, [])
    with orchestrator(database_url, orchestrator_workers=0) as client:

        def both(experiment_id: int) -> dict[str, Any]:
            full = client.get(f"/experiments/{experiment_id}")
            cheap = client.get(f"/experiments/{experiment_id}/progress")
            assert full.status_code == cheap.status_code == 200, (full.text, cheap.text)
            assert cheap.json() == {
                "experiment_id": experiment_id,
                "status": full.json()["status"],
                "progress": full.json()["progress"],
            }
            return dict(cheap.json())

        listed = {e["experiment_id"]: e for e in client.get("/experiments").json()["experiments"]}
        for experiment_id in (mixed, done, failed, empty):
            state = both(experiment_id)
            summary = listed[experiment_id]
            assert (summary["status"], summary["progress"]) == (state["status"], state["progress"])
        state = both(mixed)
        assert state["status"] == "running"
        assert state["progress"] == {
            "runs": 9,
            "queued": 1,
            "running": 1,
            "completed": 2,
            "failed": 4,
            "cancelled": 1,
            # failed runs count as done: (2 + 4 + 0.5 + 0.25) / 9
            "progress": 6.75 / 9,
            "failure_reasons": {"502 upstream": 2, "? too_few_ratings": 1},
        }
        with sync_connection(database_url, transaction=True) as connection:
            connection.execute(
                update(Run)
                .where(Run.status.in_(("running", "queued")))
                .values(status="completed", progress=1.0)
            )
        assert both(mixed)["status"] == "completed_with_failures"
        assert both(done) == {
            "experiment_id": done,
            "status": "completed",
            "progress": {
                "runs": 3,
                "queued": 0,
                "running": 0,
                "completed": 3,
                "failed": 0,
                "cancelled": 0,
                "progress": 1.0,
                "failure_reasons": {},
            },
        }
        assert both(failed)["status"] == "failed"
        assert both(empty)["progress"]["runs"] == 0

        missing = client.get("/experiments/999999/progress")
        assert missing.status_code == 404
        assert missing.json()["error"] == "not_found"


def _poll_statements(database_url: str, experiment_id: int) -> list[str]:
    """The SQL statements one progress poll runs (as the route runs them)."""

    async def poll() -> list[str]:
        engine = create_async_db_engine(database_url)
        seen: list[str] = []

        def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            seen.append(statement)

        try:
            async with create_session_factory(engine)() as session:
                event.listen(engine.sync_engine, "before_cursor_execute", record)
                experiments = ExperimentRepository(session)
                assert await experiments.exists(experiment_id)
                await experiments.status_counts(experiment_id)
        finally:
            await engine.dispose()
        return seen

    return asyncio.run(poll())


def test_a_poll_runs_the_same_statements_for_ten_runs_or_three_hundred(
    database_url: str,
) -> None:
    small = _experiment(database_url, [("completed", 1.0, None), ("running", 0.5, None)] * 5)
    large = _experiment(database_url, [("completed", 1.0, None), ("running", 0.5, None)] * 150)
    with_failures = _experiment(database_url, [("failed", 0.0, UPSTREAM), *MIXED] * 30)
    polls = [_poll_statements(database_url, e) for e in (small, large, with_failures)]
    # no statement per run: two for any size, a third (the failed runs' errors) when some failed
    assert len(polls[0]) == len(polls[1]) == 2 and len(polls[2]) == 3
    assert polls[0] == polls[1]
    for statement in (s for poll in polls for s in poll):
        selected = statement.lower().split(" from ")[0]
        assert not [c for c in HEAVY if f".{c}" in selected], statement
        assert "runs.error" not in selected or "status = " in statement.lower()
