"""Importing the seed study's released runs as an experiment, with the title resolver the LLM
recommender uses: ``prefshift experiment import-seed-results`` and ``prefshift validity``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from prefshift_common.db import create_async_db_engine, create_session_factory
from prefshift_common.settings import CommonSettings

if TYPE_CHECKING:
    from prefshift_orchestrator.replication.importer import ImportSummary, Step


class CatalogResolver:
    """The LLM recommender's resolver (dataset titles, then tmdb-proxy) as TMDB ids."""

    def __init__(self, database_url: str, dataset: str, proxy: httpx.AsyncClient | None) -> None:
        from prefshift_common.db import sync_connection
        from prefshift_common.tmdb_client import TmdbProxyClient
        from prefshift_recommender.catalog import Catalog
        from prefshift_recommender.repository import DatasetRef, dataset_id, load_movie_rows
        from prefshift_recommender.resolver import TitleResolver

        with sync_connection(database_url) as connection:
            identifier = dataset_id(connection, dataset)
            rows = load_movie_rows(connection, identifier)
        catalog = Catalog.from_rows(DatasetRef(id=identifier, name=dataset, fingerprint=""), rows)
        self._resolver = TitleResolver(catalog, TmdbProxyClient(proxy) if proxy else None)

    async def resolve(self, title: str, year: int | None) -> int | None:
        found = await self._resolver.resolve(title, year)
        return None if found is None else found.tmdb_id


async def proxy_client(url: str) -> httpx.AsyncClient | None:
    """A client of the tmdb-proxy at ``url`` when it answers ``/healthz``, else None."""
    client = httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10.0, connect=2.0))
    try:
        response = await client.get("/healthz")
        if response.status_code == 200:
            return client
    except httpx.HTTPError:
        pass
    await client.aclose()
    return None


class ProgressBar:
    """The import's progress, one bar per stage."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def __call__(self, step: Step) -> None:
        task = self._tasks.get(step.stage)
        if task is None:
            task = self._progress.add_task(step.stage, total=step.total)
            self._tasks[step.stage] = task
        self._progress.update(task, completed=step.done, total=step.total)


async def import_release(
    path: Path, dataset: str, name: str | None, proxy_url: str | None, *, console: Console
) -> tuple[ImportSummary, bool]:
    """Import the seed study's released runs under ``path`` (``user_<ID>/`` folders) into the
    database of the settings as one experiment of ``dataset``'s users (idempotent), showing
    the progress on ``console``; with whether the tmdb-proxy answered (for titles the dataset
    lacks)."""
    from prefshift_orchestrator.replication.importer import import_seed_results

    settings = CommonSettings()
    url = settings.resolved_database_url
    proxy = await proxy_client(proxy_url or settings.tmdb_proxy_url)
    engine = create_async_db_engine(url)
    try:
        resolver = await asyncio.to_thread(CatalogResolver, url, dataset, proxy)
        with Progress(
            TextColumn("[bold]{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            summary = await import_seed_results(
                create_session_factory(engine),
                path,
                dataset=dataset,
                name=name,
                resolver=resolver,
                progress=ProgressBar(progress),
            )
    finally:
        await engine.dispose()
        if proxy is not None:
            await proxy.aclose()
    return summary, proxy is not None
