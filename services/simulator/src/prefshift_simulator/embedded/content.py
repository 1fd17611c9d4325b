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


class ContentEncoder:
    """L2-normalised binary word vectors (English stop words removed) of overviews."""

    def __init__(self, *, cache_size: int = 100_000) -> None:
        self._vectoriser = HashingVectorizer(
            n_features=2**18,
            stop_words="english",
            alternate_sign=False,
            binary=True,
            norm="l2",
        )
        self._cache: OrderedDict[int, sparse.csr_matrix] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def encode(self, movies: Sequence[MovieFacts]) -> sparse.csr_matrix:
        """One row per movie (an empty row for a movie without overview)."""
        rows: list[sparse.csr_matrix | None] = []
        missing: list[int] = []
        with self._lock:
            for position, movie in enumerate(movies):
                cached = self._cache.get(movie.tmdb_id)
                if cached is not None:
                    self._cache.move_to_end(movie.tmdb_id)
                rows.append(cached)
                if cached is None:
                    missing.append(position)
        if missing:
            fresh = self._vectoriser.transform([movies[i].overview for i in missing]).tocsr()
            with self._lock:
                for offset, position in enumerate(missing):
                    row = fresh[offset]
                    rows[position] = row
                    self._cache[movies[position].tmdb_id] = row
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        if not rows:
            return sparse.csr_matrix((0, 2**18))
        return sparse.vstack(rows, format="csr")

    def similarity(
        self, targets: Sequence[MovieFacts], history: Sequence[MovieFacts]
    ) -> npt.NDArray[np.float64]:
        """Cosine similarity of overviews, targets × history."""
        if not targets or not history:
            return np.zeros((len(targets), len(history)))
        product = self.encode(targets) @ self.encode(history).T
        return np.asarray(product.toarray(), dtype=np.float64)
