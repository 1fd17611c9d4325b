"""TMDB's own v3 paths (``/3/...``): a drop-in, so a TMDB client changes only its base URL.

On these paths everything answers as TMDB does: errors are TMDB's body ``{"success": false,
"status_code", "status_message"}`` with TMDB's HTTP status (an unknown path or id 404 with
``status_code`` 34, a missing or wrong key 401 with 7, a page outside 1–500 400 with 22, more
than 20 ``append_to_response`` parts 400 with 27); the API token (``PREFSHIFT_API_TOKEN``) is
accepted as TMDB accepts its key — ``?api_key=`` or ``Authorization: Bearer``; and where an
answer came from is the ``X-Prefshift-Source`` header, never a field of the body; so is the
MovieLens year of undated search results (``X-Prefshift-Movielens-Years``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from prefshift_common.contracts import (
    MOVIELENS_YEARS_HEADER,
    AsciiDigits,
    NoNul,
    SearchResults,
    TmdbMovie,
)
from prefshift_common.errors import ServiceError, Unauthorized
from prefshift_tmdb_proxy.api import (
    SOURCE_HEADER,
    ClientGone,
    MovieServiceDep,
    unless_disconnected,
)
from prefshift_tmdb_proxy.paths import LISTS, Reply, TmdbPaths, TmdbStatusError, is_plain
from prefshift_tmdb_proxy.schemas import (
    NOT_FOUND,
    FindResults,
    GenreList,
    TmdbObject,
    TmdbPage,
    TmdbStatus,
)
from prefshift_tmdb_proxy.shapes import CODE_OF_STATUS, tmdb_error
from prefshift_tmdb_proxy.upstream import TmdbUnavailable

log = structlog.get_logger(__name__)

#: Query parameters one request may forward, and their length.
MAX_PARAMS = 40
MAX_PARAM_LENGTH = 1000

_bearer = HTTPBearer(auto_error=False, description="PREFSHIFT_API_TOKEN, when it is set.")
_api_key = APIKeyQuery(
    name="api_key", auto_error=False, description="PREFSHIFT_API_TOKEN, as TMDB's v3 `api_key`."
)


async def require_tmdb_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> None:
    """With ``PREFSHIFT_API_TOKEN`` set, the token as ``?api_key=`` or as a bearer header (as
    TMDB takes its key and its read token); without one, any ``api_key`` is accepted."""
    expected = request.app.state.settings.api_token
    if expected is None:
        return
    token = expected.get_secret_value().encode()
    for given in (bearer.credentials if bearer is not None else None, api_key):
        if given is not None and secrets.compare_digest(given.encode(), token):
            return
    raise Unauthorized("this proxy requires PREFSHIFT_API_TOKEN as api_key or bearer token")


async def get_paths(request: Request) -> TmdbPaths:
    paths: TmdbPaths = request.app.state.tmdb_paths
    return paths


PathsDep = Annotated[TmdbPaths, Depends(get_paths)]
TmdbId = Annotated[int, Path(ge=1, le=2_147_483_647, description="TMDB movie id."), AsciiDigits]
Page = Annotated[int, Query(ge=1, le=500, description="20 results per page, 1–500.")]
#: A query string without NUL: the schema says what ``forwarded`` refuses (TMDB's 5).
NO_NUL = r"^[^\x00]*$"
Language = Annotated[
    str | None,
    Query(
        max_length=16,
        pattern=NO_NUL,
        description="ISO 639-1 (and region), e.g. `de-DE`; online only.",
    ),
]
Region = Annotated[
    str | None,
    Query(max_length=8, pattern=NO_NUL, description="ISO 3166-1 code; online only."),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": TmdbStatus, "description": description}
    for status, description in {
        400: "TMDB's 22 (page outside 1–500) or 27 (more than 20 appended parts).",
        401: "TMDB's 7: the API token is missing or wrong (as `api_key` or bearer).",
        404: "TMDB's 34: unknown id or path.",
        422: "TMDB's 5: invalid parameters.",
        502: "TMDB rejected the proxy's credentials or request.",
        503: "TMDB is unavailable and no copy exists.",
    }.items()
}

router = APIRouter(tags=["tmdb"], dependencies=[Depends(require_tmdb_key)], responses=_ERRORS)


def forwarded(request: Request) -> dict[str, str]:
    """The client's query parameters, as TMDB would get them (never its ``api_key``)."""
    params = {k: v for k, v in request.query_params.items() if k != "api_key"}
    if len(params) > MAX_PARAMS or any(
        len(k) > 100 or len(v) > MAX_PARAM_LENGTH or "\x00" in k + v for k, v in params.items()
    ):
        raise TmdbStatusError(5, "too many, too long or NUL-bearing query parameters")
    return params


def reply(answer: Reply) -> JSONResponse:
    return JSONResponse(answer.body, headers={SOURCE_HEADER: answer.source})


# Fixed paths first: /3/movie/popular is not a movie id.


