"""``prefshift up``: migrate, then run the four services on loopback until Ctrl-C."""

from __future__ import annotations

import signal
import time

import typer
from rich.console import Console

from prefshift import migrate
from prefshift.stack import Stack
from prefshift_common.settings import CommonSettings

console = Console(stderr=True)


def up(
    log_level: str = typer.Option("warning", help="uvicorn log level of the services."),
) -> None:
    """Migrate the database, start recommender, simulator, tmdb-proxy and orchestrator on
    loopback (ports from PREFSHIFT_*_URL), and stop them all on Ctrl-C."""
    settings = CommonSettings()
    migrate.upgrade(settings.resolved_database_url)
    stack = Stack(settings)
    stack.start(log_level=log_level)
    try:
        stack.wait_ready()
        for service in stack.services:
            console.print(f"[green]✓[/] {service:<13} {stack.url(service)}  (docs: /docs)")
        console.print("Ctrl-C stops all services.")
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        while all(p.poll() is None for p in stack.processes.values()):
            time.sleep(0.5)
        dead = [s for s, p in stack.processes.items() if p.poll() is not None]
        console.print(f"[red]stopped[/]: {', '.join(dead)} exited; stopping the others")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        stack.stop()


def register(app: typer.Typer) -> None:
    app.command()(up)
