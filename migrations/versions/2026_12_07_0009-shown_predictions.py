"""orchestrator: run_ratings.shown and .condition (the predicted rating shown beside a movie
when it was rated, and the rerate design's condition)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("run_ratings", sa.Column("shown", sa.Float(), nullable=True))
    op.add_column("run_ratings", sa.Column("condition", sa.String(16), nullable=True))


def downgrade() -> None:
    op.drop_column("run_ratings", "condition")
    op.drop_column("run_ratings", "shown")
