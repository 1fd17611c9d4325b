"""The result every backend returns. ``GET /backends``'s models are contracts (the orchestrator
reads them to refuse work the simulator cannot do); they are re-exported here."""

from __future__ import annotations

from dataclasses import dataclass, field

from prefshift_common.contracts import (
    BackendInfo,
    BackendList,
    ItemRating,
    MissingRating,
    PersonaModelInfo,
    Usage,
)

__all__ = ["BackendInfo", "BackendList", "BackendResult", "PersonaModelInfo"]


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
