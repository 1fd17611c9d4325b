"""Tables owned by the tmdb-proxy service.

Two tables rather than one with a ``source`` column: the cache holds what TMDB answered (it
expires and is refreshed), the offline table holds imported TMDB-shaped records (never expire,
replaced only by a re-import). Kept apart, a re-import never overwrites fresher TMDB answers, an
upstream refresh never clobbers an import, and clearing the cache never loses the offline source
(which also serves as the stale-if-error fallback when TMDB is down).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from prefshift_common.db import Base, JSONVariant


class CachedMovie(Base):
    """TMDB's answer for one movie id: the payload (``ok``) or a remembered 404 (``not_found``)."""

    __tablename__ = "tmdb_cache"

    tmdb_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16))  # "ok" | "not_found"
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONVariant)
    title: Mapped[str | None] = mapped_column(Text)
    original_title: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(Integer)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OfflineMovie(Base):
    """A TMDB-shaped record imported with ``prefshift data import-tmdb``."""

    __tablename__ = "tmdb_offline_movies"

    tmdb_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONVariant)
    title: Mapped[str] = mapped_column(Text)
    original_title: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(Integer)
    imdb_id: Mapped[str | None] = mapped_column(String(16))
    imported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
