"""datasets: datasets, movies, ratings, dataset_users

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("n_users", sa.Integer(), nullable=False),
        sa.Column("n_movies", sa.Integer(), nullable=False),
        sa.Column("n_ratings", sa.BigInteger(), nullable=False),
        sa.Column("has_tmdb_metadata", sa.Boolean(), nullable=False),
        sa.Column(
            "imported_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
    )
    op.create_table(
        "movies",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("movielens_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tmdb_id", sa.Integer(), nullable=True),
        sa.Column("imdb_id", sa.String(length=16), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("genres", sa.Text(), nullable=False),
        sa.Column("overview", sa.Text(), nullable=True),
        sa.Column("tmdb_genres", sa.JSON(), nullable=True),
        sa.Column("tmdb_vote_average", sa.Float(), nullable=True),
        sa.Column("tmdb_vote_count", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_movies_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "movielens_id", name=op.f("pk_movies")),
    )
    op.create_index("ix_movies_dataset_tmdb", "movies", ["dataset_id", "tmdb_id"])
    op.create_index("ix_movies_tmdb_id", "movies", ["tmdb_id"])
    op.create_table(
        "ratings",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("movielens_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rating", sa.Float(precision=24), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=True),
        # no foreign key to datasets: one check per row made bulk COPY 2-5x slower (models.py)
        sa.PrimaryKeyConstraint("dataset_id", "user_id", "movielens_id", name=op.f("pk_ratings")),
    )
    op.create_table(
        "dataset_users",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n_ratings", sa.Integer(), nullable=False),
        sa.Column("mean_rating", sa.Float(), nullable=False),
        sa.Column("archetype", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_users_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "user_id", name=op.f("pk_dataset_users")),
    )
    op.create_index(
        "ix_dataset_users_dataset_n_ratings", "dataset_users", ["dataset_id", "n_ratings"]
    )


def downgrade() -> None:
    op.drop_index("ix_dataset_users_dataset_n_ratings", table_name="dataset_users")
    op.drop_table("dataset_users")
    op.drop_table("ratings")
    op.drop_index("ix_movies_tmdb_id", table_name="movies")
    op.drop_index("ix_movies_dataset_tmdb", table_name="movies")
    op.drop_table("movies")
    op.drop_table("datasets")
