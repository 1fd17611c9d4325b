"""Persona ratings: pick the backend, fetch the metadata once, rate, check the answer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from prefshift_common.contracts import Backend, RatingsRequest, RatingsResponse
from prefshift_common.errors import BadRequest, ServiceError
from prefshift_simulator.metadata import MetadataSource, MovieFacts
from prefshift_simulator.schemas import BackendInfo, BackendResult, PersonaModelInfo


class RatingBackend(Protocol):
    """A way of producing a persona's ratings."""

    @property
    def name(self) -> Backend: ...

    async def rate(
        self, request: RatingsRequest, items: list[int], facts: Mapping[int, MovieFacts]
    ) -> BackendResult: ...


class RatingService:
    """The simulator's one operation, independent of HTTP."""

    def __init__(
        self,
        *,
        backends: Mapping[Backend, RatingBackend],
        default_backend: Backend,
        metadata: MetadataSource,
        llm_model: str | None = None,
        llm_available: bool = False,
        persona_models: Sequence[PersonaModelInfo] = (),
    ) -> None:
        self.backends = backends
        self.default_backend = default_backend
        self.metadata = metadata
        self.llm_model = llm_model
        self.llm_available = llm_available
        self.persona_models = list(persona_models)

    def describe(self) -> list[BackendInfo]:
        """Every backend with whether it can serve now."""
        return [
            BackendInfo(
                name="embedded",
                available=True,
                default=self.default_backend == "embedded",
                detail="deterministic preference model; no network, no key",
                persona_models=self.persona_models,
            ),
            BackendInfo(
                name="llm",
                available=self.llm_available,
                default=self.default_backend == "llm",
                model=self.llm_model,
                detail="OpenAI-compatible endpoint"
                if self.llm_available
                else "not configured: set OPENAI_BASE_URL or OPENAI_API_KEY",
            ),
        ]

    async def rate(self, request: RatingsRequest) -> RatingsResponse:
        """Rate every requested movie exactly once (duplicates in ``items`` are rated once); the
        llm backend may leave a few ``missing``, with the reason."""
        name = request.backend or self.default_backend
        backend = self.backends.get(name)
        if backend is None:
            raise BadRequest(f"backend {name!r} is not served here")
        items = list(dict.fromkeys(request.items))
        persona = request.persona
        wanted = [
            *items,
            *(m.tmdb_id for m in persona.history),
            *(e.tmdb_id for e in persona.experiences),
        ]
        facts = await self.metadata.fetch(list(dict.fromkeys(wanted)))
        result = await backend.rate(request, items, facts)
        rated = [r.tmdb_id for r in result.ratings] + [m.tmdb_id for m in result.missing]
        if sorted(rated) != sorted(items):
            # A backend bug, never the caller's: say which movies went wrong.
            raise ServiceError(
                f"backend {name} rated {sorted(set(rated) ^ set(items))[:20]} wrongly"
            )
        return RatingsResponse(
            backend=name,
            model=result.model,
            persona_model=result.persona_model,
            population=result.population,
            ratings=result.ratings,
            missing=result.missing,
            usage=result.usage,
        )
