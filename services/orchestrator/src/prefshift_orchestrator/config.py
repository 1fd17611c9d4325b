"""Settings of the orchestrator service (own settings: PREFSHIFT_ORCHESTRATOR_*)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from prefshift_common.settings import CommonSettings


class ArmTarget(BaseModel):
    """Where a named arm is served: a recommender service URL and the implementation there."""

    url: str | None = None
    recommender: str | None = None


class Settings(CommonSettings):
    """orchestrator settings."""

    orchestrator_workers: int = Field(
        default=4, ge=0, le=256, description="Runs this process executes at once (0: API only)."
    )
    orchestrator_heartbeat_seconds: float = Field(default=5.0, gt=0)
    orchestrator_stall_seconds: float = Field(
        default=60.0, gt=0, description="A running run without heartbeat this long is re-queued."
    )
    orchestrator_poll_seconds: float = Field(default=1.0, gt=0)
    orchestrator_max_attempts: int = Field(
        default=5, ge=1, description="Claims of one run before it is failed as stalling."
    )
    orchestrator_worker_id: str | None = Field(
        default=None, description="Name of this process in claims; default host-pid-random."
    )
    orchestrator_dataset: str | None = Field(
        default=None, description="Default dataset; default: the only imported one."
    )
    orchestrator_arms: dict[str, ArmTarget] = Field(
        default_factory=dict,
        description='Named arms, e.g. {"mine": {"url": "http://host:9000", "recommender": "x"}}.',
    )
    orchestrator_train_untrained: bool = Field(
        default=True,
        description="Train an untrained algorithmic arm first (and wait) instead of failing.",
    )
    orchestrator_train_timeout_seconds: float = Field(default=900.0, gt=0)
    orchestrator_call_timeout_seconds: float = Field(
        default=600.0, gt=0, description="Read timeout of one simulator or recommender call."
    )
    orchestrator_call_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a failed call (connection errors, 5xx)."
    )
