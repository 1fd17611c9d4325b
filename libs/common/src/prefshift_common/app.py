"""How every service is built and run — the one place for what all of them share.

- ``create_service_app``: the app (error envelope, request ids, logging, health, readiness,
  ``/metrics``, the optional bearer token) and the base lifespan, which opens the database (typed
  :class:`Database` on ``app.state.database``), enters the service's own ``resources`` and
  closes everything in reverse order.
- ``serve``: runs an app under uvicorn — the services' ``run()``, ``prefshift up`` and the
  container images all start here, so server-wide limits (body size, header and idle timeouts,
  connections) come from ``limits.server_options`` and the body limit is in the app built here.
- ``background_task``: a start-up job (cache warm-up) cancelled at shutdown.
- ``create_documented_app``: a FastAPI app whose ``/docs`` and ``/redoc`` work offline, with
  examples for the demo data (every service's, and the console's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import fastapi_offline
import structlog
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from prefshift_common.body_shape import BodyShapeMiddleware, ShapeLimits
from prefshift_common.db import create_async_db_engine, create_session_factory, ping
from prefshift_common.errors import (
    ErrorEnvelope,
    Unauthorized,
    error_responses,
    install_error_handlers,
)
from prefshift_common.examples import add_examples
from prefshift_common.hosts import HostAllowlistMiddleware, allowed_hosts
from prefshift_common.limits import BodyLimitMiddleware, raise_open_file_limit, server_options
from prefshift_common.logging import RequestIdMiddleware, configure_logging
from prefshift_common.metrics import RequestMetricsMiddleware, ServiceMetrics, metrics_endpoint
from prefshift_common.openapi import conform
from prefshift_common.settings import CommonSettings, bind_address

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Database:
    """A running service's database: the engine and the session factory over it."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


def service_database(app: FastAPI) -> Database:
    """The database the base lifespan opened for ``app``."""
    database: Database = app.state.database
    return database


#: A service's own parts (clients, caches, workers), set up on the open database and torn down
#: before it closes; they put what their routes need on ``app.state``.
ServiceResources = Callable[[FastAPI, Database], AbstractAsyncContextManager[None]]

_bearer = HTTPBearer(auto_error=False, description="PREFSHIFT_API_TOKEN, when it is set.")


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Refuse the request unless it carries the configured API token (if one is configured)."""
    settings: CommonSettings = request.app.state.settings
    if settings.api_token is None:
        return
    expected = settings.api_token.get_secret_value()
    if credentials is None or not secrets.compare_digest(
        credentials.credentials.encode(), expected.encode()
    ):
        raise Unauthorized("this service requires 'Authorization: Bearer <PREFSHIFT_API_TOKEN>'")


class Health(BaseModel):
    status: str
    service: str


def _health_router(service: str) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok", service=service)

    @router.get(
        "/readyz",
        response_model=Health,
        responses={503: {"model": ErrorEnvelope, "description": "Database unreachable."}},
    )
    async def readyz(request: Request) -> Any:
        """Readiness: the database answers."""
        try:
            await ping(service_database(request.app).engine)
        except Exception as exc:  # any driver error means not ready
            return JSONResponse(
                status_code=503,
                content={"error": "unavailable", "detail": f"database: {type(exc).__name__}"},
            )
        return Health(status="ready", service=service)

    return router


#: ReDoc's bundle shows a logo from Redocly's CDN; offline it would be a request that fails.
_REDOC_LOGO = b'src:"https://cdn.redoc.ly/redoc/logo-mini.svg"'
_DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"


@functools.cache
def _redoc_bundle() -> bytes:
    """The ``fastapi-offline`` package's ReDoc bundle, with the logo taken from this server."""
    bundle = (_DOCS_ASSETS / "redoc.standalone.js").read_bytes()
    return bundle.replace(_REDOC_LOGO, b'src:"/static-offline-docs/favicon.png"')


