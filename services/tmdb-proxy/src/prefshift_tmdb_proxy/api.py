"""Routes of the tmdb-proxy service: TMDB's own v3 paths (drop-in: a TMDB client only changes
its base URL), a batch endpoint and cache statistics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from prefshift_common.contracts import (
    MovieBatchRequest,
    MovieBatchResponse,
    NoNul,
    SearchResults,
    TmdbMovie,
)
from prefshift_common.errors import error_responses
from prefshift_tmdb_proxy.schemas import NOT_FOUND, CacheStats, TmdbStatus
from prefshift_tmdb_proxy.service import MovieService
from prefshift_tmdb_proxy.upstream import TmdbCredentialsRejected, TmdbRejected, TmdbUnavailable

router = APIRouter()
T = TypeVar("T")
#: How often a request that waits checks whether its client is still there.
DISCONNECT_POLL_S = 0.25


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


@router.get(
    "/3/movie/{tmdb_id}",
    response_model=TmdbMovie,
    response_model_exclude_unset=True,
    tags=["tmdb"],
    responses={
        **_UPSTREAM_ERRORS,
        404: {"model": TmdbStatus, "description": "TMDB does not know the id (status_code 34)."},
    },
)
async def get_movie(
    tmdb_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="TMDB movie id.")],
    movies: MovieServiceDep,
    request: Request,
) -> Any:
    """A movie in the shape of TMDB's `GET /3/movie/{movie_id}`.

    Served from the cache (or, with no TMDB key, from imported records and then the imported
    datasets' own MovieLens title, year and genres); `prefshift_source` says which. An unknown
    id answers TMDB's own 404 body. Query parameters TMDB clients send (`api_key`, `language`)
    are accepted and ignored. When TMDB does not answer within the request deadline, an expired
    copy answers (header `X-Prefshift-Stale: true`), else the offline record; with no copy at
    all, a 503.
    """
    try:
        batch = await unless_disconnected(request, movies.movie(tmdb_id))
    except ClientGone:
        return Response(status_code=499)
    if batch.deferred:
        raise TmdbUnavailable(
            f"TMDB did not answer for movie {tmdb_id} in time and no copy exists; it is fetched "
            "in the background, ask again later"
        )
    movie = batch.found.get(tmdb_id)
    headers = {"x-prefshift-stale": "true"} if batch.stale else None
    if movie is None:
        return JSONResponse(status_code=404, content=NOT_FOUND.model_dump(), headers=headers)
    return Response(content=movie, media_type="application/json", headers=headers)


@router.get(
    "/3/search/movie",
    response_model=SearchResults,
    tags=["tmdb"],
    responses=_UPSTREAM_ERRORS,
)
async def search_movies(
    movies: MovieServiceDep,
    query: Annotated[
        str,
        Query(
            max_length=500,
            description="Title to look for (no NUL characters).",
            json_schema_extra={"pattern": "^[^\\u0000]*$"},
        ),
        NoNul,
    ] = "",
    year: Annotated[int | None, Query(ge=1000, le=9999, description="Release year.")] = None,
    primary_release_year: Annotated[
        int | None, Query(ge=1000, le=9999, description="Synonym of `year` here.")
    ] = None,
    page: Annotated[int, Query(ge=1, le=500, description="20 results per page.")] = 1,
) -> Any:
    """Search movies by title, in the shape of TMDB's `GET /3/search/movie`.

    With a TMDB key this is TMDB's answer (cached in memory for a while). Without one — or when
    TMDB is unavailable — an offline title index answers: fuzzy matching that knows MovieLens's
    "Matrix, The" is "The Matrix"; with `year`, movies more than a year off are left out (TMDB
    filters on the exact year) and the closer years rank first. Offline results without a
    `release_date` carry the MovieLens year as `_year_from_movielens`.
    """
    if not query.strip():
        return {"page": page, "results": [], "total_pages": 0, "total_results": 0}
    return await movies.search(query=query, year=year or primary_release_year, page=page)


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
    knows. When the client disconnects, the work for it stops.
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

    # The movies are already encoded: splice them rather than decode and re-encode.
    body = b"".join(
        (
            b'{"movies":[',
            b",".join(found[tmdb_id] for tmdb_id in ordered if tmdb_id in found),
            b'],"missing":',
            json.dumps(not_found).encode(),
            b',"stale":',
            in_order(batch.stale),
            b',"fallback":',
            in_order(batch.fallback),
            b',"deferred":',
            in_order(batch.deferred),
            b"}",
        )
    )
    return Response(content=body, media_type="application/json")


@router.get("/cache/stats", response_model=CacheStats, tags=["cache"], responses=error_responses())
async def cache_stats(movies: MovieServiceDep) -> CacheStats:
    """What the cache holds and what this process asked of TMDB since it started."""
    return await movies.stats()
