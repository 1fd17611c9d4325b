"""Percentile-bootstrap intervals over users, the unit every prefshift interval resamples
(never ratings): of a mean of per-user values, of many columns at once, and of a statistic
pooled over many users' rows (a slope, an RMSE, a share). Seeded: the same inputs and seed give
the same interval. Used by the orchestrator's statistics and reports and by the re-rating
measures (:mod:`prefshift_common.rerating`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

#: Bootstrap intervals need at least this many users.
MIN_BOOTSTRAP_USERS = 2


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
    low, high = bootstrap_columns(
        sample[:, None], confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    return float(low[0]), float(high[0])


def bootstrap_columns(
    matrix: np.ndarray, *, confidence: float, n_resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap intervals of the column means of a users × cells matrix (no NaN).

    One resampling of the users serves every column: each resample is a multinomial count of
    how often each user is drawn, and the resampled means are counts @ matrix / n.
    """
    n_users, n_columns = matrix.shape
    rng = np.random.default_rng(seed)
    means = np.empty((n_resamples, n_columns))
    # Chunks keep the counts matrix small for large cohorts.
    chunk = max(1, 4_000_000 // max(n_users, n_columns))
    uniform = np.full(n_users, 1.0 / n_users)
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        counts = rng.multinomial(n_users, uniform, size=stop - start).astype(float)
        means[start:stop] = counts @ matrix / n_users
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    return low, high


def bootstrap_users(
    user_of_row: Sequence[int] | np.ndarray,
    statistic: Callable[[np.ndarray], float | None],
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of a statistic pooled over rows of many users (a slope,
    an RMSE, a share), resampling users: each resample draws the users with replacement (a
    multinomial count per user, as :func:`bootstrap_interval`) and ``statistic`` gets each
    row's weight (its user's count). None with fewer than 2 users or no defined resample."""
    users, index = np.unique(np.asarray(user_of_row), return_inverse=True)
    if users.size < MIN_BOOTSTRAP_USERS:
        return None
    rng = np.random.default_rng(seed)
    uniform = np.full(users.size, 1.0 / users.size)
    values = []
    for counts in rng.multinomial(users.size, uniform, size=n_resamples):
        value = statistic(counts[index].astype(float))
        if value is not None and not math.isnan(value):
            values.append(value)
    if not values:
        return None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(np.array(values), [alpha, 1.0 - alpha])
    return float(low), float(high)
