"""Settings of the simulator service (own settings: PREFSHIFT_SIMULATOR_*)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from prefshift_common.llm import LlmSettings

BackendName = Literal["llm", "embedded"]


class Settings(LlmSettings):
    """simulator settings.

    The LLM endpoint is any OpenAI-compatible server: ``OPENAI_BASE_URL`` (OpenRouter, vLLM,
    Ollama, llama.cpp server) and/or ``OPENAI_API_KEY``. The embedded persona's parameters are
    documented in :mod:`prefshift_simulator.embedded.dynamics` and ``docs/simulator.md``.
    """

    simulator_backend: BackendName | None = Field(
        default=None,
        description="Default backend; unset: `llm` when an LLM is configured, else `embedded`.",
    )
    simulator_dataset: str | None = Field(
        default=None,
        description="Dataset whose ratings give the embedded persona its collaborative signal "
        "when a persona names none.",
    )

    simulator_reference_datasets: dict[str, str] = Field(
        default_factory=dict,
        description="Per dataset, another imported dataset whose ratings give that dataset's "
        "personas their collaborative statistics: the population its users were drawn from, "
        'as JSON, e.g. {"seed-cohort": "ml-32m"}. It must hold the dataset\'s ratings under '
        "the same user ids (checked on first use; else the dataset's requests fail with 409), "
        "so that each persona's own ratings are still left out. Every answer names it "
        "(`population`).",
    )

    simulator_metadata_ttl: float = Field(
        default=300.0,
        ge=0.0,
        description="Seconds the simulator keeps movie metadata it got from tmdb-proxy (0: ask "
        "the proxy for every movie of every request).",
    )

    # --- llm backend ---
    simulator_model: str = "gpt-4o-mini"
    simulator_temperature: float = Field(default=0.3, ge=0.0, le=2.0)
    simulator_timeout: float = Field(
        default=120.0, gt=0, description="Seconds one LLM call may take before it is abandoned."
    )
    simulator_max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of an LLM call that failed with 5xx or an unreachable endpoint (a "
        "429 waits for the shared budget instead, see PREFSHIFT_LLM_RATE_LIMIT_RETRIES).",
    )
    simulator_reasks: int = Field(
        default=2, ge=0, le=5, description="Times a movie without a valid rating is asked again."
    )
    simulator_max_missing_share: float = Field(
        default=0.1,
        ge=0.0,
        le=0.5,
        description="Share of a request's movies that may stay unrated after the re-asks "
        "(returned as `missing`, at least one of two or more); past it the request fails.",
    )
    simulator_max_output_tokens: int | None = Field(
        default=None,
        ge=64,
        description="Bounds each answer: a request asks for max_tokens of 60 per movie (+64), "
        "a re-ask after a cut-off answer doubles it, never past this; unset: no max_tokens.",
    )
    simulator_replay: bool = Field(
        default=True, description="Answer an identical LLM call from its recorded response."
    )
    simulator_json_schema: bool = Field(
        default=True,
        description="Start the structured-output ladder at a JSON-schema response format "
        "(json_schema, then json_object with the schema, then lines); off: lines only.",
    )

    # --- embedded backend (equations in prefshift_simulator.embedded.model and .dynamics) ---
    simulator_persona: str | None = Field(
        default=None,
        description="Default named parameter set of the embedded persona (GET /backends lists "
        "them); unset: the one calibrated on the seed study's GPT-5 runs.",
    )
    simulator_persona_dir: Path | None = Field(
        default=None,
        description="A directory of more parameter sets (JSON; `prefshift persona calibrate` "
        "writes there).",
    )
    # Overrides of single parameters of every set (unset: each set's own value).
    simulator_exposure_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    simulator_reinforcement_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    simulator_satiation_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    simulator_satiation_decay: float | None = Field(default=None, ge=0.0, le=1.0)
    simulator_max_offset: float | None = Field(default=None, gt=0.0, le=4.5)
    simulator_lasting_noise: float | None = Field(
        default=None, ge=0.0, le=2.0, description="σ_L, lasting response noise per movie."
    )
    simulator_occasion_noise: float | None = Field(
        default=None, ge=0.0, le=2.0, description="σ_O, response noise per rating occasion."
    )
    simulator_drift_noise: float | None = Field(
        default=None, ge=0.0, le=2.0, description="σ_D, step of the drift from page to page."
    )
    simulator_spread: float | None = Field(
        default=None,
        gt=0.0,
        le=4.0,
        description="k, the spread of the ratings around the persona's level (1: the "
        "prediction's own).",
    )

    @property
    def persona_overrides(self) -> dict[str, float]:
        """The single parameters set in the environment, by parameter name."""
        names = (
            "exposure_rate",
            "reinforcement_rate",
            "satiation_rate",
            "satiation_decay",
            "max_offset",
            "lasting_noise",
            "occasion_noise",
            "drift_noise",
            "spread",
        )
        values = {name: getattr(self, f"simulator_{name}") for name in names}
        return {name: float(v) for name, v in values.items() if v is not None}

    @property
    def llm_configured(self) -> bool:
        return bool(self.openai_base_url) or self.openai_api_key is not None

    @property
    def default_backend(self) -> BackendName:
        if self.simulator_backend is not None:
            return self.simulator_backend
        return "llm" if self.llm_configured else "embedded"
