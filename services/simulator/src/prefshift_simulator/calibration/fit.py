"""Fit the embedded persona's dynamics and noise to recorded behaviour: the method of
simulated moments (McFadden 1989; Pakes and Pollard 1989).

The estimate minimises ``Σ_k ((m̂_k(θ) − m_k) / se_k)²`` over a bounded box, where ``m_k`` are
the recorded moments (:mod:`.moments`, averaged over users), ``m̂_k(θ)`` the same moments of
the recorded pages replayed through the embedded persona with parameters ``θ``
(:mod:`.replay`, R replications of the per-occasion noise), and ``se_k`` the bootstrap standard
error of ``m_k`` over users (a diagonal weight matrix: the full covariance of ~100 moments
from ~100 users is too poorly estimated to invert). The replays use common random numbers —
the same draws for every ``θ`` — so the objective is a deterministic function of ``θ``; it is
piecewise constant (ratings are rounded), which rules out gradients: differential evolution
searches the box, Nelder–Mead polishes. Intervals: the fit repeated on bootstrap resamples of
users (moments and their simulated counterparts resampled together), each with fresh
simulation noise (so the interval covers the simulation's own error, the ``1 + 1/R`` of
simulated moments, too), started at the estimate; 2.5 and 97.5 percentiles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import optimize

from prefshift_simulator.calibration.moments import (
    MomentNames,
    aggregate,
    nanmean,
    per_user_moments,
)
from prefshift_simulator.calibration.replay import Draws, Prepared, draws, replay

FloatArray = npt.NDArray[np.float64]

#: What a calibration fits by default, and the box it searches. Satiation (α_S, ρ) and Δmax
#: stay at the starting set's values: with four pages, exposure and satiation both move the
#: offsets of the genres seen and lie on a ridge of the objective that these moments cannot
#: resolve (a recovery study put their bootstrap intervals along it, not across it).
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "exposure_rate": (0.0, 0.1),
    "reinforcement_rate": (0.0, 0.15),
    "lasting_noise": (0.0, 0.8),
    "occasion_noise": (0.0, 0.8),
    "drift_noise": (0.0, 0.5),
}
#: What a calibration fits only when asked (``prefshift persona calibrate --fit spread``): the
#: spread of the persona's ratings around its level, which trades fidelity to the real ratings
#: (best near 1) for a recorded persona's wider spread and steadier order.
OPTIONAL_BOUNDS: dict[str, tuple[float, float]] = {"spread": (0.5, 2.5)}
#: A moment whose standard error is smaller than this is weighted as if it were this.
MIN_STANDARD_ERROR = 0.005


@dataclass
class Calibration:
    """The estimate, its intervals and the moments before and after."""

    parameters: dict[str, float]
    fitted: list[str]
    intervals: dict[str, tuple[float, float]]
    labels: list[tuple[str, int, str]]
    recorded: FloatArray
    standard_errors: FloatArray
    before: FloatArray
    after: FloatArray
    objective_before: float
    objective_after: float
    users: int
    replications: int
    bootstrap: int
    evaluations: int = 0
    bootstrap_estimates: list[dict[str, float]] = field(default_factory=list)


class MomentObjective:
    """``θ ↦`` the weighted distance of simulated from recorded moments."""

    def __init__(
        self,
        prepared: Prepared,
        noise: Draws,
        *,
        start: Mapping[str, float],
        fitted: Sequence[str],
        standard_errors: FloatArray,
        recorded_per_user: FloatArray,
        unmatched: Sequence[str] = (),
    ) -> None:
        self.prepared = prepared
        self.noise = noise
        self.start = dict(start)
        self.fitted = list(fitted)
        self.recorded_per_user = recorded_per_user
        labels = MomentNames(arms=prepared.arms, pages=prepared.n_pages).labels
        matched = np.array([moment not in set(unmatched) for _, _, moment in labels])
        self.used = ~np.isnan(aggregate(recorded_per_user)) & matched
        self.scale = np.maximum(standard_errors, MIN_STANDARD_ERROR)
        self.evaluations = 0

    def parameters(self, theta: npt.ArrayLike) -> dict[str, float]:
        values = dict(self.start)
        values.update(
            {
                name: float(v)
                for name, v in zip(self.fitted, np.asarray(theta, dtype=np.float64), strict=True)
            }
        )
        return values

    def simulated_per_user(self, theta: npt.ArrayLike) -> FloatArray:
        self.evaluations += 1
        result = replay(self.prepared, self.noise, self.parameters(theta))
        moments = per_user_moments(result.baseline, result.test, result.shown, self.prepared.real)
        return nanmean(moments, axis=0)

    def distance(self, simulated: FloatArray, weights: FloatArray | None = None) -> float:
        gap = aggregate(simulated, weights) - aggregate(self.recorded_per_user, weights)
        gap = np.where(self.used, gap / self.scale, 0.0)
        return float(np.sum(np.nan_to_num(gap, nan=0.0) ** 2))

    def __call__(self, theta: npt.ArrayLike, weights: FloatArray | None = None) -> float:
        return self.distance(self.simulated_per_user(theta), weights)


def recorded_moments(prepared: Prepared) -> FloatArray:
    """The recorded moments of each user, ``(U, K)``."""
    return per_user_moments(
        prepared.baseline, prepared.test_recorded, prepared.shown_recorded, prepared.real
    )


def bootstrap_weights(n_users: int, n_resamples: int, seed: int) -> FloatArray:
    """How often each user is drawn in each resample, ``(B, U)``."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=n_resamples).astype(
        np.float64
    )


