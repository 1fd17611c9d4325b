"""The proxy's logic: where a movie comes from (fresh cache, TMDB, stale copy, offline source),
one upstream request per id however many requests miss it at once, and search.

The cache writes are this service's own short transactions, not the request's: a fetched movie
is worth keeping even when the request that asked for it fails or is cancelled.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_tmdb_proxy import repository
from prefshift_tmdb_proxy.models import CachedMovie
from prefshift_tmdb_proxy.records import normalise, search_result, year_of
from prefshift_tmdb_proxy.repository import aware
from prefshift_tmdb_proxy.schemas import CacheStats
from prefshift_tmdb_proxy.search import TitleIndex
from prefshift_tmdb_proxy.upstream import TmdbClient, TmdbUnavailable

log = structlog.get_logger(__name__)

PAGE_SIZE = 20  # TMDB's search page size
MAX_SEARCH_RESULTS = 10_000  # TMDB caps search at 500 pages of 20


def _utcnow() -> datetime:
    return datetime.now(UTC)


class MovieService:
    """One per process, created in the app's lifespan."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        client: TmdbClient | None,
        cross_process_lock: bool,
        cache_ttl_s: float,
        negative_ttl_s: float,
        max_concurrency: int,
        index_refresh_s: float,
        search_cache_size: int,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._cross_process_lock = cross_process_lock
        self._ttl = timedelta(seconds=cache_ttl_s)
        self._negative_ttl = timedelta(seconds=negative_ttl_s)
        self._fetch_slots = asyncio.Semaphore(max_concurrency)
        self._inflight: dict[int, asyncio.Task[dict[str, Any] | None]] = {}
        self._index: TitleIndex | None = None
        self._index_signature: tuple[Any, ...] | None = None
        self._index_checked = -math.inf
        self._index_refresh = index_refresh_s
        self._index_lock = asyncio.Lock()
        self._search_cache: OrderedDict[tuple[str, int | None, int], tuple[float, Any]] = (
            OrderedDict()
        )
        self._search_cache_size = search_cache_size
        self.hits = 0
        self.misses = 0
        self.stale_served = 0

    @property
    def online(self) -> bool:
        return self._client is not None

    # --- details ------------------------------------------------------------------------------

    async def movie(self, tmdb_id: int) -> dict[str, Any] | None:
        """TMDB's details of one movie, or None when it is unknown."""
        return (await self.movies([tmdb_id])).get(tmdb_id)

    async def movies(self, tmdb_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Details of many movies (ids nobody knows are absent), with one query for the hits."""
        ids = list(dict.fromkeys(tmdb_ids))
        if self._client is None:
            return await self._offline_movies(ids, count=True)
        now = _utcnow()
        async with self._sessions() as session:
            rows = await repository.cached(session, ids)
        found: dict[int, dict[str, Any]] = {}
        pending: dict[int, CachedMovie | None] = {}
        for tmdb_id in ids:
            row = rows.get(tmdb_id)
            if row is not None and aware(row.expires_at) > now:
                self.hits += 1
                if row.status == "ok" and row.payload is not None:
                    found[tmdb_id] = normalise(row.payload, "tmdb")
            else:
                self.misses += 1
                pending[tmdb_id] = row
        if pending:
            outcomes = await asyncio.gather(
                *(self._fetch(tmdb_id, stale) for tmdb_id, stale in pending.items()),
                return_exceptions=True,
            )
            for tmdb_id, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    raise outcome  # what was fetched is cached; a retry of the batch is cheap
                if outcome is not None:
                    found[tmdb_id] = outcome
        return {tmdb_id: found[tmdb_id] for tmdb_id in ids if tmdb_id in found}

    async def _offline_movies(self, ids: list[int], *, count: bool) -> dict[int, dict[str, Any]]:
        """Imported records first, then the datasets' own movies."""
        async with self._sessions() as session:
            imported = await repository.offline(session, ids)
            rest = [tmdb_id for tmdb_id in ids if tmdb_id not in imported]
            from_datasets = await repository.dataset_movies(session, rest) if rest else {}
        found: dict[int, dict[str, Any]] = {}
        for tmdb_id in ids:
            if tmdb_id in imported:
                found[tmdb_id] = normalise(imported[tmdb_id], "offline")
            elif tmdb_id in from_datasets:
                found[tmdb_id] = normalise(from_datasets[tmdb_id], "movielens")
        if count:
            self.hits += len(found)
            self.misses += len(ids) - len(found)
        return found

    async def _fetch(self, tmdb_id: int, stale: CachedMovie | None) -> dict[str, Any] | None:
        """Single flight: concurrent misses of one id share one fetch."""
        task = self._inflight.get(tmdb_id)
        if task is None:
            task = asyncio.create_task(self._fetch_and_store(tmdb_id, stale))
            self._inflight[tmdb_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(tmdb_id, None))
        # shield: a caller that goes away must not cancel the fetch the others wait for.
        return await asyncio.shield(task)

    async def _fetch_and_store(
        self, tmdb_id: int, stale: CachedMovie | None
    ) -> dict[str, Any] | None:
        assert self._client is not None
        try:
            async with self._fetch_slots:
                if self._cross_process_lock:
                    return await self._fetch_under_lock(tmdb_id)
                payload = await self._client.movie(tmdb_id)
                async with self._sessions() as session, session.begin():
                    await repository.upsert_cached(session, [self._cache_row(tmdb_id, payload)])
        except TmdbUnavailable:
            fallback = await self._fallback(tmdb_id, stale)
            if fallback is None:
                raise
            self.stale_served += 1
            log.warning("tmdb_unavailable_served_copy", tmdb_id=tmdb_id)
            return fallback[0]
        return normalise(payload, "tmdb") if payload is not None else None

    async def _fetch_under_lock(self, tmdb_id: int) -> dict[str, Any] | None:
        """Postgres: whoever holds the advisory lock of the id fetches; the other processes
        find the row it wrote once they get the lock."""
        assert self._client is not None
        async with self._sessions() as session, session.begin():
            await repository.lock_movie(session, tmdb_id)
            row = (await repository.cached(session, [tmdb_id])).get(tmdb_id)
            if row is not None and aware(row.expires_at) > _utcnow():
                return normalise(row.payload, "tmdb") if row.payload is not None else None
            payload = await self._client.movie(tmdb_id)
            await repository.upsert_cached(session, [self._cache_row(tmdb_id, payload)])
        return normalise(payload, "tmdb") if payload is not None else None

    async def _fallback(
        self, tmdb_id: int, stale: CachedMovie | None
    ) -> tuple[dict[str, Any] | None] | None:
        """Stale-if-error: the expired cache copy (a remembered 404 stays a 404), else the
        offline source; None when there is no copy at all."""
        if stale is not None:
            return (normalise(stale.payload, "tmdb") if stale.payload is not None else None,)
        offline = await self._offline_movies([tmdb_id], count=False)
        if tmdb_id in offline:
            return (offline[tmdb_id],)
        return None

    def _cache_row(self, tmdb_id: int, payload: dict[str, Any] | None) -> dict[str, Any]:
        now = _utcnow()
        if payload is None:
            return {
                "tmdb_id": tmdb_id,
                "status": "not_found",
                "payload": None,
                "title": None,
                "original_title": None,
                "year": None,
                "fetched_at": now,
                "expires_at": now + self._negative_ttl,
            }
        return {
            "tmdb_id": tmdb_id,
            "status": "ok",
            "payload": payload,
            "title": payload.get("title"),
            "original_title": payload.get("original_title"),
            "year": year_of(payload),
            "fetched_at": now,
            "expires_at": now + self._ttl,
        }

    # --- search -------------------------------------------------------------------------------

    async def search(self, *, query: str, year: int | None, page: int) -> dict[str, Any]:
        """``GET /3/search/movie``: TMDB's answer online (cached briefly in memory), the title
        index offline or when TMDB is unavailable."""
        if self._client is None:
            return await self._offline_search(query=query, year=year, page=page)
        key = (query.casefold().strip(), year, page)
        cached = self._search_cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            self._search_cache.move_to_end(key)
            return dict(cached[1])
        try:
            body = await self._client.search(query=query, year=year, page=page)
        except TmdbUnavailable:
            index = await self._title_index()
            if len(index) == 0:
                raise
            self.stale_served += 1
            return await self._offline_search(query=query, year=year, page=page)
        if self._search_cache_size:
            self._search_cache[key] = (time.monotonic() + self._negative_ttl.total_seconds(), body)
            while len(self._search_cache) > self._search_cache_size:
                self._search_cache.popitem(last=False)
        return body

    async def _offline_search(self, *, query: str, year: int | None, page: int) -> dict[str, Any]:
        index = await self._title_index()
        matches = await asyncio.to_thread(index.search, query, year, MAX_SEARCH_RESULTS)
        total = len(matches)
        chosen = matches[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        records = await self._offline_movies([m.row.tmdb_id for m in chosen], count=False)
        results = [
            search_result(records[m.row.tmdb_id]) for m in chosen if m.row.tmdb_id in records
        ]
        return {
            "page": page,
            "results": results,
            "total_pages": math.ceil(total / PAGE_SIZE),
            "total_results": total,
        }

    async def _title_index(self) -> TitleIndex:
        if self._index is not None and time.monotonic() - self._index_checked < self._index_refresh:
            return self._index
        async with self._index_lock:
            if (
                self._index is not None
                and time.monotonic() - self._index_checked < self._index_refresh
            ):
                return self._index
            async with self._sessions() as session:
                signature = await repository.source_signature(session)
                if self._index is None or signature != self._index_signature:
                    rows = await repository.title_rows(session)
                    self._index = await asyncio.to_thread(TitleIndex, rows)
                    self._index_signature = signature
                    log.info("title_index_built", movies=len(self._index))
            self._index_checked = time.monotonic()
            return self._index

    async def warm_up(self) -> None:
        """Build the title index ahead of the first search."""
        await self._title_index()

    # --- stats --------------------------------------------------------------------------------

    async def stats(self) -> CacheStats:
        async with self._sessions() as session:
            counts = await repository.counts(session, _utcnow())
        upstream = self._client.counters if self._client is not None else None
        return CacheStats(
            mode="online" if self.online else "offline",
            entries=counts.entries,
            not_found_entries=counts.not_found_entries,
            expired_entries=counts.expired_entries,
            offline_records=counts.offline_records,
            hits=self.hits,
            misses=self.misses,
            stale_served=self.stale_served,
            upstream_calls=upstream.calls if upstream else 0,
            upstream_errors=upstream.errors if upstream else 0,
            upstream_retries=upstream.retries if upstream else 0,
            rate_limit_waits=upstream.rate_limit_waits if upstream else 0,
            search_index_size=len(self._index) if self._index is not None else 0,
        )
