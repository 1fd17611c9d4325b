"""Fidelity of a persona's first ratings on a recorded study's own split, with intervals.

Per user, the test movies the recorded persona never saw among its persona movies (a test
movie that is also a persona movie is left out, and out of the embedded persona's history, so
no test movie's own rating reaches it); the embedded persona's baseline ratings of them and the
recorded persona's are compared with the user's real ratings on the same pairs. RMSE, MAE and
Pearson r are pooled over every pair; the intervals are percentile bootstrap intervals over
users (the unit that was sampled), and each predictor's difference from the reference is
resampled paired, on the same users.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prefshift_simulator.calibration.recorded import RecordedUser
from prefshift_simulator.embedded.collaborative import CollaborativeStats
from prefshift_simulator.embedded.model import EmbeddedPersonaModel
from prefshift_simulator.metadata import MovieFacts

FloatArray = npt.NDArray[np.float64]
METRICS = ("rmse", "mae", "bias", "pearson", "pearson_within")


@dataclass(frozen=True)
class UnseenPairs:
    """One user's never-seen test movies with the real and the recorded first ratings."""

    user_id: int
    history: list[tuple[int, float]]
    items: list[int]
    real: FloatArray
    recorded: FloatArray


@dataclass(frozen=True)
class FidelityRow:
    """A predictor's pooled metrics, their intervals, and its difference from the reference."""

    name: str
    pairs: int
    values: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    difference: dict[str, float]
    difference_intervals: dict[str, tuple[float, float]]


def unseen_pairs(users: Sequence[RecordedUser]) -> list[UnseenPairs]:
    """Each user's test movies not among its persona movies that have both a real and a
    recorded first rating."""
    result: list[UnseenPairs] = []
    for user in users:
        test = list(dict.fromkeys(user.test))
        seen = {t for t, _ in user.history}
        items = [t for t in test if t not in seen and t in user.real and t in user.baseline]
        if not items:
            continue
        result.append(
            _pairs(user, items, [user.real[t] for t in items], [user.baseline[t] for t in items])
        )
    return result


def _pairs(
    user: RecordedUser, items: list[int], real: Sequence[float], recorded: Sequence[float]
) -> UnseenPairs:
    """A user's pairs, with the persona movies that are not test movies as the history (no
    test movie's own rating reaches the persona)."""
    test = set(user.test)
    return UnseenPairs(
        user_id=user.user_id,
        history=[(t, r) for t, r in user.history if t not in test],
        items=items,
        real=np.array(real, dtype=np.float64),
        recorded=np.array(recorded, dtype=np.float64),
    )


def recommended_pairs(
    users: Sequence[RecordedUser], known: Mapping[int, Mapping[int, float]]
) -> list[UnseenPairs]:
    """Each user's recommended movies that the user really rated (``known[user_id]``: the
    user's ratings in the dataset) and that are neither persona nor test movies, with the
    recorded persona's rating of each on the first page that showed it (earliest page, arms in
    name order); the history is the persona movies that are not test movies, as in
    :func:`unseen_pairs`. A recommender's choice is not a random draw of the user's movies:
    these pairs say how a persona rates what recommenders show, the experiences that drive its
    dynamics."""
    result: list[UnseenPairs] = []
    for user in users:
        rated = known.get(user.user_id, {})
        excluded = set(user.test) | {t for t, _ in user.history}
        first: dict[int, tuple[int, str, float]] = {}
        for arm, pages in user.arms.items():
            for number, page in enumerate(pages, start=1):
                for tmdb_id, rating in page.experience_ratings.items():
                    if tmdb_id in excluded or tmdb_id not in rated:
                        continue
                    key = (number, arm, rating)
                    if tmdb_id not in first or key[:2] < first[tmdb_id][:2]:
                        first[tmdb_id] = key
        if not first:
            continue
        items = sorted(first)
        result.append(_pairs(user, items, [rated[t] for t in items], [first[t][2] for t in items]))
    return result


