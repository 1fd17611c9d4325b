"""Settings of the recommender service (own settings: PREFSHIFT_RECOMMENDER_*)."""

from __future__ import annotations

from prefshift_common.settings import CommonSettings


class Settings(CommonSettings):
    """recommender settings."""
