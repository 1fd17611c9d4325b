"""Tables owned by the simulator service: the record of every LLM call (for audit and replay)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from prefshift_common.db import Base, JSONVariant


class LlmCall(Base):
    """One chat-completion call made (or attempted) by the ``llm`` backend.

    ``request_hash`` is the SHA-256 of the call's model, messages and sampling parameters, so an
    identical call can be answered from ``response`` without calling the LLM again. The API key
    is never part of a record.
    """

    __tablename__ = "simulator_llm_calls"
    __table_args__ = (Index("ix_simulator_llm_calls_request_hash", "request_hash", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str | None] = mapped_column(String(500))
    user_id: Mapped[int | None] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    response_format: Mapped[str] = mapped_column(String(16))
    prompt: Mapped[list[dict[str, Any]]] = mapped_column(JSONVariant)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONVariant)
    response: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
