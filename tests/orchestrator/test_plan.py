"""`prefshift experiment plan`: users needed for an effect, and the LLM calls of a study."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefshift.cli.main import app
from prefshift.cli.plan import call_counts


def test_calls_per_user_follow_the_protocol() -> None:
    # baseline 1; 4 recommender arms × 4 pages × (rate page + re-rate); control 4 re-ratings
    arms = ["llm", "llm-persuasive", "als", "random", "control"]
    assert call_counts(arms, 4, {"llm", "llm-persuasive"}) == (1 + 4 * 4 * 2 + 4, 2 * 4)
    assert call_counts(["control"], 3, set()) == (4, 0)


def test_plan_prints_users_needed_and_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFSHIFT_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    result = CliRunner().invoke(
        app,
        [
            "experiment",
            "plan",
            "--effect",
            "0.1",
            "--sd",
            "0.25",
            "--arms",
            "llm,control",
            "--pages",
            "2",
            "--price-per-million",
            "1",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    # 2·((1.960 + 0.842)·0.25/0.1)² = 98.1 → 99 users
    assert "99 users" in result.output
    # per user: 1 + 2·2 + 2 = 7 simulator calls, 2 recommender calls
    assert "693" in result.output and "198" in result.output
    assert "documented sizes" in result.output
