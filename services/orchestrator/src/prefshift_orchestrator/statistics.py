"""Statistics across users; equations in docs/measurements.md.

The input is a long table of per-user results, one row per user × arm × page (× genre), with metric
columns — what ``measurements.stack_shift_tables`` builds: ``user_id``, ``archetype``, ``arm``,
``page``, optional ``genre`` (``""`` for the whole test set) and metric columns such as ``shift``.
For every metric and cell (arm, page, genre; all users and then each archetype) it gives the mean
with a seeded percentile-bootstrap 95% interval, and Wilcoxon signed-rank p-values against 0 and
against the control arm (paired per user at the same page and genre).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import stats as scipy_stats

from prefshift_common.bootstrap import MIN_BOOTSTRAP_USERS, bootstrap_columns
from prefshift_common.bootstrap import bootstrap_interval as bootstrap_interval
from prefshift_common.bootstrap import bootstrap_users as bootstrap_users
from prefshift_orchestrator.measurements import SHIFT_METRICS

#: Wilcoxon needs at least this many non-zero differences to give a p-value.
MIN_WILCOXON_PAIRS = 2
#: Up to this many pairs the Wilcoxon null distribution is computed exactly.
EXACT_WILCOXON_MAX = 50
#: Differences smaller than this are zero (ratings are on a 0.5 grid; means of them are exact
#: to far better than this).
_ZERO = 1e-9
_KEYS = ("arm", "page", "genre")


class StatCell(BaseModel):
    """One metric in one cell (arm, page, genre) over a group of users."""

    metric: str
    arm: str
    page: int
    genre: str = Field(description='Genre of the test movies; "" for the whole test set.')
    archetype: str | None = Field(description="None: all users.")
    n: int = Field(description="Users with a value.")
    mean: float | None
    ci_low: float | None = Field(description="Lower end of the bootstrap interval.")
    ci_high: float | None = Field(description="Upper end of the bootstrap interval.")
    p_vs_zero: float | None = Field(
        description="Wilcoxon signed-rank p (two-sided), H0: values symmetric about 0."
    )
    n_vs_control: int = Field(description="Users with a value for this arm and for control.")
    p_vs_control: float | None = Field(
        description="Wilcoxon signed-rank p on per-user differences arm − control."
    )
    q_vs_zero: float | None = Field(
        default=None,
        description="p_vs_zero adjusted by Benjamini–Hochberg within its family "
        "(metric × user group × whole test set or genres).",
    )
    q_vs_control: float | None = Field(
        default=None, description="p_vs_control adjusted the same way."
    )


class PowerCell(BaseModel):
    """The smallest net shift this cohort could detect at one page (80% power, 5% two-sided):
    ``(z₀.₉₇₅ + z₀.₈) · √2 · sd_control / √n``, from the control arm's per-user shift spread
    (an arm as noisy as control, compared with it user by user)."""

    page: int
    n: int = Field(description="Users with a control-arm shift at this page.")
    control_sd: float = Field(description="Standard deviation of the control arm's shift.")
    min_detectable_net_shift: float


class CohortStatistics(BaseModel):
    """All cells of a cohort's results, JSON-ready (part of ``GET /experiments/{id}/report``)."""

    confidence: float
    n_resamples: int
    seed: int
    control_arm: str | None
    n_users: int
    archetypes: list[str]
    cells: list[StatCell]
    power: list[PowerCell] = Field(
        default_factory=list, description="Per page, the smallest detectable net shift."
    )


