"""The re-rating designs' measures — one implementation, used by the orchestrator's
``rerate``/``retest`` report and by ``prefshift validity`` (the designs simulated in process
for the embedded persona sets); equations in docs/measurements.md ("Re-rating designs").

``rerate`` (Cosley et al., CHI 2003): session 1 is the baseline (arm ``baseline``, page 0: the
persona rates the held-out test movies, nothing shown); session 2 is arm ``rerate``, page 1:
it re-rates them, each beside the prediction of its seeded condition (``none``, ``accurate`` =
the user's real rating, ``up``/``down`` = that ± δ). ``retest`` (Amatriain et al., UMAP 2009):
session 2 is arm ``control``, page 1 (later sessions: pages 2, …), nothing shown. Pure: a
frame of re-ratings (:data:`RERATING_COLUMNS`) in, the report out. Every interval resamples
users (never ratings), with :mod:`prefshift_common.bootstrap`; ``n_resamples=0`` gives the
point values alone (what a fit evaluates many times).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from prefshift_common.bootstrap import bootstrap_interval, bootstrap_users

#: One row per re-rated movie: the user, the movie, its session (2: the first re-rating), the
#: condition and the stars shown (NaN: none), the user's real rating, and both ratings.
RERATING_COLUMNS = (
    "user_id",
    "tmdb_id",
    "session",
    "condition",
    "shown",
    "real",
    "first",
    "second",
)
#: Ratings are on a 0.5 grid: closer than this is the same rating.
_SAME = 1e-9


class Estimate(BaseModel):
    """A figure with its bootstrap interval (users resampled)."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    n_users: int
    n: int = Field(description="Re-ratings it is computed from.")


class ConditionSummary(BaseModel):
    """The re-ratings of one condition (session 2 against session 1)."""

    condition: str = Field(description="none, accurate, up or down (retest: none).")
    mean_change: Estimate = Field(
        description="Mean over users of each user's mean change (second − first)."
    )
    toward: float | None = Field(
        description="Share of the re-ratings with a shown value ≠ the first rating that moved "
        "toward it; None without a prediction."
    )
    toward_ci_low: float | None = None
    toward_ci_high: float | None = None
    away: float | None = Field(description="Share that moved away from the shown value.")
    unchanged: float | None = Field(description="Share that stayed at the first rating.")
    n_compared: int = Field(
        description="Re-ratings in the shares (a shown value equal to the first rating leaves "
        "nothing to move toward: those are left out)."
    )


class RerateReport(BaseModel):
    """``GET /experiments/{id}/report`` → ``rerating``, for the rerate and retest designs."""

    design: str
    delta: float | None = Field(description="rerate: δ in stars.")
    n_users: int
    confidence: float
    n_resamples: int
    conditions: list[ConditionSummary]
    perturbed: ConditionSummary | None = Field(
        description="rerate: up and down together (the shares of Cosley et al.)."
    )
    slope: Estimate | None = Field(
        description="rerate: the anchoring slope, stars of change per star of perturbation: "
        "least squares of (second − first) on (shown − real) over the accurate, up and down "
        "re-ratings, pooled."
    )
    retest_rmse: Estimate = Field(
        description="√mean (second − first)² over the re-ratings with nothing shown (rerate: "
        "condition none; retest: session 2)."
    )
    first_rmse: Estimate | None = Field(
        default=None,
        description="√mean (first − real)² over the session-2 re-ratings with a real rating: "
        "the first rating's error against the user's own (it holds a person's noise too).",
    )
    retest_rmse_by_session: list[Estimate] = Field(
        default_factory=list,
        description="retest with more sessions: the RMSE of each session against session 1.",
    )


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float | None:
    total = float(weights.sum())
    return float((values * weights).sum() / total) if total > 0 else None


def rmse(change: np.ndarray, weights: np.ndarray | None = None) -> float | None:
    """√ of the (weighted) mean square of ``change`` (None without rows): the test-retest RMSE
    of second − first, or the first rating's error of first − real."""
    if weights is None:
        weights = np.ones(len(change))
    mean_square = _weighted_mean(change**2, weights)
    return None if mean_square is None else float(np.sqrt(mean_square))


