"""Settings of the LLM client every LLM-calling service reads (``PREFSHIFT_LLM_*``, plus the
endpoint's own ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr

from prefshift_common.settings import CommonSettings


class LlmSettings(CommonSettings):
    """The settings of a service that calls an LLM; budgets hold per endpoint and model, across
    processes."""

    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    llm_requests_per_minute: float = Field(
        default=600.0,
        ge=0.0,
        description="Requests per minute to one endpoint and model, shared by every simulator "
        "and recommender process on the database (0: no limit).",
    )
    llm_tokens_per_minute: float = Field(
        default=0.0,
        ge=0.0,
        description="Prompt plus answer tokens per minute to one endpoint and model, shared like "
        "the request budget (0: no limit).",
    )
    llm_burst: int = Field(
        default=8, ge=1, le=1000, description="Requests that may start at once within the budget."
    )
    llm_max_in_flight: int = Field(
        default=64,
        ge=1,
        le=1024,
        description="Calls one process keeps in flight at most (a memory bound; the pace is the "
        "budget's).",
    )
    llm_rate_limit_retries: int = Field(
        default=12,
        ge=0,
        le=100,
        description="429 answers one call waits out (each slows the shared budget down) before "
        "it fails with 429.",
    )
    llm_format_revisit_seconds: float = Field(
        default=600.0,
        ge=0.0,
        description="Seconds after which an endpoint that refused a structured-output format is "
        "offered the better format again.",
    )
