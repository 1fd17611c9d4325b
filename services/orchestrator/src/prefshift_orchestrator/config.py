"""Settings of the orchestrator service (own settings: PREFSHIFT_ORCHESTRATOR_*)."""

from __future__ import annotations

from prefshift_common.settings import CommonSettings


class Settings(CommonSettings):
    """orchestrator settings."""
