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
from prefshift_orchestrator import rerating as rerating_measures
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


class ShownShiftSummary(BaseModel):
    """A shown-prediction arm's shift on the shown movies, every page pooled: the mean over
    users of each user's mean of r(shown) − r(blind), with its bootstrap interval."""

    arm: str
    offset: float | None = Field(description="The arm's offset δ in stars.")
    n_users: int
    n: int = Field(description="Movies rated both ways, over every user.")
    mean: float | None
    ci_low: float | None
    ci_high: float | None


class ExperimentReport(BaseModel):
    """``GET /experiments/{id}/report``: statistics across users and each user's results."""

    experiment_id: int
    design: str = Field(default="shift", description="shift, rerate or retest.")
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
    shown_predictions: list[ShownShiftSummary] = Field(
        default_factory=list,
        description="Shown-prediction arms: the shift on the shown movies (every page pooled).",
    )
    rerating: rerating_measures.RerateReport | None = Field(
        default=None, description="rerate and retest designs: their measures (else null)."
    )
    users: list[UserResult]


@dataclass
class ReportData:
    report: ExperimentReport
    results: pd.DataFrame  # per user × arm × page (× genre): the input of the statistics
    fidelity_pairs: pd.DataFrame
    #: rerate/retest: one row per re-rating (``rerating_measures.RERATING_COLUMNS``).
    rerating_rows: pd.DataFrame


def _shown_predictions(
    shifts: Sequence[tuple[int, str | None, measurements.RunShift]],
    offsets: dict[str, float],
) -> list[ShownShiftSummary]:
    summaries = []
    for arm, offset in offsets.items():
        cells = [a for _, _, shift in shifts for a in shift.arms if a.arm == arm and a.n_shown]
        values = [cell.shown_shift for cell in cells if cell.shown_shift is not None]
        interval = statistics.bootstrap_interval(values)
        summaries.append(
            ShownShiftSummary(
                arm=arm,
                offset=offset,
                n_users=len(values),
                n=sum(cell.n_shown for cell in cells),
                mean=sum(values) / len(values) if values else None,
                ci_low=interval[0] if interval else None,
                ci_high=interval[1] if interval else None,
            )
        )
    return summaries


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
    rerated: list[pd.DataFrame] = []
    design = next((str(m[3].params.get("design", "shift")) for m in members), "shift")
    delta = next((m[3].params.get("delta") for m in members), None)
    offsets: dict[str, float] = {}
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
        for arm in run.arms or ():
            if arm.get("shown_prediction"):
                offsets.setdefault(str(arm["name"]), float(arm["shown_prediction"]["offset"]))
        if design != "shift":
            rows = [
                (r.arm, r.page, r.phase, r.tmdb_id, r.rating, r.shown, r.condition) for r in ratings
            ]
            arm_name = "rerate" if design == "rerate" else "control"
            rerated.append(rerating_measures.rerating_rows(user_id, rows, real, arm=arm_name))
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
    rerating_rows = (
        pd.concat(rerated, ignore_index=True)
        if rerated
        else pd.DataFrame(columns=list(rerating_measures.RERATING_COLUMNS))
    )
    rerate_report = (
        rerating_measures.rerate_report(
            rerating_rows, design=design, delta=float(delta) if delta is not None else 1.0
        )
        if design != "shift"
        else None
    )
    report = ExperimentReport(
        experiment_id=experiment_id,
        design=design,
        n_users=len(members),
        n_completed=len(shifts),
        fidelity=_pooled_fidelity(pooled),
        fidelity_unseen=_pooled_fidelity(pooled[~pooled["seen"].astype(bool)]),
        notes=notes,
        statistics=summary,
        shown_predictions=_shown_predictions(shifts, offsets),
        rerating=rerate_report,
        users=users,
    )
    return ReportData(
        report=report, results=results, fidelity_pairs=pooled, rerating_rows=rerating_rows
    )


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
    # The database and the runs' finishing times too: another database (a test's, a lab's)
    # may hold an experiment of the same id with runs of the same ids.
    key = (
        str(session.get_bind().engine.url),
        experiment_id,
        tuple(
            (link.user_id, link.archetype, run.id, run.status, run.finished_at)
            for link, run in links
        ),
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
