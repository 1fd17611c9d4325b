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
    orchestrator_step_retries: int = Field(
        default=6,
        ge=0,
        le=50,
        description="Retries of a page step (a recommendation or rating call) that ended in 429, "
        "503 or 504, with exponential backoff (or the answer's Retry-After); stored steps are "
        "never repeated.",
    )
    orchestrator_step_backoff_seconds: float = Field(
        default=2.0, ge=0.0, le=600.0, description="First pause before retrying a page step."
    )
    arm_url_allow: str = Field(
        default="",
        description="PREFSHIFT_ARM_URL_ALLOW: hosts, addresses or CIDR blocks (comma-separated) "
        "that arm URLs in requests may name; the configured services and ARMS are always allowed.",
    )
    orchestrator_arm_connect_timeout_seconds: float = Field(
        default=3.0, gt=0, le=60, description="Connect timeout of a call to an external arm."
    )
    orchestrator_arm_call_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Deadline of one call to an external arm, retries included.",
    )
    orchestrator_arm_run_budget_seconds: float = Field(
        default=600.0,
        gt=0,
        le=86400,
        description="Time one run may spend waiting on one external arm in all.",
    )
    orchestrator_arm_max_response_bytes: int = Field(
        default=5_000_000, ge=1024, description="Largest answer read from an external arm."
    )
