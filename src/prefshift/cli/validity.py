"""``prefshift validity``: every persona set held against people, in one table.

From a fresh database it imports what it needs (the seed cohort, the seed study's released runs
as an experiment, for the study's own split), simulates the ``retest`` and ``rerate`` designs
in process for each persona set (:mod:`prefshift_simulator.calibration.human`) and prints,
for every measure, the human figure (paper, where it was read) and each set's value with its
95% bootstrap interval and whether it lies in the human range. docs/validity.md shows the
full run and what it means.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer
from rich.console import Console

from prefshift_common.logging import configure_logging
from prefshift_common.settings import CommonSettings

if TYPE_CHECKING:
    from pydantic import SecretStr

    from prefshift_simulator.calibration.human import DesignData, DesignUser, FloatArray

console = Console()
errors = Console(stderr=True)

SHARED_DATA = Path("../shared/data")


def validity(
    seed_cohort: Annotated[
        Path,
        typer.Option(help="The seed cohort's folder (MovieLens layout), imported if needed."),
    ] = SHARED_DATA / "seed-cohort",
    seed_results: Annotated[
        Path,
        typer.Option(help="The seed study's released runs (user_<ID>/ folders): its split."),
    ] = SHARED_DATA / "seed-results",
    users: Annotated[
        int, typer.Option(min=0, help="Use the first N released users (0: all 116).")
    ] = 0,
    persona_model: Annotated[
        list[str] | None,
        typer.Option(
            help="Parameter set to hold against people (repeatable; default: the "
            "default set and human)."
        ),
    ] = None,
    delta: Annotated[
        float, typer.Option(min=0.5, max=2.0, help="The rerate design's perturbation, in stars.")
    ] = 1.0,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the conditions and noise.")] = 0,
    resamples: Annotated[
        int, typer.Option(min=50, max=20_000, help="Bootstrap resamples of users.")
    ] = 1000,
    llm: Annotated[
        bool,
        typer.Option(
            help="Also hold the LLM persona against people: both designs rated by the running "
            "simulator's llm backend (PREFSHIFT_SIMULATOR_URL), when it has an LLM; else the "
            "table says it was not run."
        ),
    ] = True,
) -> None:
    """Hold persona sets against the published human figures: import the seed cohort and the
    seed study's split if needed, simulate the retest and rerate designs for each set, and
    print one table (human figure, each set with its interval, in or OUT of the human range)."""
    from prefshift import migrate
    from prefshift.cli.persona import human_table
    from prefshift.recorded_runs import RecordedInputsError, load_inputs
    from prefshift.seed_release import import_release
    from prefshift_datasets.errors import DatasetError
    from prefshift_datasets.resolve import resolve_dataset
    from prefshift_simulator.calibration.fidelity import unseen_pairs
    from prefshift_simulator.calibration.human import (
        design_users,
        measure_with_intervals,
        simulate,
        static_scores,
    )
    from prefshift_simulator.config import Settings
    from prefshift_simulator.embedded.model import EmbeddedPersonaModel
    from prefshift_simulator.embedded.persona_models import DEFAULT_PERSONA_MODEL
    from prefshift_simulator.main import persona_models

    started = time.perf_counter()
    simulator_url = CommonSettings().simulator_url
    chosen = persona_model or [DEFAULT_PERSONA_MODEL, "human"]
    models, _ = persona_models(Settings())
    unknown = [name for name in chosen if name not in models]
    if unknown:
        raise typer.BadParameter(f"--persona-model: no parameter set {unknown} ({sorted(models)})")
    folders = sorted(p for p in seed_results.glob("user_*") if p.is_dir())
    if not folders:
        raise typer.BadParameter(f"--seed-results: no user_<ID>/ folders in {seed_results}")
    if users:
        folders = folders[:users]
    configure_logging("WARNING")  # the importer logs each title it drops at INFO
    url = CommonSettings().resolved_database_url
    migrate.upgrade(url)
    try:  # the cohort under its folder's name when imported, else imported from the folder
        dataset = resolve_dataset(seed_cohort.name)
    except DatasetError:
        dataset = None
    try:
        dataset = dataset or resolve_dataset(str(seed_cohort))
    except DatasetError as exc:
        errors.print(f"[red]--seed-cohort[/]: {exc}")
        raise typer.Exit(1) from exc
    name = "seed-study-released" if not users else f"seed-study-released-first-{users}"
    with tempfile.TemporaryDirectory() as folder:
        chosen_release = Path(folder)
        for extra in seed_results.glob("*.json"):
            (chosen_release / extra.name).symlink_to(extra.resolve())
        for user_folder in folders:
            (chosen_release / user_folder.name).symlink_to(user_folder.resolve())
        summary, _ = asyncio.run(
            import_release(chosen_release, dataset.name, name, None, console=errors)
        )
    errors.print(
        f"experiment {summary.experiment_id} ({summary.name}): "
        f"{'imported' if summary.created else 'already imported'}, {len(folders)} users"
    )
    try:
        loaded = load_inputs(url, summary.experiment_id)
    except RecordedInputsError as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    design = design_users(unseen_pairs(loaded.experiment.users))
    columns = {}
    for model_name in chosen:
        params = models[model_name].params
        statics = static_scores(
            design, model=EmbeddedPersonaModel(params), facts=loaded.facts, stats=loaded.stats
        )
        data = simulate(design, statics, params, seed=seed, delta=delta)
        columns[model_name] = measure_with_intervals(data, resamples=resamples, seed=seed)
    llm_note = "LLM persona: not run (--no-llm)."
    if llm:
        try:
            llm_note, llm_data = asyncio.run(
                _llm_design(
                    simulator_url,
                    design,
                    dataset.name,
                    seed=seed,
                    delta=delta,
                    api_token=CommonSettings().api_token,
                )
            )
        except httpx.HTTPError as exc:
            errors.print(f"[red]the LLM persona's ratings failed[/red]: {exc!r}")
            raise typer.Exit(1) from exc
        if llm_data is not None:
            columns["llm"] = measure_with_intervals(llm_data, resamples=resamples, seed=seed)
    console.print(
        f"{len(design)} users, {sum(len(u.items) for u in design)} held-out movies of "
        f"{dataset.name} (the seed study's split); rerate δ = {delta:g} stars, seed {seed}; "
        f"95% bootstrap intervals over users ({resamples} resamples); "
        f"{time.perf_counter() - started:.0f} s"
    )
    console.print(human_table("Held against people", columns))
    console.print(
        "in/OUT: inside the human range or not; no mark: no human figure read for the measure."
    )
    console.print(llm_note)


async def _llm_design(
    url: str,
    users: list[DesignUser],
    dataset: str,
    *,
    seed: int,
    delta: float,
    api_token: SecretStr | None = None,
) -> tuple[str, DesignData | None]:
    """Both designs rated by the simulator's LLM persona over HTTP (``POST /ratings``, backend
    ``llm``): per user its first rating (occasion 0), its retest (occasion 1, nothing shown)
    and its re-rating beside the condition's prediction (occasion 1). With what the table says
    of it; no data when no simulator with an LLM answers (then it says so). With the API token
    (``PREFSHIFT_API_TOKEN``) when the services ask for one.

    Each call has its own seed (the orchestrator's ``call_seed`` of the seed, the user and the
    call): the LLM client answers an identical call (messages and seed) from its recording, so
    a retest asked with the first rating's seed would get the first rating back."""
    import numpy as np

    from prefshift_common.contracts import BackendList, RatingsResponse
    from prefshift_common.http import create_http_client
    from prefshift_orchestrator.protocol import call_seed
    from prefshift_simulator.calibration.human import DesignData, conditions, shown_values

    timeout = httpx.Timeout(600.0, connect=3.0)
    async with create_http_client(url, timeout=timeout, api_token=api_token) as client:
        try:
            response = await client.get("/backends")
        except httpx.TransportError as exc:
            return f"LLM persona: not run (no simulator answers at {url}: {exc!r}).", None
        response.raise_for_status()  # one answers but refuses (401: no PREFSHIFT_API_TOKEN)
        backends = BackendList.model_validate(response.json()).backends
        llm = next((b for b in backends if b.name == "llm"), None)
        if llm is None or not llm.available:
            return f"LLM persona: not run (the simulator at {url} has no LLM configured).", None

        async def rate(
            user: DesignUser, call: str, occasion: int, shown: FloatArray | None
        ) -> FloatArray:
            body: dict[str, Any] = {
                "persona": {
                    "user_id": user.user_id,
                    "dataset": dataset,
                    "history": [{"tmdb_id": t, "rating": r} for t, r in user.history],
                },
                "items": user.items,
                "backend": "llm",
                "seed": call_seed(seed, "validity", user.user_id, call),
                "occasion": occasion,
            }
            if shown is not None:
                body["shown"] = [
                    {"tmdb_id": t, "stars": float(v)}
                    for t, v in zip(user.items, shown, strict=True)
                    if not math.isnan(v)
                ]
            answer = await client.post("/ratings", json=body)
            answer.raise_for_status()
            ratings = RatingsResponse.model_validate(answer.json()).ratings
            rated = {r.tmdb_id: r.rating for r in ratings}
            return np.array([rated.get(t, math.nan) for t in user.items], dtype=float)

        first, second, drawn, shown, rerated = [], [], [], [], []
        for user in users:
            condition = conditions(user, seed)
            values = shown_values(user, condition, delta)
            first.append(await rate(user, "first", 0, None))
            second.append(await rate(user, "retest", 1, None))
            rerated.append(await rate(user, "rerate", 1, values))
            drawn.append(condition)
            shown.append(values)
        data = DesignData([u.real for u in users], first, second, drawn, shown, rerated, delta)
        return f"LLM persona ({llm.model}): rated through the simulator at {url}.", data


def register(app: typer.Typer) -> None:
    app.command("validity")(validity)
