"""Workers: claim queued runs from the database and execute them, with bounded concurrency.

Every orchestrator process runs ``PREFSHIFT_ORCHESTRATOR_WORKERS`` worker loops. A loop claims
the oldest queued run (``FOR UPDATE SKIP LOCKED`` on Postgres, one atomic ``UPDATE`` on SQLite),
so several processes share the queue and no run is executed twice at once. A heartbeat task
refreshes the claims of this process; runs whose worker stopped heart-beating for
``PREFSHIFT_ORCHESTRATOR_STALL_SECONDS`` go back to the queue (any process re-queues them) and are
resumed from their checkpoints. A run that is cancelled or re-queued under a worker is noticed at
the next heartbeat or write, and the worker drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_orchestrator.clients import ServiceClients
from prefshift_orchestrator.config import Settings
from prefshift_orchestrator.execution import RunExecutor
from prefshift_orchestrator.metrics import OrchestratorMetrics
from prefshift_orchestrator.repository import Claim
from prefshift_orchestrator.work_queue import WorkQueue

log = structlog.get_logger(__name__)

#: How long ``stop`` waits for the runs to let go before it hands them back regardless; well
#: under the 10 s a supervisor gives between SIGTERM and SIGKILL (docker, ``prefshift up``).
SHUTDOWN_WAIT_SECONDS = 5.0


def default_worker_id() -> str:
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class WorkerPool:
    """The worker loops, heartbeat and stall detection of one orchestrator process."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        clients: ServiceClients,
        metrics: OrchestratorMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.worker_id = settings.orchestrator_worker_id or default_worker_id()
        self.metrics = metrics or OrchestratorMetrics()
        self.executor = RunExecutor(
            settings=settings, sessions=sessions, clients=clients, metrics=self.metrics
        )
        self.active: dict[int, tuple[Claim, asyncio.Task[None]]] = {}
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        #: claims of runs stopped (or never started) because the process is stopping
        self._stopped: list[Claim] = []

    def wake(self) -> None:
        """Look for queued work now (called when a run is queued in this process)."""
        self._wake.set()

    async def start(self) -> None:
        if self.settings.orchestrator_workers == 0:
            return
        for index in range(self.settings.orchestrator_workers):
            self._tasks.append(asyncio.create_task(self._work(index), name=f"worker-{index}"))
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="heartbeat"))
        self._tasks.append(asyncio.create_task(self._requeue(), name="requeue"))
        log.info("workers_started", worker_id=self.worker_id, n=self.settings.orchestrator_workers)

    async def stop(self) -> None:
        """Stop claiming, stop this process's runs, and hand them back to the queue at once.

        Claiming stops first: with ``_stopping`` set, a loop ends at its next turn instead of
        claiming, and a claim it made meanwhile goes back unstarted. Then the runs are
        cancelled (a run stops at its next await, a retry's pause included) and the loops that
        waited on them end; what they held goes back to the queue. A loop never outlives its
        run's cancellation to claim another one while the process shuts down."""
        self._stopping = True
        self._wake.set()
        for _, task in list(self.active.values()):
            task.cancel()
        loops = {task for task in self._tasks if task.get_name().startswith("worker-")}
        if loops:
            await asyncio.wait(loops, timeout=SHUTDOWN_WAIT_SECONDS)
        # a run that has not let go by now is handed back all the same: its claim token goes,
        # so its next write is fenced off (LostClaim) wherever it stands
        self._stopped.extend(claim for claim, _ in self.active.values())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._release(self._stopped)
        self._stopped.clear()

    async def _release(self, claims: list[Claim]) -> None:
        """Hand claims back to the queue (a run that finished meanwhile keeps its end)."""
        if not claims:
            return
        with contextlib.suppress(Exception):
            async with self.executor.store.writing() as session:
                await WorkQueue(session).release(claims)
                await session.commit()
            log.info("runs_released", runs=[c.run_id for c in claims])

    async def _claim(self) -> Claim | None:
        async with self.executor.store.writing() as session:
            claim = await WorkQueue(session).claim(self.worker_id)
            await session.commit()
            return claim

    async def _work(self, index: int) -> None:
        while not self._stopping:
            try:
                claim = await self._claim()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("claim_failed", worker=index)
                claim = None
            if claim is None:
                if self._stopping:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), timeout=self.settings.orchestrator_poll_seconds
                    )
                continue
            if self._stopping:  # claimed while the process began to stop: not started
                self._stopped.append(claim)
                return
            log.info("run_claimed", run_id=claim.run_id, worker_id=self.worker_id)
            self.metrics.runs_claimed.inc()
            task = asyncio.create_task(self.executor.execute(claim), name=f"run-{claim.run_id}")
            self.active[claim.run_id] = (claim, task)
            try:
                # wait() never cancels the run nor raises when the run is cancelled (by stop()
                # or by the heartbeat when the claim was lost): the loop decides what follows
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()  # the loop itself is cancelled: its run goes with it
                raise
            finally:
                self.active.pop(claim.run_id, None)
                if task.cancelled() and self._stopping:
                    self._stopped.append(claim)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.orchestrator_heartbeat_seconds)
            claims = [claim for claim, _ in self.active.values()]
            if not claims:
                continue
            try:
                async with self.executor.store.writing() as session:
                    lost = await WorkQueue(session).heartbeat(claims)
                    await session.commit()
            except Exception:
                log.exception("heartbeat_failed")
                continue
            for run_id in lost:
                entry = self.active.get(run_id)
                if entry is not None:
                    log.info("run_dropped", run_id=run_id, reason="cancelled or re-queued")
                    entry[1].cancel()

    async def _requeue(self) -> None:
        interval = max(0.5, min(self.settings.orchestrator_stall_seconds / 3, 30.0))
        while True:
            try:
                async with self.executor.store.writing() as session:
                    changed = await WorkQueue(session).requeue_stalled(
                        stall_seconds=self.settings.orchestrator_stall_seconds,
                        max_attempts=self.settings.orchestrator_max_attempts,
                    )
                    await session.commit()
                if changed:
                    log.info("stalled_runs_requeued", n=changed)
                    self._wake.set()
            except Exception:
                log.exception("requeue_failed")
            await asyncio.sleep(interval)
