"""Tables of imported datasets. Written only by the importer; read by every service."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from prefshift_common.db import Base


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    n_users: Mapped[int] = mapped_column(Integer, default=0)
    n_movies: Mapped[int] = mapped_column(Integer, default=0)
    n_ratings: Mapped[int] = mapped_column(BigInteger, default=0)
    has_tmdb_metadata: Mapped[bool] = mapped_column(default=False)
    imported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Movie(Base):
    """A movie of a dataset, with its TMDB id and, for the seed study's files, TMDB fields."""

    __tablename__ = "movies"
    __table_args__ = (
        Index("ix_movies_dataset_tmdb", "dataset_id", "tmdb_id"),
        # movies_by_tmdb_ids across datasets
        Index("ix_movies_tmdb_id", "tmdb_id"),
    )

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    movielens_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tmdb_id: Mapped[int | None] = mapped_column(Integer)
    imdb_id: Mapped[str | None] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(Integer)
    genres: Mapped[str] = mapped_column(Text, default="")  # MovieLens pipe-separated genres
    overview: Mapped[str | None] = mapped_column(Text)
    tmdb_genres: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    tmdb_vote_average: Mapped[float | None] = mapped_column(Float)
    tmdb_vote_count: Mapped[int | None] = mapped_column(Integer)


class Rating(Base):
    """One rating of a dataset. No foreign key to ``datasets`` on purpose: checking one for each
    row made COPY 2-5 times slower; only the importer writes this table
    and it deletes a dataset's ratings itself."""

    __tablename__ = "ratings"

    dataset_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    movielens_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    rating: Mapped[float] = mapped_column(Float(precision=24))
    timestamp: Mapped[int | None] = mapped_column(BigInteger)


class DatasetUser(Base):
    """One row per user of a dataset, with counts used by cohort rules."""

    __tablename__ = "dataset_users"
    # cohort rules: users of a dataset with n_ratings in a range
    __table_args__ = (Index("ix_dataset_users_dataset_n_ratings", "dataset_id", "n_ratings"),)

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    n_ratings: Mapped[int] = mapped_column(Integer)
    mean_rating: Mapped[float] = mapped_column(Float)
    archetype: Mapped[str | None] = mapped_column(String(32))
