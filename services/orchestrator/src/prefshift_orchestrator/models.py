"""Tables owned by the orchestrator: runs, every rating of every page, page checkpoints and
experiments. Migrations: ``migrations/versions/2026_11_26_0005-orchestrator.py`` and
``2026_11_29_0007-run_provenance.py``, ``2026_11_30_0008-run_rated_by.py``,
``2026_12_07_0009-shown_predictions.py`` (keep in step)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from prefshift_common.db import Base, JSONVariant

#: Run states. queued → running → completed | failed | cancelled (running → queued when stalled).
RUN_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
FINISHED_STATUSES = ("completed", "failed", "cancelled")


class Run(Base):
    """One user's simulation: the protocol's parameters, its state and where it stands."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    dataset: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSONVariant)
    seed: Mapped[int] = mapped_column(BigInteger)
    # sha256 of (user, dataset, params, seed); many runs may share it (forced re-runs) …
    params_hash: Mapped[str] = mapped_column(String(64), index=True)
    # … but only one un-forced run holds it here, which makes concurrent POSTs idempotent.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONVariant)
    messages: Mapped[list[str]] = mapped_column(JSONVariant, default=list)
    # Test and persona movies (with real ratings and genres) and the arms as resolved at start.
    selection: Mapped[dict[str, Any] | None] = mapped_column(JSONVariant)
    arms: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONVariant)
    # Where a run came from when it was not executed here (e.g. the seed study's released runs:
    # source files, persona model); None for runs prefshift executed.
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSONVariant)
    # Who rated the run, as the simulator answered: [{backend, model, persona_model,
    # population}], one entry per distinct answer (a run's parameters may leave the backend
    # and the parameter set to the simulator's defaults).
    rated_by: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONVariant)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claim_token: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RunRating(Base):
    """A rating the persona gave: of a recommendation (``experience``), of a test movie
    (``test``; the baseline is arm ``baseline``, page 0), or of a recommendation of a
    shown-prediction arm with no prediction shown (``blind``: the counterfactual the shift on
    the shown movies is taken against; never an experience)."""

    __tablename__ = "run_ratings"
    __table_args__ = (
        UniqueConstraint(
            "run_id", "arm", "page", "phase", "tmdb_id", name="uq_run_ratings_position"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    arm: Mapped[str] = mapped_column(String(64))
    page: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(16))
    tmdb_id: Mapped[int] = mapped_column(Integer)
    rating: Mapped[float] = mapped_column(Float)
    feeling: Mapped[str] = mapped_column(Text, default="")
    # The predicted rating shown beside the movie when it was rated (stars), if any …
    shown: Mapped[float | None] = mapped_column(Float)
    # … and the rerate design's condition (none, accurate, up, down), if any.
    condition: Mapped[str | None] = mapped_column(String(16))


class RunPage(Base):
    """Checkpoint of one page of one arm (the baseline is arm ``baseline``, page 0).

    Each step is stored as it completes — the recommendations, then the experience ratings,
    then the test re-ratings — so a resumed run repeats no completed service call.
    """

    __tablename__ = "run_pages"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    arm: Mapped[str] = mapped_column(String(64), primary_key=True)
    page: Mapped[int] = mapped_column(Integer, primary_key=True)
    recommended: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONVariant)
    recommender_info: Mapped[dict[str, Any] | None] = mapped_column(JSONVariant)
    experienced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Latency of each service call of this page (ms), for overhead measurements.
    timings: Mapped[dict[str, float]] = mapped_column(JSONVariant, default=dict)


class Experiment(Base):
    """Many users run with one protocol."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSONVariant)
    seed: Mapped[int] = mapped_column(BigInteger)
    cohort: Mapped[dict[str, Any]] = mapped_column(JSONVariant)
    messages: Mapped[list[str]] = mapped_column(JSONVariant, default=list)
    # Imported experiments: what was imported (folder digest, study, models); else None.
    provenance: Mapped[dict[str, Any] | None] = mapped_column(JSONVariant)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ExperimentRun(Base):
    """A user of an experiment and its run (a run may serve several experiments)."""

    __tablename__ = "experiment_runs"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    user_id: Mapped[int] = mapped_column(Integer)
    archetype: Mapped[str | None] = mapped_column(String(32))
