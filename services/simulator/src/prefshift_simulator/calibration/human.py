"""Held against people: the published human figures on re-rating, the two re-rating designs
simulated in process, and the fit of a persona set to the figures.

**The figures** (:data:`HUMAN_FIGURES`) are the ones read in the papers' own texts, each with
the passage it is quoted from; a measure the papers give no figure for that could be read here
carries ``None`` and says why, and nothing is filled in for it. docs/validity.md lists them
with what each design differs from ours.

**The designs**, on a recorded study's split (each user's persona movies as the history, the
held-out test movies with the user's real ratings, :func:`design_users`):

- ``retest``: the persona rates the held-out movies on two occasions (0 and 1) with nothing
  shown; the test-retest RMSE is the RMSE between its two ratings (pooled over pairs), as
  between two of a person's trials in Amatriain et al.; beside it, the RMSE of the first
  rating against the real one (the persona's own error, which holds the person's noise too).
- ``rerate``: the persona re-rates the held-out movies on occasion 1, each under one condition
  (none: nothing shown; accurate: the real rating shown; up/down: the real rating ± δ, clipped
  to 0.5–5), balanced and seeded (the movies in a seeded order take the four in turn), as
  Cosley et al.'s users re-rated movies they had rated; the change is re-rating − the persona's
  own first rating (occasion 0). The measures are computed by the one implementation the
  orchestrator's ``rerate``/``retest`` report uses, :mod:`prefshift_common.rerating`
  (docs/measurements.md, "Re-rating designs"), from the designs' rows
  (:func:`design_frames`): the mean change per condition (each user's mean, then the mean over
  users); the share toward — of the up/down re-ratings whose shown value differs from the
  first rating, those that changed in its direction (no change is not toward); the anchoring
  slope — least squares of the change on the perturbation shown − real over the
  accurate/up/down re-ratings, stars moved per star.

Every interval is a 95% percentile bootstrap over users (the unit sampled).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import pandas as pd

from prefshift_common.rerating import (
    RERATING_COLUMNS,
    Estimate,
    RerateReport,
    rerate_report,
    rmse,
    slope,
)
from prefshift_simulator.calibration.fidelity import UnseenPairs
from prefshift_simulator.calibration.replay import round_ratings
from prefshift_simulator.embedded.collaborative import CollaborativeStats
from prefshift_simulator.embedded.model import EmbeddedPersonaModel, ModelParams, anchor
from prefshift_simulator.embedded.noise import response_noise
from prefshift_simulator.metadata import MovieFacts

FloatArray = npt.NDArray[np.float64]

CONDITIONS = ("none", "accurate", "up", "down")
#: The measures of the two designs, in the order of a validity table.
MEASURES = (
    "retest_rmse",
    "first_rating_rmse",
    "mean_change_none",
    "mean_change_accurate",
    "mean_change_up",
    "mean_change_down",
    "share_toward",
    "anchoring_slope",
)


@dataclass(frozen=True)
class HumanFigure:
    """A figure measured on people, where it was read, and how the design differs from ours.

    ``low``/``high``: the range the paper reports (None: no figure read for this measure)."""

    measure: str
    cite: str  # short: "author year, where"
    paper: str
    where: str
    quote: str
    differs: str
    low: float | None = None
    high: float | None = None

    @property
    def has_figure(self) -> bool:
        return self.low is not None and self.high is not None

    def inside(self, value: float) -> bool | None:
        """Whether ``value`` lies in the human range (None: no human figure)."""
        if self.low is None or self.high is None or math.isnan(value):
            return None
        return self.low <= value <= self.high


AMATRIAIN = (
    'Amatriain, Pujol & Oliver, "I like it... I like it not: Evaluating user ratings noise '
    'in recommender systems", UMAP 2009, LNCS 5535, pp. 247-258'
)
COSLEY = (
    'Cosley, Lam, Albert, Konstan & Riedl, "Is seeing believing? How recommender interfaces '
    "affect users' opinions\", CHI 2003, pp. 585-592"
)
ADOMAVICIUS = (
    'Adomavicius, Bockstedt, Curley & Zhang, "Do recommender systems manipulate consumer '
    'preferences? A study of anchoring effects", Information Systems Research 24(4), 2013, '
    "pp. 956-975"
)
ADOMAVICIUS_2022 = (
    'Adomavicius, Bockstedt, Curley & Zhang, "Effects of personalized recommendations versus '
    'aggregate ratings on post-consumption preference responses", MIS Quarterly, 2022, '
    "doi:10.25300/misq/2022/16301"
)
#: The anchoring slope of :data:`ADOMAVICIUS_2022`'s Table 2 (personalized predictions shown
#: alone), per star, and its standard error (see HUMAN_FIGURES["anchoring_slope"]).
ANCHORING_SLOPE = (0.277, 0.032)
NOT_REACHED = (
    "the paper's tables could not be read here (only its abstract); no figure is given for "
    "this measure rather than one from memory"
)

#: Every human figure, by measure. Only figures read in the paper's text are numbers.
HUMAN_FIGURES: dict[str, HumanFigure] = {
    "retest_rmse": HumanFigure(
        measure="retest_rmse",
        cite="Amatriain et al. 2009, abstract",
        paper=AMATRIAIN,
        where="abstract (the per-trial-pair table could not be read here)",
        quote="We measure RMSE values that range from 0.557 to 0.8156.",
        differs="people (a Netflix-like sample of movies, 1-5 integer stars) rating the same "
        "movies in three sessions days apart; ours: a persona rating a real user's held-out "
        "MovieLens movies (half stars) on two occasions of one run. The range spans their "
        "trial pairs and conditions, it is not a confidence interval",
        low=0.557,
        high=0.8156,
    ),
    "share_toward": HumanFigure(
        measure="share_toward",
        cite="Cosley et al. 2003, abstract",
        paper=COSLEY,
        where="abstract",
        quote="Users can be manipulated, though, tending to rate toward the prediction the "
        "system shows, whether the prediction is accurate or not.",
        differs="MovieLens users re-rating movies they had rated, shown a prediction that was "
        "accurate or moved up or down; direction only here: " + NOT_REACHED,
    ),
    "mean_change_up": HumanFigure(
        measure="mean_change_up",
        cite="Cosley et al. 2003, abstract",
        paper=COSLEY,
        where="abstract",
        quote="tending to rate toward the prediction the system shows",
        differs="direction only (up: positive): " + NOT_REACHED,
    ),
    "mean_change_down": HumanFigure(
        measure="mean_change_down",
        cite="Cosley et al. 2003, abstract",
        paper=COSLEY,
        where="abstract",
        quote="tending to rate toward the prediction the system shows",
        differs="direction only (down: negative): " + NOT_REACHED,
    ),
    "anchoring_slope": HumanFigure(
        measure="anchoring_slope",
        cite="Adomavicius et al. 2022, Table 2",
        paper=ADOMAVICIUS_2022,
        where="Table 2, Model 3 (single-recommendation groups, 118 participants), with the "
        "linearity of " + ADOMAVICIUS + " (abstract)",
        quote="High 0.720 (0.064), PredictionGp x High -0.166 (0.091) [random-effects GLS, "
        "UserRating on High]; high recommendations 'randomly generated values between 3.5 "
        "and 4.5 stars', low 'between 1.5 and 2.5 stars'; 2013: 'the effect of anchoring is "
        "continuous and linear, operating over a range of perturbations of the system.'",
        differs="students rating jokes just read (half stars, 1-5), shown a random "
        "'Our system thinks you would rate the joke as: X' high or low, not tied to their "
        "own opinion; ours: a persona re-rating movies its user rated, shown the real rating "
        "± δ. Derived here: the personalized group's high-low effect 0.720 - 0.166 = 0.554 "
        "stars over a 2-star difference of the anchors' means (4.0 vs 2.0) = 0.277 per star; "
        "its SE 0.032 from the two groups' SEs (0.091² - 0.064² = 0.065², halved), taking "
        "the groups' estimates as independent (different participants). The interval is "
        "the slope ± 1 SE",
        low=ANCHORING_SLOPE[0] - ANCHORING_SLOPE[1],
        high=ANCHORING_SLOPE[0] + ANCHORING_SLOPE[1],
    ),
}


@dataclass(frozen=True)
class DesignUser:
    """A user's history and held-out movies with the real ratings."""

    user_id: int
    history: list[tuple[int, float]]
    items: list[int]
    real: FloatArray


