"""Preparing a run, once, before its first step: the test and persona movies (seeded,
stratified, disjoint; :func:`~prefshift_orchestrator.protocol.select_movies`), the test movies'
genres (the dataset's, in TMDB's names), and the arms as resolved
(:class:`~prefshift_orchestrator.execution.arms.ArmResolver`). The result is stored on the run,
so a resumed run never prepares again."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_common.errors import NotFound, Unprocessable
from prefshift_common.movies import tmdb_genres
from prefshift_orchestrator.dataset_reads import DatasetReads
from prefshift_orchestrator.execution.arms import Arm, ArmResolver
from prefshift_orchestrator.models import Run
from prefshift_orchestrator.protocol import NotEnoughRatings, Selection, select_movies
from prefshift_orchestrator.replication.recorded import RecordedRun, find_recorded_run
from prefshift_orchestrator.schemas import Protocol

T = TypeVar("T")


@dataclass(frozen=True)
class Prepared:
    """What preparing a run decided, in the shape stored on the run."""

    selection: dict[str, Any]
    arms: list[Arm]
    messages: list[str]


class Preparation:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        resolver: ArmResolver,
    ) -> None:
        self.sessions = sessions
        self.resolver = resolver

    async def prepare(self, run: Run, protocol: Protocol) -> Prepared:
        started = time.perf_counter()
        messages = list(run.messages or [])
        recorded = await self._recorded(run, protocol, messages)
        if recorded is None:
            selection = await self._select(run, protocol)
        else:
            selection = Selection.from_json(recorded.selection)
        selected = time.perf_counter()
        arms, arms_ms = await _timed(
            self.resolver.resolve(protocol.arm_specs(), run.dataset, messages, recorded)
        )
        # per-genre shift reads TMDB's genre names, mapped from the dataset's own
        test_genres = {
            str(movie.tmdb_id): list(tmdb_genres(movie.genres)) for movie in selection.test
        }
        if recorded is not None:  # the same genres as the recorded run's figures
            test_genres = {**test_genres, **(recorded.selection.get("test_genres") or {})}
        selection_json = {
            **selection.to_json(),
            **({"recorded_run": recorded.run_id} if recorded is not None else {}),
            "test_genres": test_genres,
            # How long preparing took: reading the dataset (the orchestrator's own work) and
            # asking the recommenders for the arms' state.
            "prepare_ms": {"dataset": (selected - started) * 1000, "recommenders": arms_ms},
        }
        return Prepared(selection=selection_json, arms=arms, messages=messages)

    async def _recorded(
        self, run: Run, protocol: Protocol, messages: list[str]
    ) -> RecordedRun | None:
        """The run the protocol's recorded arms replay, if any: the run takes its split."""
        source = protocol.recorded_source()
        if source is None:
            return None
        async with self.sessions() as session:
            recorded = await find_recorded_run(
                session, source, user_id=run.user_id, dataset=run.dataset
            )
        messages.append(
            f"test and persona movies of the recorded run {recorded.run_id} (its split; "
            "test_size and persona_size do not apply)"
        )
        return recorded

    async def _select(self, run: Run, protocol: Protocol) -> Selection:
        """The run's test and persona movies, drawn from the user's ratings in the dataset."""
        async with self.sessions() as session:
            reads = DatasetReads(session)
            dataset_id = await reads.dataset_id(run.dataset)
            if dataset_id is None:
                raise NotFound(f"dataset {run.dataset!r} is not imported")
            movies = await reads.user_movies(dataset_id, run.user_id)
        if not movies:
            raise NotFound(f"user {run.user_id} has no ratings in dataset {run.dataset!r}")
        try:
            return select_movies(
                movies,
                test_size=protocol.test_size,
                persona_size=protocol.persona_size,
                seed=run.seed,
            )
        except NotEnoughRatings as exc:
            raise Unprocessable(f"user {run.user_id}: {exc}") from exc


async def _timed(awaitable: Awaitable[T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = await awaitable
    return result, (time.perf_counter() - started) * 1000
