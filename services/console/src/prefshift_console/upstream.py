"""The services as the console sees them: their public HTTP APIs and nothing else.

One :class:`Upstream` per app holds an ``httpx.AsyncClient`` per service; every call takes the
caller's token (the one the browser signed in with), so the console adds no authority of its own.
A service's error envelope comes back as a :class:`ServiceCallError` with the service's status
and detail, which the pages show as they are.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from prefshift_common.contracts import MovieBatchResponse, TmdbMovie
from prefshift_common.http import create_http_client
from prefshift_console.config import Settings

SERVICES = ("orchestrator", "recommender", "simulator", "tmdb-proxy")
#: The orchestrator's gauge of runs by status (its ``/metrics``; docs/operations.md).
RUNS_GAUGE = "prefshift_orchestrator_runs"
#: The order the queue panel shows the statuses in.
RUN_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
#: The most movies tmdb-proxy's batch endpoint takes in one call.
BATCH_SIZE = 500


class ServiceCallError(Exception):
    """A service answered with an error, or could not be reached."""

    def __init__(self, service: str, status: int, code: str, detail: str) -> None:
        super().__init__(f"{service}: {status} {code}: {detail}")
        self.service = service
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Download:
    content: bytes
    media_type: str


@dataclass(frozen=True)
class Health:
    service: str
    url: str
    live: bool
    ready: bool
    detail: str


class Upstream:
    """Calls to the four services; ``token`` is the signed-in browser's API token, if any."""

    def __init__(self, settings: Settings) -> None:
        timeout = httpx.Timeout(settings.console_timeout_seconds, connect=5.0)
        self.urls = {
            "orchestrator": settings.orchestrator_url,
            "recommender": settings.recommender_url,
            "simulator": settings.simulator_url,
            "tmdb-proxy": settings.tmdb_proxy_url,
        }
        self.clients = {
            service: create_http_client(url, timeout=timeout, max_connections=20)
            for service, url in self.urls.items()
        }

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self.clients.values()))

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        token: str | None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        try:
            response = await self.clients[service].request(
                method, path, json=json, params=params, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise ServiceCallError(service, 504, "upstream_timeout", "no answer in time") from exc
        except httpx.HTTPError as exc:
            detail = f"unreachable at {self.urls[service]} ({type(exc).__name__})"
            raise ServiceCallError(service, 503, "unavailable", detail) from exc
        if response.status_code >= 400:
            try:
                body = response.json()
                code, detail = str(body["error"]), str(body["detail"])
            except (ValueError, KeyError, TypeError):
                code, detail = "http_error", response.text[:300]
            raise ServiceCallError(service, response.status_code, code, detail)
        return response

    async def json(self, service: str, path: str, *, token: str | None, **kwargs: Any) -> Any:
        method = "POST" if "json" in kwargs else "GET"
        return (await self.call(service, method, path, token=token, **kwargs)).json()

    async def health(self) -> list[Health]:
        """Liveness and readiness of every service (these routes need no token)."""

        async def one(service: str) -> Health:
            try:
                await self.call(service, "GET", "/healthz", token=None)
            except ServiceCallError as exc:
                return Health(service, self.urls[service], False, False, exc.detail)
            try:
                await self.call(service, "GET", "/readyz", token=None)
            except ServiceCallError as exc:
                return Health(service, self.urls[service], True, False, exc.detail)
            return Health(service, self.urls[service], True, True, "")

        return list(await asyncio.gather(*(one(service) for service in SERVICES)))

    async def movies(self, tmdb_ids: list[int], *, token: str | None) -> dict[int, TmdbMovie]:
        """TMDB-shaped records of the movies, by id (from tmdb-proxy, in batches)."""
        unique = list(dict.fromkeys(tmdb_ids))
        found: dict[int, TmdbMovie] = {}
        for start in range(0, len(unique), BATCH_SIZE):
            batch = unique[start : start + BATCH_SIZE]
            body = await self.json(
                "tmdb-proxy", "/movies/batch", token=token, json={"tmdb_ids": batch}
            )
            movies = MovieBatchResponse.model_validate(body).movies
            found.update({movie.id: movie for movie in movies})
        return found

    async def queue(self, *, token: str | None) -> dict[str, int]:
        """The orchestrator's runs by status, as its ``/metrics`` counts them in the database
        (queued is the work queue's depth)."""
        response = await self.call("orchestrator", "GET", "/metrics", token=token)
        counts = {
            sample.labels["status"]: int(sample.value)
            for family in text_string_to_metric_families(response.text)
            if family.name == RUNS_GAUGE
            for sample in family.samples
            if "status" in sample.labels
        }
        return {status: counts.get(status, 0) for status in (*RUN_STATUSES, *counts)}

    async def download(
        self, service: str, path: str, *, token: str | None, params: dict[str, Any]
    ) -> Download:
        response = await self.call(service, "GET", path, token=token, params=params)
        media_type = response.headers.get("content-type", "application/octet-stream")
        return Download(response.content, media_type)
