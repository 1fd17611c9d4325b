"""Bag-of-words vectors of movie overviews, for content similarity between movies.

A hashing vectoriser needs no fitted vocabulary, so movies outside any dataset (an LLM can
recommend a 2024 film) are encoded like the rest; vectors are cached per TMDB id.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from prefshift_simulator.metadata import MovieFacts

N_FEATURES = 2**18
IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


class ContentEncoder:
    """L2-normalised binary word vectors (English stop words removed) of overviews."""

    def __init__(self, *, cache_size: int = 100_000) -> None:
        self._vectoriser = HashingVectorizer(
            n_features=N_FEATURES,
            stop_words="english",
            alternate_sign=False,
            binary=True,
            norm="l2",
        )
        # per movie: the column indices and values of its (one-row) vector
        self._cache: OrderedDict[int, tuple[IntArray, FloatArray]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def encode(self, movies: Sequence[MovieFacts]) -> sparse.csr_matrix:
        """One row per movie (an empty row for a movie without overview)."""
        rows: list[tuple[IntArray, FloatArray] | None] = []
        missing: list[int] = []
        with self._lock:
            for position, movie in enumerate(movies):
                cached = self._cache.get(movie.tmdb_id)
                if cached is not None:
                    self._cache.move_to_end(movie.tmdb_id)
                else:
                    missing.append(position)
                rows.append(cached)
        if missing:
            fresh = self._vectoriser.transform([movies[i].overview for i in missing]).tocsr()
            with self._lock:
                for offset, position in enumerate(missing):
                    begin, end = fresh.indptr[offset], fresh.indptr[offset + 1]
                    row = (fresh.indices[begin:end].copy(), fresh.data[begin:end].copy())
                    rows[position] = row
                    self._cache[movies[position].tmdb_id] = row
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        complete = [row for row in rows if row is not None]
        lengths = np.array([len(indices) for indices, _ in complete], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.concatenate([i for i, _ in complete]) if complete else np.zeros(0, np.int32)
        data = np.concatenate([d for _, d in complete]) if complete else np.zeros(0)
        return sparse.csr_matrix((data, indices, indptr), shape=(len(movies), N_FEATURES))

    def similarity(
        self, targets: Sequence[MovieFacts], history: Sequence[MovieFacts]
    ) -> npt.NDArray[np.float64]:
        """Cosine similarity of overviews, targets × history."""
        if not targets or not history:
            return np.zeros((len(targets), len(history)))
        product = self.encode(targets) @ self.encode(history).T
        return np.asarray(product.toarray(), dtype=np.float64)
