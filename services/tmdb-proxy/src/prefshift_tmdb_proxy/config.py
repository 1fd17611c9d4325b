"""Settings of the tmdb-proxy service (own settings: PREFSHIFT_TMDB_PROXY_*)."""

from __future__ import annotations

from prefshift_common.settings import CommonSettings


class Settings(CommonSettings):
    """tmdb-proxy settings."""
