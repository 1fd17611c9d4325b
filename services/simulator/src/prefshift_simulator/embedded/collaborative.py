"""The collaborative signal of an imported dataset, precomputed once per dataset.

Ratings are centred by each rater's mean (``c_vi = r_vi − r̄_v``) and kept as sparse matrices,
so that per request the item biases and the item–item similarities between the movies to rate
and the persona's history cost a few sparse column products.

Nothing of the persona's own user reaches its predictions: every statistic is computed *without*
that user's row (its contribution is subtracted), so the real ratings of held-out test movies in
the dataset never leak into the persona's ratings of them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Co-rating count at which a similarity keeps half its weight (significance shrinkage).
SIMILARITY_SHRINK = 20.0
#: Users whose dense rating rows are kept (the personas being rated right now).
USER_ROW_CACHE = 32
#: Histories whose rating blocks are kept (the personas being rated right now).
HISTORY_CACHE = 64


@dataclass(frozen=True, slots=True)
class ItemStatistics:
    """Centred rating sums and counts of some items, without one user."""

    centred_sum: FloatArray
    count: FloatArray


class CollaborativeStats:
    """Item statistics and item–item similarity over one dataset's ratings (keyed by TMDB id)."""

    def __init__(
        self,
        *,
        dataset: str,
        user_ids: npt.NDArray[np.integer],
        tmdb_ids: npt.NDArray[np.integer],
        ratings: npt.NDArray[np.floating],
    ) -> None:
        self.dataset = dataset
        users, user_rows = np.unique(np.asarray(user_ids, dtype=np.int64), return_inverse=True)
        items, item_cols = np.unique(np.asarray(tmdb_ids, dtype=np.int64), return_inverse=True)
        values = np.asarray(ratings, dtype=np.float64)
        # Two MovieLens ids can share a TMDB id: keep one rating per (user, movie).
        keys = user_rows.astype(np.int64) * len(items) + item_cols
        _, first = np.unique(keys, return_index=True)
        user_rows, item_cols, values = user_rows[first], item_cols[first], values[first]

        self.user_index = {int(u): i for i, u in enumerate(users)}
        self.item_index = {int(t): i for i, t in enumerate(items)}
        shape = (len(users), len(items))
        per_user_sum = np.bincount(user_rows, weights=values, minlength=len(users))
        per_user_count = np.bincount(user_rows, minlength=len(users))
        user_mean = per_user_sum / np.maximum(per_user_count, 1)
        centred = values - user_mean[user_rows]

        # Explicit zeros (a rating equal to its rater's mean) stay stored: the sparsity pattern
        # is also the "who rated what" matrix.
        self.by_user = sparse.csr_matrix((centred, (user_rows, item_cols)), shape=shape)
        self.by_item = self.by_user.tocsc()
        self.centred_sum = np.bincount(item_cols, weights=centred, minlength=len(items))
        self.centred_square = np.bincount(item_cols, weights=centred**2, minlength=len(items))
        self.count = np.bincount(item_cols, minlength=len(items)).astype(np.float64)
        self.n_ratings = len(values)
        self._rows: dict[int, tuple[FloatArray, FloatArray]] = {}
        self._history: OrderedDict[bytes, tuple[sparse.csr_matrix, sparse.csr_matrix]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    @property
    def n_users(self) -> int:
        return len(self.user_index)

    @property
    def n_items(self) -> int:
        return len(self.item_index)

    def columns(self, tmdb_ids: list[int]) -> IntArray:
        """Column of each movie, −1 for movies the dataset does not have."""
        return np.array([self.item_index.get(t, -1) for t in tmdb_ids], dtype=np.int64)

    def _user_row(self, user_id: int | None) -> tuple[FloatArray, FloatArray] | None:
        """The user's centred ratings and rated-indicator as dense rows (cached: a persona is
        rated page after page)."""
        if user_id is None or user_id not in self.user_index:
            return None
        cached = self._rows.get(user_id)
        if cached is not None:
            return cached
        row = self.by_user[self.user_index[user_id]]
        centred = np.zeros(self.n_items)
        observed = np.zeros(self.n_items)
        centred[row.indices] = row.data
        observed[row.indices] = 1.0
        if len(self._rows) >= USER_ROW_CACHE:
            self._rows.pop(next(iter(self._rows)))
        self._rows[user_id] = (centred, observed)
        return centred, observed

    def _history_blocks(self, columns: IntArray) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """The ratings of a history's movies (users × movies, CSR) and who rated them (1s):
        cached, a persona's history is the same on every call of its run (converting the
        columns to CSR on every call cost a sixth of the simulator's CPU, issue 24). Read-only:
        never modify the blocks returned."""
        key = columns.tobytes()
        with self._lock:
            cached = self._history.get(key)
            if cached is not None:
                self._history.move_to_end(key)
                return cached
        block = self.by_item[:, columns].tocsr()
        seen = block.copy()
        seen.data[:] = 1.0
        with self._lock:
            self._history[key] = (block, seen)
            while len(self._history) > HISTORY_CACHE:
                self._history.popitem(last=False)
        return block, seen

    def item_statistics(self, columns: IntArray, *, exclude_user: int | None) -> ItemStatistics:
        """Centred sums and counts of the given columns (−1: zeros), without ``exclude_user``."""
        known = columns >= 0
        centred_sum = np.zeros(len(columns))
        count = np.zeros(len(columns))
        cols = columns[known]
        centred_sum[known] = self.centred_sum[cols]
        count[known] = self.count[cols]
        own = self._user_row(exclude_user)
        if own is not None:
            centred_sum[known] -= own[0][cols]
            count[known] -= own[1][cols]
        return ItemStatistics(centred_sum=centred_sum, count=count)

    def similarity(
        self, targets: IntArray, history: IntArray, *, exclude_user: int | None
    ) -> FloatArray:
        """Shrunk cosine similarity of centred ratings, targets × history (0 where either movie
        is unknown), computed without ``exclude_user``."""
        result = np.zeros((len(targets), len(history)))
        t_known = np.flatnonzero(targets >= 0)
        h_known = np.flatnonzero(history >= 0)
        if len(t_known) == 0 or len(h_known) == 0:
            return result
        t_cols, h_cols = targets[t_known], history[h_known]
        # users × targets (CSC), transposed: targets × users (CSR), no copy
        target_block = self.by_item[:, t_cols].T
        history_block, history_seen = self._history_blocks(h_cols)
        dot: FloatArray = np.asarray((target_block @ history_block).toarray(), dtype=np.float64)
        target_seen = target_block.copy()
        target_seen.data[:] = 1.0
        co_count: FloatArray = np.asarray((target_seen @ history_seen).toarray(), dtype=np.float64)
        t_square: FloatArray = self.centred_square[t_cols].astype(np.float64)
        h_square: FloatArray = self.centred_square[h_cols].astype(np.float64)
        own = self._user_row(exclude_user)
        if own is not None:
            centred, observed = own
            dot -= np.outer(centred[t_cols], centred[h_cols])
            co_count -= np.outer(observed[t_cols], observed[h_cols])
            t_square -= centred[t_cols] ** 2
            h_square -= centred[h_cols] ** 2
        norms = np.sqrt(np.outer(np.maximum(t_square, 0.0), np.maximum(h_square, 0.0)))
        with np.errstate(divide="ignore", invalid="ignore"):
            cosine = np.where(norms > 1e-12, dot / norms, 0.0)
        shrunk = cosine * (co_count / (co_count + SIMILARITY_SHRINK))
        result[np.ix_(t_known, h_known)] = shrunk
        return result
