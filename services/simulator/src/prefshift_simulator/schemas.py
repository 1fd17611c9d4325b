"""The simulator's own response models and the result every backend returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from prefshift_common.contracts import Backend, ItemRating, MissingRating, Usage


@dataclass(frozen=True, slots=True)
class BackendResult:
    """Ratings of the requested items, what producing them cost, and the model used;
    ``missing``: requested items left unrated, with the reason (the llm backend only)."""

    ratings: list[ItemRating]
    usage: Usage
    model: str | None
    persona_model: str | None = None
    population: str | None = None
    missing: list[MissingRating] = field(default_factory=list)


class PersonaModelInfo(BaseModel):
    """A named parameter set of the embedded persona and where it came from."""

    name: str
    default: bool
    description: str = ""
    source: str = Field(default="", description="What it was fitted to, or taken from.")
    created: str = ""
    estimator: str = ""
    parameters: dict[str, float]
    intervals: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="Per fitted parameter, its interval."
    )


class BackendInfo(BaseModel):
    """One backend of ``POST /ratings`` and whether it can serve now."""

    name: Backend
    available: bool
    default: bool
    model: str | None = Field(default=None, description="LLM model name (llm backend).")
    detail: str = ""
    persona_models: list[PersonaModelInfo] = Field(
        default_factory=list, description="Named parameter sets (embedded backend)."
    )


class BackendList(BaseModel):
    backends: list[BackendInfo]
