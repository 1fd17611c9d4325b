"""Trained models: building the training matrix, versions, serving a page, and persistence.

A model is trained per (implementation, dataset, parameters); its ``model_version`` is a hash of
the three (with the dataset's content fingerprint, so a re-imported dataset never serves a stale
model). On disk, under ``<models_dir>/recommender/<dataset>/<implementation>/``, a model is a
``<hash>.npz`` of plain arrays (no pickle) and a ``<hash>.json`` of its metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from prefshift_recommender.algorithms import (
    ItemScorer,
    Progress,
    make_scorer,
    scorer_params,
    top_n,
)
from prefshift_recommender.repository import DatasetRef, RatingArrays

FORMAT = 1


@dataclass(frozen=True)
class TrainingMatrix:
    """Users × items ratings (CSR, float32) and the ids of its rows and columns."""

    ratings: sp.csr_matrix
    user_ids: NDArray[np.int64]
    item_ids: NDArray[np.int64]  # TMDB ids, sorted


def build_matrix(arrays: RatingArrays) -> TrainingMatrix:
    """The ratings matrix; a user's two ratings of one TMDB id (two MovieLens ids) keep the max."""
    user_ids, user_index = np.unique(arrays.user_ids, return_inverse=True)
    item_ids, item_index = np.unique(arrays.tmdb_ids, return_inverse=True)
    key = user_index.astype(np.int64) * max(item_ids.size, 1) + item_index
    order = np.lexsort((-arrays.ratings, key))
    first = np.ones(order.size, dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    keep = order[first]
    ratings = sp.csr_matrix(
        (arrays.ratings[keep].astype(np.float32), (user_index[keep], item_index[keep])),
        shape=(user_ids.size, item_ids.size),
    )
    ratings.sort_indices()
    return TrainingMatrix(ratings=ratings, user_ids=user_ids, item_ids=item_ids)


def model_version(name: str, dataset: DatasetRef, params: Mapping[str, Any]) -> str:
    """``<name>@<dataset>:<hash of implementation, dataset content and parameters>``."""
    payload = json.dumps(
        {
            "format": FORMAT,
            "name": name,
            "dataset": dataset.name,
            "fingerprint": dataset.fingerprint,
            "params": dict(params),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
    return f"{name}@{dataset.name}:{digest}"


@dataclass(frozen=True)
class ScoredPage:
    """What a model returns for one request."""

    tmdb_ids: list[int]
    scores: list[float]
    unknown_history: int


@dataclass
class TrainedModel:
    """A fitted scorer and the TMDB ids of its item axis."""

    name: str
    dataset: DatasetRef
    params: dict[str, Any]
    item_ids: NDArray[np.int64]
    item_counts: NDArray[np.int64]  # ratings per item: the order for users with no known history
    scorer: ItemScorer
    trained_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    train_seconds: float = 0.0
    n_users: int = 0
    n_ratings: int = 0

    @property
    def version(self) -> str:
        return model_version(self.name, self.dataset, self.params)

    def positions(self, tmdb_ids: Iterable[int]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Item-axis positions of TMDB ids and whether the model knows each."""
        ids = np.fromiter(tmdb_ids, dtype=np.int64)
        position = np.searchsorted(self.item_ids, ids)
        position = np.minimum(position, max(self.item_ids.size - 1, 0))
        known = self.item_ids[position] == ids if self.item_ids.size else np.zeros(ids.size, bool)
        return position.astype(np.int64), known

    def recommend(
        self,
        history: Mapping[int, float],
        *,
        n: int,
        exclude: Iterable[int],
        seed: int = 0,
    ) -> ScoredPage:
        """The ``n`` best movies for a user known only by ``history`` (tmdb_id → rating)."""
        positions, known = self.positions(history.keys())
        ratings = np.fromiter(history.values(), dtype=np.float32, count=len(history))
        row = sp.csr_matrix(
            (ratings[known], (np.zeros(int(known.sum()), dtype=np.int64), positions[known])),
            shape=(1, self.item_ids.size),
            dtype=np.float32,
        )
        row.sum_duplicates()
        if row.nnz == 0 and self.name != "random":
            # Nothing to personalise from: the standard cold-start answer, most-rated first.
            scores = self.item_counts.astype(np.float32)
        else:
            scores = self.scorer.score(row, seed=seed)[0]
        excluded, excluded_known = self.positions(exclude)
        blocked = np.concatenate([positions[known], excluded[excluded_known]])
        chosen = top_n(scores, n, blocked)
        return ScoredPage(
            tmdb_ids=[int(i) for i in self.item_ids[chosen]],
            scores=[float(s) for s in scores[chosen]],
            unknown_history=int((~known).sum()),
        )


def train(
    name: str,
    dataset: DatasetRef,
    matrix: TrainingMatrix,
    params: Mapping[str, Any] | None,
    *,
    progress: Progress,
    num_threads: int = 0,
) -> TrainedModel:
    """Fit implementation ``name`` (blocking; call it from a worker thread)."""
    scorer = make_scorer(name, params)
    if hasattr(scorer, "num_threads"):
        scorer.num_threads = num_threads
    started = time.perf_counter()
    scorer.fit(matrix.ratings, progress=progress)
    return TrainedModel(
        name=name,
        dataset=dataset,
        params=scorer_params(scorer),
        item_ids=matrix.item_ids,
        item_counts=np.bincount(matrix.ratings.indices, minlength=matrix.item_ids.size),
        scorer=scorer,
        train_seconds=time.perf_counter() - started,
        n_users=int(matrix.user_ids.size),
        n_ratings=int(matrix.ratings.nnz),
    )


def model_dir(root: Path, dataset: str, name: str) -> Path:
    return root / "recommender" / dataset / name


ACTIVE = "active.json"


def save(model: TrainedModel, root: Path, *, active: bool = True) -> Path:
    """Write a model atomically; returns the metadata path. ``active``: the version requests
    are served from (also after a restart); otherwise a candidate kept next to it."""
    directory = model_dir(root, model.dataset.name, model.name)
    directory.mkdir(parents=True, exist_ok=True)
    stem = model.version.rsplit(":", 1)[1]
    arrays = {
        "item_ids": model.item_ids,
        "item_counts": model.item_counts,
        **model.scorer.arrays(),
    }
    partial = directory / f".{stem}.{os.getpid()}.npz"
    with partial.open("wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    os.replace(partial, directory / f"{stem}.npz")
    meta = {
        "format": FORMAT,
        "name": model.name,
        "version": model.version,
        "dataset": model.dataset.name,
        "fingerprint": model.dataset.fingerprint,
        "params": model.params,
        "trained_at": model.trained_at,
        "train_seconds": model.train_seconds,
        "candidate": not active,
        "n_users": model.n_users,
        "n_ratings": model.n_ratings,
    }
    meta_path = directory / f"{stem}.json"
    partial_meta = directory / f".{stem}.{os.getpid()}.json"
    partial_meta.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(partial_meta, meta_path)
    if active:
        activate(root, model)
    return meta_path


def activate(root: Path, model: TrainedModel) -> None:
    """Mark ``model`` as the version served (``active.json`` beside the versions)."""
    directory = model_dir(root, model.dataset.name, model.name)
    partial = directory / f".{ACTIVE}.{os.getpid()}"
    partial.write_text(json.dumps({"version": model.version}))
    os.replace(partial, directory / ACTIVE)


def load_latest(root: Path, dataset: DatasetRef, name: str) -> TrainedModel | None:
    """The model of ``name`` served on this dataset's current content: the version marked
    active, else the most recently trained one that is not a candidate."""
    directory = model_dir(root, dataset.name, name)
    if not directory.is_dir():
        return None
    candidates: list[dict[str, Any]] = []
    try:
        active = json.loads((directory / ACTIVE).read_text()).get("version")
    except (OSError, ValueError):
        active = None
    for meta_path in directory.glob("*.json"):
        if meta_path.name.startswith(".") or meta_path.name == ACTIVE:
            continue
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        current = meta.get("format") == FORMAT and meta.get("fingerprint") == dataset.fingerprint
        if current and meta_path.with_suffix(".npz").is_file():
            meta["_path"] = str(meta_path.with_suffix(".npz"))
            candidates.append(meta)
    marked = [m for m in candidates if m.get("version") == active]
    candidates = marked or [m for m in candidates if not m.get("candidate")]
    if not candidates:
        return None
    meta = max(candidates, key=lambda m: str(m.get("trained_at", "")))
    scorer = make_scorer(name, meta["params"])
    with np.load(meta["_path"], allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    scorer.restore(arrays)
    return TrainedModel(
        name=name,
        dataset=dataset,
        params=dict(meta["params"]),
        item_ids=np.asarray(arrays["item_ids"], dtype=np.int64),
        item_counts=np.asarray(arrays["item_counts"], dtype=np.int64),
        scorer=scorer,
        trained_at=str(meta["trained_at"]),
        train_seconds=float(meta.get("train_seconds", 0.0)),
        n_users=int(meta.get("n_users", 0)),
        n_ratings=int(meta.get("n_ratings", 0)),
    )
