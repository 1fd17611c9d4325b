"""Small services that speak the recommender and simulator contracts, for testing the
orchestrator on its own (real HTTP on loopback). They record every request, can be told to fail
or to be slow, and rate in a transparent way, so a test can recompute what it should see.

The end-to-end tests (``tests/e2e``) run the real recommender and simulator instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from prefshift_common.contracts import (
    ItemRating,
    RatingsRequest,
    RatingsResponse,
    RecommendationRequest,
    RecommendationResponse,
    RecommendedItem,
    Usage,
)
from tests.fakes.live import LiveServer


def _unit(*parts: object) -> float:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def half_step(value: float) -> float:
    return min(5.0, max(0.5, round(value * 2) / 2))


class StandInSimulator:
    """``POST /ratings``: a persona that rates every movie at its history mean, plus
    ``exposure`` × (number of experiences rated ≥ 4) / 10, plus a seeded ±0.5 noise step; a
    movie shown with a predicted rating moves ``anchoring`` of the way to it."""

    def __init__(
        self, *, exposure: float = 0.0, delay: float = 0.0, anchoring: float = 0.0
    ) -> None:
        self.exposure = exposure
        self.anchoring = anchoring
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.fail_after: int | None = None
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.add_api_route("/ratings", self._ratings, methods=["POST"])
        self.app.add_api_route("/healthz", lambda: {"status": "ok"}, methods=["GET"])

    def rate(self, request: RatingsRequest) -> list[ItemRating]:
        history = request.persona.history
        mean = sum(m.rating for m in history) / len(history)
        liked = sum(1 for e in request.persona.experiences if e.rating >= 4.0)
        shown = request.shown_stars()
        ratings = []
        for item in request.items:
            noise = (_unit(request.seed, item) - 0.5) * 1.0
            value = mean + self.exposure * liked / 10 + noise
            if item in shown:
                value += self.anchoring * (shown[item] - value)
            value = half_step(value)
            ratings.append(ItemRating(tmdb_id=item, rating=value, feeling=f"felt {value}"))
        return ratings

    async def _ratings(self, request: Request) -> Any:
        body = await request.json()
        with self._lock:
            self.requests.append(body)
            count = len(self.requests)
        if self.fail_after is not None and count > self.fail_after:
            return JSONResponse({"error": "unavailable", "detail": "stand-in down"}, 503)
        if self.delay:
            await asyncio.sleep(self.delay)
        parsed = RatingsRequest.model_validate(body)
        return RatingsResponse(
            backend="embedded",
            persona_model=parsed.persona_model or "stand-in",
            ratings=self.rate(parsed),
            usage=Usage(latency_ms=1.0),
        ).model_dump(mode="json")


class StandInRecommender:
    """``GET /recommenders`` and ``POST /recommendations`` over a fixed pool of TMDB ids: the
    first ``n`` pool movies not in the history or the exclusions, in pool order (none, with a
    note saying why, for the implementations named in ``empty``)."""

    def __init__(
        self,
        pool: Sequence[int],
        *,
        listing: list[dict[str, Any]] | None = None,
        with_listing: bool = True,
        delay: float = 0.0,
        empty: Sequence[str] = (),
    ) -> None:
        self.pool = list(pool)
        self.empty = set(empty)
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.train_requests: list[str] = []
        self.listing = listing or [
            {"name": "als", "kind": "collaborative", "trained": True, "status": "ready"},
            {"name": "random", "kind": "baseline", "trained": True, "status": "ready"},
            {"name": "llm", "kind": "llm", "trained": True, "status": "unavailable"},
            {"name": "llm-persuasive", "kind": "llm", "trained": True, "status": "unavailable"},
        ]
        self.app = FastAPI()
        self.app.add_api_route("/recommendations", self._recommend, methods=["POST"])
        if with_listing:
            self.app.add_api_route("/recommenders", self._list, methods=["GET"])
            self.app.add_api_route("/recommenders/{name}/train", self._train, methods=["POST"])

    async def _list(self) -> Any:
        return {"recommenders": self.listing}

    async def _train(self, name: str) -> Any:
        self.train_requests.append(name)
        for entry in self.listing:
            if entry["name"] == name:
                entry.update(status="ready", trained=True)
        return JSONResponse({"name": name, "status": "training"}, 202)

    async def _recommend(self, request: Request) -> Any:
        body = await request.json()
        self.requests.append(body)
        if self.delay:
            await asyncio.sleep(self.delay)
        parsed = RecommendationRequest.model_validate(body)
        seen = {m.tmdb_id for m in parsed.history} | set(parsed.exclude)
        picks = [tmdb_id for tmdb_id in self.pool if tmdb_id not in seen][: parsed.n]
        if parsed.recommender in self.empty:
            picks = []
        return RecommendationResponse(
            recommender=parsed.recommender,
            model_version="standin-1",
            request_id=f"r{len(self.requests)}",
            items=[
                RecommendedItem(tmdb_id=t, title=f"movie {t}", score=1.0 / (i + 1))
                for i, t in enumerate(picks)
            ],
            short=len(picks) < parsed.n,
            note="0 of 5 movies found; 9 named: 9 unresolved" if not picks else None,
        ).model_dump(mode="json")


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    with LiveServer(app) as server:
        yield server.url


@contextmanager
def stand_in_services(
    simulator: StandInSimulator, recommender: StandInRecommender
) -> Iterator[dict[str, str]]:
    """Both stand-ins on loopback; yields the orchestrator settings that point at them."""
    with serving(simulator.app) as simulator_url, serving(recommender.app) as recommender_url:
        yield {"simulator_url": simulator_url, "recommender_url": recommender_url}
