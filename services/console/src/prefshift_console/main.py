"""The console: a web page over the services' public HTTP APIs — the same contracts a
researcher's script uses — to look at the services, start experiments and read their results.

Pages are rendered on the server (Jinja2); one small script polls progress and draws the report
with Plotly, whose JavaScript is served from the ``plotly`` Python package (no CDN)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import plotly
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from prefshift_common.app import Health, create_documented_app, serve
from prefshift_common.body_shape import BodyShapeMiddleware, ShapeLimits
from prefshift_common.errors import install_error_handlers
from prefshift_common.hosts import HostAllowlistMiddleware, allowed_hosts
from prefshift_common.limits import BodyLimitMiddleware
from prefshift_common.logging import RequestIdMiddleware, configure_logging
from prefshift_console import api, pages
from prefshift_console.config import Settings
from prefshift_console.sessions import Sessions, SignInRequired
from prefshift_console.upstream import ServiceCallError, Upstream

HERE = Path(__file__).parent
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _signin(request: Request) -> Response:
    if _wants_json(request):
        return JSONResponse(
            {"error": "unauthorized", "detail": "sign in with the API token"}, status_code=401
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the console app (uvicorn: `--factory prefshift_console.main:create_app`)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upstream = Upstream(settings)
        app.state.upstream = upstream
        try:
            yield
        finally:
            await upstream.aclose()

    app = create_documented_app(
        title="prefshift console",
        description=__doc__ or "",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.sessions = Sessions(settings.console_session_hours * 3600)
    install_error_handlers(app)
    app.add_middleware(BodyShapeMiddleware, limits=ShapeLimits.from_settings(settings))
    app.add_middleware(RequestIdMiddleware)
    # the services' request limits: a form post is small
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.request_max_body_bytes,
        timeout_s=settings.request_body_timeout_s,
    )
    app.add_middleware(HostAllowlistMiddleware, allowed=allowed_hosts(settings))

    @app.exception_handler(SignInRequired)
    async def on_signin_required(request: Request, exc: Exception) -> Response:
        return _signin(request)

    @app.exception_handler(ServiceCallError)
    async def on_service_call_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceCallError)
        if exc.status == 401:
            return _signin(request)
        if _wants_json(request):
            return JSONResponse(
                {"error": exc.code, "detail": f"{exc.service}: {exc.detail}"},
                status_code=exc.status,
            )
        return pages.render(request, "error.html", status_code=exc.status, error=exc)

    @app.get("/healthz", response_model=Health, tags=["health"])
    async def healthz() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok", service="console")

    @app.get("/readyz", response_model=Health, tags=["health"])
    async def readyz() -> Health:
        """Readiness: the console needs no database; the services' own state is on its pages."""
        return Health(status="ready", service="console")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        """plotly.js as the installed ``plotly`` package bundles it."""
        return FileResponse(PLOTLY_JS, media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(api.router)
    app.include_router(pages.router)
    return app


def run() -> None:
    """Run the console alone: `prefshift-console [--host H] [--port P]`."""
    settings = Settings()
    serve(create_app(settings), url=settings.console_url)
