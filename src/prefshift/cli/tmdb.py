"""``prefshift tmdb prefetch`` and ``prefshift data import-tmdb``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from prefshift_common.http import create_http_client
from prefshift_common.settings import CommonSettings

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)

#: Ids per batch: the proxy's default fetch budget of one request, so each batch is fetched.
PREFETCH_BATCH = 20


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def import_tmdb(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="TMDB-shaped JSON lines."
    ),
    tmdb_5000: Path | None = typer.Option(
        None,
        "--tmdb-5000",
        exists=True,
        dir_okay=False,
        readable=True,
        help="A TMDB 5000 movies file (tmdb_5000_movies.csv): its keywords and the TMDB fields "
        "the records lack are added to the records of its movies.",
    ),
) -> None:
    """Import TMDB-shaped records (one JSON object per line, as TMDB's `GET /3/movie/{id}`
    answers) as tmdb-proxy's offline source. Idempotent: re-importing replaces the same ids."""
    from prefshift import migrate
    from prefshift_tmdb_proxy.importer import import_tmdb_jsonl

    settings = CommonSettings()
    # like `data import`, this can be the first command on a new machine: migrate first
    migrate.upgrade(settings.resolved_database_url)
    with file.open("rb") as handle:
        total = sum(1 for line in handle if line.strip())
    with _progress() as progress:
        task = progress.add_task("importing", total=total)
        summary = import_tmdb_jsonl(
            settings.resolved_database_url,
            file,
            on_progress=lambda done: progress.update(task, completed=done),
            tmdb_5000=tmdb_5000,
        )
        progress.update(task, completed=total)
    console.print(f"imported {summary.imported} records, skipped {summary.skipped}")
    for problem in summary.problems:
        console.print(f"  [yellow]skipped[/] {problem}")


async def _dataset_tmdb_ids(database_url: str, dataset: str, users: list[int]) -> list[int]:
    from prefshift_common.db import create_async_db_engine, create_session_factory
    from prefshift_datasets import repository as datasets_repository
    from prefshift_tmdb_proxy import repository as proxy_repository

    engine = create_async_db_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            info = await datasets_repository.find_dataset(session, dataset)
            if info is None:
                raise typer.BadParameter(f"no dataset named {dataset!r} has been imported")
            if not users:
                return await proxy_repository.dataset_tmdb_ids(session, info.id)
            ids: set[int] = set()
            for user_id in users:
                ratings = await datasets_repository.user_ratings(session, info.id, user_id)
                if not ratings:
                    console.print(f"[yellow]user {user_id} has no ratings in {dataset}[/]")
                ids.update(r.tmdb_id for r in ratings if r.tmdb_id is not None)
            return sorted(ids)
    finally:
        await engine.dispose()


async def _prefetch(url: str, settings: CommonSettings, ids: list[int], parallel: int) -> None:
    batches = [ids[i : i + PREFETCH_BATCH] for i in range(0, len(ids), PREFETCH_BATCH)]
    found = missing = not_fetched = 0
    failures: list[str] = []
    queue: asyncio.Queue[list[int]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)
    timeout = httpx.Timeout(connect=5.0, read=600.0, write=10.0, pool=600.0)
    async with create_http_client(url, timeout=timeout, api_token=settings.api_token) as client:
        with _progress() as progress:
            task = progress.add_task("prefetching", total=len(ids))

            async def worker() -> None:
                nonlocal found, missing, not_fetched
                while not queue.empty():
                    batch = queue.get_nowait()
                    try:
                        response = await client.post("/movies/batch", json={"tmdb_ids": batch})
                    except httpx.HTTPError as exc:
                        failures.append(f"{len(batch)} ids: {type(exc).__name__}")
                    else:
                        if response.status_code == 200:
                            body = response.json()
                            copies = len(body.get("stale", [])) + len(body.get("fallback", []))
                            found += len(body["movies"]) - copies
                            missing += len(body["missing"])
                            not_fetched += copies + len(body.get("deferred", []))
                        else:
                            failures.append(f"{len(batch)} ids: HTTP {response.status_code}")
                    progress.advance(task, len(batch))

            await asyncio.gather(*(worker() for _ in range(parallel)))
    console.print(f"cached {found} movies; TMDB does not know {missing}")
    if not_fetched:
        console.print(
            f"{not_fetched} movies were not fetched in time (TMDB slow or rate-limiting): the "
            "proxy refreshes them in the background; re-run to check"
        )
    if failures:
        for failure in failures[:10]:
            console.print(f"  [red]failed[/] {failure}")
        console.print("re-run to fetch the rest (what was fetched is cached)")
        raise typer.Exit(1)


@app.command()
def prefetch(
    dataset: str = typer.Option(..., "--dataset", help="An imported dataset's name."),
    users: str | None = typer.Option(
        None, "--users", help="Comma-separated user ids; default: every movie of the dataset."
    ),
    proxy_url: str | None = typer.Option(
        None, "--url", help="tmdb-proxy URL; default PREFSHIFT_TMDB_PROXY_URL."
    ),
    parallel: int = typer.Option(4, min=1, max=32, help="Batches in flight at once."),
) -> None:
    """Warm the tmdb-proxy cache with the movies of a dataset (or of some of its users),
    through the running proxy's `POST /movies/batch`, with a progress bar."""
    settings = CommonSettings()
    try:
        user_ids = [int(u) for u in users.split(",") if u.strip()] if users else []
    except ValueError as exc:
        raise typer.BadParameter("--users takes comma-separated integers") from exc
    ids = asyncio.run(_dataset_tmdb_ids(settings.resolved_database_url, dataset, user_ids))
    console.print(
        f"{len(ids)} TMDB ids in {dataset}" + (f" for {len(user_ids)} users" if user_ids else "")
    )
    if ids:
        asyncio.run(_prefetch(proxy_url or settings.tmdb_proxy_url, settings, ids, parallel))


def register_data_commands(data_app: typer.Typer) -> None:
    """Add ``prefshift data import-tmdb`` to the ``data`` group."""
    data_app.command("import-tmdb")(import_tmdb)
