"""Movie metadata the personas reason about (title, year, genres, overview, TMDB votes).

The service gets it from tmdb-proxy, one ``POST /movies/batch`` call per ratings request
(:class:`ProxyMetadata`); ``prefshift eval personas`` can read it from an imported dataset's own
movie table instead (:class:`DatasetMetadata`), so an offline evaluation needs no running proxy.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx
import structlog

from prefshift_common.contracts import MovieBatchRequest, MovieBatchResponse, TmdbMovie
from prefshift_common.errors import Unavailable, UpstreamError, UpstreamTimeout
from prefshift_common.movies import movie_label, readable_title, tmdb_genres

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class MovieFacts:
    """What a persona knows about a movie."""

    tmdb_id: int
    title: str
    year: int | None = None
    genres: tuple[str, ...] = ()
    overview: str = ""
    vote_average: float | None = None
    vote_count: int | None = None

    @property
    def label(self) -> str:
        return movie_label(self.title, self.year)

    @classmethod
    def from_tmdb(cls, movie: TmdbMovie) -> MovieFacts:
        return cls(
            tmdb_id=movie.id,
            title=readable_title(movie.title),
            year=movie.year,
            genres=tmdb_genres(movie.genre_names),
            overview=(movie.overview or "").strip(),
            vote_average=movie.vote_average or None,
            vote_count=movie.vote_count,
        )


class MetadataSource(Protocol):
    """Gives the facts of many movies at once; ids it does not know are left out."""

    async def fetch(self, tmdb_ids: list[int]) -> dict[int, MovieFacts]: ...


class ProxyMetadata:
    """Metadata from tmdb-proxy's ``POST /movies/batch`` (one call per request)."""

    BATCH_LIMIT = 500

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def fetch(self, tmdb_ids: list[int]) -> dict[int, MovieFacts]:
        unique = list(dict.fromkeys(tmdb_ids))
        facts: dict[int, MovieFacts] = {}
        # One call for a normal request; a persona with a very long history needs several.
        for start in range(0, len(unique), self.BATCH_LIMIT):
            chunk = unique[start : start + self.BATCH_LIMIT]
            batch = await self._post(chunk)
            for movie in batch.movies:
                facts[movie.id] = MovieFacts.from_tmdb(movie)
            if batch.missing:
                log.info("tmdb_ids_unknown", missing=batch.missing[:20], n=len(batch.missing))
        return facts

    async def _post(self, tmdb_ids: list[int]) -> MovieBatchResponse:
        body = MovieBatchRequest(tmdb_ids=tmdb_ids).model_dump()
        try:
            response = await self._client.post("/movies/batch", json=body)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout("tmdb-proxy did not answer POST /movies/batch in time") from exc
        except httpx.TransportError as exc:
            raise Unavailable(
                f"tmdb-proxy is unreachable at {self._client.base_url} ({type(exc).__name__})"
            ) from exc
        if response.status_code != 200:
            raise UpstreamError(
                f"tmdb-proxy answered POST /movies/batch with {response.status_code}: "
                f"{response.text[:300]}"
            )
        try:
            return MovieBatchResponse.model_validate_json(response.content)
        except ValueError as exc:
            raise UpstreamError("tmdb-proxy answered POST /movies/batch with a bad body") from exc


class StaticMetadata:
    """Metadata from an in-memory mapping (an imported dataset's movie table, for offline
    evaluation)."""

    def __init__(self, facts: Mapping[int, MovieFacts]) -> None:
        self._facts = facts

    async def fetch(self, tmdb_ids: list[int]) -> dict[int, MovieFacts]:
        return {i: self._facts[i] for i in tmdb_ids if i in self._facts}


class CachedMetadata:
    """Keeps the facts of recently seen movies for ``ttl`` seconds, so a request asks its source
    (tmdb-proxy: still at most one batch call) only for the movies not seen lately. A persona
    is rated page after page with the same history and a growing list of experiences."""

    def __init__(self, source: MetadataSource, *, ttl: float, max_size: int = 200_000) -> None:
        self._source = source
        self._ttl = ttl
        self._max_size = max_size
        self._facts: OrderedDict[int, tuple[float, MovieFacts]] = OrderedDict()

    async def fetch(self, tmdb_ids: list[int]) -> dict[int, MovieFacts]:
        now = time.monotonic()
        found: dict[int, MovieFacts] = {}
        missing: list[int] = []
        for tmdb_id in tmdb_ids:
            entry = self._facts.get(tmdb_id)
            if entry is not None and now - entry[0] < self._ttl:
                found[tmdb_id] = entry[1]
            else:
                missing.append(tmdb_id)
        if missing:
            fetched = await self._source.fetch(missing)
            for tmdb_id, movie in fetched.items():
                self._facts[tmdb_id] = (now, movie)
                self._facts.move_to_end(tmdb_id)
                found[tmdb_id] = movie
            while len(self._facts) > self._max_size:
                self._facts.popitem(last=False)
        return {tmdb_id: found[tmdb_id] for tmdb_id in tmdb_ids if tmdb_id in found}
