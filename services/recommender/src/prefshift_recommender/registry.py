"""The models this service holds: loaded from disk at startup, trained on request in a worker
thread, swapped in when ready. Also caches each dataset's catalogue.

Training never runs on the event loop: loading the ratings, fitting and saving all happen in one
dedicated worker thread (one training at a time, so two fits never fight over the two cores).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import structlog
from sqlalchemy.engine import Engine

from prefshift_recommender import artifacts, repository
from prefshift_recommender.algorithms import SCORERS, make_scorer, scorer_params
from prefshift_recommender.artifacts import TrainedModel, TrainingMatrix
from prefshift_recommender.catalog import Catalog
from prefshift_recommender.repository import DatasetRef

log = structlog.get_logger(__name__)

Status = Literal["untrained", "training", "ready", "failed"]


@dataclass
class TrainingState:
    """Where the training of one (implementation, dataset) stands."""

    status: Status = "untrained"
    progress: float = 0.0
    detail: str | None = None
    version: str | None = None
    #: whether the model serves requests once trained (else a candidate kept beside the active)
    activate: bool = True
    cancelled: bool = False


#: Upper bounds of training parameters (others: 1000), so that one fit stays within minutes on
#: two cores at ml-32m size (docs/recommender.md has the figures).
PARAMETER_LIMITS: dict[str, float] = {
    "factors": 256,
    "iterations": 100,
    "k": 1000,
    "fold_in_steps": 200,
    "fold_in_negatives": 10_000,
    "random_state": 2**31 - 1,
}


class TrainingCancelled(Exception):
    """Raised from a fit's progress callback when the service shuts down or the training is
    cancelled (``DELETE /recommenders/{name}/train``)."""


class InvalidParameters(ValueError):
    """Training parameters the implementation does not accept."""


def check_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The full parameter set (defaults filled in) or :class:`InvalidParameters`."""
    if "num_threads" in params:
        raise InvalidParameters("num_threads is a service setting (PREFSHIFT_RECOMMENDER_THREADS)")
    try:
        scorer = make_scorer(name, params)
    except TypeError as exc:
        fields = ", ".join(sorted(scorer_params(make_scorer(name)))) or "none"
        raise InvalidParameters(f"{exc}; parameters of {name}: {fields}") from None
    defaults = scorer_params(make_scorer(name))
    for key, value in params.items():
        expected = type(defaults[key])
        if expected is int and (isinstance(value, bool) or not float(value).is_integer()):
            raise InvalidParameters(f"{key} must be an integer")
        if expected is int and value <= 0:
            raise InvalidParameters(f"{key} must be positive")
        if expected is float and value < 0:
            raise InvalidParameters(f"{key} must not be negative")
        limit = PARAMETER_LIMITS.get(key, 1000)
        if value > limit:
            raise InvalidParameters(f"{key} must be at most {limit:g}")
    return {
        key: (int(value) if isinstance(defaults[key], int) else value)
        for key, value in scorer_params(scorer).items()
    }


