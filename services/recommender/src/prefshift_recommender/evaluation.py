"""Offline evaluation of the scorers: a seeded per-user hold-out, recall@k and nDCG@k.

Each user with enough ratings keeps a random ``test_fraction`` of them aside; the scorers learn
from the rest and rank every movie the user has not rated in training, through the same cold-start
path the service uses for a request. A held-out movie is *relevant* when the user rated it at least
``relevant_rating``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from prefshift_recommender.algorithms import ItemScorer, top_n


@dataclass(frozen=True)
class HoldOut:
    """A train/test split of one ratings matrix (same shape, disjoint entries)."""

    train: sp.csr_matrix
    test: sp.csr_matrix


def split_per_user(
    ratings: sp.csr_matrix, *, seed: int, test_fraction: float = 0.2, min_ratings: int = 5
) -> HoldOut:
    """Hold out ``test_fraction`` of each user's ratings (users with ``min_ratings`` or more)."""
    rng = np.random.default_rng(seed)
    coo = ratings.tocoo()
    counts = np.diff(ratings.indptr)
    in_test = np.zeros(coo.nnz, dtype=bool)
    for user in np.flatnonzero(counts >= min_ratings):
        start, end = ratings.indptr[user], ratings.indptr[user + 1]
        n_test = max(1, round((end - start) * test_fraction))
        in_test[start + rng.choice(end - start, size=n_test, replace=False)] = True
    # tocoo() of a canonical CSR keeps CSR order, so positions line up with indptr.
    shape = ratings.shape

    def part(mask: NDArray[np.bool_]) -> sp.csr_matrix:
        return sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=shape)

    return HoldOut(train=part(~in_test), test=part(in_test))


@dataclass
class Metrics:
    """Mean recall@k and nDCG@k over evaluated users."""

    users: int = 0
    recall: dict[int, float] = field(default_factory=dict)
    ndcg: dict[int, float] = field(default_factory=dict)


def evaluate(
    scorer: ItemScorer,
    split: HoldOut,
    *,
    ks: Sequence[int] = (10, 30),
    relevant_rating: float = 4.0,
    batch_size: int = 256,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> Metrics:
    """Recall@k (hits over min(k, relevant), as in Liang et al. 2018) and binary nDCG@k."""
    k_max = max(ks)
    relevant = split.test.copy()
    relevant.data = (relevant.data >= relevant_rating).astype(np.float32)
    relevant.eliminate_zeros()
    users = np.flatnonzero((np.diff(relevant.indptr) > 0) & (np.diff(split.train.indptr) > 0))
    discounts = 1.0 / np.log2(np.arange(2, k_max + 2))
    recall_sum = dict.fromkeys(ks, 0.0)
    ndcg_sum = dict.fromkeys(ks, 0.0)
    for offset in range(0, users.size, batch_size):
        batch = users[offset : offset + batch_size]
        scores = scorer.score(split.train[batch], seed=seed + offset)
        for row, user in enumerate(batch):
            seen = split.train.indices[split.train.indptr[user] : split.train.indptr[user + 1]]
            ranked = top_n(scores[row], k_max, seen.astype(np.int64))
            truth = relevant.indices[relevant.indptr[user] : relevant.indptr[user + 1]]
            hits = np.isin(ranked, truth).astype(np.float64)
            for k in ks:
                top = hits[:k]
                recall_sum[k] += top.sum() / min(k, truth.size)
                ideal = discounts[: min(k, truth.size)].sum()
                ndcg_sum[k] += float(top @ discounts[: top.size]) / ideal
        if progress is not None:
            progress(min(1.0, (offset + batch.size) / max(users.size, 1)))
    count = max(users.size, 1)
    return Metrics(
        users=int(users.size),
        recall={k: recall_sum[k] / count for k in ks},
        ndcg={k: ndcg_sum[k] / count for k in ks},
    )


@dataclass
class EvaluationRow:
    """One implementation's result in an offline evaluation."""

    name: str
    metrics: Metrics
    fit_seconds: float


def evaluate_dataset(
    database_url: str,
    dataset_name: str,
    *,
    implementations: Sequence[str],
    ks: Sequence[int] = (10, 30),
    seed: int = 0,
    test_fraction: float = 0.2,
    relevant_rating: float = 4.0,
    params: dict[str, dict[str, float]] | None = None,
    on_result: Callable[[EvaluationRow], None] | None = None,
) -> list[EvaluationRow]:
    """Hold out each user's ratings (seeded), train every implementation on the rest with its
    default parameters (or ``params[name]``), and score the held-out movies. Blocking: for the
    CLI and tests."""
    import time

    from prefshift_common.db import sync_connection
    from prefshift_recommender import repository
    from prefshift_recommender.algorithms import limit_blas_threads, make_scorer
    from prefshift_recommender.artifacts import build_matrix

    limit_blas_threads()
    with sync_connection(database_url) as connection:
        dataset_id = repository.dataset_id(connection, dataset_name)
        arrays = repository.load_rating_arrays(connection, dataset_id)
    matrix = build_matrix(arrays)
    split = split_per_user(matrix.ratings, seed=seed, test_fraction=test_fraction)
    rows = []
    for name in implementations:
        scorer = make_scorer(name, (params or {}).get(name))
        started = time.perf_counter()
        scorer.fit(split.train, progress=lambda _fraction: None)
        fit_seconds = time.perf_counter() - started
        metrics = evaluate(scorer, split, ks=ks, relevant_rating=relevant_rating, seed=seed)
        row = EvaluationRow(name=name, metrics=metrics, fit_seconds=fit_seconds)
        rows.append(row)
        if on_result is not None:
            on_result(row)
    return rows
