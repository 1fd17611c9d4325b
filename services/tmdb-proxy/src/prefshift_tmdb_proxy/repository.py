"""All SQL of the tmdb-proxy: the cache, the offline records and the dataset movies it falls
back to. Upserts are ``INSERT … ON CONFLICT`` on both Postgres and SQLite."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Insert, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_datasets import repository as datasets_repository
from prefshift_datasets.models import Dataset, Movie, Rating
from prefshift_datasets.repository import MovieRecord
from prefshift_tmdb_proxy.models import CachedMovie, OfflineMovie
from prefshift_tmdb_proxy.records import from_dataset_movie

#: First key of the two-key advisory lock, so our locks never collide with other services'.
ADVISORY_NAMESPACE = 0x544D4442  # "TMDB"


def aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _insert(dialect: str, table: Any) -> Any:
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def cache_upsert_statement(dialect: str, rows: Sequence[dict[str, Any]]) -> Insert:
    """Insert cache rows, replacing what is there for the same ids."""
    statement = _insert(dialect, CachedMovie.__table__).values(list(rows))
    columns = ("status", "payload", "title", "original_title", "year", "fetched_at", "expires_at")
    return statement.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["tmdb_id"], set_={c: statement.excluded[c] for c in columns}
    )


def offline_upsert_statement(dialect: str, rows: Sequence[dict[str, Any]]) -> Insert:
    """Insert imported records, replacing earlier imports of the same ids."""
    statement = _insert(dialect, OfflineMovie.__table__).values(list(rows))
    columns = ("payload", "title", "original_title", "year", "imdb_id")
    return statement.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["tmdb_id"],
        set_={**{c: statement.excluded[c] for c in columns}, "imported_at": func.now()},
    )


@dataclass(frozen=True)
class CacheEntry:
    """A cache row as the service reads it (Core columns, no ORM identity map on the hot path)."""

    status: str
    payload: dict[str, Any] | None
    expires_at: datetime


async def cached(session: AsyncSession, tmdb_ids: Iterable[int]) -> dict[int, CacheEntry]:
    """Cache rows (fresh or stale) of these ids, in one query."""
    ids = list(set(tmdb_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(
            CachedMovie.tmdb_id, CachedMovie.status, CachedMovie.payload, CachedMovie.expires_at
        ).where(CachedMovie.tmdb_id.in_(ids))
    )
    return {
        tmdb_id: CacheEntry(status, payload, aware(expires_at))
        for tmdb_id, status, payload, expires_at in rows
    }


async def upsert_cached(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(cache_upsert_statement(_dialect(session), rows))


async def offline(session: AsyncSession, tmdb_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Imported payloads of these ids, in one query."""
    ids = list(set(tmdb_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(OfflineMovie.tmdb_id, OfflineMovie.payload).where(OfflineMovie.tmdb_id.in_(ids))
    )
    return {tmdb_id: payload for tmdb_id, payload in rows}


async def dataset_movies(
    session: AsyncSession, tmdb_ids: Iterable[int]
) -> dict[int, dict[str, Any]]:
    """TMDB-shaped records built from the imported datasets' own movie rows (where several
    datasets know a movie, the datasets repository prefers the one with TMDB metadata)."""
    ids = list(set(tmdb_ids))
    if not ids:
        return {}
    found = await datasets_repository.movies_by_tmdb_ids(session, None, ids)
    return {tmdb_id: _dataset_record(tmdb_id, movie) for tmdb_id, movie in found.items()}


def _dataset_record(tmdb_id: int, movie: MovieRecord) -> dict[str, Any]:
    return from_dataset_movie(
        tmdb_id=tmdb_id,
        title=movie.title,
        year=movie.year,
        genres=movie.genres,
        overview=movie.overview,
        imdb_id=movie.imdb_id,
        tmdb_genres=movie.tmdb_genres,
        vote_average=movie.tmdb_vote_average,
        vote_count=movie.tmdb_vote_count,
    )


@dataclass(frozen=True)
class TitleRow:
    """What the offline title index needs of a movie."""

    tmdb_id: int
    title: str
    original_title: str | None
    year: int | None
    popularity: float
    other_titles: tuple[str, ...] = ()


async def title_rows(session: AsyncSession) -> list[TitleRow]:
    """Every movie the offline source can serve: imported records, then dataset movies. The
    datasets' MovieLens titles of imported movies become alternative titles ("Star Wars:
    Episode IV - A New Hope (1977)" for TMDB's "Star Wars"), and their MovieLens years the year
    of imported records that have none.

    The datasets repository has no "titles of every dataset" read, so this one query on the
    movies table lives here."""
    rows: dict[int, TitleRow] = {}
    result = await session.execute(
        select(
            OfflineMovie.tmdb_id,
            OfflineMovie.title,
            OfflineMovie.original_title,
            OfflineMovie.year,
            OfflineMovie.payload["vote_count"].as_float(),
        )
    )
    for tmdb_id, title, original_title, year, votes in result:
        rows[tmdb_id] = TitleRow(tmdb_id, title, original_title, year, _float(votes))
    dataset_ids = list(await session.scalars(select(Dataset.id)))
    if dataset_ids:
        result = await session.execute(
            select(Movie.tmdb_id, Movie.title, Movie.year, Movie.tmdb_vote_count).where(
                Movie.dataset_id.in_(dataset_ids), Movie.tmdb_id.is_not(None)
            )
        )
        for tmdb_id, title, year, votes in result:
            known = rows.get(tmdb_id)
            if known is None:
                rows[tmdb_id] = TitleRow(tmdb_id, title, None, year, _float(votes))
                continue
            if title not in known.other_titles and title != known.title:
                known = replace(known, other_titles=(*known.other_titles, title))
            if known.year is None and year is not None:
                known = replace(known, year=year)  # no release date: the MovieLens year
            rows[tmdb_id] = known
    return list(rows.values())


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _is_pg(session: AsyncSession) -> bool:
    return _dialect(session) == "postgresql"


def _float(value: Any) -> float:
    try:
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


async def source_signature(session: AsyncSession) -> tuple[Any, ...]:
    """Changes whenever records are imported or datasets added or removed."""
    offline_row = (
        await session.execute(
            select(func.count(), func.max(OfflineMovie.imported_at)).select_from(OfflineMovie)
        )
    ).one()
    dataset_row = (await session.execute(select(func.count(), func.max(Dataset.imported_at)))).one()
    return (*offline_row, *dataset_row)


@dataclass(frozen=True)
class CacheCounts:
    entries: int
    not_found_entries: int
    expired_entries: int
    offline_records: int


async def counts(session: AsyncSession, now: datetime) -> CacheCounts:
    """Row counts for ``GET /cache/stats``."""
    cache_rows = await session.execute(
        select(CachedMovie.status, func.count()).group_by(CachedMovie.status)
    )
    by_status = {status: n for status, n in cache_rows}
    expired = await session.scalar(
        select(func.count()).select_from(CachedMovie).where(CachedMovie.expires_at < now)
    )
    offline_count = await session.scalar(select(func.count()).select_from(OfflineMovie))
    return CacheCounts(
        entries=sum(by_status.values()),
        not_found_entries=by_status.get("not_found", 0),
        expired_entries=int(expired or 0),
        offline_records=int(offline_count or 0),
    )


async def lock_movie(session: AsyncSession, tmdb_id: int) -> None:
    """On Postgres, serialise fetches of one id across processes until the transaction ends
    (SQLite has one writer anyway: nothing to do)."""
    if _is_pg(session):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(CAST(:namespace AS int), CAST(:tmdb_id AS int))"),
            {"namespace": ADVISORY_NAMESPACE, "tmdb_id": tmdb_id},
        )


