"""The console's settings: the common ones (the services' URLs, ``PREFSHIFT_API_TOKEN``) and its
own, read from ``PREFSHIFT_CONSOLE_*``."""

from __future__ import annotations

from pydantic import Field

from prefshift_common.settings import CommonSettings


class Settings(CommonSettings):
    console_timeout_seconds: float = Field(
        default=60.0, gt=0, le=600, description="Time limit of one call to a service."
    )
    console_poll_seconds: float = Field(
        default=1.0, ge=0.2, le=60, description="How often an experiment page asks for progress."
    )
    console_session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="How long a signed-in browser stays signed in."
    )
