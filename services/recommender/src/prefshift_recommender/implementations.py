"""The seven recommenders behind one protocol, picked by name.

``als``, ``bpr`` and ``item-knn`` (collaborative, ``implicit``) and ``popularity`` and
``random`` (baselines) serve from a trained model; ``llm`` and ``llm-persuasive`` ask an
OpenAI-compatible chat model (see :mod:`prefshift_recommender.llm`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal, Protocol

from prefshift_common.contracts import RecommendedItem, RecommenderInfo
from prefshift_common.errors import Conflict
from prefshift_recommender.catalog import Catalog
from prefshift_recommender.registry import ModelRegistry
from prefshift_recommender.repository import DatasetRef

Kind = Literal["collaborative", "baseline", "llm", "external"]


@dataclass(frozen=True)
class Query:
    """One request, resolved: the dataset, its catalogue, the user's whole history."""

    dataset: DatasetRef
    catalog: Catalog
    history: dict[int, float]  # tmdb_id → rating
    n: int
    exclude: frozenset[int]
    seed: int


@dataclass(frozen=True)
class Page:
    """A recommender's answer."""

    items: list[RecommendedItem]
    model_version: str
    short: bool
    unknown_history: int
    unresolved_titles: int = 0
    #: Why the page is short, when it is.
    note: str | None = None


class Recommender(Protocol):
    """What every implementation provides."""

    name: str
    kind: Kind
    trainable: bool

    def info(self, dataset: DatasetRef | None) -> RecommenderInfo:
        """Name, kind, trained state and model version on ``dataset``."""

    async def recommend(self, query: Query) -> Page:
        """``query.n`` movies, none in the history or excluded."""


class ModelRecommender:
    """A recommender served from a model trained on a dataset (collaborative or baseline)."""

    trainable = True

    def __init__(self, name: str, kind: Kind, registry: ModelRegistry) -> None:
        self.name = name
        self.kind = kind
        self.registry = registry

    def info(self, dataset: DatasetRef | None) -> RecommenderInfo:
        if dataset is None:
            return RecommenderInfo(
                name=self.name,
                kind=self.kind,
                trained=False,
                status="untrained",
                detail=(
                    "no dataset selected: import one (`prefshift data import`), or name one "
                    "with ?dataset= when several are imported"
                ),
            )
        state = self.registry.state(self.name, dataset)
        model = self.registry.model(self.name, dataset)
        detail = state.detail
        if state.status == "untrained":
            detail = f"train it: POST /recommenders/{self.name}/train"
        return RecommenderInfo(
            name=self.name,
            kind=self.kind,
            trained=model is not None,
            model_version=model.version if model is not None else state.version,
            dataset=dataset.name,
            status=state.status,
            progress=state.progress,
            detail=detail,
        )

    async def recommend(self, query: Query) -> Page:
        model = self.registry.model(self.name, query.dataset)
        if model is None:
            state = self.registry.state(self.name, query.dataset)
            doing = {
                "training": f"it is training ({state.progress:.0%}); retry when GET "
                "/recommenders shows it ready",
                "failed": f"its training failed ({state.detail}); train it again with POST "
                f"/recommenders/{self.name}/train",
            }.get(
                state.status,
                f'train it first: POST /recommenders/{self.name}/train {{"dataset": '
                f'"{query.dataset.name}"}}',
            )
            raise Conflict(f"{self.name} has no model for dataset {query.dataset.name!r}: {doing}")
        page = await asyncio.to_thread(
            model.recommend, query.history, n=query.n, exclude=query.exclude, seed=query.seed
        )
        items = []
        for tmdb_id, score in zip(page.tmdb_ids, page.scores, strict=True):
            movie = query.catalog.get(tmdb_id)
            items.append(
                RecommendedItem(
                    tmdb_id=tmdb_id,
                    movielens_id=movie.movielens_id if movie else None,
                    title=movie.title if movie else f"TMDB {tmdb_id}",
                    score=round(score, 6),
                )
            )
        return Page(
            items=items,
            model_version=model.version,
            short=len(items) < query.n,
            unknown_history=page.unknown_history,
        )