def calibrate(
    prepared: Prepared,
    *,
    start: Mapping[str, float],
    bounds: Mapping[str, tuple[float, float]] | None = None,
    replications: int = 2,
    bootstrap: int = 20,
    seed: int = 0,
    max_generations: int = 15,
    unmatched: Sequence[str] = (),
    on_step: Callable[[str], None] | None = None,
) -> Calibration:
    """Fit the parameters in ``bounds`` (the others stay at ``start``) to the recorded moments
    of ``prepared``, but for the moments named in ``unmatched`` (reported, given no weight);
    see the module docstring."""
    box = dict(DEFAULT_BOUNDS if bounds is None else bounds)
    fitted = list(box)
    recorded_per_user = recorded_moments(prepared)
    resamples = bootstrap_weights(prepared.n_users, max(bootstrap, 50), seed)
    spread = np.array([aggregate(recorded_per_user, w) for w in resamples])
    centred = spread - nanmean(spread, axis=0)
    standard_errors = np.sqrt(nanmean(centred**2, axis=0))
    objective = MomentObjective(
        prepared,
        draws(prepared, replications=replications),
        start=start,
        fitted=fitted,
        standard_errors=standard_errors,
        recorded_per_user=recorded_per_user,
        unmatched=unmatched,
    )
    theta_start = np.array([min(max(start[n], box[n][0]), box[n][1]) for n in fitted])
    before = objective.simulated_per_user(theta_start)
    searched = optimize.differential_evolution(
        objective,
        bounds=[box[n] for n in fitted],
        maxiter=max_generations,
        popsize=5,
        seed=seed,
        polish=False,
        init="sobol",
        x0=theta_start,
        tol=1e-3,
        callback=(lambda *_args, **_kw: on_step("search")) if on_step else None,
    )
    polished = optimize.minimize(
        objective,
        searched.x,
        method="Nelder-Mead",
        bounds=[box[n] for n in fitted],
        options={"maxfev": 100, "xatol": 1e-3, "fatol": 1e-3},
    )
    theta = polished.x if polished.fun <= searched.fun else searched.x
    after = objective.simulated_per_user(theta)

    # each resample's fit starts from a simplex around the estimate a tenth of the box wide,
    # so that it can leave the estimate's flat step of the objective
    lows = np.array([box[n][0] for n in fitted])
    highs = np.array([box[n][1] for n in fitted])
    simplex = np.vstack([theta, theta + 0.1 * np.diag(highs - lows)])
    simplex = np.where(simplex > highs, 2 * theta - simplex, simplex).clip(lows, highs)
    estimates: list[dict[str, float]] = []
    sum_bootstrap_evaluations = 0
    for index, weights in enumerate(resamples[:bootstrap]):
        # a resample of users, and fresh simulation noise: the interval holds both sources
        resampled = MomentObjective(
            prepared,
            draws(prepared, replications=replications, salt=index + 1),
            start=start,
            fitted=fitted,
            standard_errors=standard_errors,
            recorded_per_user=recorded_per_user,
            unmatched=unmatched,
        )
        refit = optimize.minimize(
            lambda t, w=weights, f=resampled: f(t, w),
            theta,
            method="Nelder-Mead",
            bounds=list(zip(lows, highs, strict=True)),
            options={"maxfev": 60, "xatol": 1e-3, "fatol": 1e-3, "initial_simplex": simplex},
        )
        sum_bootstrap_evaluations += resampled.evaluations
        estimates.append(dict(zip(fitted, map(float, refit.x), strict=True)))
        if on_step:
            on_step("bootstrap")
    intervals = (
        {
            name: (
                float(np.percentile([e[name] for e in estimates], 2.5)),
                float(np.percentile([e[name] for e in estimates], 97.5)),
            )
            for name in fitted
        }
        if estimates
        else {}
    )
    names = MomentNames(arms=prepared.arms, pages=prepared.n_pages)
    return Calibration(
        parameters=objective.parameters(theta),
        fitted=fitted,
        intervals=intervals,
        labels=names.labels,
        recorded=aggregate(recorded_per_user),
        standard_errors=standard_errors,
        before=aggregate(before),
        after=aggregate(after),
        objective_before=objective.distance(before),
        objective_after=objective.distance(after),
        users=prepared.n_users,
        replications=replications,
        bootstrap=len(estimates),
        evaluations=objective.evaluations + sum_bootstrap_evaluations,
        bootstrap_estimates=estimates,
    )
