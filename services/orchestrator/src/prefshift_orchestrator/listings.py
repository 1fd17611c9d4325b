"""Read-only listings for people browsing the results (the console, a researcher's script): the
imported datasets, the experiments newest first, and the movies a run's persona was built from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_common.contracts import AsciiDigits
from prefshift_common.db import SessionDep
from prefshift_common.errors import NotFound, error_responses
from prefshift_datasets.repository import list_datasets
from prefshift_orchestrator.models import Experiment, Run
from prefshift_orchestrator.protocol import Selection, UserMovie
from prefshift_orchestrator.repository import ExperimentRepository, RunRepository, as_utc
from prefshift_orchestrator.schemas import ExperimentProgress

router = APIRouter()
Row = TypeVar("Row", Experiment, Run)

ExperimentStatus = Literal["running", "completed", "completed_with_failures", "failed"]


def experiment_progress(
    runs: Iterable[tuple[str, float, Mapping[str, Any] | None]],
) -> tuple[ExperimentStatus, ExperimentProgress]:
    """An experiment's state from its runs' ``(status, progress, error)``: see
    :func:`progress_from_counts`."""
    counts: dict[str, tuple[int, float]] = {}
    errors: list[Mapping[str, Any] | None] = []
    for status, progress, error in runs:
        n, total = counts.get(status, (0, 0.0))
        counts[status] = (n + 1, total + progress)
        if status == "failed":
            errors.append(error)
    return progress_from_counts(counts, errors)


def progress_from_counts(
    counts: Mapping[str, tuple[int, float]],
    failure_errors: Iterable[Mapping[str, Any] | None] = (),
) -> tuple[ExperimentStatus, ExperimentProgress]:
    """An experiment's state from how many of its runs are in each status and the sum of their
    progress (``counts[status] = (runs, progress)``), and the failed runs' errors: running while
    any run is unfinished, failed when none completed, ``completed_with_failures`` when some runs
    failed (``failure_reasons``: how many failed for each status and error code), else
    completed. A failed run counts as done."""
    failure_reasons = Counter(
        f"{error.get('status', '?')} {error.get('error', 'error')}"
        for error in failure_errors
        if error
    )
    n = dict.fromkeys(("queued", "running", "completed", "failed", "cancelled"), 0)
    done = 0.0
    for status, (runs, progress) in counts.items():
        n[status] = n.get(status, 0) + runs
        done += progress if status != "failed" else float(runs)
    total = sum(n.values())
    finished = n["completed"] + n["failed"] + n["cancelled"]
    state: ExperimentStatus
    if finished < total:
        state = "running"
    elif n["completed"] == 0:
        state = "failed"
    elif n["failed"]:
        state = "completed_with_failures"
    else:
        state = "completed"
    return state, ExperimentProgress(
        runs=total,
        queued=n["queued"],
        running=n["running"],
        completed=n["completed"],
        failed=n["failed"],
        cancelled=n["cancelled"],
        progress=min(1.0, done / total) if total else 0.0,
        failure_reasons=dict(failure_reasons),
    )


class DatasetOut(BaseModel):
    """An imported dataset and its size."""

    name: str
    n_users: int
    n_movies: int
    n_ratings: int
    has_tmdb_metadata: bool
    imported_at: datetime | None


class ExperimentSummary(BaseModel):
    """An experiment without its runs (``GET /experiments/{id}`` has them)."""

    experiment_id: int
    name: str | None
    dataset: str
    seed: int
    status: ExperimentStatus
    created_at: datetime
    progress: ExperimentProgress


class ExperimentList(BaseModel):
    experiments: list[ExperimentSummary]
    total: int = Field(description="Experiments in the database.")


class RunSummary(BaseModel):
    """A run without its parameters (``GET /runs/{id}`` has them)."""

    run_id: int
    user_id: int
    dataset: str
    seed: int
    status: str
    progress: float
    created_at: datetime


class RunList(BaseModel):
    runs: list[RunSummary]
    total: int = Field(description="Runs in the database.")


class SelectedMovie(BaseModel):
    """A movie the real user rated, chosen for the persona's history or the test set."""

    tmdb_id: int
    rating: float = Field(description="The real user's rating.")
    title: str
    genres: list[str]