@router.get("/3/movie/latest", response_model=TmdbMovie)
async def latest_movie(paths: PathsDep, request: Request, language: Language = None) -> Any:
    """The movie TMDB added last (offline: the highest id known)."""
    return reply(await paths.latest(forwarded(request)))


def _list_route(kind: str) -> None:
    async def movie_list(
        paths: PathsDep,
        request: Request,
        page: Page = 1,
        language: Language = None,
        region: Region = None,
    ) -> Any:
        return reply(await paths.listing(kind, forwarded(request)))

    movie_list.__doc__ = (
        f"TMDB's `{kind}` list, paged. Online TMDB's own; offline from the imported records "
        "(see docs/tmdb-proxy.md for the order used)."
    )
    movie_list.__name__ = f"movie_{kind}"
    router.add_api_route(f"/3/movie/{kind}", movie_list, methods=["GET"], response_model=TmdbPage)


for _kind in LISTS:
    _list_route(_kind)


@router.get("/3/movie/{tmdb_id}", response_model=TmdbMovie)
async def get_movie(
    tmdb_id: TmdbId,
    movies: MovieServiceDep,
    paths: PathsDep,
    request: Request,
    append_to_response: Annotated[
        str | None,
        Query(
            max_length=1000,
            pattern=NO_NUL,
            description="Comma-separated parts to add (at most 20).",
        ),
    ] = None,
    language: Language = None,
) -> Any:
    """A movie in the shape of TMDB's `GET /3/movie/{movie_id}`: every TMDB field, `null`
    where unknown, with the parts `append_to_response` names (credits, keywords,
    release_dates, external_ids, videos, images, similar, recommendations, …).

    Plain details come from the cache (or, with no TMDB key, from imported records and then
    the imported datasets' own MovieLens title, year and genres); `X-Prefshift-Source` says
    which. When TMDB does not answer within the request deadline, an expired copy answers
    (header `X-Prefshift-Stale: true`), else the offline record; with no copy at all, a 503.
    """
    params = forwarded(request)
    if not is_plain(params):
        return reply(await paths.details(tmdb_id, params))
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
    headers = {"x-prefshift-stale": "true"} if batch.stale else {}
    if movie is None:
        return JSONResponse(status_code=404, content=NOT_FOUND.model_dump(), headers=headers)
    headers[SOURCE_HEADER] = movie.source
    return Response(content=movie.body, media_type="application/json", headers=headers)


#: The sub-resources of ``/3/movie/{id}/{part}`` (``watch/providers`` has its own route).
Part = Literal[
    "credits",
    "keywords",
    "release_dates",
    "external_ids",
    "videos",
    "images",
    "alternative_titles",
    "translations",
    "similar",
    "similar_movies",  # the legacy name TMDB still answers (tmdbsimple calls it)
    "recommendations",
    "reviews",
    "lists",
]


@router.get("/3/movie/{tmdb_id}/watch/providers", response_model=TmdbObject)
async def movie_watch_providers(
    tmdb_id: TmdbId, paths: PathsDep, request: Request, language: Language = None
) -> Any:
    """Where to watch a movie (offline: TMDB's empty shape)."""
    return reply(await paths.part(tmdb_id, "watch/providers", forwarded(request)))


@router.get("/3/movie/{tmdb_id}/{part}", response_model=TmdbObject)
async def movie_part(
    tmdb_id: TmdbId,
    part: Annotated[Part, Path(description="The sub-resource.")],
    paths: PathsDep,
    request: Request,
    page: Page = 1,
    language: Language = None,
) -> Any:
    """A sub-resource of a movie (`credits`, `keywords`, `release_dates`, `external_ids`,
    `videos`, `images`, `alternative_titles`, `translations`, `similar`, `recommendations`,
    `reviews`, `lists`): TMDB's answer online; offline what the imported record holds, else
    TMDB's empty shape (`similar` and `recommendations` offline: movies sharing genres and
    keywords)."""
    return reply(await paths.part(tmdb_id, part, forwarded(request)))


@router.get("/3/search/movie", response_model=SearchResults)
async def search_movies(
    movies: MovieServiceDep,
    request: Request,
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
        int | None, Query(ge=1000, le=9999, description="Year of the first release.")
    ] = None,
    page: Page = 1,
    language: Language = None,
    region: Region = None,
    include_adult: bool = False,
) -> Any:
    """Search movies by title, in the shape of TMDB's `GET /3/search/movie`.

    With a TMDB key this is TMDB's answer to the parameters sent (cached in memory for a
    while). Without one — or when TMDB is unavailable — an offline title index answers: fuzzy
    matching that knows MovieLens's "Matrix, The" is "The Matrix"; with `year` (or
    `primary_release_year`), movies more than a year off are left out and the closer years
    rank first. The body is TMDB's shape; the MovieLens year of the offline results without a
    `release_date` is in the header `X-Prefshift-Movielens-Years` (a JSON object, id → year).
    """
    if not query.strip():
        return {"page": page, "results": [], "total_pages": 0, "total_results": 0}
    answer = await movies.search(
        query=query, year=year or primary_release_year, page=page, params=forwarded(request)
    )
    headers = {}
    if answer.years:
        headers[MOVIELENS_YEARS_HEADER] = json.dumps(answer.years, separators=(",", ":"))
    return JSONResponse(answer.body, headers=headers)


