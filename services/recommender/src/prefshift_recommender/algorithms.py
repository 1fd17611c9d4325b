"""The scoring algorithms behind the recommenders: pure NumPy/SciPy and ``implicit``, no I/O.

Every scorer learns from a users × items matrix of *ratings* (0.5–5.0; the item axis is a
dataset's TMDB ids) and scores new users from their rating rows alone (cold start): the service
never refits to serve a request. How ratings become implicit-feedback confidence is in
:func:`confidence` (and docs/recommender.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

FloatArray = NDArray[np.float32]
Progress = Callable[[float], None]


def limit_blas_threads() -> None:
    """Keep BLAS single-threaded: ``implicit`` parallelises itself, and a BLAS thread pool on top
    of it makes ALS many times slower (``implicit`` warns about it).

    Call it from the main thread at startup: it first loads every BLAS the scorers use (SciPy's
    OpenBLAS comes in with ``implicit``), because a limit set from a worker thread does not reach
    a library loaded there."""
    import implicit.cpu.als
    import implicit.cpu.bpr
    import implicit.nearest_neighbours  # noqa: F401
    import scipy.linalg  # noqa: F401

    threadpool_limits(1, "blas")


def confidence(ratings: FloatArray, *, alpha: float, neutral: float) -> FloatArray:
    """Implicit-feedback confidence from explicit ratings.

    A rating says the user watched the movie (positive preference, as in Hu, Koren and Volinsky
    2008) and how much they liked it: confidence grows linearly with the rating above a floor,
    ``alpha * (1 + max(r - neutral, 0))``; a 5.0 counts about three times a rating at or below
    ``neutral``. Every rated movie stays a positive: on MovieLens, that a user chose to watch a
    movie predicts what else they will rate far better than the rating itself.
    """
    weights: FloatArray = (alpha * (1.0 + np.maximum(ratings - neutral, 0.0))).astype(np.float32)
    return weights


def rating_rows(matrix: sp.csr_matrix, transform: Callable[[FloatArray], FloatArray]) -> Any:
    """A copy of a ratings CSR with ``transform`` applied to the stored ratings."""
    out = matrix.copy()
    out.data = transform(np.asarray(matrix.data, dtype=np.float32))
    return out.astype(np.float32)


class ItemScorer(Protocol):
    """What every collaborative or baseline algorithm provides."""

    name: ClassVar[str]

    def fit(self, ratings: sp.csr_matrix, *, progress: Progress) -> None:
        """Learn from a users × items ratings matrix."""

    def score(self, histories: sp.csr_matrix, *, seed: int = 0) -> FloatArray:
        """Scores (rows × items) for users given only their rating rows (cold start)."""

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The learned state, as arrays for ``np.savez``."""

    def restore(self, arrays: Mapping[str, NDArray[Any]]) -> None:
        """Take back the state :meth:`arrays` gave."""


@dataclass
class AlsScorer:
    """Implicit ALS (Hu, Koren, Volinsky 2008; conjugate-gradient solver, Takács et al. 2011).
    Cold start: ``recalculate_user`` solves the user's least-squares problem against the fixed
    item factors, exactly the user step of training."""

    name: ClassVar[str] = "als"
    factors: int = 32
    regularization: float = 1.0
    alpha: float = 1.0
    neutral: float = 3.0
    iterations: int = 15
    random_state: int = 42
    num_threads: int = 0

    def __post_init__(self) -> None:
        self._model: Any = None

    def _confidence(self, ratings: FloatArray) -> FloatArray:
        return confidence(ratings, alpha=self.alpha, neutral=self.neutral)

    def _new_model(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        limit_blas_threads()
        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=1.0,
            iterations=self.iterations,
            random_state=self.random_state,
            num_threads=self.num_threads,
        )

    def fit(self, ratings: sp.csr_matrix, *, progress: Progress) -> None:
        model = self._new_model()

        def on_iteration(iteration: int, _elapsed: float, _loss: Any) -> None:
            progress((iteration + 1) / self.iterations)

        model.fit(
            rating_rows(ratings, self._confidence), show_progress=False, callback=on_iteration
        )
        # The user factors are not needed to serve (users are folded in); drop them to save RAM.
        model.user_factors = np.zeros((0, self.factors), dtype=np.float32)
        model.num_threads = 1  # serving folds in one user: OpenMP threads only add latency
        self._model = model

    def score(self, histories: sp.csr_matrix, *, seed: int = 0) -> FloatArray:
        users = np.arange(histories.shape[0])
        weighted = rating_rows(histories, self._confidence)
        user_factors = self._model.recalculate_user(users, weighted)
        return np.asarray(user_factors @ self._model.item_factors.T, dtype=np.float32)

    def arrays(self) -> dict[str, NDArray[Any]]:
        return {"item_factors": self._model.item_factors}

    def restore(self, arrays: Mapping[str, NDArray[Any]]) -> None:
        model = self._new_model()
        model.item_factors = np.ascontiguousarray(arrays["item_factors"], dtype=np.float32)
        model.user_factors = np.zeros((0, self.factors), dtype=np.float32)
        model.num_threads = 1
        self._model = model


