"""End-to-end fixtures: the four services as real processes (``prefshift.stack.Stack``) on free
loopback ports, on a per-test database with the seed cohort imported, the embedded persona and
the offline tmdb-proxy; plus a recording proxy that counts what reaches the simulator."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from prefshift.stack import Stack
from prefshift_common.settings import CommonSettings
from tests.fakes.live import LiveServer, free_port

DATASET = "seed-cohort"
#: A seed-cohort user (Specialist).
USER = 117669
ALL_SERVICES = ("tmdb-proxy", "simulator", "recommender", "orchestrator")
#: Variables of the developer's environment that must not reach a test's services.
_SCRUB = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "TMDB_API_KEY", "TMDB_READ_TOKEN")


class Services:
    """Ports and environment of one test's stack; start any subset of the services with it."""

    def __init__(self, database_url: str, data_dir: Path, **env: str) -> None:
        self.urls = {
            service: f"http://127.0.0.1:{free_port()}" for service in (*ALL_SERVICES, "console")
        }
        self.env: dict[str, str] = {
            "PREFSHIFT_DATABASE_URL": database_url,
            "PREFSHIFT_DATA_DIR": str(data_dir),
            "PREFSHIFT_TMDB_PROXY_URL": self.urls["tmdb-proxy"],
            "PREFSHIFT_SIMULATOR_URL": self.urls["simulator"],
            "PREFSHIFT_RECOMMENDER_URL": self.urls["recommender"],
            "PREFSHIFT_ORCHESTRATOR_URL": self.urls["orchestrator"],
            "PREFSHIFT_CONSOLE_URL": self.urls["console"],
            "PREFSHIFT_SIMULATOR_BACKEND": "embedded",
            "PREFSHIFT_SIMULATOR_DATASET": DATASET,
            "PREFSHIFT_RECOMMENDER_DATASET": DATASET,
            # the orchestrator trains what an arm needs (ALS) before the run
            "PREFSHIFT_RECOMMENDER_AUTOTRAIN": "",
            "PREFSHIFT_ORCHESTRATOR_DATASET": DATASET,
            "PREFSHIFT_ORCHESTRATOR_WORKERS": "4",
            "PREFSHIFT_ORCHESTRATOR_HEARTBEAT_SECONDS": "0.5",
            "PREFSHIFT_ORCHESTRATOR_STALL_SECONDS": "3",
            "PREFSHIFT_ORCHESTRATOR_POLL_SECONDS": "0.2",
            "PREFSHIFT_LOG_LEVEL": "WARNING",
            **env,
        }

    def settings(self) -> CommonSettings:
        return CommonSettings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=self.env["PREFSHIFT_DATABASE_URL"],
            tmdb_proxy_url=self.urls["tmdb-proxy"],
            simulator_url=self.urls["simulator"],
            recommender_url=self.urls["recommender"],
            orchestrator_url=self.urls["orchestrator"],
            console_url=self.urls["console"],
            api_token=None,
        )

    @contextmanager
    def start(self, services: Sequence[str] = ALL_SERVICES, **env: str) -> Iterator[Stack]:
        """Start ``services`` as processes (``env`` on top of this stack's) until the block ends."""
        for name in _SCRUB:
            os.environ.pop(name, None)
        settings = self.settings()
        if "orchestrator" in services and "PREFSHIFT_ORCHESTRATOR_URL" in env:
            settings = settings.model_copy(
                update={"orchestrator_url": env["PREFSHIFT_ORCHESTRATOR_URL"]}
            )
        stack = Stack(settings, env={**self.env, **env}, services=tuple(services), launcher="fork")
        stack.start()
        try:
            # generous: the services import pandas/scipy, and CI machines may be busy
            stack.wait_ready(timeout=300)
            yield stack
        finally:
            stack.stop()

    def client(self, url: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=url or self.urls["orchestrator"], timeout=60)


@pytest.fixture
def services(seed_cohort_database_url: str, tmp_path: Path) -> Services:
    return Services(seed_cohort_database_url, tmp_path / "data")


class RecordingProxy:
    """A loopback HTTP proxy in front of a service: forwards every request and records the JSON
    bodies of its POSTs (``posts``: (path, body)), optionally after a delay."""

    def __init__(self, target: str, *, delay: float = 0.0) -> None:
        self.target = target
        self.delay = delay
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.add_api_route(
            "/{path:path}", self._forward, methods=["GET", "POST", "PUT", "DELETE"]
        )

    async def _forward(self, path: str, request: Request) -> Response:
        body = await request.body()
        if request.method == "POST":
            with self._lock:  # recorded on arrival, so a caller killed meanwhile is counted
                self.posts.append((path, json.loads(body) if body else {}))
            if self.delay:
                await asyncio.sleep(self.delay)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with httpx.AsyncClient(timeout=120) as client:
            upstream = await client.request(
                request.method,
                f"{self.target}/{path}",
                params=request.query_params,
                content=body,
                headers=headers,
            )
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type"),
        )

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for posted, body in self.posts if posted == path]

    @contextmanager
    def serve(self) -> Iterator[str]:
        with LiveServer(self.app) as server:
            yield server.url
