"""The recommender service's logic: which dataset, which implementation, whose history."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_common.contracts import (
    RecommendationRequest,
    RecommendationResponse,
    RecommenderInfo,
)
from prefshift_common.errors import Conflict, NotFound, Unprocessable
from prefshift_common.llm import LlmClient
from prefshift_common.logging import current_request_id
from prefshift_common.tmdb_client import TmdbProxyClient
from prefshift_recommender import repository
from prefshift_recommender.config import Settings
from prefshift_recommender.implementations import ModelRecommender, Query, Recommender
from prefshift_recommender.llm import LlmRecommender
from prefshift_recommender.registry import InvalidParameters, ModelRegistry
from prefshift_recommender.repository import DatasetRef
from prefshift_recommender.schemas import TrainAccepted, TrainRequest

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Dependencies:
    """What implementations are built from (created in the app's lifespan)."""

    settings: Settings
    registry: ModelRegistry
    llm: LlmClient
    proxy: TmdbProxyClient | None


#: name → implementation. Add one here to add a recommender.
IMPLEMENTATIONS: dict[str, Callable[[Dependencies], Recommender]] = {
    "als": lambda deps: ModelRecommender("als", "collaborative", deps.registry),
    "bpr": lambda deps: ModelRecommender("bpr", "collaborative", deps.registry),
    "item-knn": lambda deps: ModelRecommender("item-knn", "collaborative", deps.registry),
    "popularity": lambda deps: ModelRecommender("popularity", "baseline", deps.registry),
    "random": lambda deps: ModelRecommender("random", "baseline", deps.registry),
    "llm": lambda deps: LlmRecommender(
        "llm", persuasive=False, settings=deps.settings, client=deps.llm, proxy=deps.proxy
    ),
    "llm-persuasive": lambda deps: LlmRecommender(
        "llm-persuasive",
        persuasive=True,
        settings=deps.settings,
        client=deps.llm,
        proxy=deps.proxy,
    ),
}


def default_seed(request: RecommendationRequest) -> int:
    """A request without a seed gets one derived from its content: same request, same page."""
    ids = np.asarray(sorted(h.tmdb_id for h in request.history), dtype=np.int64)
    return zlib.crc32(ids.tobytes(), request.user_id or 0)


class RecommenderService:
    """Serves recommendations and trainings for every implementation."""

    def __init__(self, deps: Dependencies) -> None:
        self.settings = deps.settings
        self.registry = deps.registry
        self.recommenders: dict[str, Recommender] = {
            name: build(deps) for name, build in IMPLEMENTATIONS.items()
        }

    def get(self, name: str) -> Recommender:
        recommender = self.recommenders.get(name)
        if recommender is None:
            known = ", ".join(self.recommenders)
            raise NotFound(f"no recommender named {name!r}; this service has: {known}")
        return recommender

    async def default_dataset(self, session: AsyncSession) -> DatasetRef | None:
        """The configured dataset, else the only imported one; ``None`` if that is ambiguous."""
        if self.settings.recommender_dataset:
            return await repository.find_dataset(session, self.settings.recommender_dataset)
        datasets = await repository.list_datasets(session)
        return datasets[0] if len(datasets) == 1 else None

    async def warm_up(self, session: AsyncSession) -> None:
        """Load the default dataset's catalogue (and, with an LLM configured, its title index)
        now, so the first page does not wait for them (seconds on a MovieLens catalogue)."""
        dataset = await self.default_dataset(session)
        if dataset is None:
            return
        catalog = await self.registry.catalog(dataset)
        if self.settings.llm_configured:  # only the LLM recommenders read titles
            await asyncio.to_thread(lambda: (catalog.titles, catalog.genres))
        log.info("catalogue_warm", dataset=dataset.name, movies=len(catalog))

    async def dataset(self, session: AsyncSession, name: str | None) -> DatasetRef:
        """The dataset a request names, or the default; typed errors when there is none."""
        return await repository.choose_dataset(
            session, name, default=self.settings.recommender_dataset
        )

    async def list(self, session: AsyncSession, dataset_name: str | None) -> list[RecommenderInfo]:
        dataset = (
            await self.dataset(session, dataset_name)
            if dataset_name
            else await self.default_dataset(session)
        )
        return [recommender.info(dataset) for recommender in self.recommenders.values()]

    async def recommend(
        self, session: AsyncSession, request: RecommendationRequest
    ) -> RecommendationResponse:
        recommender = self.get(request.recommender)
        dataset = await self.dataset(session, request.dataset)
        history: dict[int, float] = {}
        if request.user_id is not None:
            ratings = await repository.user_ratings(session, dataset.id, request.user_id)
            if ratings is None:
                raise NotFound(f"user {request.user_id} is not in dataset {dataset.name!r}")
            history.update(ratings)
        history.update((movie.tmdb_id, movie.rating) for movie in request.history)
        # The reads are done: give the connection back before the recommendation, which may
        # wait seconds on an LLM (pages in flight each holding one emptied the pool).
        await session.close()
        catalog = await self.registry.catalog(dataset)
        query = Query(
            dataset=dataset,
            catalog=catalog,
            history=history,
            n=request.n,
            exclude=frozenset(request.exclude),
            seed=request.seed if request.seed is not None else default_seed(request),
        )
        page = await recommender.recommend(query)
        return RecommendationResponse(
            recommender=recommender.name,
            model_version=page.model_version[:200],
            request_id=(current_request_id() or "")[:200],
            items=page.items,
            short=page.short,
            unknown_history=page.unknown_history,
            unresolved_titles=page.unresolved_titles,
            note=page.note,
        )

    async def train(self, session: AsyncSession, name: str, body: TrainRequest) -> TrainAccepted:
        recommender = self.get(name)
        if not recommender.trainable:
            raise Unprocessable(f"{name} has nothing to train: it asks a language model")
        dataset = await self.dataset(session, body.dataset)
        try:
            state = self.registry.start_training(
                name, dataset, body.params.given(), activate=body.activate
            )
        except InvalidParameters as exc:
            raise Unprocessable(f"invalid parameters for {name}: {exc}") from None
        return TrainAccepted(
            recommender=name,
            dataset=dataset.name,
            model_version=state.version or "",
            status=state.status,
            links={"status": f"/recommenders?dataset={dataset.name}"},
        )

    async def cancel_training(
        self, session: AsyncSession, name: str, dataset_name: str | None
    ) -> TrainAccepted:
        """Cancel the queued or running training of ``name`` (409 when none is)."""
        self.get(name)
        dataset = await self.dataset(session, dataset_name)
        cancelled = self.registry.cancel_training(name, dataset)
        if not cancelled:
            raise Conflict(f"no training of {name} on {dataset.name!r} is queued or running")
        return TrainAccepted(
            recommender=name,
            dataset=dataset.name,
            model_version=cancelled[0].version or "",
            status="cancelling",
            links={"status": f"/recommenders?dataset={dataset.name}"},
        )

    async def autotrain(self, session: AsyncSession) -> None:
        """Train the configured implementations on the default dataset when no model of theirs
        was loaded from disk (PREFSHIFT_RECOMMENDER_AUTOTRAIN)."""
        dataset = await self.default_dataset(session)
        if dataset is None:
            return
        for name in self.settings.autotrain:
            recommender = self.recommenders.get(name)
            if recommender is None or not recommender.trainable:
                continue
            if self.registry.model(name, dataset) is None:
                self.registry.start_training(name, dataset, {})
