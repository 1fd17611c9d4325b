"""Shift measurements of one run (DESIGN.md, "Measurements"); equations in docs/measurements.md.

Pure functions over a run's ratings as a pandas DataFrame with the columns

- ``arm`` (str; the baseline's rows are arm ``"baseline"``, page 0),
- ``page`` (int, 1..P),
- ``phase`` (``"test"`` re-ratings of the test movies, ``"experience"`` ratings of recommendations),
- ``tmdb_id`` (int), ``rating`` (float 0.5–5.0).

Arm ratings are aligned with the baseline on ``tmdb_id``: a test movie that the baseline or the
arm's page lacks is left out of that page's figures (``n`` says how many were used), so partial
runs and missing ratings give figures over what exists instead of errors. A movie rated twice in
one (arm, page, phase) counts once, with the mean of its ratings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import stats

BASELINE_ARM = "baseline"
TEST_PHASE = "test"
EXPERIENCE_PHASE = "experience"
RATING_COLUMNS = ("arm", "page", "phase", "tmdb_id", "rating")
#: Ratings are 0.5 steps; two ratings closer than this are the same rating.
_SAME_RATING = 1e-9


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
    fidelity: Fidelity


def _none_if_nan(value: float | np.floating | None) -> float | None:
    if value is None:
        return None
    result = float(value)
    return None if math.isnan(result) else result


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _clean(ratings: pd.DataFrame) -> pd.DataFrame:
    """Check the columns, normalise types, and average duplicate ratings of one cell."""
    missing = [column for column in RATING_COLUMNS if column not in ratings.columns]
    if missing:
        raise ValueError(f"ratings lack columns {missing}")
    frame = pd.DataFrame(
        {
            "arm": ratings["arm"].astype(str).to_numpy(),
            "page": ratings["page"].astype("int64").to_numpy(),
            "phase": ratings["phase"].astype(str).to_numpy(),
            "tmdb_id": ratings["tmdb_id"].astype("int64").to_numpy(),
            "rating": ratings["rating"].astype("float64").to_numpy(),
        }
    )
    frame = frame[frame["rating"].notna()]
    averaged = frame.groupby(["arm", "page", "phase", "tmdb_id"], sort=True)["rating"].mean()
    return averaged.reset_index()


def _cells_by_arm_page(frame: pd.DataFrame) -> dict[tuple[str, int], pd.DataFrame]:
    """Split rows by (arm, page)."""
    cells: dict[tuple[str, int], pd.DataFrame] = {}
    for key, cell in frame.groupby(["arm", "page"], sort=True):
        arm, page = cast("tuple[object, object]", key)
        cells[(str(arm), int(cast(int, page)))] = cell
    return cells


def kendall_tau(
    baseline: Sequence[float] | np.ndarray, other: Sequence[float] | np.ndarray
) -> float | None:
    """Kendall τ-b of two paired rating vectors; None when undefined (n < 2 or a constant side)."""
    first = np.asarray(baseline, dtype=float)
    second = np.asarray(other, dtype=float)
    if first.size < 2 or np.ptp(first) == 0 or np.ptp(second) == 0:
        return None
    return _none_if_nan(stats.kendalltau(first, second, variant="b").statistic)


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
    frame = _clean(ratings)
    base = frame[(frame["arm"] == BASELINE_ARM) & (frame["phase"] == TEST_PHASE)]
    movies = base["tmdb_id"].to_numpy(dtype="int64").tolist()
    values = base["rating"].to_numpy(dtype=float).tolist()
    return dict(zip(movies, values, strict=True))


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


def _genre_table(test_genres: Mapping[int, Sequence[str] | str]) -> pd.DataFrame:
    rows = [
        (int(movie), str(genre))
        for movie, genres in test_genres.items()
        # a genre listed twice counts once; a MovieLens "A|B" string is split
        for genre in dict.fromkeys(genres.split("|") if isinstance(genres, str) else genres)
        if genre
    ]
    return pd.DataFrame(rows, columns=["tmdb_id", "genre"]).astype({"tmdb_id": "int64"})


def run_shift(
    ratings: pd.DataFrame,
    *,
    test_genres: Mapping[int, Sequence[str] | str],
    real_ratings: Mapping[int, float] | None = None,
    control_arm: str | None = "control",
) -> RunShift:
    """Every measurement of one run from its stored ratings (see the module docstring)."""
    frame = _clean(ratings)
    base = baseline_ratings(frame)
    base_series = pd.Series(base, dtype=float, name="baseline")
    base_series.index = base_series.index.astype("int64")
    base_series.index.name = "tmdb_id"

    test = frame[(frame["phase"] == TEST_PHASE) & (frame["arm"] != BASELINE_ARM)]
    test = test.join(base_series, on="tmdb_id", how="inner")
    test = test.assign(delta=test["rating"] - test["baseline"])
    experience = frame[(frame["phase"] == EXPERIENCE_PHASE) & (frame["arm"] != BASELINE_ARM)]

    arm_names = sorted(
        set(frame.loc[frame["arm"] != BASELINE_ARM, "arm"]),
        key=lambda arm: (arm == control_arm, arm),
    )
    has_control = control_arm is not None and control_arm in arm_names

    page_cells = _cells_by_arm_page(test)
    page_shift = {key: float(cell["delta"].mean()) for key, cell in page_cells.items()}
    appraisal_cells = {
        key: cell["rating"].to_numpy(dtype=float)
        for key, cell in _cells_by_arm_page(experience).items()
    }

    def net(arm: str, page: int, value: float | None, control: dict[int, float]) -> float | None:
        if value is None or not has_control or arm == control_arm or page not in control:
            return None
        return value - control[page]

    control_by_page = (
        {page: value for (arm, page), value in page_shift.items() if arm == control_arm}
        if has_control
        else {}
    )

    pages: list[PageShift] = []
    rank = {arm: index for index, arm in enumerate(arm_names)}
    for arm, page in sorted(
        set(page_cells) | set(appraisal_cells), key=lambda item: (rank[item[0]], item[1])
    ):
        cell = page_cells.get((arm, page))
        appraisal = appraisal_cells.get((arm, page), np.array([]))
        if cell is None:
            delta = np.array([])
            shift = None
            tau = None
        else:
            delta = cell["delta"].to_numpy()
            shift = page_shift[(arm, page)]
            tau = kendall_tau(cell["baseline"].to_numpy(), cell["rating"].to_numpy())
        pages.append(
            PageShift(
                arm=arm,
                page=page,
                n=int(delta.size),
                shift=shift,
                net_shift=net(arm, page, shift, control_by_page),
                mean_abs_shift=_mean(np.abs(delta)),
                share_changed=_mean((np.abs(delta) > _SAME_RATING).astype(float)),
                kendall_tau=tau,
                appraisal=_mean(appraisal),
                n_appraisal=int(appraisal.size),
            )
        )

    genres = _genre_shifts(test, test_genres, arm_names, control_arm if has_control else None)

    arms: list[ArmSummary] = []
    for arm in arm_names:
        arm_pages = sorted(page for (name, page) in page_cells if name == arm)
        last = arm_pages[-1] if arm_pages else None
        shift = page_shift.get((arm, last)) if last is not None else None
        rated = experience.loc[experience["arm"] == arm, "rating"].to_numpy()
        arms.append(
            ArmSummary(
                arm=arm,
                pages=len(arm_pages),
                last_page=last,
                shift=shift,
                net_shift=net(arm, last, shift, control_by_page) if last is not None else None,
                appraisal=_mean(rated),
                n_appraisal=int(rated.size),
            )
        )

    return RunShift(
        control_arm=control_arm if has_control else None,
        n_test_movies=len(base),
        arms=arms,
        pages=pages,
        genres=genres,
        fidelity=fidelity(base, real_ratings or {}),
    )


def _genre_shifts(
    test: pd.DataFrame,
    test_genres: Mapping[int, Sequence[str] | str],
    arm_names: Sequence[str],
    control_arm: str | None,
) -> list[GenreShift]:
    genre_table = _genre_table(test_genres)
    if test.empty or genre_table.empty:
        return []
    by_genre = test.merge(genre_table, on="tmdb_id", how="inner")
    means: dict[tuple[str, int, str], float] = {}
    sizes: dict[tuple[str, int, str], int] = {}
    for key, cell in by_genre.groupby(["arm", "page", "genre"], sort=True):
        arm, page, genre = cast("tuple[object, object, object]", key)
        name = (str(arm), int(cast(int, page)), str(genre))
        means[name] = float(cell["delta"].mean())
        sizes[name] = len(cell)
    rank = {arm: index for index, arm in enumerate(arm_names)}
    result: list[GenreShift] = []
    for arm, page, genre in sorted(means, key=lambda k: (rank.get(k[0], len(rank)), k[1], k[2])):
        value = means[(arm, page, genre)]
        control_value = (
            means.get((control_arm, page, genre)) if control_arm and arm != control_arm else None
        )
        result.append(
            GenreShift(
                arm=arm,
                page=page,
                genre=genre,
                n=sizes[(arm, page, genre)],
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
)
#: The metric columns of ``shift_table`` (what ``statistics.summarize`` aggregates across users).
SHIFT_METRICS = (
    "shift",
    "net_shift",
    "mean_abs_shift",
    "share_changed",
    "kendall_tau",
    "appraisal",
)


def shift_table(shift: RunShift) -> pd.DataFrame:
    """One run's measurements as a flat table (one row per arm × page × genre), for CSV.

    Rows with ``genre`` empty (``""``) are the whole test set; the others are the per-genre rows,
    which carry ``n``, ``shift`` and ``net_shift`` only (the rest is NaN). Add ``user_id`` and
    ``archetype`` columns to stack runs into the input of ``statistics.summarize``.
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
        }
        for page in shift.pages
    ]
    rows.extend(
        {"arm": cell.arm, "page": cell.page, "genre": cell.genre, "n": cell.n}
        | {"shift": cell.shift, "net_shift": cell.net_shift}
        for cell in shift.genres
    )
    table = pd.DataFrame(rows, columns=list(SHIFT_TABLE_COLUMNS))
    metric_columns = [*SHIFT_METRICS]
    table[metric_columns] = table[metric_columns].astype("float64")
    table["n_appraisal"] = table["n_appraisal"].fillna(0).astype("int64")
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
