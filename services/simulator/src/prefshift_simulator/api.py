"""Routes of the simulator service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from prefshift_common.contracts import RatingsRequest, RatingsResponse
from prefshift_common.errors import (
    BadRequest,
    NotFound,
    ServiceError,
    TooManyRequests,
    Unavailable,
    Unprocessable,
    UpstreamError,
    UpstreamTimeout,
    error_responses,
)
from prefshift_simulator.schemas import BackendList
from prefshift_simulator.service import RatingService

router = APIRouter(tags=["simulator"])


async def get_rating_service(request: Request) -> RatingService:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread
    service: RatingService = request.app.state.rating_service
    return service


RatingServiceDep = Annotated[RatingService, Depends(get_rating_service)]


@router.post(
    "/ratings",
    response_model=RatingsResponse,
    responses=error_responses(
        BadRequest,
        NotFound,
        Unprocessable,
        TooManyRequests,
        ServiceError,
        UpstreamError,
        Unavailable,
        UpstreamTimeout,
    ),
)
async def post_ratings(body: RatingsRequest, service: RatingServiceDep) -> RatingsResponse:
    """Rate movies as the persona would.

    The persona is a real user's rated ``history`` plus its own ``experiences`` since (movies it
    was shown, with its rating and feeling). Every movie in ``items`` gets exactly one rating on
    0.5–5.0 in 0.5 steps, with a one-sentence feeling. ``backend`` is ``embedded`` (a
    deterministic preference model; ``seed`` makes it reproducible) or ``llm`` (an
    OpenAI-compatible endpoint; identical calls are replayed from their record, and then
    ``usage.cached`` is true). Movie metadata comes from tmdb-proxy in one batch call.

    Errors: 400 for a backend or ``persona_model`` this simulator does not serve (``llm``
    without an LLM configured); 404 when the persona's dataset is not imported, or when the llm
    backend is asked about movies TMDB does not know; 429/502/503/504 when the LLM endpoint or
    tmdb-proxy fails, each naming what failed.
    """
    return await service.rate(body)


@router.get("/backends", response_model=BackendList, responses=error_responses())
async def get_backends(service: RatingServiceDep) -> BackendList:
    """The rating backends, whether each can serve now, and which one is the default."""
    return BackendList(backends=service.describe())
