"""What the routes read: a run as answered and its measurements, computed from the stored
ratings on every read (via ``measurements``). Submitting is ``submission``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_common.movies import tmdb_genres
from prefshift_orchestrator import measurements
from prefshift_orchestrator.models import Run, RunRating
from prefshift_orchestrator.protocol import Selection
from prefshift_orchestrator.repository import RunRepository, as_utc
from prefshift_orchestrator.schemas import (
    ArmShiftSummary,
    Protocol,
    RunError,
    RunLinks,
    RunOut,
)

RATING_COLUMNS = ["arm", "page", "phase", "tmdb_id", "rating"]


def pages_total(run: Run) -> int:
    arms = run.arms if run.arms is not None else Protocol.model_validate(run.params).arm_specs()
    return 1 + len(arms) * int(run.params.get("pages", 4))


def run_out(run: Run, pages_done: int, base: str = "") -> RunOut:
    error = RunError.model_validate(run.error) if run.error else None
    return RunOut(
        run_id=run.id,
        user_id=run.user_id,
        dataset=run.dataset,
        seed=run.seed,
        status=run.status,  # type: ignore[arg-type]
        progress=max(0.0, min(1.0, run.progress)),
        params=run.params,
        arms=run.arms,
        messages=list(run.messages or []),
        provenance=run.provenance,
        rated_by=run.rated_by,
        error=error,
        attempts=run.attempts,
        claimed_by=run.claimed_by,
        created_at=as_utc(run.created_at),  # type: ignore[arg-type]
        started_at=as_utc(run.started_at),
        finished_at=as_utc(run.finished_at),
        pages_done=pages_done,
        pages_total=pages_total(run),
        links=RunLinks(
            self=f"{base}/runs/{run.id}",
            ratings=f"{base}/runs/{run.id}/ratings",
            shift=f"{base}/runs/{run.id}/shift",
        ),
    )


# --- measurements ---------------------------------------------------------------------------


def ratings_frame(ratings: Sequence[RunRating]) -> pd.DataFrame:
    """A run's ratings in the shape ``measurements`` takes."""
    return pd.DataFrame(
        [(r.arm, r.page, r.phase, r.tmdb_id, r.rating) for r in ratings], columns=RATING_COLUMNS
    ).astype({"arm": str, "page": "int64", "phase": str, "tmdb_id": "int64", "rating": "float64"})


def selection_inputs(run: Run) -> tuple[dict[int, list[str]], dict[int, float]]:
    """Genres and real ratings of the run's test movies."""
    if run.selection is None:
        return {}, {}
    selection = Selection.from_json(run.selection)
    stored_genres = run.selection.get("test_genres") or {}
    genres = {
        movie.tmdb_id: list(tmdb_genres(stored_genres.get(str(movie.tmdb_id), movie.genres)))
        for movie in selection.test
    }
    real = {movie.tmdb_id: movie.rating for movie in selection.test}
    return genres, real


def seen_test_movies(run: Run) -> set[int]:
    """Test movies that are also persona movies (possible only in imported runs)."""
    if run.selection is None:
        return set()
    selection = Selection.from_json(run.selection)
    return {m.tmdb_id for m in selection.test} & {m.tmdb_id for m in selection.persona}


def compute_shift(run: Run, ratings: Sequence[RunRating]) -> measurements.RunShift:
    genres, real = selection_inputs(run)
    return measurements.run_shift(
        ratings_frame(ratings), test_genres=genres, real_ratings=real, seen=seen_test_movies(run)
    )


async def run_shift(session: AsyncSession, run: Run) -> measurements.RunShift:
    ratings = await RunRepository(session).ratings(run.id)
    return await asyncio.to_thread(compute_shift, run, ratings)


def shift_summary(shift: measurements.RunShift) -> list[ArmShiftSummary]:
    return [
        ArmShiftSummary(
            arm=arm.arm, page=arm.last_page or 0, shift=arm.shift, net_shift=arm.net_shift
        )
        for arm in shift.arms
    ]