def design_users(pairs: Sequence[UnseenPairs]) -> list[DesignUser]:
    """The designs' users from a recorded study's split (see
    :func:`~prefshift_simulator.calibration.fidelity.unseen_pairs`)."""
    return [DesignUser(p.user_id, p.history, p.items, p.real) for p in pairs]


def static_scores(
    users: Sequence[DesignUser],
    *,
    model: EmbeddedPersonaModel,
    facts: Mapping[int, MovieFacts],
    stats: CollaborativeStats | None,
) -> list[FloatArray]:
    """Each user's scores of its held-out movies before noise (no experiences in either
    design), computed once: the fits vary only noise and anchoring."""
    result = []
    for user in users:
        static = model.static_scores(
            user_id=user.user_id, history=user.history, items=user.items, facts=facts, stats=stats
        )
        order = {t: i for i, t in enumerate(static.item_ids)}
        result.append(static.scores[[order[t] for t in user.items]])
    return result


def conditions(user: DesignUser, seed: int) -> npt.NDArray[np.int64]:
    """Each held-out movie's condition (an index of :data:`CONDITIONS`): balanced, the movies
    in a seeded order taking the four in turn."""
    rng = np.random.default_rng([seed, user.user_id])
    drawn = np.empty(len(user.items), dtype=np.int64)
    drawn[rng.permutation(len(user.items))] = np.arange(len(user.items)) % len(CONDITIONS)
    return drawn


