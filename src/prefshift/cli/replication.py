"""``prefshift experiment import-seed-results``: the seed study's released runs as an experiment.

The import itself is ``prefshift_orchestrator.replication``, called through
:func:`prefshift.seed_release.import_release` (the title resolver the LLM recommender uses: the
dataset's titles, then tmdb-proxy's search when the proxy answers); this command prints what was
matched and what was not.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from prefshift_common.logging import configure_logging
from prefshift_common.settings import CommonSettings

if TYPE_CHECKING:
    from prefshift_orchestrator.replication.importer import ImportSummary

console = Console()
errors = Console(stderr=True)


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "–"


def print_summary(summary: ImportSummary, *, used_proxy: bool) -> None:
    created = sum(1 for user in summary.users if user.created)
    verb = "imported" if summary.created else "already imported"
    console.print(
        f"experiment {summary.experiment_id} ({summary.name}, {summary.dataset}): {verb} — "
        f"{len(summary.users)} users, {created} runs written, "
        f"{len(summary.users) - created} unchanged"
    )
    console.print(
        f"titles: {summary.titles_resolved:,} of {summary.titles:,} distinct titles resolved "
        "to TMDB ids (dataset titles"
        + (", then tmdb-proxy search)" if used_proxy else "; tmdb-proxy not reachable)")
    )
    table = Table(title="Matched and unmatched, per arm (all users)", box=box.SIMPLE)
    for column in ("arm", "pages", "empty", "shown", "rated", "re-rated", "lists", "appr"):
        table.add_column(column, justify="left" if column == "arm" else "right", no_wrap=True)
    appraisal = summary.appraisal_all()
    for arm, counts in summary.arm_totals().items():
        mean = appraisal.get(arm)
        table.add_row(
            arm,
            str(counts.pages),
            str(counts.empty_pages),
            _share(counts.titles - counts.unresolved_titles, counts.titles),
            _share(counts.ratings - counts.unmatched_ratings, counts.ratings),
            _share(counts.test_echoes - counts.unmatched_test, counts.test_echoes),
            str(counts.test_pages),
            "–" if mean is None else f"{mean:.2f}",
        )
    console.print(table)
    baseline_unmatched = sum(user.baseline_unmatched for user in summary.users)
    console.print(f"baseline: {baseline_unmatched} echoed test titles matched no test movie")
    seen = sum(user.seen_test for user in summary.users)
    users_seen = sum(1 for user in summary.users if user.seen_test)
    console.print(
        f"{seen} test movies were also persona movies ({users_seen} users); fidelity is given "
        "on all test movies and without them (fidelity_unseen)."
    )
    console.print(
        "shown: shown titles resolved to a TMDB id (dataset titles or tmdb-proxy); the others "
        "are kept in run_pages.recommender_info and the recorded arm cannot show them. rated: "
        "the persona's ratings of recommendations tied to a movie. re-rated: echoed test "
        "titles matched to a test movie; lists: test re-ratings (one per page). appr: mean "
        "rating of every rated recommendation (mean of users; the stored appraisal counts the "
        "tied ones). Counts per user and arm: --summary-csv."
    )


def import_seed_results(
    path: Path = typer.Argument(..., help="The released folder (user_<ID>/ folders)."),
    dataset: str = typer.Option("seed-cohort", help="The imported dataset of the study's users."),
    name: str | None = typer.Option(None, help="Name of the experiment."),
    tmdb_proxy: str | None = typer.Option(
        None, help="tmdb-proxy URL for titles the dataset lacks (PREFSHIFT_TMDB_PROXY_URL)."
    ),
    summary_csv: Path | None = typer.Option(
        None, help="Write the per-user, per-arm matching counts to this CSV file."
    ),
) -> None:
    """Import the seed study's released runs as one experiment with one completed run per user
    (arms llm, llm-persuasive, study-svd, random; no control). Idempotent; a malformed file is
    refused, naming it, before anything is written."""
    from prefshift import migrate
    from prefshift.seed_release import import_release
    from prefshift_common.errors import ServiceError
    from prefshift_datasets.errors import DatasetError
    from prefshift_orchestrator.replication.importer import summary_rows
    from prefshift_orchestrator.replication.released import MalformedRelease

    # Each dropped title is logged at INFO by the resolver; the summary counts them instead.
    configure_logging("WARNING")
    migrate.upgrade(CommonSettings().resolved_database_url)
    try:
        summary, used_proxy = asyncio.run(
            import_release(path, dataset, name, tmdb_proxy, console=errors)
        )
    except MalformedRelease as error:
        errors.print(f"[red]malformed release[/]: {error}", highlight=False, soft_wrap=True)
        errors.print("nothing was imported")
        raise typer.Exit(1) from error
    except ServiceError as error:
        errors.print(f"[red]error[/]: {error.detail}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from error
    except DatasetError as error:
        errors.print(f"[red]error[/]: {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from error
    print_summary(summary, used_proxy=used_proxy)
    if summary_csv is not None:
        rows = summary_rows(summary)
        with summary_csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["user_id"])
            writer.writeheader()
            writer.writerows(rows)


def register(experiment_app: typer.Typer) -> None:
    """Add ``import-seed-results`` to ``prefshift experiment``."""
    experiment_app.command("import-seed-results")(import_seed_results)
