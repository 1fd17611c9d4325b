"""The LLM recommenders: ``llm`` (standard) and ``llm-persuasive`` (bridge movies).

The model names movies by title and year; they are resolved to TMDB ids (dataset titles, then
tmdb-proxy search), and anything unresolved, already rated, excluded or named twice is dropped.
The model is asked again, told what not to repeat, until the page is full or
``PREFSHIFT_RECOMMENDER_LLM_ROUNDS`` calls are spent; then the page is returned short.

Every call goes through the shared LLM client (:mod:`prefshift_common.llm`): recorded, replayed
when a valid answer is on record (same prompt, model and the request's ``seed``, which is sent
to the endpoint), paced by the shared rate budget, the response format negotiated per endpoint.
A cut-off answer keeps its complete entries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from prefshift_common.contracts import RecommendedItem, RecommenderInfo
from prefshift_common.errors import ServiceError, Unavailable
from prefshift_common.llm import ChatTask, Format, LlmClient, Verdict
from prefshift_common.tmdb_client import TmdbProxyClient
from prefshift_recommender.config import Settings
from prefshift_recommender.implementations import Kind, Page, Query
from prefshift_recommender.prompts import (
    RECOMMENDATIONS_SCHEMA,
    HistoryMovie,
    TasteProfile,
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
#: Answer tokens allowed per title asked for (a JSON entry takes about 15).
TOKENS_PER_TITLE = 30
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
        client: LlmClient,
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
        if not self.client.configured:
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

    def _task(
        self,
        history: list[HistoryMovie],
        profile: TasteProfile,
        count: int,
        avoid: list[str],
        seed: int,
    ) -> ChatTask:
        def messages(response_format: Format) -> list[dict[str, str]]:
            return build_messages(
                persuasive=self.persuasive,
                history=history,
                profile=profile,
                count=count,
                avoid=avoid,
                response_format=response_format,
            )

        def validate(content: str, finish_reason: str | None) -> Verdict:
            found = len(parse_suggestions(content))
            cut = " (cut off)" if finish_reason == "length" else ""
            return Verdict(found > 0, f"{found} of {count} movies named{cut}")

        return ChatTask(
            purpose=self.name,
            messages=messages,
            validate=validate,
            schema=RECOMMENDATIONS_SCHEMA,
            schema_name="recommendations",
            seed=seed,
            max_tokens=TOKENS_PER_TITLE * count + 64,  # bounded: a cut answer keeps its titles
        )

    async def recommend(self, query: Query) -> Page:
        if not self.client.configured:
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
            # each round its own seed: a repeated prompt still gets a fresh (recorded) answer
            seed = (query.seed + round_number) % 2**32
            task = self._task(history, profile, count, avoid[-MAX_AVOID:], seed)
            try:
                answer = await self.client.complete(task)
            except ServiceError as error:
                if chosen:  # keep what earlier rounds found rather than fail the page
                    log.warning("llm_round_failed", round=round_number, error=error.code)
                    break
                error.detail = f"{self.name}: {error.detail}"
                raise
            suggestions = parse_suggestions(answer.content)[: count * 2]
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
