"""Resolving the (title, year) pairs a language model names to TMDB ids, the one way every
caller does it (the LLM recommenders; the import of a study's recorded recommendations).

First a catalogue (a dataset's movies: the same title, else a near spelling, see
:mod:`prefshift_common.title_matching`), then a title search in TMDB's shape — tmdb-proxy's
``GET /3/search/movie``, which also knows movies outside the dataset — judged by the same
rules. A title neither resolves is dropped and counted, never mapped to the nearest film.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import structlog

from prefshift_common.errors import ServiceError
from prefshift_common.movies import release_year
from prefshift_common.title_matching import CatalogueMovie, TitleCatalogue
from prefshift_common.tmdb_client import TmdbProxyClient

log = structlog.get_logger(__name__)

#: Search results judged per query (TMDB's first page).
SEARCH_RESULTS = 20


@dataclass(frozen=True)
class ResolvedTitle:
    """The movie a title names."""

    tmdb_id: int
    title: str
    year: int | None
    source: Literal["catalogue", "search"]


class TitleSearch(Protocol):
    """A title search in TMDB's shape; ``None`` when the search itself failed."""

    async def search(self, query: str, year: int | None) -> list[CatalogueMovie] | None: ...


def search_hits(body: Any) -> list[CatalogueMovie]:
    """The results of a TMDB search answer as catalogue movies, best first (malformed skipped)."""
    results = body.get("results") if isinstance(body, dict) else None
    hits: list[CatalogueMovie] = []
    for rank, result in enumerate(results[:SEARCH_RESULTS] if isinstance(results, list) else []):
        if not isinstance(result, dict):
            continue
        tmdb_id = result.get("id")
        if not isinstance(tmdb_id, int) or isinstance(tmdb_id, bool) or tmdb_id < 1:
            continue
        names = [result.get("title"), result.get("original_title")]
        hits.append(
            CatalogueMovie(
                tmdb_id=tmdb_id,
                names=tuple(dict.fromkeys(n[:500] for n in names if isinstance(n, str) and n)),
                year=release_year(result),
                popularity=-float(rank),  # TMDB's order breaks ties
            )
        )
    return hits


class ProxyTitleSearch:
    """tmdb-proxy's ``GET /3/search/movie`` through the :class:`TmdbProxyClient`.

    After ``max_failures`` failed searches it stops asking (a page of titles must not wait on a
    dead proxy once per title)."""

    def __init__(self, client: TmdbProxyClient, *, max_failures: int = 3) -> None:
        self.client = client
        self.max_failures = max_failures
        self.failures = 0

    async def search(self, query: str, year: int | None) -> list[CatalogueMovie] | None:
        if self.failures >= self.max_failures:
            return None
        try:
            results = await self.client.search(query, year=year)
        except ServiceError as exc:
            self.failures += 1
            log.warning("title_search_failed", error=exc.detail[:200])
            return None
        return search_hits(results.model_dump())


class TitleResolver:
    """Resolves titles against one catalogue and, if given, a title search. Counts what it
    resolved where and what it dropped (``resolved_in_catalogue``, ``resolved_by_search``,
    ``dropped``)."""

    def __init__(
        self,
        catalogue: TitleCatalogue | None,
        search: TitleSearch | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.search = search
        self.resolved_in_catalogue = 0
        self.resolved_by_search = 0
        self.dropped = 0

    def _from_catalogue(self, title: str, year: int | None) -> ResolvedTitle | None:
        if self.catalogue is None:
            return None
        position = self.catalogue.find(title, year)
        if position is None:
            return None
        movie = self.catalogue.movies[position]
        return ResolvedTitle(movie.tmdb_id, movie.names[0], movie.year, "catalogue")

    async def _from_search(self, title: str, year: int | None) -> ResolvedTitle | None:
        if self.search is None:
            return None
        # TMDB filters on the release year, which can differ by one from the year people name.
        for sent_year in dict.fromkeys([year, None]):
            hits = await self.search.search(title, sent_year)
            if not hits:
                continue
            position = TitleCatalogue(hits).find(title, year)
            if position is not None:
                hit = hits[position]
                return ResolvedTitle(hit.tmdb_id, hit.names[0], hit.year, "search")
        return None

    async def resolve(self, title: str, year: int | None) -> ResolvedTitle | None:
        """The movie a title (and the year given with it) names, or ``None`` (dropped)."""
        title = title.strip()
        found = None
        if title:
            # Fuzzy matching over a large catalogue takes milliseconds: off the event loop.
            found = await asyncio.to_thread(self._from_catalogue, title, year)
            if found is not None:
                self.resolved_in_catalogue += 1
            else:
                found = await self._from_search(title, year)
                if found is not None:
                    self.resolved_by_search += 1
        if found is None:
            self.dropped += 1
            log.info("title_dropped", title=title[:200], year=year)
        return found

    async def resolve_all(
        self, titles: Sequence[tuple[str, int | None]]
    ) -> list[ResolvedTitle | None]:
        """Every (title, year) in order; ``None`` where a title was dropped."""
        return list(await asyncio.gather(*(self.resolve(t, y) for t, y in titles)))
