"""``prefshift db``: migrations."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the configured database (PREFSHIFT_DATABASE_URL) up to REVISION."""
    from prefshift import migrate

    migrate.upgrade(revision=revision)
    typer.echo(f"database at {revision}")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="Target revision, or 'base'.")) -> None:
    """Migrate the configured database down to REVISION."""
    from prefshift import migrate

    migrate.downgrade(revision=revision)
    typer.echo(f"database at {revision}")
