"""``prefshift up``: migrate, then run the four services and the console on loopback until
Ctrl-C."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import FrameType

import typer
from rich.console import Console

from prefshift.cli import simulate
from prefshift.stack import PortInUse, Stack
from prefshift_common.settings import CommonSettings
from prefshift_datasets.errors import DatasetError

console = Console(stderr=True)


def up(
    log_level: str = typer.Option("warning", help="uvicorn log level of the services."),
) -> None:
    """Migrate the database, start recommender, simulator, tmdb-proxy, orchestrator and the
    console on loopback (ports from PREFSHIFT_*_URL), and stop them all on Ctrl-C."""
    # SIGTERM (a supervisor's stop) is Ctrl-C's KeyboardInterrupt, wherever this stands
    # (importing, migrating, starting, serving): the services are stopped and waited for either
    # way. Only the first one: under `uv run` a terminal's Ctrl-C arrives twice (the process
    # group's SIGINT, and uv forwarding it), and the second must not cut the stop short.
    interrupt = _interrupt_once()
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    settings = CommonSettings()
    stack = Stack(settings)
    try:
        console.print("migrating the database…")
        from prefshift import migrate

        migrate.upgrade(settings.resolved_database_url)
        console.print("starting the services…")
        stack.start(log_level=log_level)
        stack.wait_ready()
        for service in stack.services:
            if service != "console":
                console.print(f"[green]✓[/] {service:<13} {stack.url(service)}  (docs: /docs)")
        console.print(f"[green]✓[/] {'console':<13} [bold]{stack.url('console')}[/]  (open it)")
        console.print("Ctrl-C stops all services.")
        while all(p.poll() is None for p in stack.processes.values()):
            time.sleep(0.5)
        dead = [s for s, p in stack.processes.items() if p.poll() is not None]
        console.print(f"[red]stopped[/]: {', '.join(dead)} exited; stopping the others")
        raise typer.Exit(1)
    except (RuntimeError, TimeoutError) as exc:  # a port in use, a service that cannot start
        console.print(f"[red]error[/]: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        stack.stop()


def _interrupt_once() -> Callable[[int, FrameType | None], None]:
    """A signal handler that raises KeyboardInterrupt the first time and ignores the rest."""
    interrupted = False

    def handler(_signum: int, _frame: FrameType | None) -> None:
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            raise KeyboardInterrupt

    return handler


def _pick_user(database_url: str, dataset_id: int, min_ratings: int) -> int:
    """The smallest user id with at least ``min_ratings`` ratings (reproducible default)."""
    from sqlalchemy import select

    from prefshift_common.db import sync_connection
    from prefshift_datasets.models import DatasetUser

    with sync_connection(database_url) as connection:
        user_id = connection.execute(
            select(DatasetUser.user_id)
            .where(DatasetUser.dataset_id == dataset_id, DatasetUser.n_ratings >= min_ratings)
            .order_by(DatasetUser.user_id)
            .limit(1)
        ).scalar_one_or_none()
    if user_id is None:
        console.print(f"[red]no user has {min_ratings} ratings in this dataset[/]")
        raise typer.Exit(1)
    return int(user_id)


def demo(
    dataset: str = typer.Option(
        "ml-latest-small",
        help="An imported dataset's name, a MovieLens folder or zip, or a GroupLens name "
        "(downloaded when online).",
    ),
    user: int | None = typer.Option(None, help="User id; default: the first with 100 ratings."),
    seed: int = typer.Option(0, help="Seed of the run."),
    pages: int | None = typer.Option(None, help="Pages per arm (default 4)."),
) -> None:
    """The main job, end to end on the embedded default: migrate, import the dataset, start the
    four services, simulate one user under every available arm and print the shift table."""
    # As in `up`: Ctrl-C or SIGTERM once, wherever the demo stands, stops the services and waits
    # for them (the second SIGINT that `uv run` forwards must not cut that short); exit 130.
    interrupt = _interrupt_once()
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        _demo(dataset, user, seed, pages)
    except KeyboardInterrupt:
        console.print("interrupted: the services are stopped")
        raise typer.Exit(130) from None


def _demo(dataset: str, user: int | None, seed: int, pages: int | None) -> None:
    from prefshift import migrate
    from prefshift_datasets.resolve import resolve_dataset

    settings = CommonSettings()
    console.print(f"database: {settings.resolved_database_url}")
    migrate.upgrade(settings.resolved_database_url)
    try:
        resolved = resolve_dataset(dataset, progress=None)
    except DatasetError as exc:
        console.print(f"[red]dataset[/]: {exc}", highlight=False)
        console.print(
            "Give the demo a local copy (a MovieLens folder or zip): "
            "make demo DATASET=path/to/ml-latest-small "
            "(or: uv run prefshift demo --dataset path/to/ml-latest-small)",
            highlight=False,
        )
        raise typer.Exit(1) from exc
    console.print(f"dataset: {resolved.name} ({resolved.how})")
    user_id = user or _pick_user(settings.resolved_database_url, resolved.dataset_id, 100)
    stack = Stack(settings, env={"PREFSHIFT_LOG_LEVEL": "WARNING"})
    console.print("starting the four services and the console…")
    try:
        stack.start()
    except PortInUse as exc:
        console.print(f"[red]error[/]: {exc}", highlight=False)
        raise typer.Exit(1) from exc
    try:
        stack.wait_ready()
        console.print(f"services up; simulating user {user_id} of {resolved.name}")
        simulate.run_simulation(
            user_id,
            dataset=resolved.name,
            seed=seed,
            pages=pages,
            wait=True,
            url=settings.orchestrator_url,
        )
        console.print(
            f"The run is in the console: [bold]make up[/] (or [bold]uv run prefshift up[/]), then "
            f"{settings.console_url}/runs"
        )
    finally:
        stack.stop()


def register(app: typer.Typer) -> None:
    app.command()(up)
    app.command()(demo)
