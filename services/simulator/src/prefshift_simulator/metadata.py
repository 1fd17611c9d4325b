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

import structlog

from prefshift_common.contracts import TmdbMovie
from prefshift_common.movies import movie_label, readable_title, tmdb_genres
from prefshift_common.tmdb_client import TmdbProxyClient

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
    """Metadata from tmdb-proxy's ``POST /movies/batch`` (one call per request, unless a persona
    with a very long history needs several)."""

    def __init__(self, client: TmdbProxyClient) -> None:
        self._client = client

    async def fetch(self, tmdb_ids: list[int]) -> dict[int, MovieFacts]:
        batch = await self._client.movies(tmdb_ids)
        if batch.missing:
            log.info("tmdb_ids_unknown", missing=batch.missing[:20], n=len(batch.missing))
        return {movie.id: MovieFacts.from_tmdb(movie) for movie in batch.movies}


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
