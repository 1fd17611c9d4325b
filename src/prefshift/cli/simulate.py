"""``prefshift simulate`` and ``prefshift experiment``: clients of the orchestrator's API."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from prefshift_common.settings import CommonSettings

experiment_app = typer.Typer(no_args_is_help=True)
console = Console()
errors = Console(stderr=True)
FINISHED = ("completed", "failed", "cancelled")
PLOTS = ("shift_by_page", "genre_shift", "fidelity")


def _client(url: str | None) -> httpx.Client:
    settings = CommonSettings()
    headers = {}
    if settings.api_token is not None:
        headers["authorization"] = f"Bearer {settings.api_token.get_secret_value()}"
    return httpx.Client(base_url=url or settings.orchestrator_url, headers=headers, timeout=120)


#: tmdb-proxy's counters of movies it did not serve fresh from TMDB (``GET /cache/stats``).
PROXY_COPIES = ("stale_served", "fallback_served", "deferred")


def _proxy_copies() -> dict[str, int] | None:
    """tmdb-proxy's counts of movies served stale, from fallbacks or left out; None when the
    proxy does not answer (the report then says nothing about it)."""
    settings = CommonSettings()
    headers = {}
    if settings.api_token is not None:
        headers["authorization"] = f"Bearer {settings.api_token.get_secret_value()}"
    try:
        response = httpx.get(f"{settings.tmdb_proxy_url}/cache/stats", headers=headers, timeout=5)
        stats = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(stats, dict):
        return None
    return {name: int(stats.get(name, 0)) for name in PROXY_COPIES}


def report_proxy_copies(before: Mapping[str, int] | None, after: Mapping[str, int] | None) -> None:
    """Say how many movies tmdb-proxy served stale or from fallbacks while the run ran."""
    if before is None or after is None:
        return
    stale, fallback, deferred = (after[name] - before[name] for name in PROXY_COPIES)
    if stale or fallback or deferred:
        console.print(
            f"tmdb-proxy during the run: {stale} movies served stale, {fallback} from fallbacks "
            f"(imported records or the dataset's titles), {deferred} left out — TMDB was slow "
            "or rate-limiting"
        )
    else:
        console.print("tmdb-proxy during the run: every movie fresh from its cache or TMDB")


def _checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        errors.print(f"[red]error {response.status_code}[/]: {detail}")
        raise typer.Exit(1)
    return response.json()


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        return _checked(client.request(method, path, **kwargs))
    except httpx.TransportError as exc:
        errors.print(
            f"[red]cannot reach the orchestrator at {client.base_url}[/] ({exc}); "
            "start the services with `prefshift up`"
        )
        raise typer.Exit(1) from exc


PERSONA_MODEL_HELP = (
    "The embedded persona's parameter set (prefshift persona list; default: the simulator's)."
)


def _protocol(
    *,
    dataset: str | None,
    seed: int | None,
    pages: int | None,
    page_size: int | None,
    test_size: int | None,
    persona_size: int | None,
    arms: Sequence[Any] | None,
    backend: str | None,
    persona_model: str | None = None,
    design: str | None = None,
    delta: float | None = None,
) -> dict[str, Any]:
    values = {
        "dataset": dataset,
        "seed": seed,
        "pages": pages,
        "page_size": page_size,
        "test_size": test_size,
        "persona_size": persona_size,
        "arms": list(arms) if arms else None,
        "backend": backend,
        "persona_model": persona_model,
        "design": design,
        "delta": delta,
    }
    return {key: value for key, value in values.items() if value is not None}


def arm_specs(arms: Sequence[str]) -> list[Any]:
    """``--arm`` values: a name, or a spec as JSON (``{"name": "als", "shown_prediction":
    {"offset": 1}}``)."""
    specs: list[Any] = []
    for arm in arms:
        if arm.lstrip().startswith("{"):
            try:
                specs.append(json.loads(arm))
            except json.JSONDecodeError as error:
                errors.print(f"[red]--arm {arm!r} is not valid JSON: {error}[/]")
                raise typer.Exit(2) from None
        else:
            specs.append(arm)
    return specs


def _fmt(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "–"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def print_shift_table(shift: Mapping[str, Any], console: Console = console) -> None:
    """Print a run's shift (the body of ``GET /runs/{id}/shift``) as a table: per arm the shift
    Δ after each page, then at the last page the net shift against control, |Δ|, the share of
    changed test ratings, Kendall τ and the appraisal of the recommendations."""
    pages: list[Mapping[str, Any]] = list(shift.get("pages", []))
    numbers = sorted({int(page["page"]) for page in pages})
    table = Table(title="Preference shift of the test movies against the baseline")
    table.add_column("arm", style="bold", no_wrap=True)
    for number in numbers:
        table.add_column(f"Δ p{number}", justify="right", no_wrap=True)
    for name in ("net Δ", "|Δ|", "chg", "τ", "appr"):
        table.add_column(name, justify="right", no_wrap=True)
    for arm in shift.get("arms", []):
        by_page = {int(p["page"]): p for p in pages if p["arm"] == arm["arm"]}
        last = by_page.get(arm.get("last_page") or -1, {})
        share = last.get("share_changed")
        table.add_row(
            str(arm["arm"]),
            *(_fmt(by_page.get(n, {}).get("shift")) for n in numbers),
            _fmt(arm.get("net_shift")),
            _fmt(last.get("mean_abs_shift"), signed=False),
            "–" if share is None else f"{share:.0%}",
            _fmt(last.get("kendall_tau"), signed=False),
            _fmt(arm.get("appraisal"), signed=False),
        )
    console.print(table)
    for arm in shift.get("arms", []):
        if arm.get("n_shown"):
            console.print(
                f"{arm['arm']}: shift on the shown movies (beside the prediction − without it, "
                f"{arm['n_shown']} movies): {_fmt(arm.get('shown_shift'))}"
            )
    fidelity = shift.get("fidelity") or {}
    if fidelity.get("n"):
        console.print(
            f"Baseline fidelity to the real ratings ({fidelity['n']} test movies): "
            f"bias {_fmt(fidelity.get('bias'))}, MAE {_fmt(fidelity.get('mae'), False)}, "
            f"RMSE {_fmt(fidelity.get('rmse'), False)}, "
            f"Pearson r {_fmt(fidelity.get('pearson_r'), False)}"
        )
    console.print(
        "chg: share of test ratings that changed; τ: Kendall τ against the baseline; "
        "appr: mean rating the persona gave the arm's recommendations."
    )
    control = shift.get("control_arm")
    if control:
        console.print(f"net Δ: shift minus the shift of '{control}' (no recommendations).")


def wait_for_run(client: httpx.Client, run_id: int, *, poll: float = 0.5) -> dict[str, Any]:
    """Show a progress bar until the run finishes; returns the finished run."""
    with Progress(
        TextColumn("run {task.fields[run_id]} [{task.fields[status]}]"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[pages]}"),
        TimeElapsedColumn(),
        console=errors,
    ) as progress:
        task = progress.add_task("run", total=1.0, run_id=run_id, status="queued", pages="")
        while True:
            run: dict[str, Any] = _call(client, "GET", f"/runs/{run_id}")
            progress.update(
                task,
                completed=run["progress"],
                status=run["status"],
                pages=f"{run['pages_done']}/{run['pages_total']} pages",
            )
            if run["status"] in FINISHED:
                return run
            time.sleep(poll)


def _report_run_end(run: Mapping[str, Any]) -> None:
    for message in run.get("messages") or []:
        errors.print(f"[yellow]note[/]: {message}")
    if run["status"] != "completed":
        error = run.get("error") or {}
        errors.print(f"[red]run {run['run_id']} {run['status']}[/]: {error.get('detail', '')}")
        raise typer.Exit(1)


def run_simulation(
    user_id: int,
    *,
    dataset: str | None = None,
    seed: int | None = None,
    pages: int | None = None,
    page_size: int | None = None,
    test_size: int | None = None,
    persona_size: int | None = None,
    arms: Sequence[Any] | None = None,
    backend: str | None = None,
    persona_model: str | None = None,
    force: bool = False,
    wait: bool = False,
    output_json: bool = False,
    url: str | None = None,
) -> None:
    """What ``prefshift simulate`` (and ``prefshift demo``) do, with plain arguments: every
    command that simulates one user calls this, never another command's typer function."""
    body = _protocol(
        dataset=dataset,
        seed=seed,
        pages=pages,
        page_size=page_size,
        test_size=test_size,
        persona_size=persona_size,
        arms=arms,
        backend=backend,
        persona_model=persona_model,
    )
    with _client(url) as client:
        copies_before = _proxy_copies() if wait else None
        run = _call(client, "POST", f"/simulate/{user_id}", json=body, params={"force": force})
        if not wait:
            if output_json:
                console.print_json(json.dumps(run))
            else:
                console.print(f"run {run['run_id']}: {run['status']} ({run['links']['self']})")
            return
        run = wait_for_run(client, run["run_id"])
        copies_after = _proxy_copies()
        _report_run_end(run)
        shift = _call(client, "GET", f"/runs/{run['run_id']}/shift")
    if output_json:
        console.print_json(json.dumps(shift))
    else:
        print_shift_table(shift)
        report_proxy_copies(copies_before, copies_after)