@router.get("/3/discover/movie", response_model=TmdbPage)
async def discover_movies(
    paths: PathsDep,
    request: Request,
    page: Page = 1,
    sort_by: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    with_genres: Annotated[str | None, Query(max_length=500, pattern=NO_NUL)] = None,
    primary_release_year: Annotated[int | None, Query(ge=1000, le=9999)] = None,
    year: Annotated[int | None, Query(ge=1000, le=9999)] = None,
    language: Language = None,
    region: Region = None,
) -> Any:
    """Movies by filters, as TMDB's `/3/discover/movie`: online every parameter goes to TMDB;
    offline `with_genres` (`,` all, `|` any), `without_genres`, `primary_release_year`, `year`,
    `primary_release_date.gte/lte`, `release_date.gte/lte`, `vote_count.gte/lte`,
    `vote_average.gte/lte`, `with_original_language` and `sort_by` (popularity, vote_average,
    vote_count, primary_release_date, title, original_title; `.asc`/`.desc`)."""
    return reply(await paths.discover(forwarded(request)))


@router.get("/3/find/{external_id}", response_model=FindResults)
async def find_by_external_id(
    external_id: Annotated[str, Path(max_length=64, pattern=r"^[^\x00/]+$")],
    paths: PathsDep,
    request: Request,
    external_source: Annotated[
        str | None,
        Query(max_length=32, pattern=NO_NUL, description="`imdb_id` (offline, the only one)."),
    ] = None,
    language: Language = None,
) -> Any:
    """A movie by an external id, e.g. an IMDb id from MovieLens's `links.csv` (`tt0133093`)."""
    return reply(await paths.find(external_id, forwarded(request)))


@router.get("/3/genre/movie/list", response_model=GenreList)
async def movie_genres(paths: PathsDep, request: Request, language: Language = None) -> Any:
    """TMDB's movie genres."""
    return reply(await paths.genres(forwarded(request)))


@router.get("/3/configuration", response_model=TmdbObject)
async def configuration(paths: PathsDep, request: Request) -> Any:
    """TMDB's API configuration: image base URLs and sizes."""
    return reply(await paths.configuration(forwarded(request)))


# --- errors in TMDB's shape on TMDB's paths ---------------------------------------------------


def _tmdb_body(exc: Exception) -> JSONResponse:
    headers: Mapping[str, str] | None = None
    if isinstance(exc, TmdbStatusError):
        status, body = tmdb_error(exc.tmdb_code)
        if exc.detail != body["status_message"]:
            status, body = tmdb_error(exc.tmdb_code, exc.detail)
    elif isinstance(exc, ServiceError):
        code = CODE_OF_STATUS.get(exc.status_code, 11)
        terse = code in (7, 34)  # TMDB's exact words: clients compare them
        status, body = tmdb_error(code, None if terse else exc.detail)
        headers = exc.headers
    elif isinstance(exc, RequestValidationError):
        locations = [tuple(error.get("loc", ())) for error in exc.errors()]
        if any(loc[:1] == ("path",) for loc in locations):
            status, body = tmdb_error(34)
        elif any(loc[-1:] == ("page",) for loc in locations):
            status, body = tmdb_error(22)
        else:
            fields = ", ".join(".".join(str(p) for p in loc[1:]) for loc in locations[:5])
            status, body = tmdb_error(5, fields or None)
    elif isinstance(exc, StarletteHTTPException):
        code = CODE_OF_STATUS.get(exc.status_code, 11)
        status, body = tmdb_error(code)
        headers = exc.headers
    else:
        status, body = tmdb_error(11)
    return JSONResponse(status_code=status, content=body, headers=headers)


def install_tmdb_errors(app: FastAPI) -> None:
    """Answer errors on ``/3/`` paths with TMDB's body; elsewhere the common envelope."""
    for kind in (ServiceError, RequestValidationError, StarletteHTTPException, Exception):
        envelope = app.exception_handlers[kind]

        async def handler(request: Request, exc: Exception, envelope: Any = envelope) -> Any:
            if not request.url.path.startswith("/3/"):
                return await envelope(request, exc)
            if not isinstance(exc, ServiceError | RequestValidationError | StarletteHTTPException):
                log.exception("unhandled_error", path=request.url.path)
            elif isinstance(exc, ServiceError) and exc.status_code >= 500:
                log.warning(
                    "service_error", code=exc.code, detail=exc.detail, path=request.url.path
                )
            return _tmdb_body(exc)

        app.add_exception_handler(kind, handler)