def shown_values(user: DesignUser, drawn: npt.NDArray[np.int64], delta: float) -> FloatArray:
    """The prediction shown beside each movie: NaN (none), the real rating, or it ± δ."""
    offsets = np.array([math.nan, 0.0, delta, -delta])[drawn]
    values: FloatArray = np.clip(user.real + offsets, 0.5, 5.0)
    return values


def rate(
    user: DesignUser,
    static: FloatArray,
    params: ModelParams,
    *,
    seed: int,
    occasion: int,
    shown: FloatArray | None = None,
) -> FloatArray:
    """The persona's ratings of the held-out movies on an occasion, as the embedded model rates
    them (:meth:`~prefshift_simulator.embedded.model.EmbeddedPersonaModel.predict` with no
    experiences)."""
    scores = static + response_noise(
        user_id=user.user_id,
        movies=user.items,
        seed=seed,
        occasion=occasion,
        lasting=params.lasting_noise,
        per_occasion=params.occasion_noise,
        drift=params.drift_noise,
    )
    if shown is not None:
        scores = anchor(
            scores, shown, weight=params.anchoring_weight, distance_range=params.anchoring_range
        )
    rated: FloatArray = round_ratings(scores)
    return rated


@dataclass(frozen=True)
class DesignData:
    """Per user: the two retest ratings, the rerate condition, shown value and re-rating."""

    real: list[FloatArray]
    first: list[FloatArray]
    second: list[FloatArray]
    condition: list[npt.NDArray[np.int64]]
    shown: list[FloatArray]
    rerated: list[FloatArray]
    delta: float


def simulate(
    users: Sequence[DesignUser],
    statics: Sequence[FloatArray],
    params: ModelParams,
    *,
    seed: int = 0,
    delta: float = 1.0,
) -> DesignData:
    """Both designs for every user."""
    first, second, drawn, shown, rerated = [], [], [], [], []
    for user, static in zip(users, statics, strict=True):
        first.append(rate(user, static, params, seed=seed, occasion=0))
        second.append(rate(user, static, params, seed=seed, occasion=1))
        condition = conditions(user, seed)
        values = shown_values(user, condition, delta)
        drawn.append(condition)
        shown.append(values)
        rerated.append(rate(user, static, params, seed=seed, occasion=1, shown=values))
    return DesignData([u.real for u in users], first, second, drawn, shown, rerated, delta)