def simulate(
    user_id: int = typer.Argument(..., help="User id in the dataset."),
    dataset: str | None = typer.Option(None, help="Dataset; default: the only one imported."),
    seed: int | None = typer.Option(None, help="Seed of the run (default 0)."),
    pages: int | None = typer.Option(None, help="Pages per arm (default 4)."),
    page_size: int | None = typer.Option(None, help="Movies per page (default 30)."),
    test_size: int | None = typer.Option(None, help="Test movies (default 30)."),
    persona_size: int | None = typer.Option(None, help="Persona movies (default 40)."),
    arm: list[str] | None = typer.Option(
        None, "--arm", help="An arm (repeat): a name or a spec as JSON; default: all."
    ),
    backend: str | None = typer.Option(None, help="Simulator backend: llm or embedded."),
    persona_model: str | None = typer.Option(None, help=PERSONA_MODEL_HELP),
    force: bool = typer.Option(False, help="Start a new run even if an identical one exists."),
    wait: bool = typer.Option(False, help="Wait with a progress bar, then print the shift."),
    output_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    url: str | None = typer.Option(None, help="Orchestrator URL (PREFSHIFT_ORCHESTRATOR_URL)."),
) -> None:
    """Simulate one user under every arm and measure how far the persona's tastes moved."""
    run_simulation(
        user_id,
        dataset=dataset,
        seed=seed,
        pages=pages,
        page_size=page_size,
        test_size=test_size,
        persona_size=persona_size,
        arms=arm_specs(arm) if arm else None,
        backend=backend,
        persona_model=persona_model,
        force=force,
        wait=wait,
        output_json=output_json,
        url=url,
    )


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to the top-level app."""
    app.command()(simulate)


# --- experiments ------------------------------------------------------------------------------


@experiment_app.command("run")
def experiment_run(
    users: str | None = typer.Option(None, help="Comma-separated user ids."),
    seed_study: int | None = typer.Option(
        None, help="N users by the seed study's rule (400–2,500 ratings, 60/25/15 archetypes)."
    ),
    sample: int | None = typer.Option(None, help="N users sampled among those with enough."),
    cohort_seed: int = typer.Option(0, help="Seed of the cohort sampling."),
    name: str | None = typer.Option(None, help="A name for the experiment."),
    dataset: str | None = typer.Option(None, help="Dataset; default: the only one imported."),
    seed: int | None = typer.Option(None, help="Seed of the runs (default 0)."),
    pages: int | None = typer.Option(None),
    page_size: int | None = typer.Option(None),
    test_size: int | None = typer.Option(None),
    persona_size: int | None = typer.Option(None),
    arm: list[str] | None = typer.Option(
        None,
        "--arm",
        help='An arm (repeat): a name, or a spec as JSON, e.g. \'{"name": "als", '
        '"shown_prediction": {"offset": 1}}\'; default: all.',
    ),
    backend: str | None = typer.Option(None),
    persona_model: str | None = typer.Option(None, help=PERSONA_MODEL_HELP),
    design: str | None = typer.Option(
        None,
        help="shift (default: the protocol of pages), rerate (re-rating beside shown "
        "predictions: none, accurate, +delta, -delta) or retest (re-rating, nothing shown).",
    ),
    delta: float | None = typer.Option(
        None, help="rerate: stars a perturbed prediction is moved by (default 1)."
    ),
    recorded: int | None = typer.Option(
        None,
        help="Replay experiment N: its users, each shown its recorded pages (arms: N's, or "
        "--arm names of N's arms) plus control.",
    ),
    wait: bool = typer.Option(False, help="Wait with a progress bar."),
    url: str | None = typer.Option(None, help="Orchestrator URL."),
) -> None:
    """Start an experiment over a cohort: --users, --seed-study N or --sample N; or replay an
    experiment's recorded pages to another persona: --recorded N (e.g. the imported study)."""
    chosen = [option for option in (users, seed_study, sample) if option is not None]
    if len(chosen) != 1 and not (recorded is not None and not chosen):
        errors.print("[red]give exactly one of --users, --seed-study, --sample (or --recorded)[/]")
        raise typer.Exit(2)
    cohort: dict[str, Any]
    arms: list[Any] | None = arm_specs(arm) if arm else None
    if recorded is not None:
        with _client(url) as client:
            source = _call(client, "GET", f"/experiments/{recorded}")
        replayed = arms or [a for a in source["params"].get("arms") or [] if isinstance(a, str)]
        arms = [
            *({"name": a, "recorded": {"experiment": recorded, "arm": a}} for a in replayed),
            "control",
        ]
        dataset = dataset or source["dataset"]
        if users is None:
            users = ",".join(str(run["user_id"]) for run in source["runs"])
    if users is not None:
        ids = [int(part) for part in users.replace(" ", "").split(",") if part]
        cohort = {"kind": "users", "user_ids": ids}
    elif seed_study is not None:
        cohort = {"kind": "seed-study", "size": seed_study, "seed": cohort_seed}
    else:
        cohort = {"kind": "sample", "size": sample, "seed": cohort_seed}
    body = _protocol(
        dataset=dataset,
        seed=seed,
        pages=pages,
        page_size=page_size,
        test_size=test_size,
        persona_size=persona_size,
        arms=arms,
        backend=backend,
        persona_model=persona_model,
        design=design,
        delta=delta,
    ) | {"cohort": cohort}
    if name:
        body["name"] = name
    with _client(url) as client:
        experiment = _call(client, "POST", "/experiments", json=body)
        for message in experiment.get("messages") or []:
            errors.print(f"[yellow]note[/]: {message}")
        console.print(
            f"experiment {experiment['experiment_id']}: {experiment['progress']['runs']} runs"
        )
        if wait:
            experiment = _wait_for_experiment(client, experiment["experiment_id"])
            _print_experiment(experiment)
            if experiment["status"] != "completed":  # failed, or completed_with_failures
                raise typer.Exit(1)


