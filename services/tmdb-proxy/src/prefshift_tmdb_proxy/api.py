"""Routes of the tmdb-proxy service of its own: a batch endpoint and cache statistics (TMDB's
own v3 paths are in :mod:`prefshift_tmdb_proxy.tmdb_api`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from prefshift_common.contracts import (
    MovieBatchRequest,
    MovieBatchResponse,
)
from prefshift_common.errors import error_responses
from prefshift_tmdb_proxy.schemas import CacheStats
from prefshift_tmdb_proxy.service import MovieService
from prefshift_tmdb_proxy.upstream import TmdbCredentialsRejected, TmdbRejected, TmdbUnavailable

router = APIRouter()
T = TypeVar("T")
#: How often a request that waits checks whether its client is still there.
DISCONNECT_POLL_S = 0.25
#: Where an answer came from: ``tmdb`` (TMDB or its cached answer), ``offline`` (an imported
#: record), ``movielens`` (a dataset's own movie). Never in the body: TMDB has no such field.
SOURCE_HEADER = "x-prefshift-source"


class ClientGone(Exception):
    """The client closed the connection while its request was being worked on."""


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it as soon as the client goes away (no one would read it)."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise ClientGone
    finally:
        task.cancel()


async def get_movie_service(request: Request) -> MovieService:
    service: MovieService = request.app.state.movie_service
    return service


MovieServiceDep = Annotated[MovieService, Depends(get_movie_service)]

_UPSTREAM_ERRORS = error_responses(TmdbCredentialsRejected, TmdbUnavailable)
# TmdbRejected shares 502 with TmdbCredentialsRejected; the envelope's `error` tells them apart.
_UPSTREAM_ERRORS[502]["description"] = (
    f"{TmdbCredentialsRejected.description} / {TmdbRejected.description}"
)


@router.post(
    "/movies/batch",
    response_model=MovieBatchResponse,
    response_model_exclude_unset=True,
    tags=["movies"],
    responses=_UPSTREAM_ERRORS,
)
async def movies_batch(
    request: MovieBatchRequest, movies: MovieServiceDep, connection: Request
) -> Any:
    """Details of up to 500 movies in one call, in the order asked (duplicates once).

    Hits are read in one query. Of the misses, at most `PREFSHIFT_TMDB_PROXY_FETCHES_PER_REQUEST`
    (20) are fetched from TMDB, within the rate limit and for at most
    `PREFSHIFT_TMDB_PROXY_REQUEST_DEADLINE_S` (5 s); every other miss is answered from an expired
    copy (listed in `stale`), else the imported records or the dataset's own movie (`fallback`),
    else left out (`deferred`), and refreshed in the background. `missing` lists the ids nobody
    knows. `movielens_years` gives the MovieLens year of the movies without a `release_date`
    (the movies themselves are TMDB's shape, the same bytes as `GET /3/movie/{id}`). When the
    client disconnects, the work for it stops.
    """
    try:
        batch = await unless_disconnected(connection, movies.movies(request.tmdb_ids))
    except ClientGone:
        return Response(status_code=499)
    found = batch.found
    ordered = list(dict.fromkeys(request.tmdb_ids))
    deferred = set(batch.deferred)
    not_found = [tmdb_id for tmdb_id in ordered if tmdb_id not in found and tmdb_id not in deferred]

    def in_order(ids: list[int]) -> bytes:
        chosen = set(ids)
        return json.dumps([tmdb_id for tmdb_id in ordered if tmdb_id in chosen]).encode()

    years = {
        str(tmdb_id): found[tmdb_id].year
        for tmdb_id in ordered
        if tmdb_id in found and found[tmdb_id].year is not None
    }
    # The movies are already encoded: splice them rather than decode and re-encode.
    body = b"".join(
        (
            b'{"movies":[',
            b",".join(found[tmdb_id].body for tmdb_id in ordered if tmdb_id in found),
            b'],"missing":',
            json.dumps(not_found).encode(),
            b',"stale":',
            in_order(batch.stale),
            b',"fallback":',
            in_order(batch.fallback),
            b',"deferred":',
            in_order(batch.deferred),
            b',"movielens_years":',
            json.dumps(years).encode(),
            b"}",
        )
    )
    return Response(content=body, media_type="application/json")


@router.get("/cache/stats", response_model=CacheStats, tags=["cache"], responses=error_responses())
async def cache_stats(movies: MovieServiceDep) -> CacheStats:
    """What the cache holds and what this process asked of TMDB since it started."""
    return await movies.stats()
