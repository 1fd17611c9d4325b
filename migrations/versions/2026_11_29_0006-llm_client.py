"""llm client: one call record for every service, format decisions, shared rate budgets

The simulator's ``simulator_llm_calls`` becomes ``llm_calls`` (the recommender records its calls
too). Its old rows are kept for audit with status ``unvalidated``: they were stored whether or not
the answer was usable, so none of them is ever replayed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _created_at() -> sa.Column[sa.DateTime]:
    return sa.Column(
        "created_at",
        sa.DateTime(timezone=True),
        server_default=sa.text("CURRENT_TIMESTAMP"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "llm_calls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("replay_key", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("endpoint", sa.String(length=500), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("response_format", sa.String(length=16), nullable=False),
        sa.Column("prompt", JSON, nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("finish_reason", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_llm_calls")),
    )
    op.create_index("ix_llm_calls_replay_key", "llm_calls", ["replay_key", "status"])
    op.execute(
        "INSERT INTO llm_calls (service, purpose, replay_key, model, endpoint, user_id, "
        "response_format, prompt, parameters, response, finish_reason, status, detail, "
        "prompt_tokens, completion_tokens, latency_ms, created_at) "
        "SELECT 'simulator', 'persona_ratings', request_hash, model, endpoint, user_id, "
        "response_format, prompt, parameters, response, NULL, 'unvalidated', error, "
        "prompt_tokens, completion_tokens, latency_ms, created_at FROM simulator_llm_calls"
    )
    op.drop_index("ix_simulator_llm_calls_request_hash", table_name="simulator_llm_calls")
    op.drop_table("simulator_llm_calls")
    op.create_table(
        "llm_format_decisions",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=500), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("response_format", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_llm_format_decisions")),
    )
    op.create_table(
        "llm_rate_budgets",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=500), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("next_request_at", sa.Float(), nullable=False),
        sa.Column("next_token_at", sa.Float(), nullable=False),
        sa.Column("factor", sa.Float(), nullable=False),
        sa.Column("blocked_until", sa.Float(), nullable=False),
        sa.Column("throttled", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_llm_rate_budgets")),
    )


def downgrade() -> None:
    op.drop_table("llm_rate_budgets")
    op.drop_table("llm_format_decisions")
    op.create_table(
        "simulator_llm_calls",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("endpoint", sa.String(length=500), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("response_format", sa.String(length=16), nullable=False),
        sa.Column("prompt", JSON, nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_simulator_llm_calls")),
    )
    op.create_index(
        "ix_simulator_llm_calls_request_hash", "simulator_llm_calls", ["request_hash", "status"]
    )
    # Old rows go back unreplayable: the old table replayed any row with status "ok".
    op.execute(
        "INSERT INTO simulator_llm_calls (request_hash, model, endpoint, user_id, attempt, "
        "response_format, prompt, parameters, response, status, error, prompt_tokens, "
        "completion_tokens, latency_ms, created_at) "
        "SELECT replay_key, model, endpoint, user_id, 0, response_format, prompt, parameters, "
        "response, 'unvalidated', detail, prompt_tokens, completion_tokens, latency_ms, "
        "created_at FROM llm_calls WHERE service = 'simulator'"
    )
    op.drop_index("ix_llm_calls_replay_key", table_name="llm_calls")
    op.drop_table("llm_calls")
