"""An experiment's report: every completed run's measurements and the statistics across users
(computed by ``measurements`` and ``statistics``), as JSON, CSV tables and plots."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_orchestrator import measurements, statistics
from prefshift_orchestrator.models import Run, RunRating
from prefshift_orchestrator.repository import ExperimentRepository, RunRepository
from prefshift_orchestrator.service import compute_shift, ratings_frame, selection_inputs

PlotName = Literal["shift_by_page", "genre_shift", "fidelity"]


class UserResult(BaseModel):
    run_id: int
    user_id: int
    archetype: str | None
    status: str
    fidelity: measurements.Fidelity | None
    arms: list[measurements.ArmSummary]


class ExperimentReport(BaseModel):
    """``GET /experiments/{id}/report``: statistics across users and each user's results."""

    experiment_id: int
    n_users: int
    n_completed: int = Field(description="Completed runs; only these enter the statistics.")
    fidelity: measurements.Fidelity = Field(
        description="Baseline against real ratings, pooled over every test movie of every user."
    )
    statistics: statistics.CohortStatistics
    users: list[UserResult]


@dataclass
class ReportData:
    report: ExperimentReport
    results: pd.DataFrame  # per user × arm × page (× genre): the input of the statistics
    fidelity_pairs: pd.DataFrame


def _build(
    experiment_id: int,
    members: Sequence[tuple[int, int, str | None, Run, Sequence[RunRating]]],
) -> ReportData:
    shifts: list[tuple[int, str | None, measurements.RunShift]] = []
    users: list[UserResult] = []
    pairs: list[pd.DataFrame] = []
    for run_id, user_id, archetype, run, ratings in members:
        if run.status != "completed":
            users.append(
                UserResult(
                    run_id=run_id,
                    user_id=user_id,
                    archetype=archetype,
                    status=run.status,
                    fidelity=None,
                    arms=[],
                )
            )
            continue
        shift = compute_shift(run, ratings)
        shifts.append((user_id, archetype, shift))
        _, real = selection_inputs(run)
        pairs.append(
            measurements.fidelity_pairs(ratings_frame(ratings), real).assign(user_id=user_id)
        )
        users.append(
            UserResult(
                run_id=run_id,
                user_id=user_id,
                archetype=archetype,
                status=run.status,
                fidelity=shift.fidelity,
                arms=shift.arms,
            )
        )
    results = measurements.stack_shift_tables(shifts)
    summary = statistics.summarize(results) if len(results) else _empty_statistics()
    pooled = (
        pd.concat(pairs, ignore_index=True)
        if pairs
        else pd.DataFrame(columns=["tmdb_id", "predicted", "real", "user_id"])
    )
    predicted = {i: float(v) for i, v in enumerate(pooled["predicted"])}
    real = {i: float(v) for i, v in enumerate(pooled["real"])}
    report = ExperimentReport(
        experiment_id=experiment_id,
        n_users=len(members),
        n_completed=len(shifts),
        fidelity=measurements.fidelity(predicted, real),
        statistics=summary,
        users=users,
    )
    return ReportData(report=report, results=results, fidelity_pairs=pooled)


def _empty_statistics() -> statistics.CohortStatistics:
    return statistics.CohortStatistics(
        confidence=0.95,
        n_resamples=0,
        seed=0,
        control_arm=None,
        n_users=0,
        archetypes=[],
        cells=[],
    )


async def experiment_report(session: AsyncSession, experiment_id: int) -> ReportData:
    links = await ExperimentRepository(session).runs(experiment_id)
    runs = RunRepository(session)
    members = []
    for link, run in links:
        ratings = await runs.ratings(run.id) if run.status == "completed" else []
        members.append((run.id, link.user_id, link.archetype, run, ratings))
    return await asyncio.to_thread(_build, experiment_id, members)


def render_plot(data: ReportData, name: PlotName, fmt: Literal["png", "svg"]) -> bytes:
    """One of the report's plots (matplotlib is imported on first use: it is slow to load)."""
    from prefshift_orchestrator import plots

    metric = "net_shift" if data.report.statistics.control_arm else "shift"
    if name == "shift_by_page":
        return plots.plot_shift_by_page(data.report.statistics, metric=metric, fmt=fmt)
    if name == "genre_shift":
        return plots.plot_genre_shift(data.report.statistics, metric=metric, fmt=fmt)
    return plots.plot_fidelity(data.fidelity_pairs, fmt=fmt)
