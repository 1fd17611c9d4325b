"""`prefshift tmdb`."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


def register_data_commands(data_app: typer.Typer) -> None:
    """Add ``prefshift data import-tmdb`` to the ``data`` group."""