class RunSelection(BaseModel):
    """The persona's history and the held-out test movies of a run, with the real ratings."""

    run_id: int
    persona: list[SelectedMovie]
    test: list[SelectedMovie]


@router.get("/datasets", response_model=list[DatasetOut], tags=["datasets"])
async def get_datasets(session: SessionDep) -> list[DatasetOut]:
    """The imported datasets, by name (import them with `prefshift data import`)."""
    return [
        DatasetOut(
            name=info.name,
            n_users=info.n_users,
            n_movies=info.n_movies,
            n_ratings=info.n_ratings,
            has_tmdb_metadata=info.has_tmdb_metadata,
            imported_at=as_utc(info.imported_at),
        )
        for info in await list_datasets(session)
    ]


Limit = Annotated[int, Query(ge=1, le=200, description="Items per page."), AsciiDigits]
Offset = Annotated[int, Query(ge=0, le=2_147_483_647, description="Items to skip."), AsciiDigits]


async def _newest_first(
    session: AsyncSession, table: type[Row], limit: int, offset: int
) -> tuple[int, Sequence[Row]]:
    """How many rows ``table`` has, and one page of them, newest (highest id) first."""
    total = await session.scalar(select(func.count()).select_from(table)) or 0
    page = select(table).order_by(table.id.desc()).limit(limit).offset(offset)
    return total, (await session.scalars(page)).all()


@router.get("/experiments", response_model=ExperimentList, tags=["experiments"])
async def list_experiments(
    session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> ExperimentList:
    """The experiments, newest first, each with its status and progress."""
    total, experiments = await _newest_first(session, Experiment, limit, offset)
    # the runs counted by status (no run row loaded): a page's cost does not grow with its runs
    counts = await ExperimentRepository(session).status_counts_of([e.id for e in experiments])
    summaries = []
    for experiment in experiments:
        found = counts[experiment.id]
        status, progress = progress_from_counts(found.counts, found.failure_errors)
        summaries.append(
            ExperimentSummary(
                experiment_id=experiment.id,
                name=experiment.name,
                dataset=experiment.dataset,
                seed=experiment.seed,
                status=status,
                created_at=as_utc(experiment.created_at),  # type: ignore[arg-type]
                progress=progress,
            )
        )
    return ExperimentList(experiments=summaries, total=total)


@router.get("/runs", response_model=RunList, tags=["runs"])
async def list_runs(session: SessionDep, limit: Limit = 50, offset: Offset = 0) -> RunList:
    """The runs, newest first — single simulations and experiments' runs alike."""
    total, runs = await _newest_first(session, Run, limit, offset)
    return RunList(
        runs=[
            RunSummary(
                run_id=run.id,
                user_id=run.user_id,
                dataset=run.dataset,
                seed=run.seed,
                status=run.status,
                progress=run.progress,
                created_at=as_utc(run.created_at),  # type: ignore[arg-type]
            )
            for run in runs
        ],
        total=total,
    )


@router.get(
    "/runs/{run_id}/selection",
    response_model=RunSelection,
    responses=error_responses(NotFound),
    tags=["runs"],
)
async def get_selection(
    run_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="Run id."), AsciiDigits],
    session: SessionDep,
) -> RunSelection:
    """The movies the run's persona was built from (its history) and the held-out test movies
    it re-rates, each with the real user's rating. Empty until the run has started."""
    run = await RunRepository(session).get(run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    if run.selection is None:
        return RunSelection(run_id=run_id, persona=[], test=[])
    selection = Selection.from_json(run.selection)

    def movies(chosen: Iterable[UserMovie]) -> list[SelectedMovie]:
        return [
            SelectedMovie(
                tmdb_id=movie.tmdb_id,
                rating=movie.rating,
                title=movie.title,
                genres=list(movie.genres),
            )
            for movie in chosen
        ]

    return RunSelection(
        run_id=run_id, persona=movies(selection.persona), test=movies(selection.test)
    )
