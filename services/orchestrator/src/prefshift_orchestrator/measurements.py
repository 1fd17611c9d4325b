"""Shift measurements of one run; equations in docs/measurements.md.

Pure functions over a run's ratings as a pandas DataFrame with the columns

- ``arm`` (str; the baseline's rows are arm ``"baseline"``, page 0),
- ``page`` (int, 1..P),
- ``phase`` (``"test"`` re-ratings of the test movies, ``"experience"`` ratings of recommendations,
  ``"blind"`` a shown-prediction arm's recommendations rated with no prediction shown),
- ``tmdb_id`` (int), ``rating`` (float 0.5–5.0).

Arm ratings are aligned with the baseline on ``tmdb_id``: a test movie that the baseline or the
arm's page lacks is left out of that page's figures (``n`` says how many were used), so partial
runs and missing ratings give figures over what exists instead of errors. A movie rated twice in
one (arm, page, phase) counts once, with the mean of its ratings. Rows of the baseline arm on
another page than 0 are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import stats

from prefshift_common.movies import genre_names

BASELINE_ARM = "baseline"
TEST_PHASE = "test"
EXPERIENCE_PHASE = "experience"
BLIND_PHASE = "blind"
RATING_COLUMNS = ("arm", "page", "phase", "tmdb_id", "rating")
#: Ratings are 0.5 steps; two ratings closer than this are the same rating.
_SAME_RATING = 1e-9
#: Up to this many test movies Kendall τ is computed from all pairs directly.
_DIRECT_TAU_MAX = 500


class PageShift(BaseModel):
    """Shift of one arm's test ratings after one page, against the baseline."""

    arm: str
    page: int
    n: int = Field(description="Test movies rated both at baseline and on this page.")
    shift: float | None = Field(description="Δ = mean of r(a,p,m) − r(0,m).")
    net_shift: float | None = Field(
        description="Δ(a,p) − Δ(control,p); None without a control page p (and for control)."
    )
    mean_abs_shift: float | None = Field(description="|Δ| = mean of |r(a,p,m) − r(0,m)|.")
    share_changed: float | None = Field(description="Share of test ratings that changed.")
    kendall_tau: float | None = Field(
        description="Kendall τ-b between baseline and page ratings; None when either is constant."
    )
    appraisal: float | None = Field(
        description="Mean rating the persona gave this page's recommendations (experience phase)."
    )
    n_appraisal: int = Field(description="Recommendations rated on this page.")
    shown_shift: float | None = Field(
        default=None,
        description="Shown-prediction arms: mean of r(a,p,m) − r_blind(a,p,m) over the page's "
        "movies, each rated beside its prediction and without it (same persona, same seed).",
    )
    n_shown: int = Field(default=0, description="Movies in shown_shift.")


class GenreShift(BaseModel):
    """Shift of the test movies of one genre (a movie counts in each of its genres)."""

    arm: str
    page: int
    genre: str
    n: int
    shift: float | None
    net_shift: float | None


class ArmSummary(BaseModel):
    """One arm over the whole run."""

    arm: str
    pages: int = Field(description="Pages with test re-ratings.")
    last_page: int | None
    shift: float | None = Field(description="Δ at the arm's last page.")
    net_shift: float | None = Field(description="Net shift at the arm's last page.")
    appraisal: float | None = Field(description="Mean rating of all the arm's recommendations.")
    n_appraisal: int
    shown_shift: float | None = Field(
        default=None,
        description="Shown-prediction arms: the shift on the shown movies, every page pooled.",
    )
    n_shown: int = 0


class Fidelity(BaseModel):
    """Baseline ratings against the user's real held-out ratings of the same movies."""

    n: int
    bias: float | None = Field(description="Mean of predicted − real.")
    mae: float | None
    rmse: float | None
    pearson_r: float | None = Field(description="None with fewer than 2 pairs or a constant side.")


class RunShift(BaseModel):
    """Every measurement of one run, JSON-ready (``GET /runs/{id}/shift``)."""

    control_arm: str | None = Field(description="The arm net shifts are taken against, if present.")
    n_test_movies: int = Field(description="Test movies with a baseline rating.")
    arms: list[ArmSummary]
    pages: list[PageShift]
    genres: list[GenreShift]
    fidelity: Fidelity = Field(description="Baseline against real ratings, every test movie.")
    fidelity_unseen: Fidelity = Field(
        description="The same on the test movies that are not persona movies (the persona never "
        "saw their real rating); equal to fidelity when the split is disjoint."
    )


def _none_if_nan(value: float | np.floating | None) -> float | None:
    if value is None:
        return None
    result = float(value)
    return None if math.isnan(result) else result


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


