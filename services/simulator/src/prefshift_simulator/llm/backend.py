"""The ``llm`` backend: the persona prompt sent to any OpenAI-compatible endpoint through the
shared client (:mod:`prefshift_common.llm`: format ladder, rate budget, record and replay).

Salvage, then narrow. Every valid rating of an answer is kept, even of a cut-off one; only the
movies still missing are asked again, each time in a fresh request that names only them:

* an answer cut off (``finish_reason: "length"``): the missing movies are split in two requests,
  and the output budget is raised (up to ``PREFSHIFT_SIMULATOR_MAX_OUTPUT_TOKENS``);
* a request that timed out: split in two, with a shorter prompt (the history's overviews left
  out); a single movie that times out is not asked again;
* movies omitted or rated invalidly: asked again together.

Each movie is asked at most ``1 + PREFSHIFT_SIMULATOR_REASKS`` times. Movies still without a
valid rating then are returned as ``missing`` with the reason, as long as they are at most
``PREFSHIFT_SIMULATOR_MAX_MISSING_SHARE`` of the request (at least one movie of a request of
two or more); past that the request fails with 502, naming them.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_common.contracts import (
    Backend,
    ItemRating,
    MissingRating,
    RatingsRequest,
    Usage,
)
from prefshift_common.errors import (
    BadRequest,
    NotFound,
    UpstreamError,
    UpstreamTimeout,
)
from prefshift_common.llm import Answer, ChatTask, Format, LlmClient, Verdict
from prefshift_common.llm.metrics import LlmMetrics
from prefshift_simulator.config import Settings
from prefshift_simulator.llm.parsing import parse_answer
from prefshift_simulator.llm.prompts import SCHEMA_NAME, persona_messages, ratings_schema
from prefshift_simulator.metadata import MovieFacts
from prefshift_simulator.schemas import BackendResult

log = structlog.get_logger(__name__)

#: Tokens of answer a movie needs at most (its rating and a one-sentence feeling, in JSON).
TOKENS_PER_ITEM = 60


def create_llm_client(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    metrics: LlmMetrics | None = None,
) -> LlmClient:
    """The shared LLM client configured for the persona (counting into ``metrics``)."""
    return LlmClient(
        service="simulator",
        settings=settings,
        model=settings.simulator_model,
        temperature=settings.simulator_temperature,
        timeout=settings.simulator_timeout,
        max_retries=settings.simulator_max_retries,
        sessions=sessions,
        replay=settings.simulator_replay,
        top_format="json_schema" if settings.simulator_json_schema else "lines",
        metrics=metrics,
    )


@dataclass
class _Chunk:
    """Movies asked together in one request."""

    items: list[int]
    compact: bool = False
    max_tokens: int | None = None


@dataclass
class _Progress:
    answers: dict[int, tuple[float, str]] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)
    asked: Counter[int] = field(default_factory=Counter)
    calls: int = 0
    replayed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LlmBackend:
    """Rates through an OpenAI-compatible chat completions endpoint."""

    name: Backend = "llm"

    def __init__(self, client: LlmClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    @property
    def model(self) -> str:
        return self.settings.simulator_model

    def allowed_missing(self, n_items: int) -> int:
        """Movies of a request that may stay unrated without failing it."""
        if n_items < 2 or self.settings.simulator_max_missing_share <= 0:
            return 0
        share = math.floor(self.settings.simulator_max_missing_share * n_items)
        return min(n_items - 1, max(1, share))

    async def rate(
        self, request: RatingsRequest, items: list[int], facts: Mapping[int, MovieFacts]
    ) -> BackendResult:
        if not self.client.configured:
            # a 400, not a 503: no retry can help a simulator configured without an LLM
            raise BadRequest(
                "this simulator has no LLM (OPENAI_BASE_URL or OPENAI_API_KEY): the llm backend "
                "cannot rate; GET /backends lists what it serves"
            )
        unknown = [tmdb_id for tmdb_id in items if tmdb_id not in facts]
        if unknown:
            raise NotFound(
                f"TMDB does not know these movies, so the persona cannot be told what they "
                f"are: {unknown[:20]}"
            )
        started = time.perf_counter()
        progress = _Progress()
        ceiling = self.settings.simulator_max_output_tokens
        budget = min(ceiling, TOKENS_PER_ITEM * len(items) + 64) if ceiling else None
        chunks = [_Chunk(list(items), max_tokens=budget)]
        while chunks:
            outcomes = await asyncio.gather(
                *(self._ask(request, chunk, facts, progress) for chunk in chunks)
            )
            chunks = [later for outcome in outcomes for later in outcome]
        missing = [tmdb_id for tmdb_id in items if tmdb_id not in progress.answers]
        if len(missing) > self.allowed_missing(len(items)):
            described = "; ".join(
                f"{facts[m].label} (tmdb {m}): {progress.problems.get(m, 'missing')}"
                for m in missing[:10]
            )
            raise UpstreamError(
                f"the LLM gave no valid rating for {len(missing)} of {len(items)} movies after "
                f"{self.settings.simulator_reasks + 1} asks each (at most "
                f"{self.allowed_missing(len(items))} may be missing): {described}"
            )
        if missing:
            log.warning("llm_ratings_missing", n=len(missing), of=len(items))
        ratings = [
            ItemRating(tmdb_id=m, rating=progress.answers[m][0], feeling=progress.answers[m][1])
            for m in items
            if m in progress.answers
        ]
        usage = Usage(
            prompt_tokens=progress.prompt_tokens,
            completion_tokens=progress.completion_tokens,
            cached=progress.calls == 0 and progress.replayed > 0,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )
        return BackendResult(
            ratings=ratings,
            usage=usage,
            model=self.model,
            missing=[
                MissingRating(tmdb_id=m, reason=progress.problems.get(m, "missing")[:500])
                for m in missing
            ],
        )

    def _task(
        self, request: RatingsRequest, chunk: _Chunk, facts: Mapping[int, MovieFacts]
    ) -> ChatTask:
        persona = request.persona
        history = [(facts[m.tmdb_id], m.rating) for m in persona.history if m.tmdb_id in facts]
        experiences = [
            (facts[e.tmdb_id], e.rating, e.feeling)
            for e in persona.experiences
            if e.tmdb_id in facts
        ]
        movies = [facts[tmdb_id] for tmdb_id in chunk.items]
        n_items = len(movies)
        # The predictions shown beside the movies are part of the messages, so of the replay key.
        stars = request.shown_stars()
        predicted = [stars.get(tmdb_id) for tmdb_id in chunk.items]

        def messages(response_format: Format) -> list[dict[str, str]]:
            return persona_messages(
                history=history,
                experiences=experiences,
                items=movies,
                response_format=response_format,
                compact=chunk.compact,
                predicted=predicted,
            )

        def validate(content: str, finish_reason: str | None) -> Verdict:
            parsed = parse_answer(content, n_items)
            missing = n_items - len(parsed.ratings)
            cut = " (cut off)" if finish_reason == "length" else ""
            if not parsed.ratings:
                return Verdict(False, f"no valid rating of {n_items} movies{cut}")
            if missing:
                return Verdict(True, f"{missing} of {n_items} movies without a valid rating{cut}")
            return Verdict(True)

        return ChatTask(
            purpose="persona_ratings",
            messages=messages,
            validate=validate,
            schema=ratings_schema(n_items),
            schema_name=SCHEMA_NAME,
            seed=request.seed,
            max_tokens=chunk.max_tokens,
            user_id=persona.user_id,
        )

    @staticmethod
    def _split(items: list[int], *, compact: bool, max_tokens: int | None) -> list[_Chunk]:
        half = (len(items) + 1) // 2
        parts = [items[:half], items[half:]] if len(items) > 1 else [items]
        return [_Chunk(part, compact, max_tokens) for part in parts if part]

    async def _ask(
        self,
        request: RatingsRequest,
        chunk: _Chunk,
        facts: Mapping[int, MovieFacts],
        progress: _Progress,
    ) -> list[_Chunk]:
        """Ask for one chunk; the chunks to ask next."""
        progress.asked.update(chunk.items)
        try:
            answer = await self.client.complete(self._task(request, chunk, facts))
        except UpstreamTimeout as exc:
            for tmdb_id in chunk.items:
                progress.problems[tmdb_id] = exc.detail
            again = [m for m in chunk.items if self._may_ask(m, progress)]
            if len(chunk.items) == 1 or not again:
                return []  # one movie that times out is not asked again: it fails fast
            log.info("llm_timeout_split", n=len(chunk.items))
            return self._split(again, compact=True, max_tokens=chunk.max_tokens)
        self._count(answer, progress)
        parsed = parse_answer(answer.content, len(chunk.items))
        for number, tmdb_id in enumerate(chunk.items, start=1):
            if number in parsed.ratings:
                progress.answers[tmdb_id] = parsed.ratings[number]
                progress.problems.pop(tmdb_id, None)
            elif tmdb_id not in progress.answers:
                reason = parsed.problems.get(number, "missing from the answer")
                if answer.truncated:
                    reason += " (the answer was cut off)"
                progress.problems[tmdb_id] = reason
        again = [m for m in chunk.items if m not in progress.answers and self._may_ask(m, progress)]
        if not again:
            return []
        log.info("llm_reask", n=len(again), of=len(chunk.items), cut=answer.truncated)
        if answer.truncated:
            return self._split(again, compact=chunk.compact, max_tokens=self._more(chunk, answer))
        return [_Chunk(again, compact=chunk.compact, max_tokens=chunk.max_tokens)]

    def _may_ask(self, tmdb_id: int, progress: _Progress) -> bool:
        return progress.asked[tmdb_id] <= self.settings.simulator_reasks

    def _more(self, chunk: _Chunk, answer: Answer) -> int | None:
        """A larger output budget after a cut, within the configured ceiling."""
        ceiling = self.settings.simulator_max_output_tokens
        if ceiling is None:
            return chunk.max_tokens
        used = max(answer.completion_tokens, chunk.max_tokens or 0, TOKENS_PER_ITEM)
        return min(ceiling, used * 2)

    @staticmethod
    def _count(answer: Answer, progress: _Progress) -> None:
        if answer.replayed:
            progress.replayed += 1
        else:
            progress.calls += 1
        progress.prompt_tokens += answer.prompt_tokens
        progress.completion_tokens += answer.completion_tokens
