"""Resolving the (title, year) pairs a language model names to TMDB ids.

First the dataset's own titles (exact normal form, then fuzzy within a year either side), then
tmdb-proxy's ``GET /3/search/movie`` in TMDB's shape (which also finds films outside the dataset,
first-class movies as long as TMDB knows them). A title that neither knows is dropped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import structlog
from rapidfuzz import fuzz

from prefshift_recommender.catalog import Catalog
from prefshift_recommender.titles import normalise

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ResolvedMovie:
    """A title resolved to a movie."""

    tmdb_id: int
    movielens_id: int | None
    title: str
    year: int | None


def _year(release_date: object) -> int | None:
    if isinstance(release_date, str) and release_date[:4].isdigit():
        return int(release_date[:4])
    return None


class TitleResolver:
    """Resolves titles against one catalogue and, if configured, tmdb-proxy search."""

    def __init__(
        self, catalog: Catalog, proxy: httpx.AsyncClient | None, *, fuzzy_cutoff: float = 88.0
    ) -> None:
        self.catalog = catalog
        self.proxy = proxy
        self.fuzzy_cutoff = fuzzy_cutoff
        self.proxy_failures = 0

    def _from_catalog(self, title: str, year: int | None, *, fuzzy: bool) -> ResolvedMovie | None:
        movie = self.catalog.resolve_title(title, year, fuzzy=fuzzy)
        if movie is None:
            return None
        return ResolvedMovie(movie.tmdb_id, movie.movielens_id, movie.title, movie.year)

    async def _from_proxy(self, title: str, year: int | None) -> ResolvedMovie | None:
        found = await self._search(title, year, send_year=year is not None)
        if found is None and year is not None:
            # TMDB filters on the release year, which can differ from the year a model names.
            found = await self._search(title, year, send_year=False)
        return found

    async def _search(
        self, title: str, year: int | None, *, send_year: bool
    ) -> ResolvedMovie | None:
        if self.proxy is None or self.proxy_failures >= 3:
            return None
        params: dict[str, str | int] = {"query": title[:200]}
        if send_year and year is not None:
            params["year"] = year
        try:
            response = await self.proxy.get("/3/search/movie", params=params)
        except httpx.HTTPError as exc:
            self.proxy_failures += 1
            log.warning("title_search_failed", error=type(exc).__name__)
            return None
        if response.status_code != 200:
            if response.status_code >= 500:
                self.proxy_failures += 1
            log.warning("title_search_failed", status=response.status_code)
            return None
        results = response.json().get("results") or []
        wanted = normalise(title)
        best: tuple[float, dict[str, object]] | None = None
        for result in results[:20]:
            if not isinstance(result, dict) or not isinstance(result.get("id"), int):
                continue
            found_year = _year(result.get("release_date"))
            if year is not None and found_year is not None and abs(found_year - year) > 1:
                continue
            names = [result.get("title"), result.get("original_title")]
            score = max(
                (fuzz.ratio(wanted, normalise(name)) for name in names if isinstance(name, str)),
                default=0.0,
            )
            if score >= self.fuzzy_cutoff and (best is None or score > best[0]):
                best = (score, result)
        if best is None:
            return None
        result = best[1]
        tmdb_id = int(str(result["id"]))
        known = self.catalog.get(tmdb_id)
        if known is not None:
            return ResolvedMovie(tmdb_id, known.movielens_id, known.title, known.year)
        name = str(result.get("title") or title)[:500]
        return ResolvedMovie(tmdb_id, None, name, _year(result.get("release_date")))

    async def resolve(self, title: str, year: int | None) -> ResolvedMovie | None:
        """The movie a title names, or ``None``."""
        title = title.strip()
        if not title:
            return None
        found = self._from_catalog(title, year, fuzzy=False)
        if found is None:
            # Fuzzy matching over a large catalogue takes milliseconds: off the event loop.
            found = await asyncio.to_thread(self._from_catalog, title, year, fuzzy=True)
        if found is None:
            found = await self._from_proxy(title, year)
        return found
