"""``prefshift data``: import, download and list datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from prefshift_datasets.config import DatasetSettings
from prefshift_datasets.download import GROUPLENS_DATASETS, download_dataset
from prefshift_datasets.errors import DatasetError

if TYPE_CHECKING:
    from prefshift_datasets.importer import ImportProgress, ImportResult
    from prefshift_datasets.repository import DatasetInfo

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)


class _AmountColumn(ProgressColumn):
    """Bytes for byte-counted stages (download, ratings), "done/total" for files and rows."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn()
        self._count = MofNCompleteColumn()

    def render(self, task: Task) -> RenderableType:
        if task.fields.get("unit", "bytes") == "bytes":
            return self._bytes.render(task)
        return self._count.render(task)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<14}"),
        BarColumn(),
        _AmountColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


class _ImportBar:
    """Shows an import's stages on one rich progress display."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, event: ImportProgress) -> None:
        if event.stage == "done":
            return
        task = self._tasks.get(event.stage)
        if task is None:
            task = self._progress.add_task(event.stage, total=event.total, unit=event.unit)
            self._tasks[event.stage] = task
        self._progress.update(task, completed=event.done, total=event.total)


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def _summary(result: ImportResult) -> None:
    if not result.created:
        verb = "already imported, unchanged"
    elif result.replaced:
        verb = "replaced"
    else:
        verb = "imported"
    typer.echo(
        f"{result.name}: {verb} — {result.n_ratings:,} ratings, {result.n_movies:,} movies, "
        f"{result.n_users:,} users ({result.seconds:.1f} s)"
    )


def _import(path: Path, name: str | None, replace: bool, settings: DatasetSettings) -> None:
    from prefshift import migrate
    from prefshift_datasets.importer import import_dataset

    # importing is the first thing a new user does: bring the database to head first
    migrate.upgrade(settings.resolved_database_url)
    with _progress() as progress:
        result = import_dataset(
            settings.resolved_database_url,
            path,
            name=name,
            progress=_ImportBar(progress),
            replace=replace,
        )
    _summary(result)


@app.command("import")
def import_command(
    path: Path = typer.Argument(
        ..., help="A MovieLens-format folder or zip, or a folder of the seed study's files."
    ),
    name: str | None = typer.Option(
        None, "--name", "-n", help="Dataset name (default: the folder name or zip stem)."
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Replace a dataset of the same name with different content."
    ),
) -> None:
    """Import a dataset into the configured database (PREFSHIFT_DATABASE_URL).

    Importing the same content again changes nothing; a malformed file is refused with its
    file and line, and the database is left as it was.
    """
    try:
        _import(path, name, replace, DatasetSettings())
    except DatasetError as error:
        raise _fail(error) from error


@app.command()
def download(
    dataset: str = typer.Argument(..., help=f"One of: {', '.join(GROUPLENS_DATASETS)}."),
    import_: bool = typer.Option(
        True, "--import/--no-import", help="Import the dataset after downloading it."
    ),
) -> None:
    """Download a MovieLens dataset from GroupLens to $PREFSHIFT_DATA_DIR/datasets/, check its
    MD5, and import it. MovieLens is not redistributed with prefshift: this fetches it."""
    settings = DatasetSettings()
    try:
        with _progress() as progress:
            task = progress.add_task("download", total=None)
            fetched = download_dataset(
                dataset,
                settings.datasets_dir,
                base_url=settings.datasets_download_url,
                timeout=settings.datasets_download_timeout,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        note = {
            "verified": "MD5 verified",
            "cached": "already downloaded",
            "unavailable": "no MD5 published: checksum not verified",
        }[fetched.checksum]
        typer.echo(f"{fetched.path} ({note}, md5 {fetched.md5})")
        if import_:
            _import(fetched.path, dataset, False, settings)
    except DatasetError as error:
        raise _fail(error) from error


@app.command("list")
def list_command() -> None:
    """List the imported datasets with their counts."""
    from sqlalchemy.exc import DBAPIError

    from prefshift_datasets.repository import get_all_datasets

    settings = DatasetSettings()
    try:
        datasets: list[DatasetInfo] = get_all_datasets(settings.resolved_database_url)
    except DBAPIError as error:
        console.print(
            f"[red]error:[/] cannot read datasets ({type(error.orig).__name__}); "
            "is the database migrated? run: prefshift db upgrade",
            highlight=False,
        )
        raise typer.Exit(code=1) from error
    if not datasets:
        typer.echo("no datasets imported (try: prefshift data import PATH)")
        return
    table = Table(title="datasets")
    table.add_column("name", no_wrap=True)
    for column in ("users", "movies", "ratings"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("TMDB", no_wrap=True)
    table.add_column("imported", no_wrap=True)
    table.add_column("source", overflow="fold")
    for dataset in datasets:
        table.add_row(
            dataset.name,
            f"{dataset.n_users:,}",
            f"{dataset.n_movies:,}",
            f"{dataset.n_ratings:,}",
            "yes" if dataset.has_tmdb_metadata else "no",
            dataset.imported_at.strftime("%Y-%m-%d") if dataset.imported_at else "",
            dataset.source,
        )
    Console().print(table)
