"""The LLM recommenders: ``llm`` (standard) and ``llm-persuasive`` (bridge movies).

The model names movies by title and year; they are resolved to TMDB ids (dataset titles, then
tmdb-proxy search), and anything unresolved, already rated, excluded or named twice is dropped.
The model is asked again, told what not to repeat, until the page is full or
``PREFSHIFT_RECOMMENDER_LLM_ROUNDS`` calls are spent; then the page is returned short.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import httpx
import openai
import structlog
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from prefshift_common.contracts import RecommendedItem, RecommenderInfo
from prefshift_common.errors import ServiceError, Unavailable, UpstreamError, UpstreamTimeout
from prefshift_common.tmdb_client import TmdbProxyClient
from prefshift_recommender.config import Settings
from prefshift_recommender.implementations import Kind, Page, Query
from prefshift_recommender.prompts import (
    HistoryMovie,
    build_messages,
    parse_suggestions,
    taste_profile,
)
from prefshift_recommender.repository import DatasetRef
from prefshift_recommender.resolver import ResolvedMovie, TitleResolver

log = structlog.get_logger(__name__)

NOT_CONFIGURED = (
    "no LLM configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for a non-OpenAI endpoint such "
    "as vLLM, Ollama or OpenRouter)"
)
#: Titles the model is asked for per call, at most (long answers get truncated or sloppy).
MAX_PER_CALL = 80
#: Titles listed as "do not recommend" in a follow-up prompt, at most.
MAX_AVOID = 300


class LlmRecommender:
    """Recommendations from an OpenAI-compatible chat model."""

    kind: Kind = "llm"
    trainable = False

    def __init__(
        self,
        name: str,
        *,
        persuasive: bool,
        settings: Settings,
        client: AsyncOpenAI | None,
        proxy: TmdbProxyClient | None,
    ) -> None:
        self.name = name
        self.persuasive = persuasive
        self.settings = settings
        self.client = client
        self.proxy = proxy

    @property
    def version(self) -> str:
        settings = self.settings
        return f"{self.name}:{settings.recommender_model}@t{settings.recommender_temperature:g}"

    def info(self, dataset: DatasetRef | None) -> RecommenderInfo:
        if self.client is None:
            return RecommenderInfo(
                name=self.name,
                kind=self.kind,
                trained=False,
                dataset=dataset.name if dataset else None,
                status="unavailable",
                detail=NOT_CONFIGURED,
            )
        return RecommenderInfo(
            name=self.name,
            kind=self.kind,
            trained=True,
            model_version=self.version,
            dataset=dataset.name if dataset else None,
            status="ready",
            progress=1.0,
            detail=f"model {self.settings.recommender_model}",
        )

    async def _history(self, query: Query) -> tuple[list[HistoryMovie], int]:
        """The history as the prompt shows it, and how many movies could not be named."""
        described: list[HistoryMovie] = []
        unknown: list[int] = []
        for tmdb_id, rating in query.history.items():
            movie = query.catalog.get(tmdb_id)
            if movie is None:
                unknown.append(tmdb_id)
                continue
            described.append(HistoryMovie(movie.title, movie.year, movie.genres, rating))
        named = await self._names_from_proxy(unknown)
        for tmdb_id in unknown:
            if tmdb_id in named:
                title, year, genres = named[tmdb_id]
                described.append(HistoryMovie(title, year, genres, query.history[tmdb_id]))
        return described, len(unknown) - len(named)

    async def _names_from_proxy(
        self, tmdb_ids: Sequence[int]
    ) -> dict[int, tuple[str, int | None, tuple[str, ...]]]:
        """Titles of history movies outside the dataset (a persona may have rated any)."""
        if not tmdb_ids or self.proxy is None:
            return {}
        try:
            batch = await self.proxy.movies(tmdb_ids)
        except ServiceError as exc:
            log.warning("history_titles_failed", error=exc.detail[:200])
            return {}
        return {
            movie.id: (movie.title, movie.year, tuple(movie.genre_names)) for movie in batch.movies
        }

    async def _ask(self, messages: list[dict[str, str]]) -> str:
        assert self.client is not None
        try:
            completion = await self.client.chat.completions.create(
                model=self.settings.recommender_model,
                messages=cast(list[ChatCompletionMessageParam], messages),
                temperature=self.settings.recommender_temperature,
                response_format={"type": "json_object"},
            )
        except openai.BadRequestError:
            # Some OpenAI-compatible servers refuse response_format; the prompt asks for JSON.
            completion = await self.client.chat.completions.create(
                model=self.settings.recommender_model,
                messages=cast(list[ChatCompletionMessageParam], messages),
                temperature=self.settings.recommender_temperature,
            )
        if not completion.choices:
            return ""
        return completion.choices[0].message.content or ""

    async def recommend(self, query: Query) -> Page:
        if self.client is None:
            raise Unavailable(f"{self.name}: {NOT_CONFIGURED}")
        history, unknown = await self._history(query)
        # The title index and genre list are built once per catalogue, off the event loop.
        await asyncio.to_thread(lambda: (query.catalog.titles, query.catalog.genres))
        profile = taste_profile(history, query.catalog.genres)
        resolver = TitleResolver(query.catalog, self.proxy)
        blocked = set(query.history) | set(query.exclude)
        chosen: list[ResolvedMovie] = []
        chosen_ids: set[int] = set()
        avoid: list[str] = []
        for round_number in range(self.settings.recommender_llm_rounds):
            missing = query.n - len(chosen)
            if missing <= 0:
                break
            count = min(MAX_PER_CALL, missing + max(3, missing // 4))
            messages = build_messages(
                persuasive=self.persuasive,
                history=history,
                profile=profile,
                count=count,
                avoid=avoid[-MAX_AVOID:],
            )
            try:
                content = await self._ask(messages)
            except (openai.APIError, httpx.HTTPError) as exc:
                if chosen:  # keep what earlier rounds found rather than fail the page
                    log.warning("llm_round_failed", round=round_number, error=type(exc).__name__)
                    break
                raise _upstream_error(self.name, exc) from exc
            suggestions = parse_suggestions(content)[: count * 2]
            resolutions = await asyncio.gather(
                *(resolver.resolve(s.title, s.year) for s in suggestions)
            )
            accepted = 0
            for suggestion, resolved in zip(suggestions, resolutions, strict=True):
                label = (
                    f"{suggestion.title} ({suggestion.year})"
                    if suggestion.year
                    else suggestion.title
                )
                if label not in avoid:
                    avoid.append(label)
                if (
                    resolved is None
                    or resolved.tmdb_id in blocked
                    or resolved.tmdb_id in chosen_ids
                ):
                    continue
                chosen.append(resolved)
                chosen_ids.add(resolved.tmdb_id)
                accepted += 1
                if len(chosen) >= query.n:
                    break
            log.info(
                "llm_round",
                recommender=self.name,
                round=round_number,
                suggested=len(suggestions),
                accepted=accepted,
                have=len(chosen),
                wanted=query.n,
                unresolved=resolver.dropped,
            )
        items = [
            RecommendedItem(
                tmdb_id=movie.tmdb_id,
                movielens_id=movie.movielens_id,
                title=movie.title,
                score=round(1.0 - rank / max(len(chosen), 1), 6),
            )
            for rank, movie in enumerate(chosen)
        ]
        return Page(
            items=items,
            model_version=self.version,
            short=len(items) < query.n,
            unknown_history=unknown,
            unresolved_titles=resolver.dropped,
        )


def _upstream_error(name: str, exc: Exception) -> Exception:
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return UpstreamTimeout(f"{name}: the LLM endpoint timed out")
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        return Unavailable(f"{name}: the LLM endpoint is unreachable ({type(exc).__name__})")
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code in (401, 403):
            return Unavailable(f"{name}: the LLM endpoint refused the API key")
        return UpstreamError(f"{name}: the LLM endpoint answered {exc.status_code}")
    return UpstreamError(f"{name}: the LLM call failed ({type(exc).__name__})")
