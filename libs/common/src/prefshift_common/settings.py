"""Settings every prefshift service understands (names fixed by the design card).

Services subclass :class:`CommonSettings` and add their own fields; a field named
``simulator_model`` is read from ``PREFSHIFT_SIMULATOR_MODEL``, so each service's own settings
carry the service's name as their prefix.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORTS = {
    "orchestrator": 8100,
    "recommender": 8101,
    "simulator": 8102,
    "tmdb-proxy": 8103,
    "console": 8104,
}


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/prefshift`` (``~/.local/share/prefshift`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "prefshift"


class CommonSettings(BaseSettings):
    """Settings shared by all four services and the CLI."""

    model_config = SettingsConfigDict(
        env_prefix="PREFSHIFT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file in the data directory."
    )
    recommender_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['recommender']}"
    simulator_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['simulator']}"
    tmdb_proxy_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['tmdb-proxy']}"
    orchestrator_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['orchestrator']}"
    console_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['console']}"
    api_token: SecretStr | None = Field(
        default=None, description="When set, every route but health and docs requires it."
    )
    allowed_hosts: str = Field(
        default="",
        description=(
            "Host names (comma-separated) requests may carry in Host besides loopback names and"
            " the hosts of the configured service URLs; '*' allows any (no DNS-rebinding check)."
        ),
    )
    request_max_body_bytes: int = Field(
        default=4 << 20, ge=1024, description="Largest request body (413 above; routes may differ)."
    )
    request_max_json_depth: int = Field(
        default=32, ge=2, description="Deepest nesting of a JSON body (422 deeper)."
    )
    request_max_json_keys: int = Field(
        default=1000, ge=16, description="Most keys in one object of a JSON body (422 above)."
    )
    request_max_json_items: int = Field(
        default=20_000,
        ge=16,
        description="Most items in one array of a JSON body (422 above; no model takes more).",
    )
    request_max_json_values: int = Field(
        default=250_000, ge=16, description="Most values in a whole JSON body (422 above)."
    )
    request_body_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest wait for the next chunk of a body (408)."
    )
    request_header_timeout_s: float = Field(
        default=10.0, gt=0, description="Time a connection has to send a request's headers (408)."
    )
    server_limit_concurrency: int = Field(
        default=1000,
        ge=1,
        description="Requests running at once; above it, 503 (connections that wait do not count).",
    )
    server_max_waiting_connections: int = Field(
        default=2000,
        ge=1,
        description=(
            "Connections with no request running (idle, or headers half-sent) kept at once; past"
            " it, the client holding the most loses its oldest (bounds sockets and descriptors)."
        ),
    )
    server_keep_alive_s: float = Field(
        default=5.0, gt=0, description="Idle keep-alive connections close after this long."
    )
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("api_token")
    @classmethod
    def _refuse_placeholder_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value() in {"", "changeme", "changethis"}:
            raise ValueError("PREFSHIFT_API_TOKEN is a placeholder; set a real secret or unset it")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``prefshift.db`` in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'prefshift.db'}"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"


def bind_address(url: str) -> tuple[str, int]:
    """Host and port a service binds to, taken from its own URL setting."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host, port
