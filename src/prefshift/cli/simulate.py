"""``prefshift simulate`` and ``prefshift experiment``."""

from __future__ import annotations

import typer

experiment_app = typer.Typer(no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to the top-level app."""
