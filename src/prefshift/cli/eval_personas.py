"""`prefshift eval personas`: fidelity of the personas' baseline ratings to the real ones."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def _cell(value: float, digits: int = 3) -> str:
    return "—" if math.isnan(value) else f"{value:.{digits}f}"


async def _run(
    *,
    dataset: str,
    backend: Literal["embedded", "llm"],
    users: int | None,
    seed: int,
    concurrency: int,
    persona_model: str | None,
    noise_free: bool,
    reference_dataset: str | None = None,
) -> object:
    from prefshift_common.db import create_async_db_engine, create_session_factory
    from prefshift_simulator.config import Settings
    from prefshift_simulator.evaluation import evaluate_personas, read_dataset
    from prefshift_simulator.llm.backend import LlmBackend, create_llm_client

    settings = Settings()
    database_url = settings.resolved_database_url
    snapshot = await asyncio.to_thread(read_dataset, database_url, dataset)
    reference = (
        await asyncio.to_thread(read_dataset, database_url, reference_dataset)
        if reference_dataset is not None and reference_dataset != dataset
        else None
    )
    engine = create_async_db_engine(database_url)
    client = create_llm_client(settings, create_session_factory(engine))
    if backend == "llm" and not client.configured:
        raise typer.BadParameter("--backend llm needs OPENAI_BASE_URL or OPENAI_API_KEY")
    llm = LlmBackend(client, settings) if backend == "llm" else None
    n_users = snapshot.ratings["user_id"].nunique()
    total = min(n_users, users) if users else n_users
    try:
        with Progress(
            TextColumn("[bold]personas"), BarColumn(), MofNCompleteColumn(), console=errors
        ) as progress:
            task = progress.add_task("personas", total=total)
            return await evaluate_personas(
                snapshot,
                settings=settings,
                backend=backend,
                llm=llm,
                max_users=users,
                seed=seed,
                concurrency=concurrency,
                persona_model=persona_model,
                noise_free=noise_free,
                on_user=lambda _user: progress.advance(task),
                reference=reference,
            )
    finally:
        await client.aclose()
        await engine.dispose()


def register(app: typer.Typer) -> None:
    """Add this module's commands to `prefshift eval`."""

    @app.command("personas")
    def personas(
        dataset: Annotated[str, typer.Option(help="An imported dataset, e.g. seed-cohort.")],
        backend: Annotated[
            str, typer.Option(help="Persona backend: embedded or llm.")
        ] = "embedded",
        users: Annotated[
            int | None, typer.Option(min=1, help="Only the first N users (by id).")
        ] = None,
        seed: Annotated[int, typer.Option(min=0, help="Seed of the persona/test split.")] = 0,
        concurrency: Annotated[
            int, typer.Option(min=1, max=64, help="Personas rated at once (llm).")
        ] = 4,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not a table.")] = False,
        persona_model: Annotated[
            str | None,
            typer.Option(help="Embedded persona parameter set (default: the simulator's)."),
        ] = None,
        noise_free: Annotated[
            bool,
            typer.Option(
                help="Rate without response noise (the persona's expected rating, rounded)."
            ),
        ] = False,
        reference_dataset: Annotated[
            str | None,
            typer.Option(
                help="Take the collaborative statistics from this dataset, the population the "
                "dataset's users were drawn from (e.g. ml-32m for seed-cohort). It must hold "
                "their ratings under the same user ids, so that each persona's own are left out."
            ),
        ] = None,
    ) -> None:
        """Each user's disjoint, genre-stratified split (40 persona, 30 test movies); the
        persona's baseline ratings of the test movies against the real ones (bias, MAE, RMSE,
        Pearson r), next to the per-user mean and a user + movie bias baseline."""
        from prefshift_datasets.errors import DatasetNotFoundError
        from prefshift_simulator.embedded.population import ReferencePopulationError
        from prefshift_simulator.evaluation import PersonaEvaluation

        if backend not in ("embedded", "llm"):
            raise typer.BadParameter("--backend must be embedded or llm")
        try:
            report = asyncio.run(
                _run(
                    dataset=dataset,
                    backend="llm" if backend == "llm" else "embedded",
                    users=users,
                    seed=seed,
                    concurrency=concurrency,
                    persona_model=persona_model,
                    noise_free=noise_free,
                    reference_dataset=reference_dataset,
                )
            )
        except DatasetNotFoundError as exc:
            errors.print(f"[red]{exc}[/red] (import it with `prefshift data import`)")
            raise typer.Exit(1) from exc
        except ReferencePopulationError as exc:
            errors.print(f"[red]--reference-dataset: {exc}[/red]")
            raise typer.Exit(1) from exc
        assert isinstance(report, PersonaEvaluation)
        metrics = report.metrics()
        if as_json:
            payload = {
                "dataset": report.dataset,
                "backend": report.backend,
                "seed": report.seed,
                "population": report.population,
                "users": len(report.users),
                "skipped_users": len(report.skipped),
                "metrics": {name: vars_of(m) for name, m in metrics.items()},
                "by_archetype": {name: vars_of(m) for name, m in report.by_archetype().items()},
            }
            console.print_json(json.dumps(payload))
            return
        table = Table(
            title=f"Persona fidelity on {report.dataset}: {len(report.users)} users, "
            f"30 held-out movies each (seed {report.seed}; collaborative statistics of "
            f"{report.population})"
        )
        for column in ("predictor", "n", "bias", "MAE", "RMSE", "Pearson r"):
            table.add_column(column, justify="left" if column == "predictor" else "right")
        for name, m in metrics.items():
            table.add_row(
                name, str(m.n), _cell(m.bias), _cell(m.mae), _cell(m.rmse), _cell(m.pearson)
            )
        for name, m in report.by_archetype().items():
            table.add_row(
                f"  persona, {name}",
                str(m.n),
                _cell(m.bias),
                _cell(m.mae),
                _cell(m.rmse),
                _cell(m.pearson),
            )
        console.print(table)
        if report.skipped:
            errors.print(f"{len(report.skipped)} users with fewer than 70 ratings were skipped")


def vars_of(metrics: object) -> dict[str, float | None]:
    from dataclasses import asdict, is_dataclass

    assert is_dataclass(metrics) and not isinstance(metrics, type)
    return {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in asdict(metrics).items()
    }