def embedded_ratings(
    pairs: Sequence[UnseenPairs],
    *,
    model: EmbeddedPersonaModel,
    facts: Mapping[int, MovieFacts],
    stats: CollaborativeStats | None,
    seed: int,
) -> list[FloatArray]:
    """The embedded persona's baseline ratings (occasion 0) of each user's pairs."""
    return [
        np.array(
            [
                p.rating
                for p in model.predict(
                    user_id=user.user_id,
                    history=user.history,
                    experiences=[],
                    items=user.items,
                    facts=facts,
                    stats=stats,
                    seed=seed,
                    occasion=0,
                )
            ]
        )
        for user in pairs
    ]


def _pearson(a: FloatArray, b: FloatArray) -> float:
    if np.std(a) == 0 or np.std(b) == 0:  # undefined (a constant, or a tiny resample)
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _metrics(
    predicted: FloatArray,
    real: FloatArray,
    predicted_centred: FloatArray,
    real_centred: FloatArray,
) -> FloatArray:
    """RMSE, MAE, the mean error (predicted − real), Pearson r, and Pearson r of the ratings
    centred on each user's own mean (``*_centred``)."""
    error = predicted - real
    return np.array(
        [
            float(np.sqrt(np.mean(error**2))),
            float(np.mean(np.abs(error))),
            float(np.mean(error)),
            _pearson(predicted, real),
            _pearson(predicted_centred, real_centred),
        ]
    )


def fidelity_table(
    real: Sequence[FloatArray],
    predictors: Mapping[str, Sequence[FloatArray]],
    *,
    reference: str,
    resamples: int = 1000,
    seed: int = 0,
) -> list[FidelityRow]:
    """Pooled RMSE, MAE, mean error and Pearson r of each predictor (per-user arrays aligned with
    ``real``), and Pearson r within users (of each user's ratings minus that user's mean, then
    pooled: how well a user's movies are put in order, whatever their level), with 95%
    percentile intervals from resampling users, and each one's paired difference from
    ``reference``."""
    n_users = len(real)
    rng = np.random.default_rng(seed)
    samples = [rng.integers(0, n_users, n_users) for _ in range(resamples)]

    def pooled(values: Sequence[FloatArray], users: npt.ArrayLike) -> FloatArray:
        return np.concatenate([values[i] for i in np.asarray(users)])

    def centred(values: Sequence[FloatArray]) -> list[FloatArray]:
        return [v - v.mean() for v in values]

    real_centred = centred(real)

    def statistics(predicted: Sequence[FloatArray]) -> tuple[FloatArray, FloatArray]:
        predicted_centred = centred(predicted)

        def metrics(users: npt.ArrayLike) -> FloatArray:
            return _metrics(
                pooled(predicted, users),
                pooled(real, users),
                pooled(predicted_centred, users),
                pooled(real_centred, users),
            )

        return metrics(np.arange(n_users)), np.array([metrics(s) for s in samples])

    computed = {name: statistics(values) for name, values in predictors.items()}
    ref_point, ref_boot = computed[reference]
    rows: list[FidelityRow] = []
    for name, (point, boot) in computed.items():
        diff_point, diff_boot = point - ref_point, boot - ref_boot

        def interval(b: FloatArray, k: int) -> tuple[float, float]:
            if np.isnan(b[:, k]).all():  # r of a constant predictor in every resample
                return math.nan, math.nan
            low, high = np.nanpercentile(b[:, k], [2.5, 97.5])
            return float(low), float(high)

        rows.append(
            FidelityRow(
                name=name,
                pairs=int(sum(len(r) for r in real)),
                values={m: float(point[k]) for k, m in enumerate(METRICS)},
                intervals={m: interval(boot, k) for k, m in enumerate(METRICS)},
                difference={m: float(diff_point[k]) for k, m in enumerate(METRICS)},
                difference_intervals={m: interval(diff_boot, k) for k, m in enumerate(METRICS)},
            )
        )
    return rows
