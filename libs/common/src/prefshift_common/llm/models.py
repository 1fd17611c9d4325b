"""Tables of the LLM client, shared by every service that calls an LLM.

* ``llm_calls``: every chat-completion call made or attempted (audit, cost and replay).
* ``llm_format_decisions``: the structured-output rung chosen per endpoint and model, and why.
* ``llm_rate_budgets``: the request and token budgets per endpoint and model that every process
  on the database draws from (see :mod:`prefshift_common.llm.ratelimit`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from prefshift_common.db import Base, JSONVariant

#: Statuses of a call record. Only ``valid`` is ever replayed.
VALID, INVALID, ERROR, UNSUPPORTED = "valid", "invalid", "error", "unsupported"


class LlmCall(Base):
    """One chat-completion call.

    ``replay_key`` is the SHA-256 of what the call asks (endpoint, model, the messages as the
    top rung words them, sampling parameters and seed) and not of the response format used, so a
    call is replayed whichever rung answered it. ``status`` says whether the answer passed its
    validation (``valid``, the only status replayed), failed it (``invalid``), or no answer came
    (``error``; ``unsupported``: the endpoint refused the response format). ``detail`` says why.
    The API key is never part of a record.
    """

    __tablename__ = "llm_calls"
    __table_args__ = (Index("ix_llm_calls_replay_key", "replay_key", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(64))
    replay_key: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str | None] = mapped_column(String(500))
    user_id: Mapped[int | None] = mapped_column(Integer)
    response_format: Mapped[str] = mapped_column(String(16))
    prompt: Mapped[list[dict[str, Any]]] = mapped_column(JSONVariant)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONVariant)
    response: Mapped[str | None] = mapped_column(Text)
    finish_reason: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LlmFormatDecision(Base):
    """The response-format rung in use for an endpoint and model, and why it was chosen."""

    __tablename__ = "llm_format_decisions"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint: Mapped[str | None] = mapped_column(String(500))
    model: Mapped[str] = mapped_column(String(200))
    response_format: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[float] = mapped_column(Float)


class LlmRateBudget(Base):
    """A request and token budget of one endpoint and model, as a virtual schedule.

    ``next_request_at`` / ``next_token_at`` (Unix seconds) are when the budget is next free;
    a caller reserves its slot by moving them on. ``factor`` (0–1] scales the configured rates
    down after a 429 and creeps back up with every success (additive increase, multiplicative
    decrease); ``blocked_until`` honours a ``Retry-After``.
    """

    __tablename__ = "llm_rate_budgets"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint: Mapped[str | None] = mapped_column(String(500))
    model: Mapped[str] = mapped_column(String(200))
    next_request_at: Mapped[float] = mapped_column(Float, default=0.0)
    next_token_at: Mapped[float] = mapped_column(Float, default=0.0)
    factor: Mapped[float] = mapped_column(Float, default=1.0)
    blocked_until: Mapped[float] = mapped_column(Float, default=0.0)
    throttled: Mapped[int] = mapped_column(Integer, default=0)