def create_documented_app(**options: Any) -> FastAPI:
    """A FastAPI app whose ``/docs`` (Swagger UI) and ``/redoc`` load their JavaScript and CSS
    from this server (the ``fastapi-offline`` package bundles them; no CDN, no request leaves
    the machine), and whose OpenAPI document carries examples that work on the demo data
    (``prefshift_common.examples``)."""
    app = FastAPIOffline(redoc_url=None, **options)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return add_examples(generate())

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/static-offline-docs/favicon.png",
            with_google_fonts=False,
        )

    @app.get("/docs-assets/redoc.standalone.js", include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(_redoc_bundle(), media_type="text/javascript")

    return app


def freeze_long_lived() -> None:
    """Move every object alive now out of the cyclic garbage collector's reach (``gc.freeze``),
    after a service has built what it keeps for its lifetime (caches, indexes, catalogues,
    models); call it again after rebuilding one.

    Otherwise every full (generation-2) collection walks them all, on the event loop, in the
    middle of whatever request allocated last: with the tmdb-proxy's title index and offline
    catalogue (~140,000 containers) that was a periodic stall of ~85 ms under load, /healthz
    included. Frozen objects are still freed by reference counting when dropped (a rebuilt
    index replaces the old one); the lifespan unfreezes everything at shutdown. The young
    generations are collected first so that fresh garbage is not frozen with them."""
    gc.collect(1)
    gc.freeze()


def create_service_app(
    *,
    service: str,
    description: str,
    settings: CommonSettings,
    routers: Sequence[APIRouter],
    resources: ServiceResources | None = None,
    engine_options: Mapping[str, Any] | None = None,
    body_limits: Mapping[str, int] | None = None,
    metrics: ServiceMetrics | None = None,
    version: str = "0.1.0",
) -> FastAPI:
    """Build a service's FastAPI app; routers and ``/metrics`` get the token check, health
    routes do not.

    The lifespan opens the database (``engine_options`` go to the engine, e.g. a pool size),
    then enters ``resources(app, database)`` for the service's own parts. Request bodies are
    limited to ``PREFSHIFT_REQUEST_MAX_BODY_BYTES`` except under the path prefixes of
    ``body_limits`` (``limits.BodyLimitMiddleware``), and a JSON body's keys, array lengths and
    nesting are bounded before pydantic sees it (``body_shape``). ``metrics`` is the app's
    registry (``prefshift_common.metrics``) when the service adds its own metrics to it."""
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_db_engine(settings.resolved_database_url, **(engine_options or {}))
        database = Database(engine=engine, sessions=create_session_factory(engine))
        app.state.database = database
        try:
            async with resources(app, database) if resources else contextlib.nullcontext():
                freeze_long_lived()
                yield
        finally:
            gc.unfreeze()  # what the service kept is garbage now: collectable again
            await engine.dispose()

    app = create_documented_app(
        title=f"prefshift {service}",
        description=description,
        version=version,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics = metrics or ServiceMetrics(service)
    documented = app.openapi

    def openapi() -> dict[str, Any]:
        return conform(documented(), token_required=settings.api_token is not None)

    app.openapi = openapi  # type: ignore[method-assign]
    install_error_handlers(app)
    app.add_middleware(BodyShapeMiddleware, limits=ShapeLimits.from_settings(settings))
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.request_max_body_bytes,
        timeout_s=settings.request_body_timeout_s,
        per_route=body_limits,
    )
    app.add_middleware(HostAllowlistMiddleware, allowed=allowed_hosts(settings))
    # outermost: refused hosts and oversized bodies are counted too
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.include_router(_health_router(service))
    # Prometheus's text format, not the API's JSON: kept out of the OpenAPI document, like /docs
    app.add_api_route(
        "/metrics",
        metrics_endpoint,
        methods=["GET"],
        include_in_schema=False,
        dependencies=[Depends(require_token)],
    )
    for router in routers:
        app.include_router(
            router,
            dependencies=[Depends(require_token)],
            # every route's 422 is the envelope (FastAPI would otherwise declare its own)
            responses={
                401: {"model": ErrorEnvelope, "description": Unauthorized.description},
                **error_responses(),
            },
        )
    return app


@asynccontextmanager
async def background_task(
    job: Coroutine[Any, Any, object], *, name: str, grace_seconds: float = 10.0
) -> AsyncIterator[None]:
    """Run ``job`` beside the service (e.g. warming a cache); a failure is logged, never fatal.
    At shutdown the job gets ``grace_seconds`` to end by itself, then it is cancelled."""

    async def guarded() -> None:
        try:
            await job
        except Exception as exc:  # a missing table or an empty database must not stop the service
            log.warning(f"{name}_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    task = asyncio.create_task(guarded(), name=name)
    try:
        yield
    finally:
        # Cancelling does not stop a database call already running: SQLite's driver finishes it
        # on its own thread and then reports to the event loop, which may be closed by then.
        await asyncio.wait({task}, timeout=grace_seconds)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def serve(app: FastAPI, *, url: str, argv: Sequence[str] | None = None) -> None:
    """Run ``app`` under uvicorn on the host and port of its URL setting, unless the command
    line says otherwise (``--host``, ``--port``, ``--log-level``)."""
    import uvicorn

    host, port = bind_address(url)
    parser = argparse.ArgumentParser(description=app.title)
    parser.add_argument("--host", default=host, help=f"address to bind (default {host})")
    parser.add_argument("--port", type=int, default=port, help=f"port (default {port})")
    parser.add_argument("--log-level", default="info", help="uvicorn's log level")
    options = parser.parse_args(argv)
    settings: CommonSettings = app.state.settings
    raise_open_file_limit()
    uvicorn.run(
        app,
        host=options.host,
        port=options.port,
        log_level=options.log_level,
        **server_options(settings),
    )
