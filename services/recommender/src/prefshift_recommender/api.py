"""Routes of the recommender service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, status

from prefshift_common.contracts import (
    RecommendationRequest,
    RecommendationResponse,
    RecommenderInfo,
)
from prefshift_common.db import SessionDep
from prefshift_common.errors import (
    Conflict,
    NotFound,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
    error_responses,
)
from prefshift_recommender.schemas import (
    RECOMMENDATION_EXAMPLES,
    RECOMMENDATION_RESPONSE_EXAMPLE,
    RECOMMENDERS_EXAMPLE,
    TrainAccepted,
    TrainRequest,
)
from prefshift_recommender.service import RecommenderService

router = APIRouter(tags=["recommender"])


def get_service(request: Request) -> RecommenderService:
    service: RecommenderService = request.app.state.recommender
    return service


ServiceDep = Annotated[RecommenderService, Depends(get_service)]
DatasetQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Dataset to report on; default: the service's dataset.",
    ),
]
RecommenderName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="Implementation name (see GET /recommenders).",
        examples=["als"],
    ),
]


@router.get(
    "/recommenders",
    response_model=list[RecommenderInfo],
    responses={
        **error_responses(NotFound),
        200: {"content": {"application/json": {"example": RECOMMENDERS_EXAMPLE}}},
    },
)
async def list_recommenders(
    service: ServiceDep, session: SessionDep, dataset: DatasetQuery = None
) -> list[RecommenderInfo]:
    """The implementations this service serves, with their state on a dataset.

    Each entry gives the implementation's `name` and `kind` (`collaborative`: als, bpr,
    item-knn; `baseline`: popularity, random; `llm`: llm, llm-persuasive), whether a model is
    `trained` on the dataset, its `model_version`, and `status`: `untrained` (train it with
    `POST /recommenders/{name}/train`), `training` (with `progress` 0–1), `ready`, `failed`
    (`detail` says why) or `unavailable` (LLM recommenders when no OpenAI-compatible endpoint is
    configured; requests to them get 503)."""
    return await service.list(session, dataset)


@router.post(
    "/recommendations",
    response_model=RecommendationResponse,
    responses={
        **error_responses(NotFound, Conflict, UpstreamError, Unavailable, UpstreamTimeout),
        200: {"content": {"application/json": {"example": RECOMMENDATION_RESPONSE_EXAMPLE}}},
    },
)
async def recommend(
    service: ServiceDep,
    session: SessionDep,
    request: Annotated[RecommendationRequest, Body(openapi_examples=RECOMMENDATION_EXAMPLES)],
) -> RecommendationResponse:
    """Top-`n` movies from one implementation, for a dataset user or a history (cold start).

    The user is known by `user_id` (their ratings in the dataset), by `history` (TMDB ids and
    0.5–5.0 ratings: a persona's ratings plus its simulated ones), or both (history wins on
    overlap). No model is refitted: collaborative models fold the history in. Movies in the
    history or in `exclude` are never returned; history movies the model does not know are
    ignored and counted in `unknown_history`. The LLM recommenders drop titles that name no movie
    clearly (invented ones included) and count them in `unresolved_titles`. `short` is true
    when fewer than `n` movies could be found. `random` is reproducible: the same `seed`
    (default: derived from the request) gives the same page.

    Errors: 404 unknown recommender, dataset or user; 409 no model trained yet (the detail says
    how to train it) or no dataset imported; 422 invalid request (`n` outside 1–500, bad ids);
    503 LLM not configured or unreachable; 502/504 the LLM failed or timed out."""
    return await service.recommend(session, request)


@router.post(
    "/recommenders/{name}/train",
    response_model=TrainAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(NotFound, Conflict),
)
async def train(
    name: RecommenderName,
    service: ServiceDep,
    session: SessionDep,
    body: Annotated[TrainRequest, Body()] = TrainRequest(),
) -> TrainAccepted:
    """Train an implementation on a dataset, in the background; answers 202 at once.

    Watch `GET /recommenders?dataset=…` for `status` and `progress`. The trained model is saved
    on disk with a `model_version` derived from the implementation, the dataset's content and
    the parameters. Trained with the default parameters (or `"activate": true`, which needs the
    API token when one is set) it serves requests as soon as it is ready and after restarts;
    with other parameters it is a candidate version kept beside the active one, which runs go on
    using. Trainings run one at a time; training the same model while it trains returns the
    running job; `DELETE` on this path cancels it. Parameters are bounded so that a fit takes
    minutes, not hours.
    404: unknown recommender or dataset; 409: no dataset imported; 422: bad parameters, or an
    LLM recommender (nothing to train)."""
    return await service.train(session, name, body)


@router.delete(
    "/recommenders/{name}/train",
    response_model=TrainAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(NotFound, Conflict),
)
async def cancel_training(
    name: RecommenderName,
    service: ServiceDep,
    session: SessionDep,
    dataset: DatasetQuery = None,
) -> TrainAccepted:
    """Cancel the queued or running training of an implementation on a dataset (default: the
    service's): a queued one never starts, a running fit stops at its next iteration and its
    state becomes `failed` with detail `cancelled`. 409 when none is queued or running."""
    return await service.cancel_training(session, name, dataset)
