"""An experiment's report: every completed run's measurements and the statistics across users
(computed by ``measurements`` and ``statistics``), as JSON, CSV tables and plots."""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_orchestrator import measurements, statistics
from prefshift_orchestrator.models import Run, RunRating
from prefshift_orchestrator.repository import ExperimentRepository, RunRepository
from prefshift_orchestrator.service import (
    compute_shift,
    ratings_frame,
    seen_test_movies,
    selection_inputs,
)

PlotName = Literal["shift_by_page", "genre_shift", "fidelity"]


class UserResult(BaseModel):
    run_id: int
    user_id: int
    archetype: str | None
    status: str
    fidelity: measurements.Fidelity | None
    fidelity_unseen: measurements.Fidelity | None = None
    arms: list[measurements.ArmSummary]


class ExperimentReport(BaseModel):
    """``GET /experiments/{id}/report``: statistics across users and each user's results."""

    experiment_id: int
    n_users: int
    n_completed: int = Field(description="Completed runs; only these enter the statistics.")
    fidelity: measurements.Fidelity = Field(
        description="Baseline against real ratings, pooled over every test movie of every user."
    )
    fidelity_unseen: measurements.Fidelity = Field(
        description="The same without the test movies that were also persona movies (imported "
        "runs of the seed study); equal to fidelity for disjoint splits."
    )
    notes: list[str] = Field(
        default_factory=list,
        description="What a reader must know to read the figures (e.g. no control arm).",
    )
    statistics: statistics.CohortStatistics
    users: list[UserResult]


@dataclass
class ReportData:
    report: ExperimentReport
    results: pd.DataFrame  # per user × arm × page (× genre): the input of the statistics
    fidelity_pairs: pd.DataFrame


def _rater(entry: dict[str, Any], dataset: str) -> str:
    """One ``rated_by`` entry of a run on ``dataset``, as a report's note names it."""
    who = f"the {entry.get('backend')} persona"
    if entry.get("persona_model"):
        who += f", parameter set {entry['persona_model']!r}"
    elif entry.get("model"):
        who += f", model {entry['model']!r}"
    if entry.get("population") and entry["population"] != dataset:
        who += f", with the collaborative statistics of {entry['population']!r}"
    return who


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
        seen = seen_test_movies(run)
        user_pairs = measurements.fidelity_pairs(ratings_frame(ratings), real)
        pairs.append(
            user_pairs.assign(user_id=user_id, seen=user_pairs["tmdb_id"].isin(list(seen)))
        )
        users.append(
            UserResult(
                run_id=run_id,
                user_id=user_id,
                archetype=archetype,
                status=run.status,
                fidelity=shift.fidelity,
                fidelity_unseen=shift.fidelity_unseen,
                arms=shift.arms,
            )
        )
    results = measurements.stack_shift_tables(shifts)
    summary = statistics.summarize(results) if len(results) else _empty_statistics()
    pooled = (
        pd.concat(pairs, ignore_index=True)
        if pairs
        else pd.DataFrame(columns=["tmdb_id", "predicted", "real", "user_id", "seen"])
    )
    notes = []
    raters = Counter(
        _rater(entry, run.dataset)
        for _, _, _, run, _ in members
        if run.status == "completed"
        for entry in run.rated_by or ()
    )
    if raters:
        notes.append(
            "rated by "
            + "; ".join(f"{who} ({count} runs)" for who, count in sorted(raters.items()))
        )
    if len(results) and summary.control_arm is None:
        notes.append(
            "no control arm: shifts are against the baseline only; net shifts (against a "
            "persona that saw nothing) are not defined"
        )
    report = ExperimentReport(
        experiment_id=experiment_id,
        n_users=len(members),
        n_completed=len(shifts),
        fidelity=_pooled_fidelity(pooled),
        fidelity_unseen=_pooled_fidelity(pooled[~pooled["seen"].astype(bool)]),
        notes=notes,
        statistics=summary,
        users=users,
    )
    return ReportData(report=report, results=results, fidelity_pairs=pooled)


def _pooled_fidelity(pairs: pd.DataFrame) -> measurements.Fidelity:
    predicted = {i: float(v) for i, v in enumerate(pairs["predicted"])}
    real = {i: float(v) for i, v in enumerate(pairs["real"])}
    return measurements.fidelity(predicted, real)


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


#: Reports of this process, by experiment and the state of its runs (see ``experiment_report``).
_REPORTS: OrderedDict[tuple[object, ...], ReportData] = OrderedDict()
_REPORTS_KEPT = 8


async def experiment_report(session: AsyncSession, experiment_id: int) -> ReportData:
    """The report of an experiment's completed runs.

    A finished run's ratings never change and only completed runs' ratings are read, so a
    report is determined by the linked runs and their statuses: the last few are kept, and the
    JSON, CSV and plot requests of one report (``prefshift experiment report`` makes nine)
    compute it once.
    """
    links = await ExperimentRepository(session).runs(experiment_id)
    key = (
        experiment_id,
        tuple((link.user_id, link.archetype, run.id, run.status) for link, run in links),
    )
    cached = _REPORTS.get(key)
    if cached is not None:
        _REPORTS.move_to_end(key)
        return cached
    runs = RunRepository(session)
    members = []
    for link, run in links:
        ratings = await runs.ratings(run.id) if run.status == "completed" else []
        members.append((run.id, link.user_id, link.archetype, run, ratings))
    data = await asyncio.to_thread(_build, experiment_id, members)
    _REPORTS[key] = data
    while len(_REPORTS) > _REPORTS_KEPT:
        _REPORTS.popitem(last=False)
    return data


def render_plot(data: ReportData, name: PlotName, fmt: Literal["png", "svg"]) -> bytes:
    """One of the report's plots (matplotlib is imported on first use: it is slow to load)."""
    from prefshift_orchestrator import plots

    metric = "net_shift" if data.report.statistics.control_arm else "shift"
    if name == "shift_by_page":
        return plots.plot_shift_by_page(data.report.statistics, metric=metric, fmt=fmt)
    if name == "genre_shift":
        return plots.plot_genre_shift(data.report.statistics, metric=metric, fmt=fmt)
    return plots.plot_fidelity(data.fidelity_pairs, fmt=fmt)
