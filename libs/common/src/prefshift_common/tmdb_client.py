"""The one client of tmdb-proxy: its routes as typed calls that return the contract models and
raise the common errors (so a caller answers 502/503/504 with the envelope, whoever it is).

- timeout → :class:`UpstreamTimeout` (504); unreachable → :class:`Unavailable` (503);
- any answer but 200, or a body that breaks the contract → :class:`UpstreamError` (502).

The proxy's TMDB-shaped bodies carry nothing of ours; the MovieLens year of a movie without a
release date comes beside them (``movielens_years`` of the batch, the
``X-Prefshift-Movielens-Years`` header of a search) and is merged here, the one place, into
``movielens_year`` (so ``TmdbMovie.year`` and ``release_year`` of a search result see it).

Created in a service's lifespan (:meth:`TmdbProxyClient.create`) and closed there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from prefshift_common.contracts import (
    MOVIELENS_YEARS_HEADER,
    MovieBatchRequest,
    MovieBatchResponse,
    SearchResults,
    TmdbMovie,
)
from prefshift_common.errors import Unavailable, UpstreamError, UpstreamTimeout
from prefshift_common.http import DEFAULT_TIMEOUT, create_http_client

Model = TypeVar("Model", bound=BaseModel)

#: Ids one ``POST /movies/batch`` may ask for (the contract's bound).
BATCH_LIMIT = 500
#: Characters of a search query sent (longer ones are cut, as TMDB would refuse them).
MAX_QUERY = 200


class TmdbProxyClient:
    """``POST /movies/batch`` and ``GET /3/search/movie`` of tmdb-proxy."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    @classmethod
    def create(
        cls,
        base_url: str,
        *,
        api_token: SecretStr | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> TmdbProxyClient:
        return cls(create_http_client(base_url, timeout=timeout, api_token=api_token))

    async def aclose(self) -> None:
        await self.http.aclose()

    async def movies(self, tmdb_ids: Sequence[int]) -> MovieBatchResponse:
        """The records of these movies (each id once), in batches of :data:`BATCH_LIMIT`; ids
        TMDB does not know are listed in ``missing``."""
        unique = list(dict.fromkeys(tmdb_ids))
        movies: list[TmdbMovie] = []
        missing: list[int] = []
        years: dict[int, int] = {}
        for start in range(0, len(unique), BATCH_LIMIT):
            body = MovieBatchRequest(tmdb_ids=unique[start : start + BATCH_LIMIT]).model_dump()
            batch, _ = await self._call(
                "POST /movies/batch", MovieBatchResponse, "POST", "/movies/batch", json=body
            )
            for movie in batch.movies:
                movie.movielens_year = batch.movielens_years.get(movie.id)
            movies.extend(batch.movies)
            missing.extend(batch.missing)
            years.update(batch.movielens_years)
        return MovieBatchResponse(movies=movies, missing=missing, movielens_years=years)

    async def search(self, query: str, *, year: int | None = None, page: int = 1) -> SearchResults:
        """TMDB's title search (best first); ``year`` filters as TMDB's does."""
        params: dict[str, str | int] = {"query": query[:MAX_QUERY], "page": page}
        if year is not None:
            params["year"] = year
        results, headers = await self._call(
            "GET /3/search/movie", SearchResults, "GET", "/3/search/movie", params=params
        )
        years = _movielens_years(headers.get(MOVIELENS_YEARS_HEADER))
        for result in results.results:
            result.movielens_year = years.get(result.id)
        return results

    async def _call(
        self, what: str, model: type[Model], method: str, path: str, **kwargs: Any
    ) -> tuple[Model, httpx.Headers]:
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(f"tmdb-proxy did not answer {what} in time") from exc
        except httpx.TransportError as exc:
            raise Unavailable(
                f"tmdb-proxy is unreachable at {self.http.base_url} ({type(exc).__name__})"
            ) from exc
        if response.status_code != 200:
            raise UpstreamError(
                f"tmdb-proxy answered {what} with {response.status_code}: {response.text[:300]}"
            )
        try:
            return model.model_validate_json(response.content), response.headers
        except ValidationError as exc:
            raise UpstreamError(f"tmdb-proxy answered {what} with a bad body") from exc


def _movielens_years(header: str | None) -> dict[int, int]:
    """The ``X-Prefshift-Movielens-Years`` header (a JSON object, id → year); a malformed one
    gives nothing (the years are a help to title matching, not part of TMDB's answer)."""
    if not header:
        return {}
    try:
        parsed = json.loads(header)
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    years: dict[int, int] = {}
    for key, value in parsed.items():
        if isinstance(key, str) and key.isdigit() and type(value) is int:
            years[int(key)] = value
    return years
