"""Settings of the simulator service (own settings: PREFSHIFT_SIMULATOR_*)."""

from __future__ import annotations

from prefshift_common.settings import CommonSettings


class Settings(CommonSettings):
    """simulator settings."""