@dataclass
class BprScorer:
    """Bayesian Personalised Ranking (Rendle et al. 2009) trained by ``implicit`` on the movies a
    user rated at least ``min_rating``. Cold start folds the user in under the same BPR objective:
    gradient ascent on the user vector alone (item factors and biases fixed) over all pairs of a
    liked history movie and a fixed sample of other movies."""

    name: ClassVar[str] = "bpr"
    factors: int = 64
    learning_rate: float = 0.01
    regularization: float = 0.01
    iterations: int = 50
    min_rating: float = 4.0
    random_state: int = 42
    num_threads: int = 0
    fold_in_steps: int = 60
    fold_in_negatives: int = 256
    fold_in_rate: float = 0.5
    fold_in_regularization: float = 0.01

    def __post_init__(self) -> None:
        self.item_factors: FloatArray = np.zeros((0, self.factors), dtype=np.float32)
        self.item_bias: FloatArray = np.zeros(0, dtype=np.float32)

    def fit(self, ratings: sp.csr_matrix, *, progress: Progress) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        limit_blas_threads()
        model = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            random_state=self.random_state,
            num_threads=self.num_threads,
        )
        liked = ratings.copy()
        liked.data = (liked.data >= self.min_rating).astype(np.float32)
        liked.eliminate_zeros()

        def on_epoch(epoch: int, *_stats: Any) -> None:
            progress((epoch + 1) / self.iterations)

        model.fit(liked.tocsr(), show_progress=False, callback=on_epoch)
        # implicit keeps the item bias as the last factor (users carry a constant 1 there).
        factors = np.asarray(model.item_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(factors[:, :-1])
        self.item_bias = np.ascontiguousarray(factors[:, -1])

    def _fold_in(self, liked: NDArray[np.int64], rng: np.random.Generator) -> FloatArray:
        n_items = self.item_factors.shape[0]
        user = np.zeros(self.factors, dtype=np.float32)
        if liked.size == 0:
            return user
        negatives = rng.integers(0, n_items, size=self.fold_in_negatives)
        negatives = negatives[~np.isin(negatives, liked)]
        pos_f, neg_f = self.item_factors[liked], self.item_factors[negatives]
        pos_b, neg_b = self.item_bias[liked], self.item_bias[negatives]
        pairs = float(liked.size * max(negatives.size, 1))
        for _ in range(self.fold_in_steps):
            margin = (pos_f @ user + pos_b)[:, None] - (neg_f @ user + neg_b)[None, :]
            weight = 1.0 / (1.0 + np.exp(np.clip(margin, -30, 30)))  # sigmoid(-margin)
            gradient = weight.sum(axis=1) @ pos_f - weight.sum(axis=0) @ neg_f
            user += self.fold_in_rate * (
                gradient / pairs * self.factors - self.fold_in_regularization * user
            )
        return user

    def score(self, histories: sp.csr_matrix, *, seed: int = 0) -> FloatArray:
        rows = histories.shape[0]
        users = np.zeros((rows, self.factors), dtype=np.float32)
        for row in range(rows):
            start, end = histories.indptr[row], histories.indptr[row + 1]
            items = histories.indices[start:end]
            liked = items[histories.data[start:end] >= self.min_rating].astype(np.int64)
            # A fixed seed per history: the same history always gets the same page.
            rng = np.random.default_rng([self.random_state, int(liked.sum()), liked.size])
            users[row] = self._fold_in(liked, rng)
        return np.asarray(users @ self.item_factors.T + self.item_bias[None, :], dtype=np.float32)

    def arrays(self) -> dict[str, NDArray[Any]]:
        return {"item_factors": self.item_factors, "item_bias": self.item_bias}

    def restore(self, arrays: Mapping[str, NDArray[Any]]) -> None:
        self.item_factors = np.ascontiguousarray(arrays["item_factors"], dtype=np.float32)
        self.item_bias = np.ascontiguousarray(arrays["item_bias"], dtype=np.float32)


@dataclass
class ItemKnnScorer:
    """Item-based k-nearest neighbours (Sarwar et al. 2001; Deshpande and Karypis 2004): cosine
    similarity of items over BM25-weighted rating confidence, ``k`` neighbours per item. A user's
    score for a movie is the similarity-weighted sum of their history, which needs no fold-in."""

    name: ClassVar[str] = "item-knn"
    k: int = 200
    alpha: float = 10.0
    neutral: float = 3.0
    k1: float = 1.2
    b: float = 0.75
    num_threads: int = 0

    def __post_init__(self) -> None:
        self.similarity: Any = sp.csr_matrix((0, 0), dtype=np.float32)

    def _confidence(self, ratings: FloatArray) -> FloatArray:
        return confidence(ratings, alpha=self.alpha, neutral=self.neutral)

    def fit(self, ratings: sp.csr_matrix, *, progress: Progress) -> None:
        from implicit.nearest_neighbours import all_pairs_knn, bm25_weight

        limit_blas_threads()
        weighted = bm25_weight(rating_rows(ratings, self._confidence).T, K1=self.k1, B=self.b)
        similarity = all_pairs_knn(
            weighted.T.tocsr(), self.k, num_threads=self.num_threads, show_progress=False
        )
        self.similarity = similarity.astype(np.float32).tocsr()
        progress(1.0)

    def score(self, histories: sp.csr_matrix, *, seed: int = 0) -> FloatArray:
        weighted = rating_rows(histories, self._confidence)
        return np.asarray((weighted @ self.similarity).toarray(), dtype=np.float32)

    def arrays(self) -> dict[str, NDArray[Any]]:
        sim = self.similarity
        return {
            "sim_data": sim.data,
            "sim_indices": sim.indices,
            "sim_indptr": sim.indptr,
            "sim_shape": np.asarray(sim.shape, dtype=np.int64),
        }

    def restore(self, arrays: Mapping[str, NDArray[Any]]) -> None:
        shape = tuple(int(v) for v in arrays["sim_shape"])
        self.similarity = sp.csr_matrix(
            (arrays["sim_data"], arrays["sim_indices"], arrays["sim_indptr"]), shape=shape
        )


@dataclass
class PopularityScorer:
    """Most-rated movies first (ties broken by mean rating): the non-personalised baseline."""

    name: ClassVar[str] = "popularity"

    def __post_init__(self) -> None:
        self.popularity: FloatArray = np.zeros(0, dtype=np.float32)

    def fit(self, ratings: sp.csr_matrix, *, progress: Progress) -> None:
        counts = np.bincount(ratings.indices, minlength=ratings.shape[1]).astype(np.float64)
        sums = np.bincount(ratings.indices, weights=ratings.data, minlength=ratings.shape[1])
        mean = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        self.popularity = (counts + mean / 10.0).astype(np.float32)
        progress(1.0)

    def score(self, histories: sp.csr_matrix, *, seed: int = 0) -> FloatArray:
        return np.repeat(self.popularity[None, :], histories.shape[0], axis=0)

    def arrays(self) -> dict[str, NDArray[Any]]:
        return {"popularity": self.popularity}

    def restore(self, arrays: Mapping[str, NDArray[Any]]) -> None:
        self.popularity = np.asarray(arrays["popularity"], dtype=np.float32)


@dataclass
class RandomScorer:
    """Uniformly random movies of the catalogue, reproducible from the request's seed."""

    name: ClassVar[str] = "random"

    def __post_init__(self) -> None:
        self.n_items = 0

    def fit(self, ratings: sp.csr_matrix, *, progress: Progress) -> None:
        self.n_items = ratings.shape[1]
        progress(1.0)

    def score(self, histories: sp.csr_matrix, *, seed: int = 0) -> FloatArray:
        rng = np.random.default_rng(seed)
        return rng.random((histories.shape[0], self.n_items), dtype=np.float32)

    def arrays(self) -> dict[str, NDArray[Any]]:
        return {"n_items": np.asarray([self.n_items], dtype=np.int64)}

    def restore(self, arrays: Mapping[str, NDArray[Any]]) -> None:
        self.n_items = int(arrays["n_items"][0])


#: name → scorer class; parameters are the dataclass fields.
SCORERS: dict[
    str, type[AlsScorer | BprScorer | ItemKnnScorer | PopularityScorer | RandomScorer]
] = {cls.name: cls for cls in (AlsScorer, BprScorer, ItemKnnScorer, PopularityScorer, RandomScorer)}


def make_scorer(name: str, params: Mapping[str, Any] | None = None) -> ItemScorer:
    """A scorer of that name with those parameters (unknown parameters raise ``TypeError``)."""
    return SCORERS[name](**dict(params or {}))


def scorer_params(scorer: ItemScorer) -> dict[str, Any]:
    """The parameters a scorer was built with (what a model version is derived from)."""
    from dataclasses import asdict, is_dataclass

    assert is_dataclass(scorer)
    return {k: v for k, v in asdict(scorer).items() if k != "num_threads"}


def top_n(scores: FloatArray, n: int, blocked: NDArray[np.int64]) -> NDArray[np.int64]:
    """Indices of the ``n`` best scores, best first, never one of ``blocked``."""
    scores = scores.astype(np.float32, copy=True)
    scores[blocked] = -np.inf
    available = scores.size - np.unique(blocked).size
    n = min(n, available)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    candidates = np.argpartition(-scores, n - 1)[:n] if n < scores.size else np.arange(scores.size)
    order = np.argsort(-scores[candidates], kind="stable")
    chosen = candidates[order]
    return chosen[np.isfinite(scores[chosen])].astype(np.int64)
