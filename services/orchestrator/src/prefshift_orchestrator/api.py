"""Routes of the orchestrator service."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Body, Path, Query, Request, Response

from prefshift_common.contracts import AsciiDigits
from prefshift_common.db import SessionDep
from prefshift_common.errors import Conflict, NotFound, Unprocessable, error_responses
from prefshift_orchestrator import measurements, rerating
from prefshift_orchestrator.clients import ServiceClients
from prefshift_orchestrator.config import Settings
from prefshift_orchestrator.csv_export import csv_text
from prefshift_orchestrator.listings import experiment_progress, progress_from_counts
from prefshift_orchestrator.models import Run
from prefshift_orchestrator.reports import (
    ExperimentReport,
    PlotName,
    experiment_report,
    render_plot,
)
from prefshift_orchestrator.repository import ExperimentRepository, RunRepository, as_utc
from prefshift_orchestrator.schemas import (
    ExperimentOut,
    ExperimentRequest,
    ExperimentRunOut,
    ExperimentStatusOut,
    RatingOut,
    RatingsOut,
    RunOut,
    SimulationRequest,
    UserRunOut,
)
from prefshift_orchestrator.service import (
    run_out,
    run_shift,
    shift_summary,
)
from prefshift_orchestrator.statistics import statistics_table
from prefshift_orchestrator.submission import mark_cancelled, submit_experiment, submit_run

router = APIRouter()

RunId = Annotated[int, Path(ge=1, le=2_147_483_647, description="Run id."), AsciiDigits]
ExperimentId = Annotated[
    int, Path(ge=1, le=2_147_483_647, description="Experiment id."), AsciiDigits
]
UserIdPath = Annotated[
    int, Path(ge=1, le=2_147_483_647, description="User id in the dataset."), AsciiDigits
]
DatasetQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
]
CSV = "text/csv"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _clients(request: Request) -> ServiceClients | None:
    clients: ServiceClients | None = getattr(request.app.state, "clients", None)
    return clients


def _wake_workers(request: Request) -> None:
    pool = getattr(request.app.state, "workers", None)
    if pool is not None:
        pool.wake()


async def _get_run(session: SessionDep, run_id: int) -> Run:
    run = await RunRepository(session).get(run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    return run


async def _run_out(session: SessionDep, run: Run) -> RunOut:
    done = await RunRepository(session).completed_pages([run.id])
    return run_out(run, done.get(run.id, 0))


@router.post(
    "/simulate/{user_id}",
    status_code=202,
    response_model=RunOut,
    responses={
        200: {"model": RunOut, "description": "The run already existed (idempotent repeat)."},
        **error_responses(NotFound, Conflict, Unprocessable),
    },
    tags=["runs"],
)
async def simulate(
    user_id: UserIdPath,
    request: Request,
    response: Response,
    session: SessionDep,
    body: Annotated[SimulationRequest | None, Body()] = None,
    force: Annotated[bool, Query(description="Start a new run even if one exists.")] = False,
) -> RunOut:
    """Queue a simulation of one user under the protocol (202), or return the run that already
    exists for the same user, dataset, protocol and seed (200). ``?force=true`` starts a new run.

    An unknown dataset or user (404), a user with too few rated movies, ``backend: llm`` when
    the simulator has no LLM, or a ``persona_model`` it does not have (422) is refused; the
    refusal stores nothing."""
    submitted = await submit_run(
        session,
        _settings(request),
        user_id=user_id,
        request=body or SimulationRequest(),
        force=force,
        clients=_clients(request),
    )
    await session.commit()
    if submitted.created:
        _wake_workers(request)
    else:
        response.status_code = 200
    return await _run_out(session, submitted.run)


@router.get(
    "/simulate/{user_id}",
    response_model=UserRunOut,
    responses=error_responses(NotFound),
    tags=["runs"],
)
async def latest_simulation(
    user_id: UserIdPath, session: SessionDep, dataset: DatasetQuery = None
) -> UserRunOut:
    """The user's latest run, with its progress and the shift of each arm at its last page."""
    run = await RunRepository(session).latest_for_user(user_id, dataset)
    if run is None:
        raise NotFound(f"user {user_id} has no run" + (f" on {dataset!r}" if dataset else ""))
    out = await _run_out(session, run)
    shift = await run_shift(session, run)
    return UserRunOut(**out.model_dump(), shift_summary=shift_summary(shift))


