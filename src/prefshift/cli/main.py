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

if __name__ == "__main__":
    app()
