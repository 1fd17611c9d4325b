"""Database plumbing: one declarative base for every service's tables, engines for Postgres
(psycopg 3) and SQLite (aiosqlite), and the session dependency.

Each service owns its tables (its ``models.py``); this module owns none.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import JSON, MetaData, create_engine, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: JSONB on Postgres, JSON (text) on SQLite.
JSONVariant = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """The declarative base of every prefshift table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _normalise(url: str, *, asynchronous: bool) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if backend == "sqlite":
        driver = "sqlite+aiosqlite" if asynchronous else "sqlite"
        return parsed.set(drivername=driver).render_as_string(hide_password=False)
    raise ValueError(f"unsupported database {backend!r}: use postgresql:// or sqlite://")


def async_url(url: str) -> str:
    """The URL with the async driver of its database (psycopg or aiosqlite)."""
    return _normalise(url, asynchronous=True)


def sync_url(url: str) -> str:
    """The URL with the synchronous driver of its database (psycopg or sqlite3)."""
    return _normalise(url, asynchronous=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


class WriteSessions:
    """Sessions for write transactions, serialised within the process on SQLite: the database
    takes one writer at a time anyway, so writers queue on a lock instead of each holding a
    pooled connection while SQLite makes it wait (which empties the pool under load). Elsewhere
    (Postgres) writes go straight ahead."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, sqlite: bool) -> None:
        self.sessions = sessions
        self._lock: AbstractAsyncContextManager[Any] = asyncio.Lock() if sqlite else nullcontext()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        async with self._lock, self.sessions() as session:
            yield session


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the four services read while one writes; the busy timeout waits out short locks.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def create_async_db_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` (Postgres or SQLite)."""
    if is_sqlite(url):
        _ensure_sqlite_dir(url)
        engine = create_async_engine(async_url(url), connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_async_engine(async_url(url), **kwargs)


def create_sync_db_engine(url: str, **kwargs: Any) -> Engine:
    """A synchronous engine (migrations, bulk imports, model training threads)."""
    if is_sqlite(url):
        _ensure_sqlite_dir(url)
        engine = create_engine(sync_url(url), connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(sync_url(url), **kwargs)


@contextmanager
def sync_connection(url: str, *, transaction: bool = False, **options: Any) -> Iterator[Connection]:
    """A connection on a throwaway synchronous engine (a CLI step, a loader in a thread, a test
    fixture): ``transaction=True`` commits at the end (rolls back on an error); the engine is
    disposed either way."""
    engine = create_sync_db_engine(url, **options)
    try:
        with engine.begin() if transaction else engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def ping(engine: AsyncEngine) -> None:
    """Raise if the database cannot be reached."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; the route (the request boundary) commits."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.database.sessions
    async with factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
