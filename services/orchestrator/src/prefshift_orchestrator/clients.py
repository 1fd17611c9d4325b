"""Calls to the other services (recommender, simulator and external arms).

Each call returns its parsed contract and its latency. Connection failures, timeouts and 5xx
answers are retried a bounded number of times, then become typed errors naming the service; 4xx
answers are never retried; a redirect is never followed (it is a 502). The API token goes only to
the configured prefshift services, never to an external arm's URL, and external arms are called
only as ``arm_urls`` allows (docs/security.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import structlog
from pydantic import BaseModel, TypeAdapter, ValidationError

from prefshift_common.contracts import (
    BackendList,
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
    TooManyRequests,
    Unavailable,
    Unprocessable,
    UpstreamError,
    UpstreamTimeout,
)
from prefshift_common.http import create_http_client
from prefshift_orchestrator.arm_urls import ArmUrlPolicy
from prefshift_orchestrator.config import Settings

log = structlog.get_logger(__name__)
Model = TypeVar("Model", bound=BaseModel)
T = TypeVar("T")
_infos = TypeAdapter(list[RecommenderInfo])
#: How long a submission waits for the simulator to say what it can rate with.
BACKENDS_TIMEOUT_SECONDS = 5.0


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


def _status(response: httpx.Response) -> str:
    """A status and the standard reason phrase: all an external arm's error shows the caller
    (its body, and even its own reason phrase, are its words, never echoed)."""
    return f"{response.status_code} {httpx.codes.get_reason_phrase(response.status_code)}".strip()


class ArmBudgetSpent(ServiceError):
    """An external arm used the time its run allows it: a 504 that is not retried (the page
    step retries of 504s would otherwise keep a worker on a dead arm)."""

    status_code, code = 504, "upstream_timeout"
    description = "An external arm used its time budget for this run."


class ArmBudget:
    """The time one run may still spend waiting on one external arm."""

    def __init__(self, seconds: float) -> None:
        self.remaining = seconds

    def spend(self, seconds: float) -> None:
        self.remaining -= seconds


class ServiceClients:
    """HTTP clients for the services a run calls; created in the lifespan.

    Calls to a URL that is not one of the configured prefshift services (an external arm) pass
    the :class:`ArmUrlPolicy`, go to the address the policy checked, follow no redirect, read at
    most ``PREFSHIFT_ORCHESTRATOR_ARM_MAX_RESPONSE_BYTES``, end within the per-call deadline and
    the run's :class:`ArmBudget`, and report failures without the arm's own words.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        timeout = httpx.Timeout(
            connect=5.0, read=settings.orchestrator_call_timeout_seconds, write=30.0, pool=60.0
        )
        self.internal = create_http_client(
            timeout=timeout, api_token=settings.api_token, max_connections=200
        )
        arm_timeout = httpx.Timeout(
            connect=settings.orchestrator_arm_connect_timeout_seconds,
            read=settings.orchestrator_arm_call_timeout_seconds,
            write=settings.orchestrator_arm_call_timeout_seconds,
            pool=settings.orchestrator_arm_call_timeout_seconds,
        )
        self.external = create_http_client(timeout=arm_timeout, max_connections=100)
        self._internal_urls = {
            settings.recommender_url.rstrip("/"),
            settings.simulator_url.rstrip("/"),
            settings.tmdb_proxy_url.rstrip("/"),
        }
        self.arm_policy = ArmUrlPolicy.from_settings(settings)

    async def aclose(self) -> None:
        await self.internal.aclose()
        await self.external.aclose()

    def is_external(self, base_url: str) -> bool:
        return base_url.rstrip("/") not in self._internal_urls

    async def _send(
        self,
        service: str,
        method: str,
        base_url: str,
        path: str,
        budget: ArmBudget | None = None,
        **kwargs: Any,
    ) -> Timed[httpx.Response]:
        """One request with bounded retries of connection errors, timeouts and 5xx."""
        if not self.is_external(base_url):
            url = f"{base_url.rstrip('/')}{path}"

            async def send() -> httpx.Response:
                return await self.internal.request(method, url, **kwargs)

            return await self._attempts(service, method, base_url, path, send, external=False)
        pinned = await self.arm_policy.pin(base_url)

        async def send_external() -> httpx.Response:
            request = self.external.build_request(
                method,
                pinned.request_url(path),
                headers=pinned.headers,
                extensions=pinned.extensions,
                **kwargs,
            )
            return await self._read_capped(request)

        deadline = self.settings.orchestrator_arm_call_timeout_seconds
        if budget is not None:
            if budget.remaining <= 0:
                raise ArmBudgetSpent(
                    f"{service} at {base_url} used this run's budget of "
                    f"{self.settings.orchestrator_arm_run_budget_seconds:g} s"
                )
            deadline = min(deadline, budget.remaining)
        started = time.monotonic()
        try:
            async with asyncio.timeout(deadline):
                return await self._attempts(
                    service, method, base_url, path, send_external, external=True
                )
        except TimeoutError:
            raise UpstreamTimeout(
                f"{service} at {base_url} did not answer {method} {path} within {deadline:g} s"
            ) from None
        finally:
            if budget is not None:
                budget.spend(time.monotonic() - started)

    async def _read_capped(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and read at most the configured number of (decoded) bytes."""
        limit = self.settings.orchestrator_arm_max_response_bytes
        response = await self.external.send(request, stream=True, follow_redirects=False)
        try:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > limit:
                    raise UpstreamError(
                        f"{request.url.path} answered more than {limit} bytes; refused"
                    )
        finally:
            await response.aclose()
        content_type = response.headers.get("content-type", "application/octet-stream")
        return httpx.Response(
            response.status_code,
            headers={"content-type": content_type},
            content=bytes(body),
            request=request,
        )

    async def _attempts(
        self,
        service: str,
        method: str,
        base_url: str,
        path: str,
        send: Callable[[], Awaitable[httpx.Response]],
        *,
        external: bool,
    ) -> Timed[httpx.Response]:
        attempts = self.settings.orchestrator_call_retries + 1
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            try:
                response = await send()
            except httpx.TimeoutException as exc:
                failure: ServiceError = UpstreamTimeout(
                    f"{service} at {base_url} timed out" + ("" if external else f" ({exc})")
                )
            except httpx.TransportError as exc:
                failure = Unavailable(
                    f"{service} at {base_url} could not be reached"
                    if external
                    else f"{service} at {base_url} is unreachable ({type(exc).__name__}: {exc})"
                )
            else:
                latency = (time.perf_counter() - started) * 1000
                if response.status_code < 500:
                    return Timed(response, latency)
                described = f"{service} answered {_status(response)} to {method} {path}" + (
                    "" if external else f": {_detail(response)}"
                )
                # 503 and 504 keep their meaning: a page step is retried on them later
                failure = (
                    Unavailable(described)
                    if response.status_code == 503
                    else UpstreamTimeout(described)
                    if response.status_code == 504
                    else UpstreamError(described)
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
                f"{service} answered a body that breaks its contract: "
                f"{exc.errors(include_url=False, include_input=False, include_context=False)[:2]}"
            ) from exc

    @staticmethod
    def _raise_for_client_error(
        service: str, response: httpx.Response, what: str, *, external: bool = False
    ) -> None:
        if response.is_redirect or 300 <= response.status_code < 400:
            raise UpstreamError(
                f"{service} answered {what} with a redirect ({_status(response)}); "
                "redirects are not followed"
            )
        if response.status_code < 400:
            return
        reason = _status(response) if external else f"{response.status_code}: {_detail(response)}"
        detail = f"{service} refused {what} ({reason})"
        if response.status_code == 404:
            raise NotFound(detail)
        if response.status_code == 409:
            raise Conflict(detail)
        if response.status_code == 422:
            raise Unprocessable(detail)
        if response.status_code == 429:
            retry_after = response.headers.get("retry-after")
            raise TooManyRequests(
                detail, headers={"Retry-After": retry_after} if retry_after else None
            )
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
        self._raise_for_client_error(
            "recommender", response, "GET /recommenders", external=self.is_external(base_url)
        )
        try:
            body = response.json()
            items = body.get("recommenders", body) if isinstance(body, dict) else body
            return _infos.validate_python(items)
        except (ValueError, ValidationError) as exc:
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
        self, base_url: str, request: RecommendationRequest, budget: ArmBudget | None = None
    ) -> Timed[RecommendationResponse]:
        """``POST /recommendations``; an external arm's calls count against the run's
        ``budget``."""
        timed = await self._send(
            "recommender",
            "POST",
            base_url,
            "/recommendations",
            budget,
            json=request.model_dump(mode="json", exclude_none=True),
        )
        self._raise_for_client_error(
            "recommender",
            timed.value,
            f"recommendations from {request.recommender!r}",
            external=self.is_external(base_url),
        )
        parsed = self._parse("recommender", timed.value, RecommendationResponse)
        return Timed(parsed, timed.latency_ms)

    # --- simulator -----------------------------------------------------------------------------

    async def backends(self) -> BackendList | None:
        """The simulator's ``GET /backends`` (what it can rate with now), asked once with a short
        timeout; None when it cannot say (down, slow, or a simulator without the route): a
        submission then goes ahead and its runs meet the simulator when they start."""
        url = f"{self.settings.simulator_url.rstrip('/')}/backends"
        try:
            response = await self.internal.get(url, timeout=BACKENDS_TIMEOUT_SECONDS)
            if response.status_code != 200:
                return None
            return BackendList.model_validate_json(response.content)
        except (httpx.HTTPError, ValidationError) as exc:
            log.info("simulator_backends_unknown", error=repr(exc))
            return None

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
        # every movie asked is rated once or reported missing (with its reason), nothing else
        missing = {rating.tmdb_id for rating in parsed.missing}
        if len(got) != len(set(got)) or set(got) & missing or set(got) | missing != asked:
            raise UpstreamError(
                f"simulator rated {sorted(set(got))[:5]}… and reported {len(missing)} missing "
                f"instead of exactly the {len(asked)} movies asked"
            )
        return Timed(parsed, timed.latency_ms)
