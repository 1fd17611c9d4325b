"""The LLM recommenders: ``llm`` (standard) and ``llm-persuasive`` (bridge movies).

A *title round* asks the model to name more movies than the page still needs (title and
year); they are resolved to TMDB ids (dataset titles, then tmdb-proxy search), and anything
unresolved, already rated, excluded or named twice is dropped. A *candidate round*
(:mod:`.candidates`) offers numbered unseen catalogue movies and lets the model pick by number,
under a schema whose picks are an enum of those numbers. ``PREFSHIFT_RECOMMENDER_LLM_CANDIDATES``
says when: ``fallback`` (default) — title rounds, and a candidate round after a title round in
which fewer than half of the named titles resolved, and as the last round; ``always``; ``never``.
Rounds go on, each told what not to repeat, until the page is full or
``PREFSHIFT_RECOMMENDER_LLM_ROUNDS`` calls are spent; then the page is returned short, with a
note saying why.

Every call goes through the shared LLM client (:mod:`prefshift_common.llm`): recorded, replayed
when a valid answer is on record (same prompt, model and the request's ``seed``, which is sent
to the endpoint), paced by the shared rate budget, the response format negotiated per endpoint.
A cut-off answer keeps its complete entries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from prefshift_common.contracts import RecommendedItem, RecommenderInfo
from prefshift_common.errors import ServiceError, Unavailable
from prefshift_common.llm import ChatTask, Format, LlmClient, Verdict
from prefshift_common.tmdb_client import TmdbProxyClient
from prefshift_recommender.candidates import (
    CANDIDATE_SCHEMA_NAME,
    candidate_messages,
    candidate_pool,
    candidate_schema,
    parse_choices,
)
from prefshift_recommender.catalog import CatalogMovie
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
#: Answer tokens allowed per pick of a candidate round (a number and a comma).
TOKENS_PER_PICK = 6


def ask_for(missing: int) -> int:
    """How many movies one round asks for when the page still needs ``missing``: a quarter
    more (at least 3), so one answer fills the page although some picks are dropped."""
    return min(MAX_PER_CALL, missing + max(3, missing // 4))


def _verdict(found: int, count: int, what: str, finish_reason: str | None) -> Verdict:
    """An answer is usable (and replayable) when it names at least one movie."""
    cut = " (cut off)" if finish_reason == "length" else ""
    return Verdict(found > 0, f"{found} of {count} {what}{cut}")


@dataclass
class PageState:
    """What the rounds of one request have found so far, and why movies were dropped."""

    wanted: int
    blocked: set[int]
    chosen: list[ResolvedMovie] = field(default_factory=list)
    avoid: list[str] = field(default_factory=list)
    named: int = 0
    unresolved: int = 0
    seen: int = 0
    repeated: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return self.wanted - len(self.chosen)

    def take(self, movie: ResolvedMovie | None) -> bool:
        """Add a named movie to the page unless it is unresolved, seen, excluded or repeated."""
        self.named += 1
        if movie is None:
            self.unresolved += 1
            return False
        if movie.tmdb_id in self.blocked:
            self.seen += 1
            return False
        if any(movie.tmdb_id == other.tmdb_id for other in self.chosen):
            self.repeated += 1
            return False
        self.chosen.append(movie)
        return True

    def note(self) -> str | None:
        """Why the page is short (None when it is full)."""
        if self.missing <= 0:
            return None
        parts = [
            f"{len(self.chosen)} of {self.wanted} movies found",
            f"{self.named} named: {self.unresolved} unresolved, {self.seen} seen or excluded, "
            f"{self.repeated} repeated",
        ]
        parts.extend(self.failures)
        return "; ".join(parts)[:1000]


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

    def _title_task(
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
            return _verdict(len(parse_suggestions(content)), count, "movies named", finish_reason)

        return ChatTask(
            purpose=self.name,
            messages=messages,
            validate=validate,
            schema=RECOMMENDATIONS_SCHEMA,
            schema_name="recommendations",
            seed=seed,
            max_tokens=TOKENS_PER_TITLE * count + 64,  # bounded: a cut answer keeps its titles
        )

    def _candidate_task(
        self,
        history: list[HistoryMovie],
        profile: TasteProfile,
        pool: list[CatalogMovie],
        count: int,
        seed: int,
    ) -> ChatTask:
        def messages(response_format: Format) -> list[dict[str, str]]:
            return candidate_messages(
                persuasive=self.persuasive,
                history=history,
                profile=profile,
                pool=pool,
                count=count,
                response_format=response_format,
            )

        def validate(content: str, finish_reason: str | None) -> Verdict:
            found = len(parse_choices(content, len(pool)))
            return _verdict(found, count, "candidates picked", finish_reason)

        return ChatTask(
            purpose=f"{self.name}/candidates",
            messages=messages,
            validate=validate,
            schema=candidate_schema(len(pool), count),
            schema_name=CANDIDATE_SCHEMA_NAME,
            seed=seed,
            max_tokens=TOKENS_PER_PICK * count + 64,
        )

    async def _title_round(
        self,
        state: PageState,
        history: list[HistoryMovie],
        profile: TasteProfile,
        resolver: TitleResolver,
        seed: int,
    ) -> bool:
        """One title round; whether it was weak (under half of the named titles resolved)."""
        count = ask_for(state.missing)
        task = self._title_task(history, profile, count, state.avoid[-MAX_AVOID:], seed)
        answer = await self.client.complete(task)
        suggestions = parse_suggestions(answer.content)[: count * 2]
        resolutions = await asyncio.gather(
            *(resolver.resolve(s.title, s.year) for s in suggestions)
        )
        before = state.unresolved
        for suggestion, resolved in zip(suggestions, resolutions, strict=True):
            label = (
                f"{suggestion.title} ({suggestion.year})" if suggestion.year else suggestion.title
            )
            if label not in state.avoid:
                state.avoid.append(label)
            if state.missing > 0:
                state.take(resolved)
        return 2 * (state.unresolved - before) > len(suggestions)

    async def _candidate_round(
        self,
        state: PageState,
        query: Query,
        history: list[HistoryMovie],
        profile: TasteProfile,
        seed: int,
    ) -> None:
        """One candidate round: the model picks from unseen catalogue movies by number."""
        count = ask_for(state.missing)
        taken = state.blocked | {movie.tmdb_id for movie in state.chosen}
        size = max(self.settings.recommender_llm_candidate_count, 2 * count)
        pool = await asyncio.to_thread(candidate_pool, query.catalog, taken, size, seed)
        if not pool:
            state.failures.append("no unseen catalogue movie left to offer")
            return
        count = min(count, len(pool))
        answer = await self.client.complete(
            self._candidate_task(history, profile, pool, count, seed)
        )
        for number in parse_choices(answer.content, len(pool)):
            if state.missing <= 0:
                break
            movie = pool[number - 1]
            state.take(ResolvedMovie(movie.tmdb_id, movie.movielens_id, movie.title, movie.year))

    async def recommend(self, query: Query) -> Page:
        if not self.client.configured:
            raise Unavailable(f"{self.name}: {NOT_CONFIGURED}")
        history, unknown = await self._history(query)
        # The title index and genre list are built once per catalogue, off the event loop.
        await asyncio.to_thread(lambda: (query.catalog.titles, query.catalog.genres))
        profile = taste_profile(history, query.catalog.genres)
        resolver = TitleResolver(query.catalog, self.proxy)
        state = PageState(wanted=query.n, blocked=set(query.history) | set(query.exclude))
        mode = self.settings.recommender_llm_candidates
        rounds = self.settings.recommender_llm_rounds
        weak = False
        for round_number in range(rounds):
            if state.missing <= 0:
                break
            last = round_number == rounds - 1
            candidates = mode == "always" or (mode == "fallback" and (weak or last))
            # each round its own seed: a repeated prompt still gets a fresh (recorded) answer
            seed = (query.seed + round_number) % 2**32
            try:
                if candidates:
                    await self._candidate_round(state, query, history, profile, seed)
                else:
                    weak = await self._title_round(state, history, profile, resolver, seed)
            except ServiceError as error:
                if state.chosen:  # keep what earlier rounds found rather than fail the page
                    log.warning("llm_round_failed", round=round_number, error=error.code)
                    state.failures.append(f"round {round_number + 1} failed: {error.detail}")
                    break
                error.detail = f"{self.name}: {error.detail}"
                raise
            log.info(
                "llm_round",
                recommender=self.name,
                round=round_number,
                candidates=candidates,
                have=len(state.chosen),
                wanted=query.n,
                named=state.named,
                unresolved=state.unresolved,
            )
        chosen = state.chosen
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
            note=state.note(),
        )
