"""The ``embedded`` backend: the preference model of :mod:`.model` behind the service."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import numpy as np
import structlog

from prefshift_common.contracts import Backend, ItemRating, RatingsRequest, Usage
from prefshift_common.db import sync_connection
from prefshift_common.errors import BadRequest, Conflict, NotFound
from prefshift_datasets import repository as datasets
from prefshift_datasets.errors import DatasetNotFoundError
from prefshift_simulator.embedded.collaborative import CollaborativeStats
from prefshift_simulator.embedded.content import ContentEncoder
from prefshift_simulator.embedded.feelings import feeling
from prefshift_simulator.embedded.model import EmbeddedPersonaModel
from prefshift_simulator.embedded.persona_models import (
    PersonaModel,
    PersonaModelError,
    flat_parameters,
)
from prefshift_simulator.embedded.population import ReferencePopulationError, check_reference
from prefshift_simulator.metadata import MovieFacts
from prefshift_simulator.schemas import BackendResult, PersonaModelInfo

log = structlog.get_logger(__name__)


def load_stats(
    database_url: str, dataset: str, reference: str | None = None
) -> tuple[CollaborativeStats, float]:
    """Read a dataset's ratings and precompute the statistics its personas are rated with —
    from the dataset, or from ``reference``, the population its users were drawn from, once
    :func:`~prefshift_simulator.embedded.population.check_reference` accepts it — keyed by the
    dataset's name, with the share of the dataset's ratings the population holds (blocking: run
    it in a thread)."""
    with sync_connection(database_url) as connection:
        info = datasets.get_dataset(connection, dataset)
        share = 1.0
        if reference is None or reference == dataset:
            arrays = datasets.load_rating_arrays(connection, info.id)
        else:
            # the reference is read once (MovieLens 32M: 32 million ratings)
            theirs = datasets.load_ratings(
                connection, datasets.get_dataset(connection, reference).id
            )
            share = check_reference(
                datasets.load_ratings(connection, info.id),
                theirs,
                dataset=dataset,
                reference=reference,
            )
            arrays = datasets.rating_arrays(theirs)
    stats = CollaborativeStats(
        dataset=dataset,
        user_ids=arrays.user_ids,
        tmdb_ids=arrays.tmdb_ids,
        ratings=arrays.ratings.astype(np.float64),
    )
    return stats, share


class DatasetStatsCache:
    """Each dataset's :class:`CollaborativeStats`, loaded once on first use and kept in memory
    (restart the service after re-importing a dataset); ``references`` names, per dataset, the
    population whose ratings stand in for its own."""

    def __init__(self, database_url: str, references: Mapping[str, str] | None = None) -> None:
        self._database_url = database_url
        self._references = dict(references or {})
        self._stats: dict[str, CollaborativeStats] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def put(self, stats: CollaborativeStats) -> None:
        self._stats[stats.dataset] = stats

    def population(self, dataset: str) -> str:
        """The dataset whose ratings the statistics of ``dataset``'s personas come from."""
        return self._references.get(dataset, dataset)

    async def get(self, dataset: str) -> CollaborativeStats:
        cached = self._stats.get(dataset)
        if cached is not None:
            return cached
        lock = self._locks.setdefault(dataset, asyncio.Lock())
        async with lock:
            cached = self._stats.get(dataset)
            if cached is not None:
                return cached
            reference = self._references.get(dataset)
            try:
                stats, share = await asyncio.to_thread(
                    load_stats, self._database_url, dataset, reference
                )
            except DatasetNotFoundError as exc:
                if reference is None:
                    raise NotFound(
                        f"dataset {dataset!r} is not imported (prefshift data import)"
                    ) from exc
                raise NotFound(
                    f"{exc} (prefshift data import); {dataset!r} takes its statistics from "
                    f"{reference!r} (PREFSHIFT_SIMULATOR_REFERENCE_DATASETS)"
                ) from exc
            except ReferencePopulationError as exc:
                raise Conflict(f"PREFSHIFT_SIMULATOR_REFERENCE_DATASETS: {exc}") from exc
            log.info(
                "dataset_stats_loaded",
                dataset=dataset,
                population=self.population(dataset),
                share_held=share,
                users=stats.n_users,
                movies=stats.n_items,
                ratings=stats.n_ratings,
            )
            self._stats[dataset] = stats
            return stats


class EmbeddedBackend:
    """Rates with :class:`EmbeddedPersonaModel`; the collaborative signal comes from the
    persona's dataset (or the service's default dataset), content from the movie metadata.
    A request picks one of the named parameter sets (``persona_model``)."""

    name: Backend = "embedded"

    def __init__(
        self,
        persona_models: Mapping[str, PersonaModel],
        stats: DatasetStatsCache,
        *,
        default_persona_model: str,
        default_dataset: str | None = None,
    ) -> None:
        if default_persona_model not in persona_models:
            raise PersonaModelError(
                f"persona model {default_persona_model!r} is not among {sorted(persona_models)}"
            )
        encoder = ContentEncoder()
        self.persona_models = dict(persona_models)
        self.models = {
            name: EmbeddedPersonaModel(m.params, encoder) for name, m in persona_models.items()
        }
        self.default_persona_model = default_persona_model
        self.stats = stats
        self.default_dataset = default_dataset

    def describe_models(self) -> list[PersonaModelInfo]:
        """The named parameter sets with their provenance, the default marked."""
        return [
            PersonaModelInfo(
                name=m.name,
                default=m.name == self.default_persona_model,
                description=m.description,
                source=m.source,
                created=m.created,
                estimator=m.estimator,
                parameters=flat_parameters(m.params),
                intervals=dict(m.intervals),
            )
            for m in self.persona_models.values()
        ]

    def model(self, name: str | None) -> tuple[str, EmbeddedPersonaModel]:
        """The named parameter set's model (``None``: the default)."""
        chosen = name or self.default_persona_model
        model = self.models.get(chosen)
        if model is None:
            raise BadRequest(
                f"persona model {chosen!r} is not served here; GET /backends lists "
                f"{sorted(self.models)}"
            )
        return chosen, model

    async def rate(
        self, request: RatingsRequest, items: list[int], facts: Mapping[int, MovieFacts]
    ) -> BackendResult:
        persona = request.persona
        name, model = self.model(request.persona_model)
        dataset = persona.dataset or self.default_dataset
        stats = await self.stats.get(dataset) if dataset else None
        history = [(m.tmdb_id, m.rating) for m in persona.history]
        experiences = [(e.tmdb_id, e.rating) for e in persona.experiences]
        shown = {s.tmdb_id: s.stars for s in request.shown}

        def run() -> list[ItemRating]:
            predictions = model.predict(
                user_id=persona.user_id,
                history=history,
                experiences=experiences,
                items=items,
                facts=facts,
                stats=stats,
                seed=request.seed or 0,
                occasion=request.occasion,
                shown=shown,
            )
            return [
                ItemRating(
                    tmdb_id=p.tmdb_id, rating=p.rating, feeling=feeling(p, facts.get(p.tmdb_id))
                )
                for p in predictions
            ]

        started = time.perf_counter()
        ratings = await asyncio.to_thread(run)
        usage = Usage(latency_ms=(time.perf_counter() - started) * 1000.0)
        return BackendResult(
            ratings=ratings,
            usage=usage,
            model=None,
            persona_model=name,
            population=self.stats.population(dataset) if dataset else None,
        )
