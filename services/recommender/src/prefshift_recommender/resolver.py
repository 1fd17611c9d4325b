"""The LLM recommenders' title resolution: :mod:`prefshift_common.title_resolver` over the
dataset's catalogue, then tmdb-proxy search, with the catalogue's own ids and display titles."""

from __future__ import annotations

from dataclasses import dataclass

from prefshift_common.title_resolver import ProxyTitleSearch
from prefshift_common.title_resolver import TitleResolver as SharedResolver
from prefshift_common.tmdb_client import TmdbProxyClient
from prefshift_recommender.catalog import Catalog


@dataclass(frozen=True)
class ResolvedMovie:
    """A title resolved to a movie."""

    tmdb_id: int
    movielens_id: int | None
    title: str
    year: int | None


class TitleResolver:
    """Resolves titles against one catalogue and, if configured, tmdb-proxy search; ``dropped``
    counts the titles that named no movie clearly."""

    def __init__(self, catalog: Catalog, proxy: TmdbProxyClient | None) -> None:
        self.catalog = catalog
        search = ProxyTitleSearch(proxy) if proxy is not None else None
        self._resolver = SharedResolver(catalog.titles, search)

    @property
    def dropped(self) -> int:
        return self._resolver.dropped

    async def resolve(self, title: str, year: int | None) -> ResolvedMovie | None:
        """The movie a title names, or ``None`` (dropped)."""
        found = await self._resolver.resolve(title, year)
        if found is None:
            return None
        known = self.catalog.get(found.tmdb_id)
        if known is not None:
            return ResolvedMovie(found.tmdb_id, known.movielens_id, known.title, known.year)
        return ResolvedMovie(found.tmdb_id, None, found.title[:500], found.year)
