"""The rating blocks of a persona's history are cached between calls (issue 24): the
similarities are the same as computed afresh, the cache is bounded and never altered."""

from __future__ import annotations

import numpy as np

from prefshift_simulator.embedded import collaborative
from prefshift_simulator.embedded.collaborative import CollaborativeStats


def _fresh(stats: CollaborativeStats, targets: np.ndarray, history: np.ndarray) -> np.ndarray:
    """The similarity as computed before the cache: dense, by definition."""
    centred = stats.by_user.toarray()
    seen = _stored(stats)  # explicit zeros (a rating at its rater's mean) count as seen
    result = np.zeros((len(targets), len(history)))
    for i, t in enumerate(targets):
        for j, h in enumerate(history):
            if t < 0 or h < 0:
                continue
            dot = float(centred[:, t] @ centred[:, h])
            co = float(seen[:, t].astype(float) @ seen[:, h].astype(float))
            norm = np.sqrt(
                float(centred[:, t] @ centred[:, t]) * float(centred[:, h] @ centred[:, h])
            )
            cosine = dot / norm if norm > 1e-12 else 0.0
            result[i, j] = cosine * co / (co + collaborative.SIMILARITY_SHRINK)
    return result


def _stored(stats: CollaborativeStats) -> np.ndarray:
    pattern = stats.by_user.copy()
    pattern.data[:] = 1.0
    return pattern.toarray() > 0


def test_cached_history_blocks_give_the_same_similarities() -> None:
    rng = np.random.default_rng(3)
    users = np.repeat(np.arange(40), 12)
    items = rng.integers(100, 130, size=len(users))
    ratings = rng.choice(np.arange(0.5, 5.5, 0.5), size=len(users))
    stats = CollaborativeStats(dataset="d", user_ids=users, tmdb_ids=items, ratings=ratings)
    history = stats.columns([100, 101, 102, 999, 103])
    for _ in range(3):  # the second and third calls read the cached blocks
        for targets in ([104, 105, 998], [106, 100]):
            columns = stats.columns(targets)
            got = stats.similarity(columns, history, exclude_user=None)
            np.testing.assert_allclose(got, _fresh(stats, columns, history), atol=1e-12)
    assert len(stats._history) == 1
    for n in range(collaborative.HISTORY_CACHE + 5):
        stats.similarity(
            stats.columns([104]), stats.columns([100 + n % 30, 101 + n % 29, n]), exclude_user=None
        )
    assert len(stats._history) <= collaborative.HISTORY_CACHE
