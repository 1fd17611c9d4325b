"""The app factory every service uses: error envelope, request ids, health, readiness and the
optional bearer token."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from prefshift_common.db import ping
from prefshift_common.errors import ErrorEnvelope, Unauthorized, install_error_handlers
from prefshift_common.logging import RequestIdMiddleware
from prefshift_common.settings import CommonSettings

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
            await ping(request.app.state.engine)
        except Exception as exc:  # any driver error means not ready
            return JSONResponse(
                status_code=503,
                content={"error": "unavailable", "detail": f"database: {type(exc).__name__}"},
            )
        return Health(status="ready", service=service)

    return router


def create_service_app(
    *,
    service: str,
    description: str,
    settings: CommonSettings,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    routers: Sequence[APIRouter],
    version: str = "0.1.0",
) -> FastAPI:
    """Build a service's FastAPI app. ``lifespan`` must set ``app.state.engine`` and
    ``app.state.sessions``; routers get the token check, health routes do not."""
    app = FastAPI(
        title=f"prefshift {service}",
        description=description,
        version=version,
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(_health_router(service))
    for router in routers:
        app.include_router(
            router,
            dependencies=[Depends(require_token)],
            responses={401: {"model": ErrorEnvelope, "description": Unauthorized.description}},
        )
    return app