def _wait_for_experiment(client: httpx.Client, experiment_id: int) -> dict[str, Any]:
    with Progress(
        TextColumn("experiment {task.fields[id]}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=errors,
    ) as progress:
        task = progress.add_task("experiment", total=1.0, id=experiment_id, counts="")
        while True:
            # the cheap poll (a count of the runs by status), then the whole experiment once
            state: dict[str, Any] = _call(client, "GET", f"/experiments/{experiment_id}/progress")
            counts = state["progress"]
            progress.update(
                task,
                completed=counts["progress"],
                counts=f"{counts['completed']} done, {counts['running']} running, "
                f"{counts['queued']} queued, {counts['failed']} failed",
            )
            if state["status"] != "running":
                experiment: dict[str, Any] = _call(client, "GET", f"/experiments/{experiment_id}")
                return experiment
            time.sleep(1.0)


def _print_experiment(experiment: Mapping[str, Any]) -> None:
    counts = experiment["progress"]
    console.print(
        f"experiment {experiment['experiment_id']} ({experiment['dataset']}): "
        f"{experiment['status']} — {counts['completed']}/{counts['runs']} completed, "
        f"{counts['running']} running, {counts['queued']} queued, {counts['failed']} failed, "
        f"{counts['cancelled']} cancelled ({counts['progress']:.0%})"
    )
    for reason, n in (counts.get("failure_reasons") or {}).items():
        console.print(f"  {n} run(s) failed: {reason}")


@experiment_app.command("status")
def experiment_status(
    experiment_id: int = typer.Argument(...),
    url: str | None = typer.Option(None, help="Orchestrator URL."),
) -> None:
    """An experiment's progress."""
    with _client(url) as client:
        experiment = _call(client, "GET", f"/experiments/{experiment_id}")
    _print_experiment(experiment)
    for message in experiment.get("messages") or []:
        console.print(f"note: {message}")


def print_statistics(report: Mapping[str, Any], console: Console = console) -> None:
    """The report's net shift (or shift) per arm and page over all users, with intervals."""
    statistics = report["statistics"]
    metric = "net_shift" if statistics.get("control_arm") else "shift"
    cells = [
        cell
        for cell in statistics["cells"]
        if cell["metric"] == metric and cell["archetype"] is None and cell["genre"] == ""
    ]
    table = Table(title=f"{metric} across {statistics['n_users']} users (95% bootstrap CI)")
    for column in ("arm", "page", "n", "mean", "95% CI", "p vs 0", "p vs control"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for cell in sorted(cells, key=lambda c: (c["arm"], c["page"])):
        # three decimals: a shift of a few thousandths can be significant (arm and control
        # share their noise) and must not print as +0.00 [+0.00, +0.00]
        interval = (
            "–" if cell["ci_low"] is None else f"[{cell['ci_low']:+.3f}, {cell['ci_high']:+.3f}]"
        )
        table.add_row(
            cell["arm"],
            str(cell["page"]),
            str(cell["n"]),
            "–" if cell["mean"] is None else f"{cell['mean']:+.3f}",
            interval,
            "–" if cell["p_vs_zero"] is None else f"{cell['p_vs_zero']:.3g}",
            "–" if cell["p_vs_control"] is None else f"{cell['p_vs_control']:.3g}",
        )
    console.print(table)
    for power in statistics.get("power", []):
        console.print(
            f"page {power['page']}: smallest net shift detectable with 80% power (5%, "
            f"two-sided) from the control arm's spread (sd {power['control_sd']:.3f}, "
            f"n {power['n']}): ±{power['min_detectable_net_shift']:.3f}"
        )


#: The report's per-page measurements as the CLI prints them: (metric, header, as a percentage).
MEASUREMENTS = (
    ("shift", "Δ", False),
    ("mean_abs_shift", "|Δ|", False),
    ("share_changed", "chg", True),
    ("kendall_tau", "τ", False),
    ("appraisal", "appr", False),
)


def print_measurements(report: Mapping[str, Any], console: Console = console) -> None:
    """Mean of every per-page measurement across users, by arm and page, for all users and for
    each archetype (the shift's interval and tests are in ``print_statistics``); the report's
    notes; the baseline's fidelity on all test movies and on those the persona never saw."""
    statistics = report["statistics"]
    cells = {
        (c["metric"], c["arm"], c["page"], c["archetype"]): c
        for c in statistics["cells"]
        if c["genre"] == ""
    }
    keys = sorted({(arm, page) for (_, arm, page, _) in cells if page > 0})
    for archetype in [None, *statistics.get("archetypes", [])]:
        users = "all users" if archetype is None else f"archetype {archetype}"
        table = Table(title=f"Mean per user, {users}")
        table.add_column("arm", no_wrap=True)
        table.add_column("page", justify="right")
        for _, header, _ in MEASUREMENTS:
            table.add_column(header, justify="right", no_wrap=True)
        table.add_column("n", justify="right")
        for arm, page in keys:
            row = [cells.get((metric, arm, page, archetype)) for metric, _, _ in MEASUREMENTS]
            if not any(row):
                continue
            values = [
                "–"
                if cell is None or cell["mean"] is None
                else (f"{cell['mean']:.0%}" if percent else f"{cell['mean']:+.2f}")
                for cell, (_, _, percent) in zip(row, MEASUREMENTS, strict=True)
            ]
            n = max((cell["n"] for cell in row if cell), default=0)
            table.add_row(arm, str(page), *values, str(n))
        console.print(table)
    for note in report.get("notes") or []:
        console.print(f"note: {note}")
    for key, label in (("fidelity", "all test movies"), ("fidelity_unseen", "never seen")):
        fidelity = report.get(key) or {}
        if fidelity.get("n"):
            console.print(
                f"Baseline fidelity, {label} ({fidelity['n']} pairs): "
                f"bias {_fmt(fidelity.get('bias'))}, MAE {_fmt(fidelity.get('mae'), False)}, "
                f"RMSE {_fmt(fidelity.get('rmse'), False)}, "
                f"Pearson r {_fmt(fidelity.get('pearson_r'), False)}"
            )


@experiment_app.command("report")
def experiment_report(
    experiment_id: int = typer.Argument(...),
    out: Path = typer.Option(Path("report"), help="Folder for the report files."),
    url: str | None = typer.Option(None, help="Orchestrator URL."),
) -> None:
    """Write the report (report.json, statistics.csv, users.csv, plots as PNG and SVG; for the
    rerate and retest designs rerating.csv and rerating_ratings.csv) to a folder and print the
    shift across users, or the re-rating measures."""
    out.mkdir(parents=True, exist_ok=True)
    base = f"/experiments/{experiment_id}/report"
    with _client(url) as client:
        report = _call(client, "GET", base)
        (out / "report.json").write_text(json.dumps(report, indent=2))
        tables = ["statistics", "users"]
        if report.get("rerating"):
            tables += ["rerating", "rerating_ratings"]
        for table in tables:
            response = client.get(base, params={"format": "csv", "table": table})
            _checked_bytes(response)
            (out / f"{table}.csv").write_text(response.text)
        for plot in PLOTS:
            for fmt in ("png", "svg"):
                response = client.get(base, params={"format": fmt, "plot": plot})
                _checked_bytes(response)
                (out / f"{plot}.{fmt}").write_bytes(response.content)
    if report.get("rerating"):
        print_rerating(report["rerating"])
    else:
        print_statistics(report)
        print_shown_predictions(report)
        print_measurements(report)
    console.print(f"report written to {out}/ (report.json, *.csv, *.png, *.svg)")


def _interval(low: float | None, high: float | None, fmt: str = "+.3f") -> str:
    return "–" if low is None or high is None else f"[{low:{fmt}}, {high:{fmt}}]"


def _value(value: float | None, fmt: str = "+.3f") -> str:
    return "–" if value is None else f"{value:{fmt}}"


def print_rerating(rerating: Mapping[str, Any], console: Console = console) -> None:
    """A rerate or retest experiment's measures with their intervals (users resampled)."""
    design = rerating["design"]
    title = f"{design}: session 2 against session 1, {rerating['n_users']} users"
    if rerating.get("delta") is not None:
        title += f", δ = {rerating['delta']:g}"
    table = Table(title=title + " (95% bootstrap CI)")
    for column in ("condition", "n", "mean change", "95% CI", "toward", "95% CI", "away", "same"):
        table.add_column(column, justify="left" if column == "condition" else "right")
    cells = [*rerating["conditions"], *([rerating["perturbed"]] if rerating["perturbed"] else [])]
    for cell in cells:
        change = cell["mean_change"]
        table.add_row(
            cell["condition"],
            str(change["n"]),
            _value(change["value"]),
            _interval(change["ci_low"], change["ci_high"]),
            _value(cell["toward"], ".0%"),
            _interval(cell["toward_ci_low"], cell["toward_ci_high"], ".0%"),
            _value(cell["away"], ".0%"),
            _value(cell["unchanged"], ".0%"),
        )
    console.print(table)
    named = [("anchoring slope (stars per star)", rerating.get("slope"))]
    named.append(("test-retest RMSE", rerating["retest_rmse"]))
    named.extend(
        (f"test-retest RMSE, session {i}", e)
        for i, e in enumerate(rerating.get("retest_rmse_by_session") or [], start=2)
    )
    for label, estimate in named:
        if estimate:
            console.print(
                f"{label}: {_value(estimate['value'], '.3f')} "
                f"{_interval(estimate['ci_low'], estimate['ci_high'], '.3f')} "
                f"({estimate['n']} re-ratings, {estimate['n_users']} users)"
            )


def print_shown_predictions(report: Mapping[str, Any], console: Console = console) -> None:
    """Shown-prediction arms: the shift on the shown movies (every page pooled)."""
    rows = report.get("shown_predictions") or []
    if not rows:
        return
    table = Table(title="Shift on the shown movies: beside the prediction − without it")
    for column in ("arm", "offset", "users", "movies", "mean", "95% CI"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for row in rows:
        table.add_row(
            row["arm"],
            _value(row["offset"], "+g"),
            str(row["n_users"]),
            str(row["n"]),
            _value(row["mean"]),
            _interval(row["ci_low"], row["ci_high"]),
        )
    console.print(table)


def _checked_bytes(response: httpx.Response) -> None:
    if response.status_code >= 400:
        _checked(response)
