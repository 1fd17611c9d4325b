"""Logging follows the stderr of the moment, not the one it was configured under."""

from __future__ import annotations

import io
import sys

import pytest
import structlog

from prefshift_common.logging import configure_logging


def test_events_go_to_the_current_stderr_after_the_first_one_was_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging("INFO")
    structlog.get_logger("test").warning("first command")
    assert "first command" in first.getvalue()
    first.close()  # as click's CliRunner does after each invocation

    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    structlog.get_logger("test").warning("no checksum published")
    assert "no checksum published" in second.getvalue()
