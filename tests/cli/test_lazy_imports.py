"""Every ``prefshift`` command starts by importing ``prefshift.cli.main``; it imports no service
and none of the heavy libraries (issue 20: each command, even ``prefshift --help``, paid for
pandas, scipy, alembic and every service before it ran). A command imports what it needs when
it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: Top-level packages ``import prefshift.cli.main`` must not import (prefshift_datasets's light
#: modules are fine: ``data download``'s help names its datasets).
FORBIDDEN = (
    "pandas",
    "scipy",
    "numpy",
    "sklearn",
    "matplotlib",
    "alembic",
    "openai",
    "sqlalchemy",
    "fastapi",
    "prefshift_orchestrator",
    "prefshift_simulator",
    "prefshift_recommender",
    "prefshift_tmdb_proxy",
    "prefshift_console",
)


def test_the_cli_imports_no_heavy_package_at_startup() -> None:
    # A new interpreter: this test process has imported much of it already.
    script = (
        "import sys, prefshift.cli.main\n"
        "print(' '.join(sorted({name.partition('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    imported = set(result.stdout.split())
    assert "typer" in imported, result.stdout
    assert sorted(imported.intersection(FORBIDDEN)) == []


def test_migrating_imports_no_llm_client(tmp_path: Path) -> None:
    """``prefshift db upgrade`` (and every command that migrates first) registers the LLM call
    table, not the OpenAI client."""
    url = f"sqlite:///{tmp_path / 'prefshift.db'}"
    script = (
        "import sys\n"
        "from prefshift import migrate\n"
        f"migrate.upgrade({url!r})\n"
        "print(' '.join(sorted({name.partition('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    imported = set(result.stdout.split())
    assert "alembic" in imported, result.stdout
    assert "openai" not in imported
