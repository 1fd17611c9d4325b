"""The orchestrator's metrics (docs/operations.md): the queue as the database holds it, counted at
scrape time, and what this process's workers did."""

from __future__ import annotations

from typing import get_args

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.exc import SQLAlchemyError

from prefshift_common.app import Database
from prefshift_orchestrator.schemas import RunOut
from prefshift_orchestrator.work_queue import WorkQueue

log = structlog.get_logger(__name__)

#: Every status a run can have; each is shown, at 0 when no run has it.
RUN_STATUSES: tuple[str, ...] = get_args(RunOut.model_fields["status"].annotation)
#: A page step is a service call: a cached recommendation takes milliseconds, an LLM page minutes.
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class OrchestratorMetrics:
    """The orchestrator's counters, in its app's registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()  # built outside an app: not exposed
        self.runs = Gauge(
            "prefshift_orchestrator_runs",
            "Runs in the database by status (status=queued is the queue's depth), "
            "counted when scraped.",
            ["status"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "prefshift_orchestrator_queue_depth",
            "Runs waiting for a worker (runs with status queued), counted when scraped; what "
            "the workers' autoscaler follows (deploy/kubernetes).",
            registry=registry,
        )
        self.runs_claimed = Counter(
            "prefshift_orchestrator_runs_claimed_total",
            "Runs this process's workers claimed from the queue (a resumed run counts again).",
            registry=registry,
        )
        self.runs_completed = Counter(
            "prefshift_orchestrator_runs_completed_total",
            "Runs this process's workers completed.",
            registry=registry,
        )
        self.runs_failed = Counter(
            "prefshift_orchestrator_runs_failed_total",
            "Runs this process's workers ended as failed.",
            registry=registry,
        )
        self.ratings_written = Counter(
            "prefshift_orchestrator_ratings_written_total",
            "Persona ratings stored, by phase (experience, test, blind).",
            ["phase"],
            registry=registry,
        )
        self.step_seconds = Histogram(
            "prefshift_orchestrator_step_duration_seconds",
            "Duration of a page step's service call, retries included, by step "
            "(recommend: an arm's page; ratings: the persona's ratings).",
            ["step"],
            buckets=STEP_BUCKETS,
            registry=registry,
        )

    async def count_runs(self, database: Database) -> None:
        """Set ``prefshift_orchestrator_runs`` from the database (the scrape hook)."""
        try:
            async with database.sessions() as session:
                depth = await WorkQueue(session).depth()
        except SQLAlchemyError as exc:  # the database is away: the last counts stay
            log.warning("run_count_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return
        for status in RUN_STATUSES:
            self.runs.labels(status).set(depth.get(status, 0))
        self.queue_depth.set(depth.get("queued", 0))