Cell = tuple[str, int, str]  # (arm, page, phase)


def _cells(ratings: pd.DataFrame) -> dict[Cell, dict[int, float]]:
    """Ratings by (arm, page, phase) and tmdb_id; a movie rated twice in a cell gets its mean.

    Plain dictionaries: a run has a few thousand ratings, and per-cell pandas objects would
    cost far more than the arithmetic.
    """
    missing = [column for column in RATING_COLUMNS if column not in ratings.columns]
    if missing:
        raise ValueError(f"ratings lack columns {missing}")
    sums: dict[Cell, dict[int, list[float]]] = {}
    columns = zip(
        ratings["arm"].astype(str).tolist(),
        ratings["page"].astype("int64").tolist(),
        ratings["phase"].astype(str).tolist(),
        ratings["tmdb_id"].astype("int64").tolist(),
        ratings["rating"].astype("float64").tolist(),
        strict=True,
    )
    for arm, page, phase, movie, rating in columns:
        if math.isnan(rating):
            continue
        total = sums.setdefault((arm, page, phase), {}).setdefault(movie, [0.0, 0.0])
        total[0] += rating
        total[1] += 1.0
    return {
        cell: {movie: total / count for movie, (total, count) in movies.items()}
        for cell, movies in sums.items()
    }


def kendall_tau(
    baseline: Sequence[float] | np.ndarray, other: Sequence[float] | np.ndarray
) -> float | None:
    """Kendall τ-b of two paired rating vectors; None when undefined (n < 2 or a constant side).

    τ-b = Σ sign(xi − xj)·sign(yi − yj) / √(Σ|sign(xi − xj)| · Σ|sign(yi − yj)|) over pairs,
    computed directly for test-set sizes (scipy's ``kendalltau`` for long vectors).
    """
    first = np.asarray(baseline, dtype=float)
    second = np.asarray(other, dtype=float)
    if first.size < 2 or np.ptp(first) == 0 or np.ptp(second) == 0:
        return None
    if first.size > _DIRECT_TAU_MAX:
        return _none_if_nan(stats.kendalltau(first, second, variant="b").statistic)
    upper = np.triu_indices(first.size, k=1)
    sign_first = np.sign(first[:, None] - first[None, :])[upper]
    sign_second = np.sign(second[:, None] - second[None, :])[upper]
    denominator = math.sqrt(float(np.abs(sign_first).sum()) * float(np.abs(sign_second).sum()))
    return float((sign_first * sign_second).sum()) / denominator


def fidelity(predicted: Mapping[int, float], real: Mapping[int, float]) -> Fidelity:
    """Bias, MAE, RMSE and Pearson r of predicted against real ratings, on their common movies."""
    common = sorted(set(predicted) & set(real))
    if not common:
        return Fidelity(n=0, bias=None, mae=None, rmse=None, pearson_r=None)
    pred = np.array([predicted[movie] for movie in common], dtype=float)
    truth = np.array([real[movie] for movie in common], dtype=float)
    error = pred - truth
    pearson: float | None = None
    if pred.size >= 2 and np.ptp(pred) > 0 and np.ptp(truth) > 0:
        pearson = _none_if_nan(stats.pearsonr(pred, truth).statistic)
    return Fidelity(
        n=int(pred.size),
        bias=float(error.mean()),
        mae=float(np.abs(error).mean()),
        rmse=float(np.sqrt((error**2).mean())),
        pearson_r=pearson,
    )


def baseline_ratings(ratings: pd.DataFrame) -> dict[int, float]:
    """The baseline's test ratings by tmdb_id."""
    return _cells(ratings).get((BASELINE_ARM, 0, TEST_PHASE), {})


def fidelity_pairs(ratings: pd.DataFrame, real_ratings: Mapping[int, float]) -> pd.DataFrame:
    """Baseline and real ratings side by side (columns tmdb_id, predicted, real), for plots."""
    predicted = baseline_ratings(ratings)
    common = sorted(set(predicted) & set(real_ratings))
    return pd.DataFrame(
        {
            "tmdb_id": np.array(common, dtype="int64"),
            "predicted": np.array([predicted[m] for m in common], dtype=float),
            "real": np.array([float(real_ratings[m]) for m in common], dtype=float),
        }
    )