def design_frames(data: DesignData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two designs' re-ratings as :data:`~prefshift_common.rerating.RERATING_COLUMNS` rows,
    as the orchestrator's report reads them from stored runs: ``rerate`` (session 2: the
    re-rating under its condition) and ``retest`` (session 2: the second rating, nothing shown);
    ``first`` is the persona's rating on occasion 0. A user is its position in the design (a
    user drawn twice into a bootstrap sample of the fit counts twice)."""
    frames: dict[str, list[pd.DataFrame]] = {"rerate": [], "retest": []}
    for position, real in enumerate(data.real):
        common = {"user_id": position, "tmdb_id": np.arange(len(real)), "session": 2}
        frames["rerate"].append(
            pd.DataFrame(
                common
                | {
                    "condition": np.array(CONDITIONS)[data.condition[position]],
                    "shown": data.shown[position],
                    "real": real,
                    "first": data.first[position],
                    "second": data.rerated[position],
                }
            )
        )
        frames["retest"].append(
            pd.DataFrame(
                common
                | {
                    "condition": "none",
                    "shown": math.nan,
                    "real": real,
                    "first": data.first[position],
                    "second": data.second[position],
                }
            )
        )
    empty = pd.DataFrame(columns=list(RERATING_COLUMNS))
    rerate, retest = (
        pd.concat(parts, ignore_index=True)[list(RERATING_COLUMNS)] if parts else empty
        for parts in (frames["rerate"], frames["retest"])
    )
    return rerate, retest


def design_reports(
    data: DesignData, *, resamples: int = 0, seed: int = 0
) -> tuple[RerateReport, RerateReport]:
    """The rerate and retest reports of the simulated designs, by the orchestrator's report's
    own measures (:func:`prefshift_common.rerating.rerate_report`); ``resamples=0``: point
    values only."""
    rerate, retest = design_frames(data)
    options = {"n_resamples": resamples, "seed": seed}
    return (
        rerate_report(rerate, design="rerate", delta=data.delta, **options),
        rerate_report(retest, design="retest", delta=None, **options),
    )


@dataclass(frozen=True)
class Measured:
    """A measure's point value and its 95% bootstrap interval over users (NaN: undefined)."""

    value: float
    low: float
    high: float


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _measured(estimate: Estimate | None) -> Measured:
    if estimate is None:
        return Measured(math.nan, math.nan, math.nan)
    return Measured(_number(estimate.value), _number(estimate.ci_low), _number(estimate.ci_high))


def measured(rerate: RerateReport, retest: RerateReport) -> dict[str, Measured]:
    """Every measure of :data:`MEASURES` from the two designs' reports."""
    conditions = {c.condition: c for c in rerate.conditions}
    result = {
        "retest_rmse": _measured(retest.retest_rmse),
        "first_rating_rmse": _measured(retest.first_rmse),
    }
    for name in CONDITIONS:
        cell = conditions.get(name)
        result[f"mean_change_{name}"] = _measured(cell.mean_change if cell else None)
    perturbed = rerate.perturbed
    result["share_toward"] = (
        Measured(
            _number(perturbed.toward),
            _number(perturbed.toward_ci_low),
            _number(perturbed.toward_ci_high),
        )
        if perturbed is not None
        else Measured(math.nan, math.nan, math.nan)
    )
    result["anchoring_slope"] = _measured(rerate.slope)
    return result


def measures(data: DesignData) -> dict[str, float]:
    """Every measure of :data:`MEASURES`, point values."""
    return {name: m.value for name, m in measured(*design_reports(data)).items()}


def measure_with_intervals(
    data: DesignData, *, resamples: int = 1000, seed: int = 0
) -> dict[str, Measured]:
    """Every measure of :data:`MEASURES` with its 95% percentile bootstrap interval over
    users."""
    return measured(*design_reports(data, resamples=resamples, seed=seed))


def _retest_rmse(first: Sequence[FloatArray], second: Sequence[FloatArray]) -> float:
    """The test-retest RMSE (:func:`prefshift_common.rerating.rmse`), cheaply for a fit."""
    value = rmse(np.concatenate(second) - np.concatenate(first)) if first else None
    return _number(value)


def _anchoring_slope(data: DesignData) -> float:
    """The anchoring slope (:func:`prefshift_common.rerating.slope`), cheaply for a fit: over
    the re-ratings with a prediction shown (accurate, up, down), pooled."""
    condition = np.concatenate(data.condition)
    with_shown = condition >= 1
    x = (np.concatenate(data.shown) - np.concatenate(data.real))[with_shown]
    y = (np.concatenate(data.rerated) - np.concatenate(data.first))[with_shown]
    return _number(slope(x, y))


