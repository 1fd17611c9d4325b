"""recommender: no tables (models live on disk)

The recommender keeps no state in the database: trained models are files under
``<data_dir>/models/recommender/<dataset>/<implementation>/<hash>.npz`` with a ``<hash>.json``
of metadata (see services/recommender/.../artifacts.py and docs/recommender.md), and it only
reads the dataset tables. This revision stays in the chain so that the numbering of every
service's migration is fixed; it creates and drops nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to create: the recommender has no tables."""


def downgrade() -> None:
    """Nothing to drop."""
