"""Executes one claimed run: the protocol (docs/architecture.md, "The protocol"), step by step.

1. *prepare* (once; :mod:`.prepare`): the test and persona movies, the arms as resolved;
2. *plan* (:mod:`.plan`): from what is stored, the steps that remain — a resumed run repeats
   no stored step;
3. *baseline* (arm ``baseline``, page 0): the fresh persona rates the test movies;
4. every arm concurrently, page by page (:meth:`RunExecutor._page`): the arm shows ``page_size``
   unseen movies (history = persona history + the arm's experiences so far; test, persona and
   shown movies excluded), the persona rates them (→ experiences), then re-rates the test
   movies (never experiences). ``control`` only re-rates. The re-rating needs the page's
   experiences and nothing after them, and the next page needs only those experiences, so the
   re-rating runs beside the next page's recommendation: an arm's critical path is a
   recommendation and a rating per page, plus the last re-rating.

Each step is stored when it completes (:mod:`.checkpoints`, written behind the arm's next call),
in protocol order: a page's re-rating is stored before the next page's recommendations.

Seeds: the test re-ratings of page p use the same seed in every arm (common random numbers, so
the difference between an arm and control comes from experiences, not sampling noise); the
baseline and the experience ratings have their own seeds. All derive from the run's seed.

Shown predictions: a shown-prediction arm's page is rated beside predicted ratings
(:func:`~prefshift_orchestrator.protocol.page_predictions`), and once more without them with
the same seed (``blind``, stored with the experiences in one step: the shift on the shown
movies compares the two). The ``rerate`` arm re-rates the test movies beside the predictions
of their seeded conditions (:func:`~prefshift_orchestrator.protocol.rerate_conditions`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_common.contracts import (
    Experience,
    Persona,
    RatedMovie,
    RatingsRequest,
    ShownPrediction,
)
from prefshift_common.errors import ServiceError
from prefshift_orchestrator.clients import ServiceClients
from prefshift_orchestrator.config import Settings
from prefshift_orchestrator.execution.arms import (
    RERATE_KIND,
    Arm,
    ArmResolver,
    PageRequest,
    PageSource,
    SourceDeps,
    page_source,
)
from prefshift_orchestrator.execution.checkpoints import (
    CheckpointStore,
    Progress,
    WriteBehind,
    experiences_of,
)
from prefshift_orchestrator.execution.plan import BASELINE, ArmPlan, PageSteps, plan_run
from prefshift_orchestrator.execution.prepare import Preparation
from prefshift_orchestrator.execution.retry import retry_step
from prefshift_orchestrator.metrics import OrchestratorMetrics
from prefshift_orchestrator.protocol import (
    Selection,
    Shown,
    call_seed,
    page_predictions,
    rerate_conditions,
)
from prefshift_orchestrator.repository import Claim, LostClaim, NewRating
from prefshift_orchestrator.schemas import Protocol, crash_record, error_record

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class RunState:
    """A prepared run, as its steps need it."""

    claim: Claim
    user_id: int
    dataset: str
    seed: int
    protocol: Protocol
    selection: Selection
    arms: list[Arm]
    missing: list[str] = field(default_factory=list)  # ratings an LLM persona left out
    empty: list[str] = field(default_factory=list)  # pages that showed nothing, and why
    # (backend, LLM model, persona set, population) of every rating answer: who rated
    rated_by: set[tuple[str, str | None, str | None, str | None]] = field(default_factory=set)

    @property
    def test_ids(self) -> list[int]:
        return [movie.tmdb_id for movie in self.selection.test]

    @property
    def persona_ids(self) -> set[int]:
        return {movie.tmdb_id for movie in self.selection.persona}

    @property
    def history(self) -> list[RatedMovie]:
        return [RatedMovie(tmdb_id=m.tmdb_id, rating=m.rating) for m in self.selection.persona]


class RunExecutor:
    """Runs the protocol for one claimed run. Stateless between runs."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        clients: ServiceClients,
        metrics: OrchestratorMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.clients = clients
        self.metrics = metrics or OrchestratorMetrics()
        self.store = CheckpointStore(
            sessions, database_url=settings.resolved_database_url, metrics=self.metrics
        )
        self.sources = SourceDeps(settings=settings, clients=clients, sessions=sessions)
        self.preparation = Preparation(
            sessions=sessions,
            resolver=ArmResolver(settings=settings, clients=clients),
        )

    async def execute(self, claim: Claim) -> None:
        """Run (or resume) the claimed run to its end; record how it ended."""
        structlog.contextvars.bind_contextvars(run_id=claim.run_id)
        try:
            await self._execute(claim)
        except LostClaim:
            log.info("run_released", reason="claim lost (cancelled or re-queued)")
        except ServiceError as error:
            log.warning("run_failed", error=error.code, detail=error.detail)
            await self.store.finish(claim, "failed", error_record(error))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("run_crashed")
            await self.store.finish(claim, "failed", crash_record(exc))
        finally:
            structlog.contextvars.unbind_contextvars("run_id")

    async def _execute(self, claim: Claim) -> None:
        run = await self._prepared(claim)
        if run is None:
            return
        plan = plan_run(
            pages=run.protocol.pages, arms=run.arms, stored=await self.store.stored(claim.run_id)
        )
        progress = Progress(total=plan.total, done=set(plan.done))
        if plan.baseline:
            await self._baseline(run, progress)
        arms = {arm.name: arm for arm in run.arms}
        results = await asyncio.gather(
            *(
                asyncio.create_task(
                    self._arm(run, arms[steps.arm], steps, progress), name=steps.arm
                )
                for steps in plan.arms
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, LostClaim | asyncio.CancelledError):
                raise result
        for steps, result in zip(plan.arms, results, strict=True):
            if isinstance(result, ServiceError):
                result.detail = f"arm {steps.arm!r}: {result.detail}"
            if isinstance(result, BaseException):
                raise result
        notes = []
        if run.missing:
            notes.append(
                f"{len(run.missing)} ratings left unrated by the persona's LLM (the measurements "
                f"use the rated movies): {'; '.join(run.missing[:10])}"
            )
        if run.empty:
            notes.append(
                f"{len(run.empty)} pages showed no movies (the persona rated nothing on them and "
                f"re-rated the test movies): {'; '.join(run.empty[:10])}"
            )
        rated_by = [
            {
                "backend": backend,
                "model": model,
                "persona_model": persona_model,
                "population": population,
            }
            for backend, model, persona_model, population in sorted(run.rated_by, key=str)
        ]
        await self.store.finish(claim, "completed", None, notes, rated_by=rated_by)
        log.info("run_completed", user_id=run.user_id)

    async def _prepared(self, claim: Claim) -> RunState | None:
        """The run, prepared (preparing it first if it has not been)."""
        run = await self.store.run(claim.run_id)
        if run is None:
            return None
        protocol = Protocol.model_validate(run.params)
        selection, arms = run.selection, run.arms
        if selection is None or arms is None:
            prepared = await self.preparation.prepare(run, protocol)
            selection, arms = prepared.selection, [arm.to_json() for arm in prepared.arms]
            await self.store.save_preparation(
                claim, selection=selection, arms=arms, messages=prepared.messages
            )
        return RunState(
            claim=claim,
            user_id=run.user_id,
            dataset=run.dataset,
            seed=run.seed,
            protocol=protocol,
            selection=Selection.from_json(selection),
            arms=[Arm.from_json(arm) for arm in arms],
        )

    # --- steps ------------------------------------------------------------------------------

    async def _baseline(self, run: RunState, progress: Progress) -> None:
        seed = call_seed(run.seed, BASELINE, 0, "test")
        ratings, latency = await self._rate(run, run.test_ids, [], seed, occasion=0)
        await self.store.save_test_ratings(
            run.claim, arm=BASELINE, page=0, ratings=ratings, latency_ms=latency, progress=progress
        )

    async def _arm(self, run: RunState, arm: Arm, plan: ArmPlan, progress: Progress) -> None:
        """The remaining pages of one arm, in order; each step is written behind the next."""
        structlog.contextvars.bind_contextvars(arm=arm.name)
        source = page_source(arm, self.sources)
        experiences = list(plan.experiences)
        shown = set(plan.shown)
        writes = WriteBehind()
        try:
            for steps in plan.pages:
                await self._page(run, arm, source, steps, experiences, shown, writes, progress)
        except asyncio.CancelledError:
            await writes.abandon()  # stopping: do not wait for a re-rating still in flight
            raise
        finally:
            await writes.flush()

    async def _page(
        self,
        run: RunState,
        arm: Arm,
        source: PageSource | None,
        steps: PageSteps,
        experiences: list[Experience],
        shown: set[int],
        writes: WriteBehind,
        progress: Progress,
    ) -> None:
        """One page of one arm: the arm shows movies, the persona rates them (its experiences
        grow), then it re-rates the test movies. Steps already stored are reused."""
        page = steps.page
        if source is not None:
            items = steps.recommended
            if items is None:
                items = await self._show(run, arm, source, page, experiences, shown, writes)
            shown.update(items)
            if steps.experiences is not None:
                experiences.extend(steps.experiences)
            else:
                seed = call_seed(run.seed, arm.name, page, "experience")
                # An empty page (the arm found or recorded nothing) has nothing to rate.
                ratings: list[NewRating] = []
                blind: list[NewRating] = []
                latency = 0.0
                if items and arm.shown_offset is not None:
                    predicted = self._page_shown(run, items, arm.shown_offset)
                    # the same movies, same persona, same seed: with and without predictions
                    (ratings, latency), (blind, blind_latency) = await asyncio.gather(
                        self._rate(
                            run, list(items), experiences, seed, occasion=page, shown=predicted
                        ),
                        self._rate(run, list(items), experiences, seed, occasion=page),
                    )
                    latency = max(latency, blind_latency)
                elif items:
                    ratings, latency = await self._rate(
                        run, list(items), experiences, seed, occasion=page
                    )
                await writes.submit(
                    self.store.save_experiences(
                        run.claim,
                        arm=arm.name,
                        page=page,
                        ratings=ratings,
                        latency_ms=latency,
                        blind=blind,
                    )
                )
                experiences.extend(experiences_of(ratings))
        # The re-rating of the test movies is the end of the page, but the next page needs only
        # this page's experiences: it runs beside the next page's calls (off the arm's critical
        # path) and is stored behind them in protocol order, before the next page's first step.
        seed = call_seed(run.seed, "test", page)
        before = list(experiences)  # the persona as this page left it
        conditions = (
            rerate_conditions(run.seed, run.selection.test, run.protocol.rerate_delta)
            if arm.kind == RERATE_KIND
            else None
        )

        async def store_rerating() -> None:
            ratings, latency = await self._rate(
                run, run.test_ids, before, seed, occasion=page, shown=conditions
            )
            await self.store.save_test_ratings(
                run.claim,
                arm=arm.name,
                page=page,
                ratings=ratings,
                latency_ms=latency,
                progress=progress,
            )

        await writes.submit(store_rerating())

    async def _show(
        self,
        run: RunState,
        arm: Arm,
        source: PageSource,
        page: int,
        experiences: list[Experience],
        shown: set[int],
        writes: WriteBehind,
    ) -> tuple[int, ...]:
        """Ask the arm's source for a page of unseen movies; store it (behind)."""
        request = PageRequest(
            arm=arm,
            page=page,
            dataset=run.dataset,
            history=[
                *run.history,
                *(RatedMovie(tmdb_id=e.tmdb_id, rating=e.rating) for e in experiences),
            ],
            exclude=sorted(set(run.test_ids) | run.persona_ids | shown),
            n=run.protocol.page_size,
            seed=call_seed(run.seed, arm.name, page, "recommend"),
        )
        with self.metrics.step_seconds.labels("recommend").time():
            shown_page = await source.page(request)
        if not shown_page.items:
            reason = shown_page.info.get("reason") or "nothing to show"
            run.empty.append(f"arm {arm.name!r} page {page}: {reason}")
        await writes.submit(
            self.store.save_recommendations(run.claim, arm=arm.name, page=page, shown=shown_page)
        )
        return tuple(shown_page.tmdb_ids)

    @staticmethod
    def _page_shown(run: RunState, items: tuple[int, ...], offset: float) -> dict[int, Shown]:
        """The predicted ratings a shown-prediction arm shows beside its page's movies."""
        stars = page_predictions(len(items), [m.rating for m in run.selection.persona], offset)
        return {tmdb_id: Shown(stars=value) for tmdb_id, value in zip(items, stars, strict=True)}

    async def _rate(
        self,
        run: RunState,
        items: list[int],
        experiences: list[Experience],
        seed: int,
        *,
        occasion: int,
        shown: Mapping[int, Shown] | None = None,
    ) -> tuple[list[NewRating], float]:
        """The persona (its history plus ``experiences``) rates ``items`` after page
        ``occasion`` (0: the baseline), each beside its ``shown`` prediction if it has one."""
        shown = shown or {}
        persona = Persona(
            user_id=run.user_id, dataset=run.dataset, history=run.history, experiences=experiences
        )
        request = RatingsRequest(
            persona=persona,
            items=items,
            backend=run.protocol.backend,
            seed=seed,
            occasion=occasion,  # the page: re-rating on another page may differ
            persona_model=run.protocol.persona_model,
            shown=[
                ShownPrediction(tmdb_id=i, stars=shown[i].stars or 0.0)
                for i in items
                if i in shown and shown[i].stars is not None
            ],
        )
        with self.metrics.step_seconds.labels("ratings").time():
            timed = await retry_step(self.settings, "ratings", lambda: self.clients.rate(request))
        answer = timed.value
        run.rated_by.add((answer.backend, answer.model, answer.persona_model, answer.population))
        by_id = {rating.tmdb_id: rating for rating in timed.value.ratings}
        nothing = Shown(stars=None)
        ratings = [
            NewRating(
                tmdb_id=i,
                rating=by_id[i].rating,
                feeling=by_id[i].feeling,
                shown=shown.get(i, nothing).stars,
                condition=shown.get(i, nothing).condition,
            )
            for i in items
            if i in by_id
        ]
        # an LLM persona may leave a few movies unrated: the measurements use the rated ones
        run.missing.extend(f"tmdb {m.tmdb_id}: {m.reason}" for m in timed.value.missing)
        return ratings, timed.latency_ms