def _solve(
    function: Callable[[float], float], target: float, low: float, high: float, steps: int = 40
) -> float:
    """The argument in [low, high] where an increasing ``function`` meets ``target`` (an end
    of the bracket when the target lies beyond it)."""
    f_low, f_high = function(low), function(high)
    if target <= f_low:
        return low
    if target >= f_high:
        return high
    for _ in range(steps):
        middle = 0.5 * (low + high)
        if function(middle) < target:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def with_values(params: ModelParams, **values: float) -> ModelParams:
    """``params`` with some model parameters replaced."""
    return replace(params, **values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class HumanFit:
    """The fitted parameters, their intervals, and the measures before and after."""

    parameters: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    targets: dict[str, float]
    notes: list[str] = field(default_factory=list)


def fit_occasion_noise(
    users: Sequence[DesignUser],
    statics: Sequence[FloatArray],
    params: ModelParams,
    *,
    target: float,
    seed: int = 0,
    index: npt.ArrayLike | None = None,
) -> float:
    """The per-occasion noise σ_O at which the simulated test-retest RMSE equals ``target``
    (the other parameters as in ``params``; common random numbers, so the RMSE grows with σ_O).
    """
    chosen = [int(k) for k in (np.arange(len(users)) if index is None else np.asarray(index))]

    def retest(sigma: float) -> float:
        trial = with_values(params, occasion_noise=sigma)
        first = [rate(users[i], statics[i], trial, seed=seed, occasion=0) for i in chosen]
        second = [rate(users[i], statics[i], trial, seed=seed, occasion=1) for i in chosen]
        return _retest_rmse(first, second)

    return _solve(retest, target, 0.0, 2.0)


def fit_anchoring_weight(
    users: Sequence[DesignUser],
    statics: Sequence[FloatArray],
    params: ModelParams,
    *,
    target: float,
    seed: int = 0,
    delta: float = 1.0,
    index: npt.ArrayLike | None = None,
) -> float:
    """The anchoring weight w at which the simulated rerate design's slope equals ``target``."""
    chosen = list(np.arange(len(users)) if index is None else np.asarray(index))
    subset = [users[i] for i in chosen]
    subset_statics = [statics[i] for i in chosen]

    def slope(weight: float) -> float:
        data = simulate(
            subset,
            subset_statics,
            with_values(params, anchoring_weight=weight),
            seed=seed,
            delta=delta,
        )
        return _anchoring_slope(data)

    return _solve(slope, target, 0.0, 1.0, steps=25)


def fit_human(
    users: Sequence[DesignUser],
    statics: Sequence[FloatArray],
    params: ModelParams,
    *,
    retest_target: float | None = None,
    slope_target: tuple[float, float] | None = None,
    bootstrap: int = 20,
    seed: int = 0,
    delta: float = 1.0,
) -> HumanFit:
    """Fit σ_O to the test-retest figure (default: the middle of Amatriain et al.'s range;
    interval: the σ_O at the range's ends, widened by a bootstrap over users of the fit) and,
    when a slope figure (value, standard error) is given, w to it (interval: the w at value ±
    1.96 SE, widened by the bootstrap). Without a slope figure w keeps its value and a note
    says why."""
    figure = HUMAN_FIGURES["retest_rmse"]
    assert figure.low is not None and figure.high is not None
    target = retest_target if retest_target is not None else 0.5 * (figure.low + figure.high)
    rng = np.random.default_rng(seed)
    samples = [rng.integers(0, len(users), len(users)) for _ in range(bootstrap)]

    def noise(value: float, index: npt.ArrayLike | None = None) -> float:
        return fit_occasion_noise(users, statics, params, target=value, seed=seed, index=index)

    sigma = noise(target)
    ends = [noise(figure.low), noise(figure.high)]
    boot = [noise(target, s) for s in samples]
    parameters = {"occasion_noise": sigma}
    intervals = {
        "occasion_noise": (
            min(ends + boot),
            max(ends + boot),
        )
    }
    targets = {"retest_rmse": target}
    notes = [
        f"occasion_noise fitted to a test-retest RMSE of {target:.3f} ({figure.paper}, "
        f"{figure.where}: {figure.low}-{figure.high}); interval: the σ_O at the range's ends "
        f"and {bootstrap} bootstrap resamples of users"
    ]
    fitted = with_values(params, occasion_noise=sigma)
    if slope_target is None:
        notes.append(  # only when the caller asks for no slope (see fit_human's callers)
            f"anchoring_weight kept at {params.anchoring_weight:g}: no published slope figure "
            "could be read (see HUMAN_FIGURES['anchoring_slope']); give one to fit it"
        )
    else:
        value, se = slope_target

        def weight(value: float, index: npt.ArrayLike | None = None) -> float:
            return fit_anchoring_weight(
                users, statics, fitted, target=value, seed=seed, delta=delta, index=index
            )

        w = weight(value)
        ends = [weight(value - 1.96 * se), weight(value + 1.96 * se)]
        boot = [weight(value, s) for s in samples]
        parameters["anchoring_weight"] = w
        intervals["anchoring_weight"] = (min(ends + boot), max(ends + boot))
        targets["anchoring_slope"] = value
        notes.append(
            f"anchoring_weight fitted to a slope of {value:g} (SE {se:g}); interval: the w at "
            f"±1.96 SE and {bootstrap} bootstrap resamples of users"
        )
    return HumanFit(parameters, intervals, targets, notes)