def run_shift(
    ratings: pd.DataFrame,
    *,
    test_genres: Mapping[int, Sequence[str] | str],
    real_ratings: Mapping[int, float] | None = None,
    control_arm: str | None = "control",
    seen: Collection[int] = (),
) -> RunShift:
    """Every measurement of one run from its stored ratings (see the module docstring).

    ``seen``: test movies the persona saw among its persona movies (the seed study's split let
    some through); ``fidelity_unseen`` leaves them out."""
    cells = _cells(ratings)
    base = cells.get((BASELINE_ARM, 0, TEST_PHASE), {})
    seen_ids = set(seen)
    arm_names = sorted(
        {arm for (arm, _, _) in cells if arm != BASELINE_ARM},
        key=lambda arm: (arm == control_arm, arm),
    )
    rank = {arm: index for index, arm in enumerate(arm_names)}
    has_control = control_arm is not None and control_arm in rank

    # (arm, page) → aligned test movies, their baseline ratings and the page's ratings
    aligned: dict[tuple[str, int], tuple[list[int], np.ndarray, np.ndarray]] = {}
    appraisals: dict[tuple[str, int], np.ndarray] = {}
    shown_deltas: dict[tuple[str, int], np.ndarray] = {}
    for (arm, page, phase), movies in cells.items():
        if phase == BLIND_PHASE and arm != BASELINE_ARM:
            seen_shown = cells.get((arm, page, EXPERIENCE_PHASE), {})
            paired = sorted(set(movies) & set(seen_shown))
            shown_deltas[(arm, page)] = np.array(
                [seen_shown[m] - movies[m] for m in paired], dtype=float
            )
        if arm == BASELINE_ARM:
            continue
        if phase == TEST_PHASE:
            common = sorted(set(movies) & set(base))
            if common:
                aligned[(arm, page)] = (
                    common,
                    np.array([base[m] for m in common]),
                    np.array([movies[m] for m in common]),
                )
        elif phase == EXPERIENCE_PHASE:
            appraisals[(arm, page)] = np.array(list(movies.values()), dtype=float)

    page_shift = {key: float((now - before).mean()) for key, (_, before, now) in aligned.items()}
    control_by_page = (
        {page: value for (arm, page), value in page_shift.items() if arm == control_arm}
        if has_control
        else {}
    )

    def net(arm: str, page: int | None, value: float | None) -> float | None:
        if value is None or page is None or arm == control_arm or page not in control_by_page:
            return None
        return value - control_by_page[page]

    pages: list[PageShift] = []
    for arm, page in sorted(set(aligned) | set(appraisals), key=lambda k: (rank[k[0]], k[1])):
        appraisal = appraisals.get((arm, page), np.array([]))
        shift: float | None = None
        tau: float | None = None
        delta = np.array([])
        if (arm, page) in aligned:
            _, before, now = aligned[(arm, page)]
            delta = now - before
            shift = page_shift[(arm, page)]
            tau = kendall_tau(before, now)
        shown_delta = shown_deltas.get((arm, page), np.array([]))
        pages.append(
            PageShift(
                arm=arm,
                page=page,
                shown_shift=_mean(shown_delta),
                n_shown=int(shown_delta.size),
                n=int(delta.size),
                shift=shift,
                net_shift=net(arm, page, shift),
                mean_abs_shift=_mean(np.abs(delta)),
                share_changed=_mean((np.abs(delta) > _SAME_RATING).astype(float)),
                kendall_tau=tau,
                appraisal=_mean(appraisal),
                n_appraisal=int(appraisal.size),
            )
        )

    arms: list[ArmSummary] = []
    for arm in arm_names:
        arm_pages = sorted(page for (name, page) in aligned if name == arm)
        last = arm_pages[-1] if arm_pages else None
        shift = page_shift.get((arm, last)) if last is not None else None
        rated = [values for (name, _), values in appraisals.items() if name == arm]
        all_rated = np.concatenate(rated) if rated else np.array([])
        deltas = [values for (name, _), values in shown_deltas.items() if name == arm]
        all_shown = np.concatenate(deltas) if deltas else np.array([])
        arms.append(
            ArmSummary(
                arm=arm,
                pages=len(arm_pages),
                last_page=last,
                shift=shift,
                net_shift=net(arm, last, shift),
                appraisal=_mean(all_rated),
                n_appraisal=int(all_rated.size),
                shown_shift=_mean(all_shown),
                n_shown=int(all_shown.size),
            )
        )

    return RunShift(
        control_arm=control_arm if has_control else None,
        n_test_movies=len(base),
        arms=arms,
        pages=pages,
        genres=_genre_shifts(aligned, test_genres, rank, control_arm if has_control else None),
        fidelity=fidelity(base, real_ratings or {}),
        fidelity_unseen=fidelity(
            base, {m: r for m, r in (real_ratings or {}).items() if m not in seen_ids}
        ),
    )


