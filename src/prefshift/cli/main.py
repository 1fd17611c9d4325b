"""The ``prefshift`` command."""

from __future__ import annotations

import typer

from prefshift.cli import (
    data,
    db,
    eval_personas,
    eval_recommenders,
    evaluate,
    persona,
    plan,
    replication,
    simulate,
    stack,
    tmdb,
    validity,
    worker,
)

app = typer.Typer(
    name="prefshift",
    help="Measure how recommender systems shift people's tastes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db", help="Database migrations.")
app.add_typer(data.app, name="data", help="Import, download and list datasets.")
app.add_typer(tmdb.app, name="tmdb", help="TMDB metadata: offline import and cache warm-up.")
app.add_typer(evaluate.app, name="eval", help="Evaluate recommenders and personas offline.")
app.add_typer(simulate.experiment_app, name="experiment", help="Run experiments over cohorts.")
tmdb.register_data_commands(data.app)
eval_recommenders.register(evaluate.app)
eval_personas.register(evaluate.app)
stack.register(app)
persona.register(app)
plan.register(simulate.experiment_app)
simulate.register(app)
replication.register(simulate.experiment_app)
validity.register(app)
worker.register(app)

#: What a database whose schema is older than this prefshift says when a command reads a table
#: or column a later migration added (SQLite's and Postgres's wording).
_STALE_SCHEMA = ("no such table", "no such column", "UndefinedTable", "UndefinedColumn")


def main() -> None:
    """The ``prefshift`` command: ``app``, with a plain message instead of a traceback when the
    database's schema is behind this prefshift (after an upgrade, before ``prefshift db
    upgrade``)."""
    from sqlalchemy.exc import DBAPIError

    try:
        app()
    except DBAPIError as error:
        if not any(
            marker in f"{type(error.orig).__name__} {error.orig}" for marker in _STALE_SCHEMA
        ):
            raise
        typer.echo(
            f"error: the database's schema is older than this prefshift ({error.orig}); "
            "run: prefshift db upgrade",
            err=True,
        )
        raise SystemExit(1) from error


if __name__ == "__main__":
    main()
