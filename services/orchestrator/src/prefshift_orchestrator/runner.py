"""Executes one claimed run: the protocol of DESIGN.md, step by step, with checkpoints.

1. *prepare*: select the test and persona movies (seeded, stratified, disjoint) and resolve the
   arms (LLM arms the recommender reports unavailable are left out with a message; untrained
   algorithmic arms are trained first, or fail the run, per settings);
2. *baseline* (arm ``baseline``, page 0): the fresh persona rates the test movies;
3. every arm concurrently, page by page: recommend ``page_size`` unseen movies (history = persona
   history + the arm's experiences so far; test, persona and shown movies excluded), the persona
   rates them (→ experiences), then re-rates the test movies (never experiences). ``control``
   only re-rates.

Each step is stored when it completes (:class:`~prefshift_orchestrator.models.RunPage`), and a
resumed run skips stored steps, so no completed simulator or recommender call is repeated.

Seeds: the test re-ratings of page p use the same seed in every arm (common random numbers, so
the difference between an arm and control comes from experiences, not sampling noise); the
baseline and the experience ratings have their own seeds. All derive from the run's seed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_common.contracts import (
    Experience,
    Persona,
    RatedMovie,
    RatingsRequest,
    RecommendationRequest,
    RecommendationResponse,
    RecommenderInfo,
)
from prefshift_common.db import is_sqlite
from prefshift_common.errors import (
    Conflict,
    NotFound,
    ServiceError,
    Unprocessable,
    UpstreamError,
    UpstreamTimeout,
)
from prefshift_orchestrator.clients import ArmBudget, ServiceClients, Timed
from prefshift_orchestrator.config import Settings
from prefshift_orchestrator.dataset_reads import DatasetReads
from prefshift_orchestrator.models import Run, RunPage, RunRating
from prefshift_orchestrator.protocol import NotEnoughRatings, Selection, call_seed, select_movies
from prefshift_orchestrator.repository import Claim, LostClaim, NewRating, RunRepository
from prefshift_orchestrator.schemas import (
    BASELINE,
    CONTROL,
    LLM_IMPLEMENTATIONS,
    ArmSpec,
    Protocol,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Arm:
    """An arm as resolved for a run."""

    name: str
    kind: str  # "control" | "recommender"
    url: str | None = None
    recommender: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "recommender": self.recommender,
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Arm:
        return cls(
            name=str(payload["name"]),
            kind=str(payload["kind"]),
            url=payload.get("url"),
            recommender=payload.get("recommender"),
        )


def error_record(error: ServiceError) -> dict[str, Any]:
    return {"error": error.code, "status": error.status_code, "detail": error.detail}


@dataclass
class _Progress:
    total: int
    done: set[tuple[str, int]] = field(default_factory=set)

    def fraction_with(self, arm: str, page: int) -> float:
        self.done.add((arm, page))
        return min(1.0, len(self.done) / self.total)


class RunExecutor:
    """Runs the protocol for one claimed run. Stateless between runs."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        clients: ServiceClients,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clients = clients
        # SQLite has one writer at a time and its busy handler sleeps (up to 100 ms a try)
        # while another connection writes: this process's writers queue here instead.
        self._write_lock: AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if is_sqlite(settings.resolved_database_url) else nullcontext()
        )

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A session for one write transaction (serialised within the process on SQLite)."""
        async with self._write_lock, self.sessions() as session:
            yield session

    async def execute(self, claim: Claim) -> None:
        """Run (or resume) the claimed run to its end; record how it ended."""
        structlog.contextvars.bind_contextvars(run_id=claim.run_id)
        try:
            await self._execute(claim)
        except LostClaim:
            log.info("run_released", reason="claim lost (cancelled or re-queued)")
        except ServiceError as error:
            log.warning("run_failed", error=error.code, detail=error.detail)
            await self._finish(claim, "failed", error_record(error))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("run_crashed")
            record = {
                "error": "internal_error",
                "status": 500,
                "detail": f"unexpected {type(exc).__name__}: {exc}",
            }
            await self._finish(claim, "failed", record)
        finally:
            structlog.contextvars.unbind_contextvars("run_id")

    async def _finish(self, claim: Claim, status: str, error: dict[str, Any] | None) -> None:
        try:
            async with self.writing() as session:
                await RunRepository(session).finish(claim, status=status, error=error)
                await session.commit()
        except LostClaim:
            pass

    async def _execute(self, claim: Claim) -> None:
        async with self.sessions() as session:
            run = await RunRepository(session).get(claim.run_id)
            if run is None:
                return
            protocol = Protocol.model_validate(run.params)
            if run.selection is None or run.arms is None:
                await self._prepare(session, claim, run, protocol)
            assert run.selection is not None and run.arms is not None
            selection = Selection.from_json(run.selection)
            arms = [Arm.from_json(arm) for arm in run.arms]
            pages = {(p.arm, p.page): p for p in await RunRepository(session).pages(run.id)}
            stored = list(await RunRepository(session).ratings(run.id))
            user_id, dataset, seed = run.user_id, run.dataset, run.seed
            await session.commit()

        progress = _Progress(total=1 + len(arms) * protocol.pages)
        progress.done.update(key for key, page in pages.items() if page.completed_at)
        context = _RunContext(
            claim=claim,
            user_id=user_id,
            dataset=dataset,
            seed=seed,
            protocol=protocol,
            selection=selection,
            pages=pages,
            stored=stored,
            progress=progress,
        )
        await self._baseline(context)
        tasks = [asyncio.create_task(self._arm(context, arm), name=arm.name) for arm in arms]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, LostClaim | asyncio.CancelledError):
                raise result
        failures = [
            (arm, r) for arm, r in zip(arms, results, strict=True) if isinstance(r, BaseException)
        ]
        if failures:
            arm, failure = failures[0]
            if isinstance(failure, ServiceError):
                failure.detail = f"arm {arm.name!r}: {failure.detail}"
                raise failure
            raise failure
        await self._finish(claim, "completed", None)
        log.info("run_completed", user_id=user_id)

    # --- prepare ----------------------------------------------------------------------------------

    async def _prepare(
        self, session: AsyncSession, claim: Claim, run: Run, protocol: Protocol
    ) -> None:
        started = time.perf_counter()
        reads = DatasetReads(session)
        dataset_id = await reads.dataset_id(run.dataset)
        if dataset_id is None:
            raise NotFound(f"dataset {run.dataset!r} is not imported")
        movies = await reads.user_movies(dataset_id, run.user_id)
        if not movies:
            raise NotFound(f"user {run.user_id} has no ratings in dataset {run.dataset!r}")
        try:
            selection = select_movies(
                movies,
                test_size=protocol.test_size,
                persona_size=protocol.persona_size,
                seed=run.seed,
            )
        except NotEnoughRatings as exc:
            raise Unprocessable(f"user {run.user_id}: {exc}") from exc
        messages = list(run.messages or [])
        selected = time.perf_counter()
        # The genre lookup (tmdb-proxy) and the arms' state (recommenders) are independent.
        timed_genres = _timed(self._test_genres(selection, messages))
        timed_arms = _timed(self._resolve_arms(protocol.arm_specs(), run.dataset, messages))
        (test_genres, genres_ms), (arms, arms_ms) = await asyncio.gather(timed_genres, timed_arms)
        selection_json = {
            **selection.to_json(),
            "test_genres": test_genres,
            # How long preparing took: reading the dataset (the orchestrator's own work) and
            # the two service calls that ran side by side.
            "prepare_ms": {
                "dataset": (selected - started) * 1000,
                "tmdb_proxy": genres_ms,
                "recommenders": arms_ms,
            },
        }
        await RunRepository(session).fence(
            claim, selection=selection_json, arms=[arm.to_json() for arm in arms], messages=messages
        )
        await session.commit()
        run.selection = selection_json
        run.arms = [arm.to_json() for arm in arms]

    async def _test_genres(self, selection: Selection, messages: list[str]) -> dict[str, list[str]]:
        """TMDB genre names of the test movies, from tmdb-proxy (the dataset's genres when the
        proxy is unreachable or lacks a movie)."""
        genres = {str(movie.tmdb_id): list(movie.genres) for movie in selection.test}
        try:
            batch = await self.clients.movies([movie.tmdb_id for movie in selection.test])
        except ServiceError as error:
            messages.append(f"test movie genres from the dataset (tmdb-proxy: {error.detail})")
            return genres
        for movie in batch.movies:
            if movie.genre_names:
                genres[str(movie.id)] = movie.genre_names
        return genres

    async def _resolve_arms(
        self, specs: Sequence[ArmSpec], dataset: str, messages: list[str]
    ) -> list[Arm]:
        listings: dict[str, list[RecommenderInfo] | None] = {}
        arms: list[Arm] = []
        for spec in specs:
            if spec.name == CONTROL and spec.url is None and spec.recommender is None:
                arms.append(Arm(name=CONTROL, kind="control"))
                continue
            target = self.settings.orchestrator_arms.get(spec.name)
            url = spec.url or (target.url if target else None) or self.settings.recommender_url
            implementation = (
                spec.recommender or (target.recommender if target else None) or spec.name
            )
            if url not in listings:
                listings[url] = await self.clients.recommenders(url, dataset)
            listing = listings[url]
            arm = Arm(name=spec.name, kind="recommender", url=url, recommender=implementation)
            if listing is None:  # an external service without a listing: trust the contract
                arms.append(arm)
                continue
            info = next((item for item in listing if item.name == implementation), None)
            if info is None:
                raise Unprocessable(
                    f"arm {spec.name!r}: the recommender at {url} has no implementation "
                    f"{implementation!r} (it has: {', '.join(i.name for i in listing)})"
                )
            if info.kind == "llm" or implementation in LLM_IMPLEMENTATIONS:
                if info.status in ("unavailable", "failed"):
                    messages.append(
                        f"arm {spec.name!r} left out: the recommender reports {implementation!r} "
                        f"{info.status}" + (f" ({info.detail})" if info.detail else "")
                    )
                    continue
                arms.append(arm)
                continue
            if info.status != "ready" and info.kind != "external":
                await self._ensure_trained(url, info, dataset, messages)
            arms.append(arm)
        return arms

    async def _ensure_trained(
        self, url: str, info: RecommenderInfo, dataset: str, messages: list[str]
    ) -> None:
        if info.status in ("untrained", "failed"):
            if not self.settings.orchestrator_train_untrained:
                raise Conflict(
                    f"recommender {info.name!r} at {url} is not trained; train it "
                    f"(POST {url}/recommenders/{info.name}/train) or set "
                    "PREFSHIFT_ORCHESTRATOR_TRAIN_UNTRAINED=true"
                )
            await self.clients.train(url, info.name, dataset)
            messages.append(f"trained {info.name!r} on {dataset!r} before the run")
        deadline = (
            asyncio.get_running_loop().time() + self.settings.orchestrator_train_timeout_seconds
        )
        while True:
            listing = await self.clients.recommenders(url, dataset) or []
            current = next((item for item in listing if item.name == info.name), None)
            if current is None:
                raise UpstreamError(f"recommender {info.name!r} vanished from {url}/recommenders")
            if current.status == "ready":
                return
            if current.status in ("failed", "unavailable"):
                raise UpstreamError(
                    f"training {info.name!r} at {url} ended {current.status}: {current.detail}"
                )
            if asyncio.get_running_loop().time() > deadline:
                raise UpstreamTimeout(f"training {info.name!r} at {url} did not finish in time")
            await asyncio.sleep(1.0)

    # --- protocol steps -----------------------------------------------------------------------

    async def _rate(
        self,
        context: _RunContext,
        items: list[int],
        experiences: list[Experience],
        seed: int,
        *,
        occasion: int,
    ) -> tuple[list[NewRating], float]:
        persona = Persona(
            user_id=context.user_id,
            dataset=context.dataset,
            history=context.history,
            experiences=experiences,
        )
        request = RatingsRequest(
            persona=persona,
            items=items,
            backend=context.protocol.backend,
            seed=seed,
            occasion=occasion,  # the page: re-rating on another page may differ
            persona_model=context.protocol.persona_model,
        )
        timed = await self.clients.rate(request)
        by_id = {rating.tmdb_id: rating for rating in timed.value.ratings}
        ratings = [
            NewRating(tmdb_id=i, rating=by_id[i].rating, feeling=by_id[i].feeling) for i in items
        ]
        return ratings, timed.latency_ms

    async def _baseline(self, context: _RunContext) -> None:
        checkpoint = context.pages.get((BASELINE, 0))
        if checkpoint is not None and checkpoint.completed_at is not None:
            return
        seed = call_seed(context.seed, BASELINE, 0, "test")
        ratings, latency = await self._rate(context, context.test_ids, [], seed, occasion=0)
        async with self.writing() as session:
            await RunRepository(session).save_ratings(
                context.claim,
                arm=BASELINE,
                page=0,
                phase="test",
                ratings=ratings,
                latency_ms=latency,
                progress=context.progress.fraction_with(BASELINE, 0),
            )
            await session.commit()

    async def _arm(self, context: _RunContext, arm: Arm) -> None:
        structlog.contextvars.bind_contextvars(arm=arm.name)
        saver = _WriteBehind()
        try:
            await self._arm_pages(context, arm, saver)
        finally:
            await saver.flush()

    async def _save_ratings(
        self,
        context: _RunContext,
        arm: Arm,
        page: int,
        phase: str,
        ratings: list[NewRating],
        latency: float,
    ) -> None:
        async with self.writing() as session:
            # The test re-ratings complete a page (and move the run's progress).
            progress = context.progress.fraction_with(arm.name, page) if phase == "test" else None
            await RunRepository(session).save_ratings(
                context.claim,
                arm=arm.name,
                page=page,
                phase=phase,
                ratings=ratings,
                latency_ms=latency,
                progress=progress,
            )
            await session.commit()

    async def _arm_pages(self, context: _RunContext, arm: Arm, saver: _WriteBehind) -> None:
        experiences: list[Experience] = []
        shown: set[int] = set()
        stored = [r for r in context.stored if r.arm == arm.name and r.phase == "experience"]
        for page in range(1, context.protocol.pages + 1):
            checkpoint = context.pages.get((arm.name, page))
            page_experiences = sorted((r for r in stored if r.page == page), key=lambda r: r.id)
            if checkpoint is not None and checkpoint.recommended is not None:
                shown.update(int(item["tmdb_id"]) for item in checkpoint.recommended)
            if checkpoint is not None and checkpoint.completed_at is not None:
                experiences.extend(_experiences(page_experiences))
                continue
            if arm.kind != "control":
                items = await self._recommendations(
                    context, arm, page, checkpoint, experiences, shown, saver
                )
                shown.update(items)
                if checkpoint is not None and checkpoint.experienced_at is not None:
                    experiences.extend(_experiences(page_experiences))
                else:
                    seed = call_seed(context.seed, arm.name, page, "experience")
                    ratings, latency = await self._rate(
                        context, items, experiences, seed, occasion=page
                    )
                    await saver.submit(
                        self._save_ratings(context, arm, page, "experience", ratings, latency)
                    )
                    experiences.extend(
                        Experience(tmdb_id=r.tmdb_id, rating=r.rating, feeling=r.feeling[:2000])
                        for r in ratings
                    )
            seed = call_seed(context.seed, "test", page)
            ratings, latency = await self._rate(
                context, context.test_ids, experiences, seed, occasion=page
            )
            await saver.submit(self._save_ratings(context, arm, page, "test", ratings, latency))

    async def _recommendations(
        self,
        context: _RunContext,
        arm: Arm,
        page: int,
        checkpoint: RunPage | None,
        experiences: list[Experience],
        shown: set[int],
        saver: _WriteBehind,
    ) -> list[int]:
        if checkpoint is not None and checkpoint.recommended is not None:
            return [int(item["tmdb_id"]) for item in checkpoint.recommended]
        assert arm.url is not None and arm.recommender is not None
        exclude = sorted(set(context.test_ids) | context.persona_ids | shown)
        history = [
            *context.history,
            *(RatedMovie(tmdb_id=e.tmdb_id, rating=e.rating) for e in experiences),
        ]
        request = RecommendationRequest(
            recommender=arm.recommender,
            dataset=context.dataset,
            history=history,
            n=context.protocol.page_size,
            exclude=exclude,
            seed=call_seed(context.seed, arm.name, page, "recommend"),
        )
        budget = context.budgets.setdefault(
            arm.name, ArmBudget(self.settings.orchestrator_arm_run_budget_seconds)
        )
        timed = await self.clients.recommend(arm.url, request, budget)
        response = timed.value
        # The contract forbids returning excluded or history movies; an external arm might.
        banned = set(exclude) | {movie.tmdb_id for movie in history}
        items: list[dict[str, Any]] = []
        for item in response.items:
            if item.tmdb_id in banned or any(i["tmdb_id"] == item.tmdb_id for i in items):
                continue
            items.append(item.model_dump(mode="json"))
        items = items[: context.protocol.page_size]
        if not items:
            raise UpstreamError(f"the recommender returned no new movies for page {page}")
        info = {
            "model_version": response.model_version,
            "request_id": response.request_id,
            "short": response.short or len(items) < context.protocol.page_size,
            "dropped": len(response.items) - len(items),
        }
        await saver.submit(self._save_recommendations(context, arm, page, items, info, timed))
        return [int(item["tmdb_id"]) for item in items]

    async def _save_recommendations(
        self,
        context: _RunContext,
        arm: Arm,
        page: int,
        items: list[dict[str, Any]],
        info: dict[str, Any],
        timed: Timed[RecommendationResponse],
    ) -> None:
        async with self.writing() as session:
            await RunRepository(session).save_recommendations(
                context.claim,
                arm=arm.name,
                page=page,
                recommended=items,
                recommender_info=info,
                latency_ms=timed.latency_ms,
            )
            await session.commit()


class _WriteBehind:
    """Stores one arm's steps in order while the arm goes on with its next service call.

    A step's write starts when the step is done; the next write waits for it, so checkpoints are
    stored in protocol order and a later step is never stored before an earlier one. A process
    that dies loses at most the step being written, whose call is then made again on resume (it
    was never stored, so it is not completed work). The database's latency leaves the arm's
    critical path: a page costs its service calls, not its commits.
    """

    def __init__(self) -> None:
        self._pending: asyncio.Task[None] | None = None

    async def submit(self, write: Coroutine[Any, Any, None]) -> None:
        await self.flush()
        self._pending = asyncio.create_task(write)

    async def flush(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending


async def _timed(awaitable: Awaitable[T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = await awaitable
    return result, (time.perf_counter() - started) * 1000


def _experiences(ratings: Sequence[RunRating]) -> list[Experience]:
    return [
        Experience(tmdb_id=r.tmdb_id, rating=r.rating, feeling=(r.feeling or "")[:2000])
        for r in ratings
    ]


@dataclass
class _RunContext:
    claim: Claim
    user_id: int
    dataset: str
    seed: int
    protocol: Protocol
    selection: Selection
    pages: dict[tuple[str, int], RunPage]
    stored: list[RunRating]
    progress: _Progress
    #: Time each external arm may still take in this run (ARM_RUN_BUDGET_SECONDS).
    budgets: dict[str, ArmBudget] = field(default_factory=dict)

    @property
    def test_ids(self) -> list[int]:
        return [movie.tmdb_id for movie in self.selection.test]

    @property
    def persona_ids(self) -> set[int]:
        return {movie.tmdb_id for movie in self.selection.persona}

    @property
    def history(self) -> list[RatedMovie]:
        return [
            RatedMovie(tmdb_id=movie.tmdb_id, rating=movie.rating)
            for movie in self.selection.persona
        ]
