"""The simulator's own response models and the result every backend returns."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from prefshift_common.contracts import Backend, ItemRating, Usage


@dataclass(frozen=True, slots=True)
class BackendResult:
    """Ratings of the requested items, what producing them cost, and the model used."""

    ratings: list[ItemRating]
    usage: Usage
    model: str | None


class BackendInfo(BaseModel):
    """One backend of ``POST /ratings`` and whether it can serve now."""

    name: Backend
    available: bool
    default: bool
    model: str | None = Field(default=None, description="LLM model name (llm backend).")
    detail: str = ""


class BackendList(BaseModel):
    backends: list[BackendInfo]