async def dataset_tmdb_ids(session: AsyncSession, dataset_id: int) -> list[int]:
    """Every TMDB id of a dataset's movies (for ``prefshift tmdb prefetch``)."""
    rows = await session.scalars(
        select(Movie.tmdb_id)
        .where(Movie.dataset_id == dataset_id, Movie.tmdb_id.is_not(None))
        .distinct()
    )
    return sorted(tmdb_id for tmdb_id in rows if tmdb_id is not None)


async def all_offline(session: AsyncSession) -> dict[int, dict[str, Any]]:
    """Every imported payload (the offline catalogue of lists, discover and find)."""
    rows = await session.execute(select(OfflineMovie.tmdb_id, OfflineMovie.payload))
    return {tmdb_id: payload for tmdb_id, payload in rows}


async def all_dataset_movies(session: AsyncSession) -> dict[int, dict[str, Any]]:
    """TMDB-shaped records of every movie of the imported datasets that has a TMDB id."""
    ids = await session.scalars(select(Movie.tmdb_id).where(Movie.tmdb_id.is_not(None)).distinct())
    return await dataset_movies(session, [tmdb_id for tmdb_id in ids if tmdb_id is not None])


async def rating_counts(session: AsyncSession) -> dict[int, int]:
    """How many ratings each TMDB id has across the imported datasets (offline popularity)."""
    # counted per movie first, then joined: a join of every rating to the movies table makes
    # SQLite nest a scan of the ratings in a scan of the movies
    per_movie = (
        select(Rating.dataset_id, Rating.movielens_id, func.count().label("ratings"))
        .group_by(Rating.dataset_id, Rating.movielens_id)
        .subquery()
    )
    rows = await session.execute(
        select(Movie.tmdb_id, func.sum(per_movie.c.ratings))
        .join(
            per_movie,
            (Movie.dataset_id == per_movie.c.dataset_id)
            & (Movie.movielens_id == per_movie.c.movielens_id),
        )
        .where(Movie.tmdb_id.is_not(None))
        .group_by(Movie.tmdb_id)
    )
    return {tmdb_id: int(count) for tmdb_id, count in rows if tmdb_id is not None}
