"""The proxy's logic: where a movie comes from (memo, database cache, TMDB, stale copy, offline
source), one upstream request per id however many requests miss it at once, and search.

Answers are kept encoded (JSON bytes of TMDB's shape, shared by ``/3/movie/{id}`` and
``POST /movies/batch``), with the MovieLens year of a record that has no release date beside
them, in a bounded in-process memo in front of the database cache: a hit costs a dict lookup,
not a query and a re-serialisation. The memo only holds fresh
answers and forgets them at their expiry, so it never outlives the database entry it copies.

The cache writes are this service's own short transactions, not the request's: a fetched movie
is worth keeping even when the request that asked for it fails or is cancelled.

A request never waits long for TMDB (stale-while-revalidate): it fetches at most
``fetches_per_request`` uncached ids, for at most ``request_deadline_s``; every other id is
answered from the expired cache copy (``stale``), else the imported records or the dataset's own
movie (``fallback``), else not at all (``deferred``). The ids it tried that TMDB did not answer
in time are queued for the :class:`Refresher`, which fetches them later within the rate limit;
the ids past the budget are not (the refresher shares the request's budget: one request of
5,000 ids made ~5,000 background calls), and a later request that misses them fetches them.
A fetch nobody waits for any more (the request ended or its client went away) is cancelled.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_common.app import freeze_long_lived
from prefshift_common.movies import release_year
from prefshift_tmdb_proxy import repository
from prefshift_tmdb_proxy.records import MOVIELENS_YEAR, movielens_year, search_result
from prefshift_tmdb_proxy.refresher import Refresher
from prefshift_tmdb_proxy.repository import CacheEntry
from prefshift_tmdb_proxy.schemas import CacheStats
from prefshift_tmdb_proxy.search import TitleIndex
from prefshift_tmdb_proxy.shapes import details
from prefshift_tmdb_proxy.upstream import TmdbClient, TmdbUnavailable, UpstreamCounters

log = structlog.get_logger(__name__)

PAGE_SIZE = 20  # TMDB's search page size
MAX_SEARCH_RESULTS = 10_000  # TMDB caps search at 500 pages of 20


@dataclass(frozen=True, slots=True)
class Served:
    """A movie's details, encoded in TMDB's shape, where they came from (``tmdb``: TMDB or its
    cached answer; ``offline``: an imported record; ``movielens``: a dataset's own movie) and,
    where TMDB's release date is unknown, the MovieLens year (never in ``body``: prefshift's
    own routes serve it beside it)."""

    body: bytes
    source: str
    year: int | None = None


def served(record: Mapping[str, Any], source: str) -> Served:
    """A stored record as served: TMDB's details, encoded once, and the MovieLens year."""
    return Served(encode(details(record)), source, movielens_year(record))


@dataclass(frozen=True, slots=True)
class SearchAnswer:
    """TMDB's search page, and the MovieLens years of its results that have no release date
    (offline answers; never in the body: the route sends them in a header)."""

    body: dict[str, Any]
    years: dict[int, int] = field(default_factory=dict)


#: A movie as served, or None for "nobody knows this id".
Answer = Served | None
#: An offline record and its source (``offline`` or ``movielens``).
OfflineRecord = tuple[dict[str, Any], str]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def encode(movie: dict[str, Any]) -> bytes:
    return json.dumps(movie, ensure_ascii=False, separators=(",", ":")).encode()


