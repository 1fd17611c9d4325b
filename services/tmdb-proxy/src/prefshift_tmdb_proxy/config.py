"""Settings of the tmdb-proxy service (own settings: PREFSHIFT_TMDB_PROXY_*)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, field_validator

from prefshift_common.settings import CommonSettings


class Settings(CommonSettings):
    """tmdb-proxy settings. Without a TMDB key the proxy serves from its offline source."""

    tmdb_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("TMDB_API_KEY", "tmdb_api_key"),
        description="TMDB v3 API key, sent as the `api_key` query parameter.",
    )
    tmdb_read_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("TMDB_READ_TOKEN", "tmdb_read_token"),
        description="TMDB read access token, sent as `Authorization: Bearer`; wins over the key.",
    )
    tmdb_api_base_url: str = Field(
        default="https://api.themoviedb.org",
        validation_alias=AliasChoices("TMDB_API_BASE_URL", "tmdb_api_base_url"),
    )
    tmdb_proxy_cache_ttl_s: float = Field(default=30 * 24 * 3600, gt=0)
    tmdb_proxy_negative_ttl_s: float = Field(
        default=3600, gt=0, description="How long a TMDB 404 is remembered."
    )
    tmdb_proxy_rate_limit: float = Field(
        default=35.0, gt=0, le=10_000, description="Upstream requests per second, per process."
    )
    tmdb_proxy_max_attempts: int = Field(default=5, ge=1, le=20)
    tmdb_proxy_retry_budget_s: float = Field(
        default=30.0, gt=0, description="Cap on the total time spent on one upstream request."
    )
    tmdb_proxy_backoff_base_s: float = Field(default=0.5, gt=0)
    tmdb_proxy_backoff_max_s: float = Field(default=8.0, gt=0)
    tmdb_proxy_timeout_s: float = Field(default=10.0, gt=0, description="Per upstream attempt.")
    tmdb_proxy_max_concurrency: int = Field(
        default=16,
        ge=1,
        le=64,
        description="Upstream fetches in flight at once (each holds a DB connection).",
    )
    tmdb_proxy_db_pool_size: int = Field(
        default=32,
        ge=1,
        le=500,
        description="Postgres connections kept open; above it, connections are opened per use.",
    )
    tmdb_proxy_fetches_per_request: int = Field(
        default=20,
        ge=0,
        le=500,
        description="Uncached ids one request may fetch from TMDB; the others are answered from "
        "copies and refreshed in the background.",
    )
    tmdb_proxy_request_deadline_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="Longest a request waits for TMDB before answering from copies.",
    )
    tmdb_proxy_refresh_queue_size: int = Field(
        default=10_000, ge=0, description="Ids queued for a background refresh at most."
    )
    tmdb_proxy_memo_size: int = Field(
        default=20_000, ge=0, description="Encoded answers kept in memory (0: always ask the DB)."
    )
    tmdb_proxy_search_cache_size: int = Field(default=4096, ge=0)
    tmdb_proxy_index_refresh_s: float = Field(
        default=30.0, ge=0, description="How often the offline title index checks for new data."
    )

    @field_validator("tmdb_api_key", "tmdb_read_token")
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @property
    def online(self) -> bool:
        """Whether a TMDB credential is configured (else the offline source answers)."""
        return self.tmdb_api_key is not None or self.tmdb_read_token is not None