@router.get(
    "/runs/{run_id}", response_model=RunOut, responses=error_responses(NotFound), tags=["runs"]
)
async def get_run(run_id: RunId, session: SessionDep) -> RunOut:
    """A run: parameters, arms as resolved, status, progress, messages and error."""
    return await _run_out(session, await _get_run(session, run_id))


@router.delete(
    "/runs/{run_id}",
    response_model=RunOut,
    responses=error_responses(NotFound, Conflict),
    tags=["runs"],
)
async def cancel_run(run_id: RunId, session: SessionDep) -> RunOut:
    """Cancel a queued or running run (its worker stops at the next step; what was rated is
    kept). 409 when the run has already finished."""
    run = await mark_cancelled(session, run_id)
    await session.commit()
    return await _run_out(session, run)


@router.get(
    "/runs/{run_id}/ratings",
    response_model=RatingsOut,
    responses={
        200: {
            "description": "Every rating of the run (JSON, or CSV with ?format=csv or Accept).",
            "content": {CSV: {"schema": {"type": "string"}}},
        },
        **error_responses(NotFound),
    },
    tags=["runs"],
)
async def run_ratings(
    run_id: RunId,
    request: Request,
    session: SessionDep,
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> Any:
    """Every rating of the run: the baseline (arm ``baseline``, page 0), and for each arm and
    page the ratings of its recommendations (``experience``; ``blind``: a shown-prediction
    arm's, rated once more with no prediction) and of the test movies (``test``), each with the
    predicted rating ``shown`` beside it and the rerate design's ``condition``, if any."""
    await _get_run(session, run_id)
    ratings = await RunRepository(session).ratings(run_id)
    rows = [
        RatingOut(
            arm=r.arm,
            page=r.page,
            phase=r.phase,  # type: ignore[arg-type]
            tmdb_id=r.tmdb_id,
            rating=r.rating,
            feeling=r.feeling,
            shown=r.shown,
            condition=r.condition,
        )
        for r in ratings
    ]
    wants_csv = format == "csv" or (
        format is None and CSV in request.headers.get("accept", "").split(",")[0]
    )
    if wants_csv:
        frame = pd.DataFrame(
            [row.model_dump() for row in rows], columns=list(RatingOut.model_fields)
        )
        return Response(csv_text(frame), media_type=CSV)
    return RatingsOut(run_id=run_id, ratings=rows)


@router.get(
    "/runs/{run_id}/shift",
    response_model=measurements.RunShift,
    responses=error_responses(NotFound),
    tags=["runs"],
)
async def get_shift(run_id: RunId, session: SessionDep) -> measurements.RunShift:
    """Every measurement of the run so far: per arm and page the shift Δ against the baseline,
    the net shift against control, |Δ|, the share of changed ratings, Kendall τ, per-genre
    shift, appraisal of the recommendations, and the baseline's fidelity to the real ratings."""
    run = await _get_run(session, run_id)
    return await run_shift(session, run)


# --- experiments ------------------------------------------------------------------------------


async def _experiment_out(session: SessionDep, experiment_id: int) -> ExperimentOut:
    experiments = ExperimentRepository(session)
    experiment = await experiments.get(experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} does not exist")
    runs = await experiments.run_states(experiment_id)
    status, progress = experiment_progress((run.status, run.progress, run.error) for run in runs)
    return ExperimentOut(
        experiment_id=experiment.id,
        name=experiment.name,
        dataset=experiment.dataset,
        seed=experiment.seed,
        params=experiment.params,
        cohort=experiment.cohort,
        messages=list(experiment.messages or []),
        provenance=experiment.provenance,
        status=status,
        created_at=as_utc(experiment.created_at),  # type: ignore[arg-type]
        progress=progress,
        runs=[
            ExperimentRunOut(
                run_id=run.run_id,
                user_id=run.user_id,
                archetype=run.archetype,
                status=run.status,
                progress=run.progress,
            )
            for run in runs
        ],
        links={
            "self": f"/experiments/{experiment.id}",
            "report": f"/experiments/{experiment.id}/report",
        },
    )


@router.post(
    "/experiments",
    status_code=202,
    response_model=ExperimentOut,
    responses=error_responses(NotFound, Unprocessable, Conflict),
    tags=["experiments"],
)
async def create_experiment(
    body: ExperimentRequest, request: Request, session: SessionDep
) -> ExperimentOut:
    """Run the protocol for a cohort: a list of users, a seeded sample, or the seed study's
    rule. One run per user is queued (an identical existing run is reused); the workers of every
    orchestrator process execute them with bounded concurrency.

    A list naming users the dataset does not have is refused (422, listing the first 20 and
    counting the rest), as is a cohort none of whose users can run, ``backend: llm`` when the
    simulator has no LLM and a ``persona_model`` it does not have; nothing is stored then. A
    user listed twice takes part once."""
    experiment_id = await submit_experiment(
        session, _settings(request), body, clients=_clients(request)
    )
    await session.commit()
    _wake_workers(request)
    return await _experiment_out(session, experiment_id)


@router.get(
    "/experiments/{experiment_id}",
    response_model=ExperimentOut,
    responses=error_responses(NotFound),
    tags=["experiments"],
)
async def get_experiment(experiment_id: ExperimentId, session: SessionDep) -> ExperimentOut:
    """An experiment with its progress and the state of each user's run."""
    return await _experiment_out(session, experiment_id)


@router.get(
    "/experiments/{experiment_id}/progress",
    response_model=ExperimentStatusOut,
    responses=error_responses(NotFound),
    tags=["experiments"],
)
async def get_experiment_progress(
    experiment_id: ExperimentId, session: SessionDep
) -> ExperimentStatusOut:
    """The experiment's status and progress alone, the same as ``GET /experiments/{id}``'s,
    from a count of its runs by status: a poll whose cost does not grow with the number of
    runs (``experiment run --wait`` and the console poll this)."""
    experiments = ExperimentRepository(session)
    if not await experiments.exists(experiment_id):
        raise NotFound(f"experiment {experiment_id} does not exist")
    counts = await experiments.status_counts(experiment_id)
    status, progress = progress_from_counts(counts.counts, counts.failure_errors)
    return ExperimentStatusOut(experiment_id=experiment_id, status=status, progress=progress)


@router.get(
    "/experiments/{experiment_id}/report",
    response_model=ExperimentReport,
    responses={
        200: {
            "description": "JSON; CSV (?format=csv, ?table=statistics|users|fidelity|rerating|"
            "rerating_ratings); or a plot "
            "(?format=png|svg, ?plot=shift_by_page|genre_shift|fidelity).",
            "content": {
                CSV: {"schema": {"type": "string"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/svg+xml": {"schema": {"type": "string"}},
            },
        },
        **error_responses(NotFound),
    },
    tags=["experiments"],
)
async def get_report(
    experiment_id: ExperimentId,
    session: SessionDep,
    format: Annotated[Literal["json", "csv", "png", "svg"], Query()] = "json",
    table: Annotated[
        Literal["statistics", "users", "fidelity", "rerating", "rerating_ratings"], Query()
    ] = "statistics",
    plot: Annotated[PlotName, Query()] = "shift_by_page",
) -> Any:
    """The experiment's report over its completed runs: for every arm, page (and genre) the mean
    shift and net shift with 95% bootstrap intervals and Wilcoxon p-values against 0 and against
    control, overall and by archetype; each user's results; the baseline's fidelity to the real
    ratings. CSV gives the statistics (``table=statistics``), the per-user rows
    (``table=users``), the baseline's (predicted, real) pairs of every test movie
    (``table=fidelity``), and for the rerate and retest designs their measures
    (``table=rerating``) and every re-rating (``table=rerating_ratings``); PNG/SVG give the
    plots. A rerate or retest experiment's JSON has its measures in ``rerating``; a
    shown-prediction arm's shift on the shown movies is in ``shown_predictions``."""
    if await ExperimentRepository(session).get(experiment_id) is None:
        raise NotFound(f"experiment {experiment_id} does not exist")
    data = await experiment_report(session, experiment_id)
    if format == "json":
        return data.report
    if format == "csv":
        frames = {
            "users": data.results,
            "fidelity": data.fidelity_pairs,
            "rerating_ratings": data.rerating_rows,
        }
        if table in frames:
            frame = frames[table]
        elif table == "rerating":  # a shift design has none: the header alone
            frame = rerating.summary_table(data.report.rerating)
        else:
            frame = statistics_table(data.report.statistics)
        return Response(csv_text(frame), media_type=CSV)
    image = await asyncio.to_thread(render_plot, data, plot, format)
    media = "image/png" if format == "png" else "image/svg+xml"
    return Response(image, media_type=media)