def wilcoxon_p(differences: Sequence[float] | np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p of paired differences against 0.

    Zero differences are dropped (Wilcoxon's convention) and tied magnitudes get average ranks;
    None when fewer than ``MIN_WILCOXON_PAIRS`` non-zero differences remain. The null
    distribution is exact, ties included, up to ``EXACT_WILCOXON_MAX`` pairs (ratings on a
    0.5 grid tie a lot; scipy is exact only without ties and otherwise slow), and the normal
    approximation with the tie correction beyond (as scipy's ``method="approx"``).
    """
    sample = np.asarray(differences, dtype=float)
    sample = sample[~np.isnan(sample)]
    sample = sample[np.abs(sample) > _ZERO]
    if sample.size < MIN_WILCOXON_PAIRS:
        return None
    if sample.size <= EXACT_WILCOXON_MAX:
        return _wilcoxon_exact(sample)
    return _wilcoxon_normal(sample)


def _magnitudes(sample: np.ndarray) -> np.ndarray:
    """|d| rounded to 1e-9, so that equal means computed in different orders tie exactly."""
    rounded: np.ndarray = np.round(np.abs(sample), 9)
    return rounded


def _average_ranks(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks 1..n with ties given their average rank, and the size of every tie group."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts_group) - 1
    sizes = np.bincount(group)
    last = np.cumsum(sizes)
    average = (last - sizes + 1 + last) / 2.0
    ranks = np.empty(values.size)
    ranks[order] = average[group]
    return ranks, sizes


def _wilcoxon_normal(sample: np.ndarray) -> float:
    """Two-sided p of W+ from its normal approximation, variance corrected for ties."""
    ranks, tie_sizes = _average_ranks(_magnitudes(sample))
    n = sample.size
    observed = float(ranks[sample > 0].sum())
    mean = n * (n + 1) / 4.0
    variance = n * (n + 1) * (2 * n + 1) / 24.0 - float((tie_sizes**3 - tie_sizes).sum()) / 48.0
    if variance <= 0:
        return 1.0
    z = (observed - mean) / math.sqrt(variance)
    return min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))


def _wilcoxon_exact(sample: np.ndarray) -> float:
    """Exact two-sided p of W+ (the sum of positive ranks) under random signs, ties included.

    Average ranks are multiples of 1/2, so 2·W+ is an integer and its null distribution is
    built by adding one rank at a time (each with its sign + or − at probability 1/2).
    """
    ranks, _ = _average_ranks(_magnitudes(sample))
    doubled = np.rint(2.0 * ranks).astype(np.int64)
    observed = int(doubled[sample > 0].sum())
    total = int(doubled.sum())
    null = np.zeros(total + 1)
    null[0] = 1.0
    reach = 0  # highest sum reachable so far
    for rank in doubled.tolist():
        null[rank : rank + reach + 1] += null[: reach + 1].copy()
        reach += rank
    null /= 2.0**doubled.size
    less = float(null[: observed + 1].sum())
    greater = float(null[observed:].sum())
    return min(1.0, 2.0 * min(less, greater))


def summarize(
    results: pd.DataFrame,
    *,
    metrics: Sequence[str] = SHIFT_METRICS,
    control_arm: str | None = "control",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> CohortStatistics:
    """Mean, bootstrap interval and Wilcoxon p-values for every metric and cell, overall and by
    archetype. Missing metric values (NaN/None) leave that user out of that cell only."""
    for column in ("user_id", "arm", "page"):
        if column not in results.columns:
            raise ValueError(f"results lack column {column!r}")
    frame = results.copy()
    if "genre" not in frame.columns:
        frame["genre"] = ""
    if "archetype" not in frame.columns:
        frame["archetype"] = ""
    frame["genre"] = frame["genre"].fillna("").astype(str)
    frame["archetype"] = frame["archetype"].fillna("").astype(str)
    frame["arm"] = frame["arm"].astype(str)
    frame["page"] = frame["page"].astype("int64")
    present = [metric for metric in metrics if metric in frame.columns]
    for metric in present:
        frame[metric] = pd.to_numeric(frame[metric], errors="coerce").astype("float64")
    # One value per user and cell (a user listed twice counts once, with its mean).
    frame = frame.groupby(["user_id", "archetype", *_KEYS], as_index=False)[present].mean()

    archetypes = sorted(str(name) for name in frame["archetype"].unique() if name)
    groups: list[tuple[str | None, pd.DataFrame]] = [(None, frame)]
    groups.extend((name, frame[frame["archetype"] == name]) for name in archetypes)
    has_control = control_arm is not None and bool((frame["arm"] == control_arm).any())

    cells: list[StatCell] = []
    for metric in present:
        for archetype, group in groups:
            wide = group.pivot_table(index="user_id", columns=list(_KEYS), values=metric)
            keys: list[tuple[Any, ...]] = sorted(
                (tuple(key) for key in wide.columns), key=lambda k: (k[0] == control_arm, *k)
            )
            if not keys:
                continue
            matrix = wide[keys].to_numpy(dtype=float)
            intervals = _intervals(matrix, confidence, n_resamples, seed)
            column_of: dict[tuple[Any, ...], int] = {key: i for i, key in enumerate(keys)}
            for index, key in enumerate(keys):
                arm, page, genre = str(key[0]), int(key[1]), str(key[2])
                values = matrix[:, index]
                values = values[~np.isnan(values)]
                if values.size == 0:
                    continue
                n_paired, p_control = 0, None
                control_index = column_of.get((control_arm, key[1], key[2]))
                if has_control and arm != control_arm and control_index is not None:
                    paired = matrix[:, index] - matrix[:, control_index]
                    paired = paired[~np.isnan(paired)]
                    n_paired, p_control = int(paired.size), wilcoxon_p(paired)
                interval = intervals.get(index)
                cells.append(
                    StatCell(
                        metric=metric,
                        arm=arm,
                        page=page,
                        genre=genre,
                        archetype=archetype,
                        n=int(values.size),
                        mean=float(values.mean()),
                        ci_low=interval[0] if interval else None,
                        ci_high=interval[1] if interval else None,
                        p_vs_zero=wilcoxon_p(values),
                        n_vs_control=n_paired,
                        p_vs_control=p_control,
                    )
                )
    _adjust_p_values(cells)
    return CohortStatistics(
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        control_arm=control_arm if has_control else None,
        n_users=int(frame["user_id"].nunique()),
        archetypes=archetypes,
        cells=cells,
        power=_power(frame, control_arm) if has_control and "shift" in present else [],
    )


def min_detectable_shift(sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest mean difference between two arms of ``n`` users each with per-user spread
    ``sd`` that a two-sided test at ``alpha`` detects with ``power`` (normal approximation)."""
    z = scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(power)
    return float(z * math.sqrt(2.0) * sd / math.sqrt(n)) if n > 0 else math.inf


def users_needed(effect: float, sd: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users for :func:`min_detectable_shift` to reach ``effect``."""
    z = scipy_stats.norm.ppf(1 - alpha / 2) + scipy_stats.norm.ppf(power)
    return max(2, math.ceil(2.0 * float(z * sd / effect) ** 2))


def _power(frame: pd.DataFrame, control_arm: str | None) -> list[PowerCell]:
    control = frame[(frame["arm"] == control_arm) & (frame["genre"] == "")]
    cells = []
    for page in sorted(int(p) for p in control["page"].unique()):
        values = control[control["page"] == page]["shift"].dropna().to_numpy(dtype=float)
        if len(values) < MIN_BOOTSTRAP_USERS:
            continue
        sd = float(np.std(values, ddof=1))
        cells.append(
            PowerCell(
                page=page,
                n=len(values),
                control_sd=sd,
                min_detectable_net_shift=min_detectable_shift(sd, len(values)),
            )
        )
    return cells


def _intervals(
    matrix: np.ndarray, confidence: float, n_resamples: int, seed: int
) -> dict[int, tuple[float, float]]:
    """Bootstrap intervals of every column of a users × cells matrix with missing values.

    Columns with the same users present share one resampling (most cells of a cohort have
    every user), and each gets exactly what ``bootstrap_interval`` of its values would give.
    """
    present = ~np.isnan(matrix)
    by_users: dict[bytes, list[int]] = {}
    for column in range(matrix.shape[1]):
        if int(present[:, column].sum()) >= MIN_BOOTSTRAP_USERS:
            by_users.setdefault(present[:, column].tobytes(), []).append(column)
    intervals: dict[int, tuple[float, float]] = {}
    for columns in by_users.values():
        rows = present[:, columns[0]]
        low, high = bootstrap_columns(
            matrix[rows][:, columns], confidence=confidence, n_resamples=n_resamples, seed=seed
        )
        for position, column in enumerate(columns):
            intervals[column] = (float(low[position]), float(high[position]))
    return intervals


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values), in the order given.

    q(i) = min over j with p(j) ≥ p(i) of p(j)·m / rank(j), capped at 1; rejecting q ≤ α keeps
    the expected false discovery rate at α for independent or positively dependent tests.
    """
    m = len(p_values)
    if m == 0:
        return []
    values = np.asarray(p_values, dtype=float)
    order = np.argsort(values, kind="mergesort")
    scaled = values[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adjusted_sorted, 1.0)
    return [float(q) for q in adjusted]


def _adjust_p_values(cells: Sequence[StatCell]) -> None:
    """Fill the q-values: one family per metric, user group, and whole test set vs genres."""
    families: dict[tuple[str, str | None, bool], list[StatCell]] = {}
    for cell in cells:
        families.setdefault((cell.metric, cell.archetype, cell.genre == ""), []).append(cell)
    for family in families.values():
        tested = [cell for cell in family if cell.p_vs_zero is not None]
        for cell, q in zip(
            tested, benjamini_hochberg([c.p_vs_zero or 0.0 for c in tested]), strict=True
        ):
            cell.q_vs_zero = q
        tested = [cell for cell in family if cell.p_vs_control is not None]
        for cell, q in zip(
            tested, benjamini_hochberg([c.p_vs_control or 0.0 for c in tested]), strict=True
        ):
            cell.q_vs_control = q


def statistics_table(statistics: CohortStatistics) -> pd.DataFrame:
    """The cells as a flat table, for CSV (archetype ``""`` = all users)."""
    rows = [cell.model_dump() for cell in statistics.cells]
    table = pd.DataFrame(rows, columns=list(StatCell.model_fields))
    table["archetype"] = table["archetype"].fillna("")
    return table
