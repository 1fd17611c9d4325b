"""Arms: what each arm of a run is (resolved once, when the run is prepared) and where its
pages come from while the run executes.

*Resolution* (:class:`ArmResolver`) turns the protocol's arm specs into :class:`Arm` records:
``control`` sees nothing; any other arm is an implementation at a service speaking the
recommender contract. The resolver lists each service's implementations once, leaves out LLM
arms the service reports unavailable (with a message), and trains untrained algorithmic arms
first (or refuses, per settings), waiting for training to end.

*Pages* come from a :class:`PageSource`, one implementation per arm kind, picked from
:data:`PAGE_SOURCES` by :func:`page_source`. To add an arm kind: give it a name, resolve specs
of that kind in :meth:`ArmResolver.resolve` (see :func:`spec_kind`), write a ``PageSource``
and add it to ``PAGE_SOURCES``. Each source returns a page that obeys the recommender contract
(no excluded, history or repeated movies, at most ``n``); :func:`admissible` enforces it on
answers that come from outside. A page may be empty (the recommender found nothing, or a
recorded run's page showed nothing): its ``info`` says ``empty`` and why, the persona rates
nothing on it and re-rates the test movies, and the run's messages name it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_common.contracts import RatedMovie, RecommendationRequest, RecommenderInfo
from prefshift_common.errors import Conflict, Unprocessable, UpstreamError, UpstreamTimeout
from prefshift_orchestrator.clients import ArmBudget, ServiceClients
from prefshift_orchestrator.config import Settings
from prefshift_orchestrator.execution.retry import retry_step
from prefshift_orchestrator.replication.recorded import RecordedRun, recorded_page
from prefshift_orchestrator.schemas import CONTROL, LLM_IMPLEMENTATIONS, RERATE, ArmSpec

#: Arm kinds. ``control`` shows no pages; every other kind does. ``recorded`` replays the
#: pages of an earlier run (:mod:`prefshift_orchestrator.replication.recorded`). ``rerate``
#: (the rerate design's one arm) shows no pages either: it re-rates the test movies beside
#: predicted ratings.
CONTROL_KIND = "control"
RECOMMENDER_KIND = "recommender"
RECORDED_KIND = "recorded"
RERATE_KIND = "rerate"


@dataclass(frozen=True)
class Arm:
    """An arm as resolved for a run (stored in ``runs.arms``)."""

    name: str
    kind: str
    url: str | None = None
    recommender: str | None = None
    #: A recorded arm's source: ``{"run": id, "arm": name}``.
    recorded: dict[str, Any] | None = None
    #: A shown-prediction arm: the stars added to each predicted rating it shows.
    shown_offset: float | None = None

    @property
    def shows_pages(self) -> bool:
        return self.kind not in (CONTROL_KIND, RERATE_KIND)

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "recommender": self.recommender,
        }
        if self.recorded is not None:
            payload["recorded"] = self.recorded
        if self.shown_offset is not None:
            payload["shown_prediction"] = {"offset": self.shown_offset}
        return payload

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Arm:
        return cls(
            name=str(payload["name"]),
            kind=str(payload["kind"]),
            url=payload.get("url"),
            recommender=payload.get("recommender"),
            recorded=payload.get("recorded"),
            shown_offset=(payload.get("shown_prediction") or {}).get("offset"),
        )


# --- resolution -----------------------------------------------------------------------------


def spec_kind(spec: ArmSpec) -> str:
    """The kind of arm a spec asks for."""
    if spec.recorded is not None:
        return RECORDED_KIND
    if spec.name == RERATE:
        return RERATE_KIND
    if spec.name == CONTROL and spec.url is None and spec.recommender is None:
        return CONTROL_KIND
    return RECOMMENDER_KIND


class ArmResolver:
    """Resolves a protocol's arm specs into arms ready to serve pages."""

    def __init__(self, *, settings: Settings, clients: ServiceClients) -> None:
        self.settings = settings
        self.clients = clients

    async def resolve(
        self,
        specs: Sequence[ArmSpec],
        dataset: str,
        messages: list[str],
        recorded: RecordedRun | None = None,
    ) -> list[Arm]:
        """The arms of a run, in the protocol's order; arms left out are explained in
        ``messages``. ``recorded``: the run the protocol's recorded arms replay."""
        listings: dict[str, list[RecommenderInfo] | None] = {}
        arms: list[Arm] = []
        for spec in specs:
            kind = spec_kind(spec)
            if kind in (CONTROL_KIND, RERATE_KIND):
                arm: Arm | None = Arm(name=spec.name, kind=kind)
            elif kind == RECORDED_KIND:
                assert recorded is not None and spec.recorded is not None
                source = recorded.arm(spec.recorded.arm or spec.name)
                arm = Arm(
                    name=spec.name,
                    kind=RECORDED_KIND,
                    recorded={"run": recorded.run_id, "arm": source},
                )
            else:
                arm = await self._recommender(spec, dataset, listings, messages)
            if arm is not None:
                if spec.shown_prediction is not None:
                    arm = replace(arm, shown_offset=spec.shown_prediction.offset)
                arms.append(arm)
        return arms

    async def _recommender(
        self,
        spec: ArmSpec,
        dataset: str,
        listings: dict[str, list[RecommenderInfo] | None],
        messages: list[str],
    ) -> Arm | None:
        """An implementation at a recommender service, trained if need be; None when the
        service reports it unavailable (LLM arms only)."""
        target = self.settings.orchestrator_arms.get(spec.name)
        url = spec.url or (target.url if target else None) or self.settings.recommender_url
        implementation = spec.recommender or (target.recommender if target else None) or spec.name
        if url not in listings:
            listings[url] = await self.clients.recommenders(url, dataset)
        listing = listings[url]
        arm = Arm(name=spec.name, kind=RECOMMENDER_KIND, url=url, recommender=implementation)
        if listing is None:  # an external service without a listing: trust the contract
            return arm
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
                return None
            return arm
        if info.status != "ready" and info.kind != "external":
            await self._ensure_trained(url, info, dataset, messages)
        return arm

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