def _genre_shifts(
    aligned: Mapping[tuple[str, int], tuple[list[int], np.ndarray, np.ndarray]],
    test_genres: Mapping[int, Sequence[str] | str],
    rank: Mapping[str, int],
    control_arm: str | None,
) -> list[GenreShift]:
    genres_of = {int(movie): genre_names(genres) for movie, genres in test_genres.items()}
    sums: dict[tuple[str, int, str], list[float]] = {}
    for (arm, page), (movies, before, now) in aligned.items():
        for movie, delta in zip(movies, (now - before).tolist(), strict=True):
            for genre in genres_of.get(movie, ()):
                total = sums.setdefault((arm, page, genre), [0.0, 0.0])
                total[0] += delta
                total[1] += 1.0
    means = {key: total / count for key, (total, count) in sums.items()}
    result: list[GenreShift] = []
    for arm, page, genre in sorted(means, key=lambda k: (rank[k[0]], k[1], k[2])):
        value = means[(arm, page, genre)]
        control_value = (
            means.get((control_arm, page, genre)) if control_arm and arm != control_arm else None
        )
        result.append(
            GenreShift(
                arm=arm,
                page=page,
                genre=genre,
                n=int(sums[(arm, page, genre)][1]),
                shift=value,
                net_shift=None if control_value is None else value - control_value,
            )
        )
    return result


SHIFT_TABLE_COLUMNS = (
    "arm",
    "page",
    "genre",
    "n",
    "shift",
    "net_shift",
    "mean_abs_shift",
    "share_changed",
    "kendall_tau",
    "appraisal",
    "n_appraisal",
    "shown_shift",
    "n_shown",
    "bias",
    "mae",
    "rmse",
    "pearson_r",
)
#: Metric columns of ``shift_table`` for arms and pages.
PAGE_METRICS = (
    "shift",
    "net_shift",
    "mean_abs_shift",
    "share_changed",
    "kendall_tau",
    "appraisal",
    "shown_shift",
)
#: Metric columns of ``shift_table``'s baseline row (fidelity against real ratings).
FIDELITY_METRICS = ("bias", "mae", "rmse", "pearson_r")
#: Every metric column (what ``statistics.summarize`` aggregates across users).
SHIFT_METRICS = PAGE_METRICS + FIDELITY_METRICS


def shift_table(shift: RunShift) -> pd.DataFrame:
    """One run's measurements as a flat table (one row per arm × page × genre), for CSV.

    Rows with ``genre`` empty (``""``) are the whole test set; the others are the per-genre rows,
    which carry ``n``, ``shift`` and ``net_shift`` only (the rest is NaN). When real ratings were
    compared, one more row, arm ``baseline`` page 0, carries the fidelity (``n`` pairs, bias,
    MAE, RMSE, Pearson r). Add ``user_id`` and ``archetype`` columns to stack runs into the
    input of ``statistics.summarize``.
    """
    rows: list[dict[str, object]] = [
        {
            "arm": page.arm,
            "page": page.page,
            "genre": "",
            "n": page.n,
            "shift": page.shift,
            "net_shift": page.net_shift,
            "mean_abs_shift": page.mean_abs_shift,
            "share_changed": page.share_changed,
            "kendall_tau": page.kendall_tau,
            "appraisal": page.appraisal,
            "n_appraisal": page.n_appraisal,
            "shown_shift": page.shown_shift,
            "n_shown": page.n_shown,
        }
        for page in shift.pages
    ]
    rows.extend(
        {"arm": cell.arm, "page": cell.page, "genre": cell.genre, "n": cell.n}
        | {"shift": cell.shift, "net_shift": cell.net_shift}
        for cell in shift.genres
    )
    if shift.fidelity.n:
        rows.append(
            {"arm": BASELINE_ARM, "page": 0, "genre": "", "n": shift.fidelity.n}
            | shift.fidelity.model_dump(exclude={"n"})
        )
    table = pd.DataFrame(rows, columns=list(SHIFT_TABLE_COLUMNS))
    metric_columns = [*SHIFT_METRICS]
    table[metric_columns] = table[metric_columns].astype("float64")
    for count in ("n_appraisal", "n_shown"):
        table[count] = table[count].fillna(0).astype("int64")
    return table.astype({"page": "int64", "n": "int64", "arm": str, "genre": str})


def stack_shift_tables(runs: Iterable[tuple[int, str | None, RunShift]]) -> pd.DataFrame:
    """Shift tables of many runs, with ``user_id`` and ``archetype`` columns in front."""
    tables = [
        shift_table(shift).assign(user_id=user_id, archetype=archetype or "")
        for user_id, archetype, shift in runs
    ]
    columns = ["user_id", "archetype", *SHIFT_TABLE_COLUMNS]
    if not tables:
        return pd.DataFrame(columns=columns)
    return pd.concat(tables, ignore_index=True)[columns]