def slope(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float | None:
    """The (weighted) least-squares slope of ``y`` on ``x`` (None without spread in ``x``): the
    anchoring slope, change (second − first) per star of perturbation (shown − real)."""
    if weights is None:
        weights = np.ones(len(x))
    total = float(weights.sum())
    if total <= 0:
        return None
    x_mean = float((x * weights).sum() / total)
    y_mean = float((y * weights).sum() / total)
    spread = float((weights * (x - x_mean) ** 2).sum())
    if spread <= _SAME:
        return None
    return float((weights * (x - x_mean) * (y - y_mean)).sum() / spread)


def _estimate(
    users: np.ndarray,
    statistic_of_weights: Callable[[np.ndarray], float | None],
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> Estimate:
    value = statistic_of_weights(np.ones(users.size))
    interval = (
        bootstrap_users(
            users,
            statistic_of_weights,
            confidence=confidence,
            n_resamples=n_resamples,
            seed=seed,
        )
        if users.size and n_resamples
        else None
    )
    return Estimate(
        value=value,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        n_users=int(np.unique(users).size),
        n=int(users.size),
    )


def _condition(
    name: str, rows: pd.DataFrame, *, confidence: float, n_resamples: int, seed: int
) -> ConditionSummary:
    change = (rows["second"] - rows["first"]).to_numpy(dtype=float)
    per_user = rows.assign(change=change).groupby("user_id")["change"].mean().to_numpy(dtype=float)
    interval = (
        bootstrap_interval(per_user, confidence=confidence, n_resamples=n_resamples, seed=seed)
        if n_resamples
        else None
    )
    mean_change = Estimate(
        value=float(per_user.mean()) if per_user.size else None,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        n_users=int(per_user.size),
        n=int(change.size),
    )
    shown = rows["shown"].to_numpy(dtype=float)
    compared = ~np.isnan(shown) & (np.abs(shown - rows["first"].to_numpy(dtype=float)) > _SAME)
    if not compared.any():
        return ConditionSummary(
            condition=name,
            mean_change=mean_change,
            toward=None,
            away=None,
            unchanged=None,
            n_compared=0,
        )
    pull = (shown - rows["first"].to_numpy(dtype=float))[compared]
    moved = change[compared]
    toward = (np.sign(moved) == np.sign(pull)) & (np.abs(moved) > _SAME)
    unchanged = np.abs(moved) <= _SAME
    away = ~toward & ~unchanged
    users = rows["user_id"].to_numpy()[compared]
    share = _estimate(
        users,
        lambda w: _weighted_mean(toward.astype(float), w),
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )
    return ConditionSummary(
        condition=name,
        mean_change=mean_change,
        toward=float(toward.mean()),
        toward_ci_low=share.ci_low,
        toward_ci_high=share.ci_high,
        away=float(away.mean()),
        unchanged=float(unchanged.mean()),
        n_compared=int(compared.sum()),
    )


def rerate_report(
    rows: pd.DataFrame,
    *,
    design: str,
    delta: float | None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> RerateReport:
    """The measures of a rerate or retest experiment from its re-ratings (``RERATING_COLUMNS``)."""
    options: dict[str, Any] = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    rows = rows.dropna(subset=["first", "second"])
    first_session = rows[rows["session"] == 2]
    order = ("none", "accurate", "up", "down") if design == "rerate" else ("none",)
    conditions = [
        _condition(name, first_session[first_session["condition"] == name], **options)
        for name in order
    ]
    perturbed = anchoring = None
    if design == "rerate":
        moved = first_session[first_session["condition"].isin(["up", "down"])]
        perturbed = _condition("up+down", moved, **options)
        shown = first_session[first_session["condition"].isin(["accurate", "up", "down"])]
        x = (shown["shown"] - shown["real"]).to_numpy(dtype=float)
        y = (shown["second"] - shown["first"]).to_numpy(dtype=float)
        anchoring = _estimate(shown["user_id"].to_numpy(), lambda w: slope(x, y, w), **options)
    blind = rows[rows["condition"] == "none"]

    def retest(session: int) -> Estimate:
        part = blind[blind["session"] == session]
        change = (part["second"] - part["first"]).to_numpy(dtype=float)
        return _estimate(part["user_id"].to_numpy(), lambda w: rmse(change, w), **options)

    known = first_session.dropna(subset=["real"])
    error = (known["first"] - known["real"]).to_numpy(dtype=float)
    first_rmse = _estimate(known["user_id"].to_numpy(), lambda w: rmse(error, w), **options)
    sessions = sorted(int(s) for s in blind["session"].unique())
    by_session = [retest(session) for session in sessions]
    retest_rmse = retest(2)
    return RerateReport(
        design=design,
        delta=delta if design == "rerate" else None,
        n_users=int(rows["user_id"].nunique()),
        confidence=confidence,
        n_resamples=n_resamples,
        conditions=conditions,
        perturbed=perturbed,
        slope=anchoring,
        retest_rmse=retest_rmse,
        first_rmse=first_rmse,
        retest_rmse_by_session=by_session if len(by_session) > 1 else [],
    )


def summary_table(report: RerateReport | None) -> pd.DataFrame:
    """The report as one flat table (CSV): measure, condition, value, interval, n (no rows
    without a report)."""
    columns = ["measure", "condition", "value", "ci_low", "ci_high", "n"]
    if report is None:
        return pd.DataFrame(columns=columns)
    rows: list[dict[str, Any]] = []
    for cell in [*report.conditions, *([report.perturbed] if report.perturbed else [])]:
        change = cell.mean_change
        rows.append(
            {"measure": "mean_change", "condition": cell.condition, "value": change.value}
            | {"ci_low": change.ci_low, "ci_high": change.ci_high, "n": change.n}
        )
        for share in ("toward", "away", "unchanged"):
            value = getattr(cell, share)
            if value is None:
                continue
            interval = (
                (cell.toward_ci_low, cell.toward_ci_high) if share == "toward" else (None, None)
            )
            rows.append(
                {"measure": f"share_{share}", "condition": cell.condition, "value": value}
                | {"ci_low": interval[0], "ci_high": interval[1], "n": cell.n_compared}
            )
    named = [
        ("anchoring_slope", report.slope),
        ("retest_rmse", report.retest_rmse),
        ("first_rmse", report.first_rmse),
    ]
    named.extend(
        (f"retest_rmse_session_{i}", e)
        for i, e in enumerate(report.retest_rmse_by_session, start=2)
    )
    for measure, estimate in named:
        if estimate is not None:
            rows.append(
                {"measure": measure, "condition": "", "value": estimate.value}
                | {"ci_low": estimate.ci_low, "ci_high": estimate.ci_high, "n": estimate.n}
            )
    return pd.DataFrame(rows, columns=["measure", "condition", "value", "ci_low", "ci_high", "n"])