class ModelRegistry:
    """Trained models and training jobs per (implementation, dataset)."""

    def __init__(self, *, engine: Engine, models_dir: Path, threads: int = 0) -> None:
        self.engine = engine
        self.models_dir = models_dir
        self.threads = threads
        self._models: dict[tuple[str, str], TrainedModel] = {}
        self._states: dict[tuple[str, str], TrainingState] = {}
        #: trainings of candidate versions: never shown as the served model's state
        self._candidate_states: dict[tuple[str, str], TrainingState] = {}
        self._catalogs: dict[str, Catalog] = {}
        self._catalog_lock = asyncio.Lock()
        self._matrices: dict[str, TrainingMatrix] = {}
        self._matrix_lock = asyncio.Lock()
        self._pending: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="recommender-train"
        )

    # --- reading ---------------------------------------------------------------------------

    def model(self, name: str, dataset: DatasetRef) -> TrainedModel | None:
        model = self._models.get((name, dataset.name))
        if model is None or model.dataset.fingerprint != dataset.fingerprint:
            return None
        return model

    def state(self, name: str, dataset: DatasetRef) -> TrainingState:
        model = self.model(name, dataset)
        state = self._states.get((name, dataset.name))
        if state is not None and state.status in ("training", "failed"):
            return state
        if model is not None:
            return TrainingState(status="ready", progress=1.0, version=model.version)
        return state or TrainingState()

    async def catalog(self, dataset: DatasetRef) -> Catalog:
        """The dataset's catalogue (loaded from the database once, in a thread)."""
        cached = self._catalogs.get(dataset.name)
        if cached is not None and cached.dataset.fingerprint == dataset.fingerprint:
            return cached
        async with self._catalog_lock:
            cached = self._catalogs.get(dataset.name)
            if cached is None or cached.dataset.fingerprint != dataset.fingerprint:
                cached = await asyncio.to_thread(self._load_catalog, dataset)
                self._catalogs[dataset.name] = cached
            return cached

    def _load_catalog(self, dataset: DatasetRef) -> Catalog:
        with self.engine.connect() as connection:
            rows = repository.load_movie_rows(connection, dataset.id)
        return Catalog.from_rows(dataset, rows)

    # --- loading and training --------------------------------------------------------------

    async def load_persisted(self, datasets: list[DatasetRef]) -> list[str]:
        """Load the newest saved model of every implementation for every dataset."""
        loaded: list[str] = []
        for dataset in datasets:
            for name in SCORERS:
                model = await asyncio.to_thread(
                    artifacts.load_latest, self.models_dir, dataset, name
                )
                if model is not None:
                    self._models[(name, dataset.name)] = model
                    loaded.append(model.version)
        if loaded:
            log.info("models_loaded", versions=loaded)
        return loaded

    def start_training(
        self,
        name: str,
        dataset: DatasetRef,
        params: Mapping[str, Any],
        *,
        activate: bool | None = None,
    ) -> TrainingState:
        """Queue a training; returns at once. A training of the same model already queued or
        running is not started twice; trainings run one at a time.

        ``activate`` (default: for the default parameters, or when no model serves yet): the
        trained model replaces the one requests are served from; otherwise it is kept as a
        candidate version beside it, and runs go on using the active one."""
        full = check_params(name, params)
        version = artifacts.model_version(name, dataset, full)
        if activate is None:
            activate = not params or self.model(name, dataset) is None
        serve = activate
        key = (name, dataset.name)
        states = self._states if serve else self._candidate_states
        current = states.get(key)
        if current is not None and current.status == "training":
            return current
        state = TrainingState(
            status="training", progress=0.0, detail="queued", version=version, activate=serve
        )
        states[key] = state
        self._pending[dataset.name] = self._pending.get(dataset.name, 0) + 1
        task = asyncio.create_task(self._train(name, dataset, full, state))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return state

    async def _matrix(self, dataset: DatasetRef) -> TrainingMatrix:
        async with self._matrix_lock:
            matrix = self._matrices.get(dataset.fingerprint)
            if matrix is None:
                loop = asyncio.get_running_loop()
                matrix = await loop.run_in_executor(self._executor, self._load_matrix, dataset)
                self._matrices[dataset.fingerprint] = matrix
            return matrix

    def _load_matrix(self, dataset: DatasetRef) -> TrainingMatrix:
        with self.engine.connect() as connection:
            arrays = repository.load_rating_arrays(connection, dataset.id)
        return artifacts.build_matrix(arrays)

    async def _train(
        self, name: str, dataset: DatasetRef, params: dict[str, Any], state: TrainingState
    ) -> None:
        loop = asyncio.get_running_loop()

        def progress(fraction: float) -> None:
            if self._closing or state.cancelled:  # implicit calls back once per iteration
                raise TrainingCancelled
            state.progress = round(min(max(fraction, 0.0), 1.0) * 0.95, 4)

        def fit_and_save(matrix: TrainingMatrix) -> TrainedModel:
            state.detail = "fitting"
            model = artifacts.train(
                name, dataset, matrix, params, progress=progress, num_threads=self.threads
            )
            state.detail = "saving"
            artifacts.save(model, self.models_dir, active=state.activate)
            return model

        try:
            if state.cancelled:
                raise TrainingCancelled
            state.detail = "loading ratings"
            matrix = await self._matrix(dataset)
            if matrix.ratings.nnz == 0:
                raise ValueError(f"dataset {dataset.name!r} has no ratings of movies with TMDB ids")
            model = await loop.run_in_executor(self._executor, fit_and_save, matrix)
        except (TrainingCancelled, asyncio.CancelledError):
            why = "cancelled" if state.cancelled else "cancelled: the service stopped"
            state.status, state.detail = "failed", why
        except Exception as exc:  # a failed fit must show in GET /recommenders, not vanish
            log.exception("training_failed", recommender=name, dataset=dataset.name)
            state.status, state.detail = "failed", f"{type(exc).__name__}: {exc}"
        else:
            if state.activate:
                self._models[(name, dataset.name)] = model
                state.detail = None
            else:
                state.detail = f"candidate {model.version} saved; the active model still serves"
            state.status, state.progress = "ready", 1.0
            log.info(
                "model_trained",
                version=model.version,
                seconds=round(model.train_seconds, 2),
                ratings=model.n_ratings,
            )
        finally:
            self._pending[dataset.name] -= 1
            if self._pending[dataset.name] == 0:
                self._matrices.pop(dataset.fingerprint, None)

    def cancel_training(self, name: str, dataset: DatasetRef) -> list[TrainingState]:
        """Cancel the queued or running trainings of ``name`` on ``dataset``: a queued one never
        starts, a running fit stops at its next iteration. Returns what was cancelled."""
        cancelled = []
        for states in (self._states, self._candidate_states):
            state = states.get((name, dataset.name))
            if state is not None and state.status == "training":
                state.cancelled = True
                state.detail = "cancelling"
                cancelled.append(state)
        return cancelled

    async def wait_idle(self) -> None:
        """Wait for every queued training (tests and the CLI)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        """Cancel queued trainings and stop the running one at its next iteration."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
