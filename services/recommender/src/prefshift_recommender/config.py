"""Settings of the recommender service (own settings: PREFSHIFT_RECOMMENDER_*)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from prefshift_common.llm import LlmSettings


class Settings(LlmSettings):
    """recommender settings."""

    recommender_dataset: str | None = Field(
        default=None,
        description="Dataset used when a request names none; default: the only imported one.",
    )
    recommender_model: str = Field(
        default="gpt-4o-mini", description="Chat model of the llm and llm-persuasive recommenders."
    )
    recommender_temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    recommender_llm_rounds: int = Field(
        default=4, ge=1, le=10, description="LLM calls per request before a page is returned short."
    )
    recommender_llm_candidates: Literal["fallback", "always", "never"] = Field(
        default="fallback",
        description="When the LLM recommenders offer numbered unseen catalogue movies to pick "
        "from (a schema enum of their numbers) instead of asking for titles: after a title "
        "round in which under half of the named titles resolved and as the last round "
        "(fallback), in every round (always: small local models), or never.",
    )
    recommender_llm_candidate_count: int = Field(
        default=40,
        ge=2,
        le=300,
        description="Candidates offered in a candidate round (at least twice the picks asked).",
    )
    recommender_llm_timeout: float = Field(default=60.0, gt=0.0)
    recommender_llm_max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of an LLM call that failed with 5xx or an unreachable "
        "endpoint (429 waits for the shared budget, PREFSHIFT_LLM_RATE_LIMIT_RETRIES).",
    )
    recommender_threads: int = Field(
        default=0, ge=0, description="Threads for training (0: every core)."
    )
    recommender_autotrain: str = Field(
        default="als,popularity,random",
        description=(
            "Comma-separated implementations trained at startup on the default dataset when no "
            "model of theirs is on disk (e.g. 'als,popularity,random'); empty: none."
        ),
    )

    @property
    def llm_configured(self) -> bool:
        """An OpenAI-compatible endpoint is configured (a key, or a local base URL)."""
        return self.openai_api_key is not None or bool(self.openai_base_url)

    @property
    def autotrain(self) -> list[str]:
        return [name.strip() for name in self.recommender_autotrain.split(",") if name.strip()]
