"""Calls to the other services (recommender, simulator, tmdb-proxy and external arms).

Each call returns its parsed contract and its latency. Connection failures, timeouts and 5xx
answers are retried a bounded number of times, then become typed errors naming the service; 4xx
answers are never retried. The API token goes only to the configured prefshift services, never
to an external arm's URL.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import structlog
from pydantic import BaseModel, TypeAdapter, ValidationError

from prefshift_common.contracts import (
    MovieBatchRequest,
    MovieBatchResponse,
    RatingsRequest,
    RatingsResponse,
    RecommendationRequest,
    RecommendationResponse,
    RecommenderInfo,
)
from prefshift_common.errors import (
    Conflict,
    NotFound,
    ServiceError,
    Unavailable,
    Unprocessable,
    UpstreamError,
    UpstreamTimeout,
)
from prefshift_common.http import create_http_client
from prefshift_orchestrator.config import Settings

log = structlog.get_logger(__name__)
Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")
_infos = TypeAdapter(list[RecommenderInfo])


@dataclass(frozen=True)
class Timed(Generic[T]):
    value: T
    latency_ms: float


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:500]
    return str(body)[:300]


class ServiceClients:
    """HTTP clients for the services a run calls; created in the lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        timeout = httpx.Timeout(
            connect=5.0, read=settings.orchestrator_call_timeout_seconds, write=30.0, pool=60.0
        )
        self.internal = create_http_client(
            timeout=timeout, api_token=settings.api_token, max_connections=200
        )
        self.external = create_http_client(timeout=timeout, max_connections=100)
        self._internal_urls = {
            settings.recommender_url.rstrip("/"),
            settings.simulator_url.rstrip("/"),
            settings.tmdb_proxy_url.rstrip("/"),
        }

    async def aclose(self) -> None:
        await self.internal.aclose()
        await self.external.aclose()

    def _client(self, base_url: str) -> httpx.AsyncClient:
        return self.internal if base_url.rstrip("/") in self._internal_urls else self.external

    async def _send(
        self, service: str, method: str, base_url: str, path: str, **kwargs: Any
    ) -> Timed[httpx.Response]:
        """One request with bounded retries of connection errors, timeouts and 5xx."""
        client = self._client(base_url)
        url = f"{base_url.rstrip('/')}{path}"
        attempts = self.settings.orchestrator_call_retries + 1
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            try:
                response = await client.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                failure: ServiceError = UpstreamTimeout(
                    f"{service} at {base_url} timed out ({exc})"
                )
            except httpx.TransportError as exc:
                failure = Unavailable(
                    f"{service} at {base_url} is unreachable ({type(exc).__name__}: {exc})"
                )
            else:
                latency = (time.perf_counter() - started) * 1000
                if response.status_code < 500:
                    return Timed(response, latency)
                failure = UpstreamError(
                    f"{service} answered {response.status_code} to {method} {path}: "
                    f"{_detail(response)}"
                )
            if attempt == attempts:
                raise failure
            log.warning("service_call_retry", service=service, attempt=attempt, error=str(failure))
            await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 5.0))
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _parse(service: str, response: httpx.Response, model: type[Model]) -> Model:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise UpstreamError(
                f"{service} answered a body that breaks its contract: {exc.errors()[:2]}"
            ) from exc

    @staticmethod
    def _raise_for_client_error(service: str, response: httpx.Response, what: str) -> None:
        if response.status_code < 400:
            return
        detail = f"{service} refused {what} ({response.status_code}): {_detail(response)}"
        if response.status_code == 404:
            raise NotFound(detail)
        if response.status_code == 409:
            raise Conflict(detail)
        if response.status_code == 422:
            raise Unprocessable(detail)
        raise UpstreamError(detail)

    # --- recommender ---------------------------------------------------------------------------

    async def recommenders(self, base_url: str, dataset: str) -> list[RecommenderInfo] | None:
        """``GET /recommenders?dataset=``; None when the service does not offer it (an external
        arm)."""
        timed = await self._send(
            "recommender", "GET", base_url, "/recommenders", params={"dataset": dataset}
        )
        response = timed.value
        if response.status_code in (404, 405):
            return None
        self._raise_for_client_error("recommender", response, "GET /recommenders")
        body = response.json()
        items = body.get("recommenders", body) if isinstance(body, dict) else body
        try:
            return _infos.validate_python(items)
        except ValidationError as exc:
            raise UpstreamError(
                f"recommender at {base_url}: unexpected /recommenders body"
            ) from exc

    async def train(self, base_url: str, name: str, dataset: str) -> None:
        """``POST /recommenders/{name}/train`` (returns at once; progress in /recommenders)."""
        timed = await self._send(
            "recommender",
            "POST",
            base_url,
            f"/recommenders/{name}/train",
            json={"dataset": dataset},
        )
        self._raise_for_client_error("recommender", timed.value, f"training {name!r}")

    async def recommend(
        self, base_url: str, request: RecommendationRequest
    ) -> Timed[RecommendationResponse]:
        timed = await self._send(
            "recommender",
            "POST",
            base_url,
            "/recommendations",
            json=request.model_dump(mode="json", exclude_none=True),
        )
        self._raise_for_client_error(
            "recommender", timed.value, f"recommendations from {request.recommender!r}"
        )
        parsed = self._parse("recommender", timed.value, RecommendationResponse)
        return Timed(parsed, timed.latency_ms)

    # --- simulator -----------------------------------------------------------------------------

    async def rate(self, request: RatingsRequest) -> Timed[RatingsResponse]:
        timed = await self._send(
            "simulator",
            "POST",
            self.settings.simulator_url,
            "/ratings",
            json=request.model_dump(mode="json", exclude_none=True),
        )
        self._raise_for_client_error("simulator", timed.value, "the ratings request")
        parsed = self._parse("simulator", timed.value, RatingsResponse)
        asked = set(request.items)
        got = [rating.tmdb_id for rating in parsed.ratings]
        if set(got) != asked or len(got) != len(asked):
            raise UpstreamError(
                f"simulator rated {sorted(set(got))[:5]}… instead of exactly the "
                f"{len(asked)} movies asked"
            )
        return Timed(parsed, timed.latency_ms)

    # --- tmdb-proxy ----------------------------------------------------------------------------

    async def movies(self, tmdb_ids: list[int]) -> MovieBatchResponse:
        timed = await self._send(
            "tmdb-proxy",
            "POST",
            self.settings.tmdb_proxy_url,
            "/movies/batch",
            json=MovieBatchRequest(tmdb_ids=tmdb_ids).model_dump(),
        )
        self._raise_for_client_error("tmdb-proxy", timed.value, "the movie batch")
        return self._parse("tmdb-proxy", timed.value, MovieBatchResponse)
