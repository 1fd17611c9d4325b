"""Statistics across users (DESIGN.md, "Measurements"); equations in docs/measurements.md.

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

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import stats

from prefshift_orchestrator.measurements import SHIFT_METRICS

#: Wilcoxon needs at least this many non-zero differences to give a p-value.
MIN_WILCOXON_PAIRS = 2
#: Up to this many pairs the Wilcoxon null distribution is computed exactly.
EXACT_WILCOXON_MAX = 50
#: Differences smaller than this are zero (ratings are on a 0.5 grid; means of them are exact
#: to far better than this).
_ZERO = 1e-9
#: Bootstrap intervals need at least this many users.
MIN_BOOTSTRAP_USERS = 2
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
    p_vs_zero: float | None = Field(description="Wilcoxon signed-rank p, H0: median 0.")
    n_vs_control: int = Field(description="Users with a value for this arm and for control.")
    p_vs_control: float | None = Field(
        description="Wilcoxon signed-rank p on per-user differences arm − control."
    )


class CohortStatistics(BaseModel):
    """All cells of a cohort's results, JSON-ready (part of ``GET /experiments/{id}/report``)."""

    confidence: float
    n_resamples: int
    seed: int
    control_arm: str | None
    n_users: int
    archetypes: list[str]
    cells: list[StatCell]


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of the mean (resampling users); None with fewer than 2."""
    sample = np.asarray(values, dtype=float)
    sample = sample[~np.isnan(sample)]
    if sample.size < MIN_BOOTSTRAP_USERS:
        return None
    rng = np.random.default_rng(seed)
    # Resample in chunks so that memory stays bounded for large cohorts.
    means = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // sample.size)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        picks = rng.integers(0, sample.size, size=(stop - start, sample.size))
        means[start:stop] = sample[picks].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def wilcoxon_p(differences: Sequence[float] | np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p of paired differences against 0.

    Zero differences are dropped (Wilcoxon's convention) and tied magnitudes get average ranks;
    None when fewer than ``MIN_WILCOXON_PAIRS`` non-zero differences remain. The null
    distribution is enumerated exactly (all 2^n sign flips) up to ``EXACT_WILCOXON_MAX`` pairs —
    ratings on a 0.5 grid tie a lot, and this handles ties exactly — then scipy's exact
    distribution without ties up to 50 pairs, and its tie-corrected normal approximation beyond.
    """
    sample = np.asarray(differences, dtype=float)
    sample = sample[~np.isnan(sample)]
    sample = sample[np.abs(sample) > _ZERO]
    if sample.size < MIN_WILCOXON_PAIRS:
        return None
    if sample.size <= EXACT_WILCOXON_MAX:
        return _wilcoxon_exact(sample)
    result = stats.wilcoxon(sample, zero_method="wilcox", alternative="two-sided", method="approx")
    p = float(result.pvalue)
    return None if math.isnan(p) else min(1.0, p)


def _wilcoxon_exact(sample: np.ndarray) -> float:
    """Exact two-sided p of W+ (the sum of positive ranks) under random signs, ties included.

    Average ranks are multiples of 1/2, so 2·W+ is an integer and its null distribution is
    built by adding one rank at a time (each with its sign + or − at probability 1/2).
    """
    doubled = np.rint(2.0 * stats.rankdata(np.abs(sample))).astype(np.int64)
    observed = int(doubled[sample > 0].sum())
    total = int(doubled.sum())
    null = np.zeros(total + 1)
    null[0] = 1.0
    for rank in doubled:
        shifted = np.zeros_like(null)
        shifted[rank:] = null[: total + 1 - rank]
        null = 0.5 * (null + shifted)
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
            wide = group.pivot_table(
                index="user_id", columns=list(_KEYS), values=metric, aggfunc="mean", dropna=False
            )
            for key in sorted(wide.columns, key=lambda k: (k[0] == control_arm, *k)):
                arm, page, genre = str(key[0]), int(key[1]), str(key[2])
                values = wide[key].to_numpy(dtype=float)
                values = values[~np.isnan(values)]
                if values.size == 0:
                    continue
                interval = bootstrap_interval(
                    values, confidence=confidence, n_resamples=n_resamples, seed=seed
                )
                n_paired, p_control = 0, None
                control_key = (control_arm, key[1], key[2])
                if has_control and arm != control_arm and control_key in wide.columns:
                    paired = (wide[key] - wide[control_key]).to_numpy(dtype=float)
                    paired = paired[~np.isnan(paired)]
                    n_paired, p_control = int(paired.size), wilcoxon_p(paired)
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
    return CohortStatistics(
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        control_arm=control_arm if has_control else None,
        n_users=int(frame["user_id"].nunique()),
        archetypes=archetypes,
        cells=cells,
    )


def statistics_table(statistics: CohortStatistics) -> pd.DataFrame:
    """The cells as a flat table, for CSV (archetype ``""`` = all users)."""
    rows = [cell.model_dump() for cell in statistics.cells]
    table = pd.DataFrame(rows, columns=list(StatCell.model_fields))
    table["archetype"] = table["archetype"].fillna("")
    return table
