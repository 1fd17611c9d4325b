"""Refreshes, in the background and within the rate limit, the movies a request tried to fetch
within its budget but answered from a stale copy or a fallback because TMDB was slow or
rate-limiting (stale-while-revalidate). Ids past a request's budget are never queued: the
refresher spends the request's budget, not a budget of its own. Bounded: a queue of at most
``size`` ids, a few fetches at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable

import structlog

log = structlog.get_logger(__name__)

Fetch = Callable[[int], Awaitable[object]]


class Refresher:
    """A bounded, de-duplicated queue of ids and the workers that fetch them one by one."""

    def __init__(self, fetch: Fetch, *, size: int, workers: int = 2) -> None:
        self._fetch = fetch
        self._size = size
        self._workers = workers
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._queued: set[int] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.refreshed = 0

    def __len__(self) -> int:
        return len(self._queued)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(), name=f"tmdb-refresh-{n}")
            for n in range(self._workers)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def add(self, ids: Iterable[int]) -> None:
        """Queue ``ids`` (those already queued once); past ``size`` they are dropped and counted
        (a later request that misses them queues them again)."""
        for tmdb_id in ids:
            if tmdb_id in self._queued:
                continue
            if len(self._queued) >= self._size:
                self.dropped += 1
                continue
            self._queued.add(tmdb_id)
            self._queue.put_nowait(tmdb_id)

    async def _work(self) -> None:
        while True:
            tmdb_id = await self._queue.get()
            try:
                await self._fetch(tmdb_id)
                self.refreshed += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # TMDB still failing: a later miss queues it again
                log.info("tmdb_refresh_failed", tmdb_id=tmdb_id, error=type(exc).__name__)
            finally:
                self._queued.discard(tmdb_id)