# --- pages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageRequest:
    """What an arm is asked for one page."""

    arm: Arm
    page: int
    dataset: str
    #: The persona's history: its real ratings, then the arm's experiences so far.
    history: list[RatedMovie]
    #: Movies that must not be shown: test, persona and already shown movies (sorted).
    exclude: list[int]
    n: int
    seed: int


@dataclass(frozen=True)
class Page:
    """The movies shown on one page (recommended items as JSON, as stored) and where they came
    from (``info``: model version, request id, short, dropped)."""

    items: list[dict[str, Any]]
    info: dict[str, Any] = field(default_factory=dict)
    latency_ms: float = 0.0

    @property
    def tmdb_ids(self) -> list[int]:
        return [int(item["tmdb_id"]) for item in self.items]


class PageSource(Protocol):
    """Where an arm's pages come from."""

    async def page(self, request: PageRequest) -> Page: ...


@dataclass(frozen=True)
class SourceDeps:
    """What a page source may use: the service clients and the database."""

    settings: Settings
    clients: ServiceClients
    sessions: async_sessionmaker[AsyncSession]


class RecommenderSource:
    """Pages from an implementation at a service speaking the recommender contract."""

    def __init__(self, arm: Arm, deps: SourceDeps) -> None:
        assert arm.url is not None and arm.recommender is not None
        self.url = arm.url
        self.recommender = arm.recommender
        self.clients = deps.clients
        self.settings = deps.settings
        # The time this run may still spend waiting on the arm (an external one).
        self.budget = ArmBudget(deps.settings.orchestrator_arm_run_budget_seconds)

    async def page(self, request: PageRequest) -> Page:
        asked = RecommendationRequest(
            recommender=self.recommender,
            dataset=request.dataset,
            history=request.history,
            n=request.n,
            exclude=request.exclude,
            seed=request.seed,
        )
        timed = await retry_step(
            self.settings,
            "recommendations",
            lambda: self.clients.recommend(self.url, asked, self.budget),
        )
        response = timed.value
        info: dict[str, Any] = {
            "model_version": response.model_version,
            "request_id": response.request_id,
        }
        if not response.items:
            # the recommender found nothing to show: an empty page, recorded with its reason
            reason = response.note or "the recommender answered no movies"
            info |= {"short": True, "empty": True, "reason": reason[:1000], "dropped": 0}
            return Page(items=[], info=info, latency_ms=timed.latency_ms)
        items = admissible(
            [item.model_dump(mode="json") for item in response.items], request=request
        )
        info |= {
            "short": response.short or len(items) < request.n,
            "dropped": len(response.items) - len(items),
        }
        if response.note:
            info["note"] = response.note[:1000]
        return Page(items=items, info=info, latency_ms=timed.latency_ms)


def admissible(items: Sequence[dict[str, Any]], *, request: PageRequest) -> list[dict[str, Any]]:
    """The items a page may show: the contract forbids excluded, history and repeated movies
    (an external arm might send them anyway), and at most ``n``. An answer of movies none of
    which may be shown breaks the contract and fails the arm (an answer of no movies at all is
    an empty page: :class:`RecommenderSource` records it with the recommender's reason)."""
    banned = set(request.exclude) | {movie.tmdb_id for movie in request.history}
    kept: list[dict[str, Any]] = []
    for item in items:
        tmdb_id = int(item["tmdb_id"])
        if tmdb_id not in banned:
            banned.add(tmdb_id)
            kept.append(item)
    if not kept:
        raise UpstreamError(f"the recommender returned no new movies for page {request.page}")
    return kept[: request.n]


class RecordedSource:
    """The pages an earlier run showed, in the same order (nothing asked, nothing filtered:
    the point is to show exactly what that run showed). A page it lacks is empty."""

    def __init__(self, arm: Arm, deps: SourceDeps) -> None:
        assert arm.recorded is not None
        self.run_id = int(arm.recorded["run"])
        self.arm = str(arm.recorded["arm"])
        self.sessions = deps.sessions

    async def page(self, request: PageRequest) -> Page:
        async with self.sessions() as session:
            items = await recorded_page(
                session, run_id=self.run_id, arm=self.arm, page=request.page
            )
        info = {"recorded_run": self.run_id, "recorded_arm": self.arm, "empty": not items}
        return Page(items=items, info=info)


#: Arm kind → its page source. ``control`` has none: it shows no pages.
PAGE_SOURCES: dict[str, Callable[[Arm, SourceDeps], PageSource]] = {
    RECOMMENDER_KIND: RecommenderSource,
    RECORDED_KIND: RecordedSource,
}


def page_source(arm: Arm, deps: SourceDeps) -> PageSource | None:
    """The page source of an arm (None for an arm that shows no pages)."""
    if not arm.shows_pages:
        return None
    try:
        factory = PAGE_SOURCES[arm.kind]
    except KeyError:
        raise Unprocessable(f"arm {arm.name!r}: unknown arm kind {arm.kind!r}") from None
    return factory(arm, deps)
