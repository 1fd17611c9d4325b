"""`prefshift eval recommenders`: offline accuracy of the recommenders on a dataset."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)

DEFAULT_IMPLEMENTATIONS = "als,bpr,item-knn,popularity,random"


def _ks(value: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in value.split(",") if part.strip()})
    except ValueError:
        raise typer.BadParameter("--k takes comma-separated integers, e.g. 10,30") from None
    if not ks or ks[0] < 1 or ks[-1] > 500:
        raise typer.BadParameter("each k must be between 1 and 500")
    return ks


def register(app: typer.Typer) -> None:
    """Add this module's commands to `prefshift eval`."""

    @app.command("recommenders")
    def recommenders(
        dataset: Annotated[str, typer.Option(help="An imported dataset, e.g. ml-latest-small.")],
        k: Annotated[str, typer.Option(help="Cut-offs, comma-separated.")] = "10,30",
        implementations: Annotated[
            str, typer.Option(help="Implementations to evaluate, comma-separated.")
        ] = DEFAULT_IMPLEMENTATIONS,
        seed: Annotated[int, typer.Option(help="Seed of the per-user hold-out.")] = 0,
        test_fraction: Annotated[
            float, typer.Option(min=0.05, max=0.5, help="Share of each user's ratings held out.")
        ] = 0.2,
        relevant_rating: Annotated[
            float, typer.Option(min=0.5, max=5.0, help="Held-out ratings this high are relevant.")
        ] = 4.0,
    ) -> None:
        """Recall@k and nDCG@k of each implementation on a seeded per-user hold-out.

        Every user with at least 5 ratings keeps a random share of them aside; each
        implementation trains on the rest (default parameters) and ranks the movies each user
        has not rated, through the same cold-start path the service uses. Collaborative models
        should beat popularity, and popularity should beat random."""
        from prefshift_datasets.errors import DatasetNotFoundError
        from prefshift_recommender.algorithms import SCORERS
        from prefshift_recommender.config import Settings
        from prefshift_recommender.evaluation import EvaluationRow, evaluate_dataset

        cutoffs = _ks(k)
        names = [name.strip() for name in implementations.split(",") if name.strip()]
        unknown = [name for name in names if name not in SCORERS]
        if unknown or not names:
            raise typer.BadParameter(
                f"unknown implementation(s) {', '.join(unknown) or '(none)'}; "
                f"offline evaluation covers: {', '.join(SCORERS)}"
            )
        settings = Settings()

        def report(row: EvaluationRow) -> None:
            errors.print(f"[dim]{row.name}: trained in {row.fit_seconds:.1f}s, evaluated[/dim]")

        try:
            rows = evaluate_dataset(
                settings.resolved_database_url,
                dataset,
                implementations=names,
                ks=cutoffs,
                seed=seed,
                test_fraction=test_fraction,
                relevant_rating=relevant_rating,
                on_result=report,
            )
        except DatasetNotFoundError as exc:
            errors.print(f"[red]{exc}[/red] (see `prefshift data list`)")
            raise typer.Exit(code=1) from None

        users = rows[0].metrics.users if rows else 0
        table = Table(
            title=f"{dataset}: per-user hold-out {test_fraction:.0%}, seed {seed}, "
            f"{users} users, relevant: rated ≥ {relevant_rating:g}"
        )
        table.add_column("recommender")
        for cutoff in cutoffs:
            table.add_column(f"recall@{cutoff}", justify="right")
        for cutoff in cutoffs:
            table.add_column(f"nDCG@{cutoff}", justify="right")
        table.add_column("train s", justify="right")
        for row in sorted(rows, key=lambda r: -r.metrics.ndcg[cutoffs[0]]):
            table.add_row(
                row.name,
                *(f"{row.metrics.recall[c]:.4f}" for c in cutoffs),
                *(f"{row.metrics.ndcg[c]:.4f}" for c in cutoffs),
                f"{row.fit_seconds:.1f}",
            )
        console.print(table)