class Memo:
    """Bounded LRU of encoded answers, each with its own expiry (``time.time()`` seconds).

    An entry is a tuple of a float, bytes, a str and an int (or Nones), which the garbage
    collector stops tracking: 20,000 entries add nothing to what every full collection walks."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[int, tuple[float, bytes | None, str | None, int | None]] = (
            OrderedDict()
        )

    def get(self, tmdb_id: int) -> tuple[bool, Answer]:
        entry = self._entries.get(tmdb_id)
        if entry is None:
            return False, None
        expires, body, source, year = entry
        if expires <= time.time():
            del self._entries[tmdb_id]
            return False, None
        self._entries.move_to_end(tmdb_id)
        if body is None or source is None:
            return True, None
        return True, Served(body, source, year)

    def put(self, tmdb_id: int, answer: Answer, expires: float) -> None:
        if self._size <= 0:
            return
        if answer is None:
            self._entries[tmdb_id] = (expires, None, None, None)
        else:
            self._entries[tmdb_id] = (expires, answer.body, answer.source, answer.year)
        self._entries.move_to_end(tmdb_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class Batch:
    """The answers to a batch of ids, and which of them did not come fresh from TMDB."""

    found: dict[int, Served] = field(default_factory=dict)
    #: answered from an expired cached copy of TMDB's record
    stale: list[int] = field(default_factory=list)
    #: answered from imported records or the dataset's own movie, TMDB not asked in time
    fallback: list[int] = field(default_factory=list)
    #: no copy anywhere and TMDB did not answer in time: left out, fetched in the background
    deferred: list[int] = field(default_factory=list)


class _Flight:
    """One upstream fetch, how many requests wait for it, and whether it has begun (holds a
    fetch slot: at most ``max_concurrency`` flights have)."""

    def __init__(self) -> None:
        self.task: asyncio.Task[Answer] | None = None
        self.waiters = 0
        self.started = False


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
        memo_size: int,
        fetches_per_request: int = 20,
        request_deadline_s: float = 5.0,
        refresh_queue_size: int = 10_000,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._cross_process_lock = cross_process_lock
        self._ttl = timedelta(seconds=cache_ttl_s)
        self._negative_ttl = timedelta(seconds=negative_ttl_s)
        self._fetch_slots = asyncio.Semaphore(max_concurrency)
        self._inflight: dict[int, _Flight] = {}
        self._fetches_per_request = fetches_per_request
        self._deadline = request_deadline_s
        self.refresher = Refresher(self._refresh, size=refresh_queue_size)
        self._memo = Memo(memo_size)
        self._index: TitleIndex | None = None
        self._index_signature: tuple[Any, ...] | None = None
        self._index_checked = -math.inf
        self._index_refresh = index_refresh_s
        self._index_lock = asyncio.Lock()
        self._search_cache: OrderedDict[tuple[tuple[str, str], ...], tuple[float, Any]] = (
            OrderedDict()
        )
        self._search_cache_size = search_cache_size
        self.hits = 0
        self.misses = 0
        self.stale_served = 0
        self.fallback_served = 0
        self.deferred = 0

    @property
    def online(self) -> bool:
        return self._client is not None

    @property
    def upstream_counters(self) -> UpstreamCounters | None:
        """What this process asked of TMDB (None offline)."""
        return self._client.counters if self._client is not None else None

    # --- details ------------------------------------------------------------------------------

    async def movie(self, tmdb_id: int) -> Batch:
        """TMDB's details of one movie (JSON), as a batch of one."""
        known, answer = self._memo.get(tmdb_id)
        if known:
            self.hits += 1
            return Batch(found={tmdb_id: answer} if answer is not None else {})
        return await self.movies([tmdb_id])

    async def movies(self, tmdb_ids: Sequence[int]) -> Batch:
        """Details (JSON) of many movies; ids nobody knows are absent. One query for the hits
        the memo does not hold; at most ``fetches_per_request`` upstream fetches."""
        answers: dict[int, Answer] = {}
        rest: list[int] = []
        for tmdb_id in dict.fromkeys(tmdb_ids):
            known, answer = self._memo.get(tmdb_id)
            if known:
                answers[tmdb_id] = answer
            else:
                rest.append(tmdb_id)
        self.hits += len(answers)
        batch = Batch()
        if rest:
            if self._client is None:
                answers.update(await self._offline_answers(rest))
            else:
                answers.update(await self._cached_or_fetched(rest, batch))
        batch.found = {tmdb_id: answer for tmdb_id, answer in answers.items() if answer is not None}
        return batch

    async def _cached_or_fetched(self, ids: list[int], batch: Batch) -> dict[int, Answer]:
        now = _utcnow()
        async with self._sessions() as session:
            rows = await repository.cached(session, ids)
        answers: dict[int, Answer] = {}
        pending: dict[int, CacheEntry | None] = {}
        for tmdb_id in ids:
            row = rows.get(tmdb_id)
            if row is not None and row.expires_at > now:
                self.hits += 1
                answers[tmdb_id] = self._remember(tmdb_id, row)
            else:
                self.misses += 1
                pending[tmdb_id] = row
        if not pending:
            return answers
        wanted = list(pending)
        # Past the request's upstream budget: answered from copies, neither fetched nor queued
        # for a refresh (a later request that misses them fetches them within its own budget).
        unanswered = wanted[self._fetches_per_request :]
        retry: list[int] = []  # tried within the budget, TMDB did not answer in time
        waiters = {
            tmdb_id: asyncio.ensure_future(self._fetch(tmdb_id))
            for tmdb_id in wanted[: self._fetches_per_request]
        }
        if waiters:
            try:
                done, _ = await asyncio.wait(waiters.values(), timeout=self._deadline)
            finally:
                for waiter in waiters.values():
                    waiter.cancel()  # a no-op when done; else the fetch may be cancelled too
            for tmdb_id, waiter in waiters.items():
                failure = waiter.exception() if waiter in done else None
                if waiter in done and failure is None:
                    answers[tmdb_id] = waiter.result()
                    continue
                if failure is not None and not isinstance(failure, TmdbUnavailable):
                    raise failure
                retry.append(tmdb_id)
        if unanswered or retry:
            answers.update(await self._copies(unanswered + retry, pending, batch))
            # The refresher shares the request's budget: it retries only what the request tried,
            # so one request costs TMDB at most twice its budget, however many ids it names.
            self.refresher.add(retry)
        return answers

    async def _copies(
        self, ids: list[int], pending: dict[int, CacheEntry | None], batch: Batch
    ) -> dict[int, Answer]:
        """Answers of ids TMDB did not give in time: the expired cache copy (a remembered 404
        stays a 404), else the offline records or the dataset's movie. Never memoised."""
        answers: dict[int, Answer] = {}
        without_copy: list[int] = []
        for tmdb_id in ids:
            stale = pending.get(tmdb_id)
            if stale is None:
                without_copy.append(tmdb_id)
                continue
            payload = stale.payload
            answers[tmdb_id] = served(payload, "tmdb") if payload else None
            batch.stale.append(tmdb_id)
        offline = await self.offline_records(without_copy) if without_copy else {}
        for tmdb_id in without_copy:
            if tmdb_id in offline:
                record, source = offline[tmdb_id]
                answers[tmdb_id] = served(record, source)
                batch.fallback.append(tmdb_id)
            else:
                batch.deferred.append(tmdb_id)
        self.stale_served += len(batch.stale)
        self.fallback_served += len(batch.fallback)
        self.deferred += len(batch.deferred)
        if ids:
            log.info(
                "tmdb_not_asked_in_time",
                stale=len(batch.stale),
                fallback=len(batch.fallback),
                deferred=len(batch.deferred),
            )
        return answers

    def _remember(self, tmdb_id: int, row: CacheEntry) -> Answer:
        answer = served(row.payload, "tmdb") if row.payload else None
        self._memo.put(tmdb_id, answer, row.expires_at.timestamp())
        return answer

    async def _offline_answers(self, ids: list[int]) -> dict[int, Answer]:
        found = await self.offline_records(ids)
        # Offline records change only on import: remember them until the next index check.
        expires = time.time() + self._index_refresh
        answers: dict[int, Answer] = {}
        for tmdb_id in ids:
            answer: Answer = None
            if tmdb_id in found:
                record, source = found[tmdb_id]
                answer = served(record, source)
            self._memo.put(tmdb_id, answer, expires)
            answers[tmdb_id] = answer
        self.misses += len(ids) - len(found)
        self.hits += len(found)
        return answers

    async def offline_records(self, ids: list[int]) -> dict[int, OfflineRecord]:
        """Imported records first, then the datasets' own movies."""
        async with self._sessions() as session:
            imported = await repository.offline(session, ids)
            # imported records with no date at all get the dataset's MovieLens year
            undated = [
                tmdb_id
                for tmdb_id, record in imported.items()
                if not record.get("release_date") and record.get(MOVIELENS_YEAR) is None
            ]
            rest = [tmdb_id for tmdb_id in ids if tmdb_id not in imported] + undated
            from_datasets = await repository.dataset_movies(session, rest) if rest else {}
        found: dict[int, OfflineRecord] = {}
        for tmdb_id in ids:
            if tmdb_id in imported:
                record = imported[tmdb_id]
                dataset_record = from_datasets.get(tmdb_id)
                if tmdb_id in undated and dataset_record is not None:
                    record = {**record, MOVIELENS_YEAR: dataset_record[MOVIELENS_YEAR]}
                found[tmdb_id] = (record, "offline")
            elif tmdb_id in from_datasets:
                found[tmdb_id] = (from_datasets[tmdb_id], "movielens")
        return found

    async def _fetch(self, tmdb_id: int) -> Answer:
        """Single flight: concurrent misses of one id share one fetch. When the last request
        waiting for it stops waiting (deadline passed, client gone), a fetch that has not begun
        is cancelled; one that has (at most ``max_concurrency``) finishes into the cache."""
        flight = self._inflight.get(tmdb_id)
        if flight is None:
            known, answer = self._memo.get(tmdb_id)
            if known:  # a flight ended since this request read the cache
                return answer
            flight = _Flight()
            flight.task = asyncio.create_task(self._fetch_and_store(tmdb_id, flight))
            self._inflight[tmdb_id] = flight
            flight.task.add_done_callback(lambda done: self._fetch_done(tmdb_id, done))
        task = flight.task
        assert task is not None
        flight.waiters += 1
        try:
            # shield: one caller going away must not cancel the fetch the others wait for.
            return await asyncio.shield(task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.started and not task.done():
                task.cancel()

    async def _refresh(self, tmdb_id: int) -> None:
        """A background refresh (the :class:`Refresher` calls it, one id at a time)."""
        await self._fetch(tmdb_id)

    def _fetch_done(self, tmdb_id: int, task: asyncio.Task[Answer]) -> None:
        flight = self._inflight.get(tmdb_id)
        if flight is not None and flight.task is task:
            del self._inflight[tmdb_id]
        if not task.cancelled():
            task.exception()  # retrieved, even when every waiter has gone away

    async def _fetch_and_store(self, tmdb_id: int, flight: _Flight) -> Answer:
        assert self._client is not None
        async with self._fetch_slots:
            flight.started = True
            if self._cross_process_lock:
                row = await self._fetch_under_lock(tmdb_id)
            else:
                row = self._cache_row(tmdb_id, await self._client.movie(tmdb_id))
                async with self._sessions() as session, session.begin():
                    await repository.upsert_cached(session, [row])
        return self._remember(tmdb_id, CacheEntry(row["status"], row["payload"], row["expires_at"]))

    async def _fetch_under_lock(self, tmdb_id: int) -> dict[str, Any]:
        """Postgres: whoever holds the advisory lock of the id fetches; the other processes
        find the row it wrote once they get the lock."""
        assert self._client is not None
        async with self._sessions() as session, session.begin():
            await repository.lock_movie(session, tmdb_id)
            entry = (await repository.cached(session, [tmdb_id])).get(tmdb_id)
            if entry is not None and entry.expires_at > _utcnow():
                return {
                    "status": entry.status,
                    "payload": entry.payload,
                    "expires_at": entry.expires_at,
                }
            row = self._cache_row(tmdb_id, await self._client.movie(tmdb_id))
            await repository.upsert_cached(session, [row])
        return row

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
            "year": release_year(payload),
            "fetched_at": now,
            "expires_at": now + self._ttl,
        }

    # --- search -------------------------------------------------------------------------------

    async def search(
        self, *, query: str, year: int | None, page: int, params: Mapping[str, str]
    ) -> SearchAnswer:
        """``GET /3/search/movie``: TMDB's answer to the client's parameters ``params`` online
        (cached briefly in memory), the title index (``query``, ``year``, ``page``) offline or
        when TMDB is unavailable."""
        if self._client is None:
            return await self._offline_search(query=query, year=year, page=page)
        params = {**params, "query": query, "page": str(page)}
        # "Matrix" and "matrix " are one search (the first one's words go to TMDB)
        key = tuple(sorted({**params, "query": query.casefold().strip()}.items()))
        cached = self._search_cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            self._search_cache.move_to_end(key)
            return SearchAnswer(dict(cached[1]))
        try:
            async with asyncio.timeout(self._deadline):
                body = await self._client.search(params)
        except (TmdbUnavailable, TimeoutError):
            index = await self._title_index()
            if len(index) == 0:
                raise
            self.stale_served += 1
            return await self._offline_search(query=query, year=year, page=page)
        if self._search_cache_size:
            self._search_cache[key] = (time.monotonic() + self._negative_ttl.total_seconds(), body)
            while len(self._search_cache) > self._search_cache_size:
                self._search_cache.popitem(last=False)
        return SearchAnswer(body)

    async def _offline_search(self, *, query: str, year: int | None, page: int) -> SearchAnswer:
        index = await self._title_index()
        matches = await asyncio.to_thread(index.search, query, year, MAX_SEARCH_RESULTS)
        total = len(matches)
        chosen = matches[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        records = await self.offline_records([m.row.tmdb_id for m in chosen])
        results: list[dict[str, Any]] = []
        years: dict[int, int] = {}
        for match in chosen:
            tmdb_id = match.row.tmdb_id
            if tmdb_id not in records:
                continue
            record = records[tmdb_id][0]
            results.append(search_result(record))
            # the record's own MovieLens year, else the index's (which the datasets fill in)
            undated_year = None if record.get("release_date") else match.row.year
            found_year = movielens_year(record) or undated_year
            if found_year is not None:
                years[tmdb_id] = found_year
        body = {
            "page": page,
            "results": results,
            "total_pages": math.ceil(total / PAGE_SIZE),
            "total_results": total,
        }
        return SearchAnswer(body, years)

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
                    freeze_long_lived()  # full collections must not walk the index
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
        upstream = self.upstream_counters
        return CacheStats(
            mode="online" if self.online else "offline",
            entries=counts.entries,
            not_found_entries=counts.not_found_entries,
            expired_entries=counts.expired_entries,
            offline_records=counts.offline_records,
            memo_entries=len(self._memo),
            hits=self.hits,
            misses=self.misses,
            stale_served=self.stale_served,
            fallback_served=self.fallback_served,
            deferred=self.deferred,
            refresh_queue=len(self.refresher),
            refreshed=self.refresher.refreshed,
            upstream_calls=upstream.calls if upstream else 0,
            upstream_errors=upstream.errors if upstream else 0,
            upstream_retries=upstream.retries if upstream else 0,
            rate_limit_waits=upstream.rate_limit_waits if upstream else 0,
            search_index_size=len(self._index) if self._index is not None else 0,
        )
