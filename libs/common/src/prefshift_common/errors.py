"""Typed errors, the one error envelope and its handlers.

Every error a route can return is a :class:`ServiceError` subclass carrying its status code and
machine-readable code; routes declare them with :func:`error_responses` so they appear in OpenAPI.
"""

from __future__ import annotations

from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = structlog.get_logger(__name__)


#: a 422 lists at most this many problems and says how many more there were
MAX_LISTED_ERRORS = 20


class ErrorEnvelope(BaseModel):
    """The body of every error response."""

    error: str = Field(description="Machine-readable error code.", examples=["not_found"])
    detail: str = Field(description="What went wrong, for a person.")
    errors: list[dict[str, Any]] | None = Field(
        default=None,
        description=f"Field-level problems, for validation errors (at most {MAX_LISTED_ERRORS}).",
    )
    errors_omitted: int | None = Field(
        default=None, description="How many more field-level problems there were, not listed."
    )


class ServiceError(Exception):
    """Base of every typed error; subclasses fix the status code and code."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    description: ClassVar[str] = "Internal error."

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class BadRequest(ServiceError):
    status_code, code, description = 400, "bad_request", "The request cannot be served as asked."


class Unauthorized(ServiceError):
    status_code, code, description = 401, "unauthorized", "Missing or wrong bearer token."


class NotFound(ServiceError):
    status_code, code, description = 404, "not_found", "The resource does not exist."


class Conflict(ServiceError):
    status_code, code, description = 409, "conflict", "The resource is not in a state for this."


class Unprocessable(ServiceError):
    status_code, code, description = 422, "unprocessable", "The request is well-formed but invalid."


class TooManyRequests(ServiceError):
    status_code, code, description = 429, "rate_limited", "Too many requests; retry later."


class UpstreamError(ServiceError):
    status_code, code, description = 502, "upstream_error", "An upstream service failed."


class Unavailable(ServiceError):
    status_code, code, description = 503, "unavailable", "A dependency is unavailable."


class UpstreamTimeout(ServiceError):
    status_code, code, description = 504, "upstream_timeout", "An upstream service timed out."


def error_responses(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` mapping for a route that can raise these errors (plus 422)."""
    responses: dict[int | str, dict[str, Any]] = {
        422: {"model": ErrorEnvelope, "description": "Invalid request."}
    }
    for error in errors:
        responses[error.status_code] = {"model": ErrorEnvelope, "description": error.description}
    return responses


def _envelope(
    status: int,
    code: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    errors_omitted: int | None = None,
    **kw: Any,
) -> JSONResponse:
    body = ErrorEnvelope(
        error=code, detail=detail, errors=errors, errors_omitted=errors_omitted
    ).model_dump(exclude_none=True)
    return JSONResponse(status_code=status, content=body, **kw)


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _short_loc(loc: Any) -> list[Any]:
    """A problem's location, with any key cut to 100 characters (unknown keys come from the
    client and may be long)."""
    return [part[:100] if isinstance(part, str) else part for part in loc]


def http_error_response(exc: StarletteHTTPException) -> JSONResponse:
    """The envelope for an ``HTTPException`` (also for middleware that meets one outside the
    app's handlers, e.g. a body past its limit while a middleware reads it)."""
    code = _STATUS_CODES.get(exc.status_code, "http_error")
    return _envelope(exc.status_code, code, str(exc.detail), headers=exc.headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method the request's path is served with (a 405's ``Allow``): FastAPI makes a route
    per method, and Starlette's 405 names only the first route whose path matched."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the envelope."""

    async def on_service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        if exc.status_code >= 500:
            log.warning("service_error", code=exc.code, detail=exc.detail, path=request.url.path)
        return _envelope(exc.status_code, exc.code, exc.detail, headers=exc.headers)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        found = exc.errors()
        problems = [
            {
                "loc": list(e.get("loc", ())),
                "msg": str(e.get("msg", ""))[:500],
                "type": e.get("type"),
            }
            for e in found[:MAX_LISTED_ERRORS]
        ]
        summary = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in problems[:5]
        )
        more = len(found) - len(problems)
        if len(found) > 5:
            summary += f" (and {len(found) - 5:,} more)"
        return _envelope(
            422,
            "validation_error",
            summary or "Invalid request.",
            problems,
            errors_omitted=more or None,
        )

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            allowed = ", ".join(allowed_methods(request))
            exc = StarletteHTTPException(405, exc.detail, headers={"Allow": allowed})
        return http_error_response(exc)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", path=request.url.path)
        return _envelope(500, "internal_error", f"Unexpected {type(exc).__name__}; see the logs.")

    app.add_exception_handler(ServiceError, on_service_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
