"""``prefshift worker``: orchestrator workers without the API, beside one orchestrator on the
same database (``docker compose up --scale worker=N``, the Kubernetes workers Deployment)."""

from __future__ import annotations

import typer


def worker(
    host: str = typer.Option(
        "127.0.0.1", help="Address of the health endpoints (/healthz, /readyz)."
    ),
    port: int = typer.Option(
        0, min=0, max=65535, help="Port of the health endpoints (0: any free port)."
    ),
    workers: int | None = typer.Option(
        None,
        min=1,
        max=256,
        help="Runs executed at once (default PREFSHIFT_ORCHESTRATOR_WORKERS).",
    ),
    log_level: str = typer.Option("info", help="uvicorn's log level."),
) -> None:
    """Claim queued runs from the database (PREFSHIFT_DATABASE_URL) and execute them, as the
    orchestrator's own workers do, until SIGTERM or Ctrl-C hands the runs it holds back to the
    queue. It serves no API: submit runs and experiments through an orchestrator."""
    from prefshift_common.app import serve
    from prefshift_orchestrator.config import Settings
    from prefshift_orchestrator.main import create_worker_app

    overrides = {} if workers is None else {"orchestrator_workers": workers}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if settings.orchestrator_workers == 0:
        typer.echo("error: PREFSHIFT_ORCHESTRATOR_WORKERS=0: give --workers N", err=True)
        raise typer.Exit(2)
    serve(
        create_worker_app(settings),
        url=f"http://{host}:{port}",
        argv=["--host", host, "--port", str(port), "--log-level", log_level],
    )


def register(app: typer.Typer) -> None:
    app.command()(worker)
