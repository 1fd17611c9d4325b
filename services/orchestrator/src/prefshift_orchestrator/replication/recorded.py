"""The ``recorded`` arm: another persona shown exactly the pages of an earlier run.

An arm spec ``{"name": "llm", "recorded": {"experiment": 1, "arm": "llm"}}`` (or ``{"run":
17, …}``) replays the arm ``llm`` of the same user's run in experiment 1 (e.g. the import of the
seed study's released runs). The run then

- takes the recorded run's test and persona movies (its split, with the real ratings), so the
  new persona re-rates the same test movies from the same history;
- shows, on page p, the movies the recorded run showed on page p, in the same order (no
  recommender is asked, nothing is filtered); a page the recorded run lacks or that showed
  nothing is shown empty: the persona only re-rates.

The recorded run must be completed and of the same user and dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_common.errors import NotFound, Unprocessable
from prefshift_orchestrator.models import Run
from prefshift_orchestrator.repository import ExperimentRepository, RunRepository
from prefshift_orchestrator.schemas import RecordedPages


@dataclass(frozen=True)
class RecordedRun:
    """A completed run whose pages a run replays."""

    run_id: int
    selection: dict[str, Any]
    arms: tuple[str, ...]  # the arms that showed pages

    def arm(self, name: str) -> str:
        """The recorded arm ``name`` (422 when the run has no such arm)."""
        if name not in self.arms:
            raise Unprocessable(
                f"run {self.run_id} has no arm {name!r} to replay (it has: {', '.join(self.arms)})"
            )
        return name


async def find_recorded_run(
    session: AsyncSession, source: RecordedPages, *, user_id: int, dataset: str
) -> RecordedRun:
    """The run ``source`` names for this user (404 when there is none, 422 when it is another
    user's or dataset's, or not completed)."""
    run: Run | None
    if source.run is not None:
        run = await RunRepository(session).get(source.run)
        if run is None:
            raise NotFound(f"recorded run {source.run} does not exist")
    else:
        experiment_id = source.experiment or 0
        if await ExperimentRepository(session).get(experiment_id) is None:
            raise NotFound(f"recorded experiment {experiment_id} does not exist")
        run = await ExperimentRepository(session).run_of_user(experiment_id, user_id)
        if run is None:
            raise NotFound(f"recorded experiment {experiment_id} has no run of user {user_id}")
    if run.user_id != user_id or run.dataset != dataset:
        raise Unprocessable(
            f"recorded run {run.id} is of user {run.user_id} in {run.dataset!r}, not of user "
            f"{user_id} in {dataset!r}"
        )
    if run.status != "completed" or run.selection is None:
        raise Unprocessable(f"recorded run {run.id} is {run.status}; replay a completed run")
    arms = tuple(
        str(arm["name"]) for arm in run.arms or () if arm.get("kind") not in ("control", None)
    )
    return RecordedRun(run_id=run.id, selection=dict(run.selection), arms=arms)


async def recorded_page(
    session: AsyncSession, *, run_id: int, arm: str, page: int
) -> list[dict[str, Any]]:
    """The movies the recorded run's arm showed on ``page``, in order (``[]``: none)."""
    stored = await RunRepository(session).page(run_id, arm, page)
    if stored is None or not stored.recommended:
        return []
    return [
        {"tmdb_id": int(item["tmdb_id"]), **({"title": item["title"]} if "title" in item else {})}
        for item in stored.recommended
    ]
