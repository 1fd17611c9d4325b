"""orchestrator: runs.provenance and experiments.provenance (imported runs say where from)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONVariant = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("runs", sa.Column("provenance", JSONVariant, nullable=True))
    op.add_column("experiments", sa.Column("provenance", JSONVariant, nullable=True))


def downgrade() -> None:
    op.drop_column("experiments", "provenance")
    op.drop_column("runs", "provenance")
