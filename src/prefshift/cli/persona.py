"""`prefshift persona`: the embedded persona's named parameter sets, and their calibration."""

from __future__ import annotations

import datetime as dt
import enum
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from prefshift.recorded_runs import RecordedInputs
    from prefshift_simulator.calibration.fit import Calibration
    from prefshift_simulator.calibration.human import Measured

app = typer.Typer(no_args_is_help=True)
console = Console()
errors = Console(stderr=True)

MOMENT_LABELS = {
    "shift": "shift",
    "abs_change": "|Δ|",
    "changed": "changed",
    "kendall_tau": "τ",
    "appraisal": "appraisal",
    "baseline_mean": "mean",
    "baseline_sd": "sd",
    "baseline_rmse": "RMSE vs real",
}


def _cell(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:+.3f}" if value < 0 else f"{value:.3f}"


def moments_table(calibration: Calibration, pages: set[int] | None = None) -> Table:
    """Recorded vs simulated moments, before and after the fit, side by side."""
    table = Table(title="recorded vs simulated (before → after the fit)")
    for column in ("arm", "page", "moment", "recorded", "± se", "before", "after"):
        table.add_column(column, justify="left" if column in ("arm", "moment") else "right")
    rows = zip(
        calibration.labels,
        calibration.recorded,
        calibration.standard_errors,
        calibration.before,
        calibration.after,
        strict=True,
    )
    for (arm, page, name), recorded, se, before, after in rows:
        if math.isnan(recorded) or (pages is not None and page not in pages and page != 0):
            continue
        table.add_row(
            arm,
            str(page),
            MOMENT_LABELS.get(name, name),
            _cell(recorded),
            f"{se:.3f}",
            _cell(before),
            _cell(after),
        )
    return table


def parameters_table(calibration: Calibration, start: dict[str, float]) -> Table:
    table = Table(title=f"parameters ({calibration.bootstrap} bootstrap resamples over users)")
    for column in ("parameter", "start", "estimate", "95% interval"):
        table.add_column(column, justify="left" if column == "parameter" else "right")
    for name, value in calibration.parameters.items():
        interval = calibration.intervals.get(name)
        fitted = name in calibration.fitted
        table.add_row(
            name,
            f"{start.get(name, math.nan):.4g}",
            f"{value:.4g}" if fitted else f"{value:.4g} (fixed)",
            f"{interval[0]:.4g} – {interval[1]:.4g}" if interval else "",
        )
    return table


def _load_recorded(
    database_url: str, experiment: int, *, reference: str | None = None
) -> RecordedInputs:
    """:func:`prefshift.recorded_runs.load_inputs`, exiting with its message when it cannot."""
    from prefshift.recorded_runs import RecordedInputsError, load_inputs

    try:
        loaded = load_inputs(database_url, experiment, reference=reference)
    except RecordedInputsError as exc:
        errors.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if loaded.note:
        errors.print(loaded.note)
    return loaded


class MovieSet(enum.StrEnum):
    """Which of an experiment's movies `persona fidelity` compares on."""

    test = "test"
    recommended = "recommended"


@app.command("list")
def list_models() -> None:
    """The named parameter sets (shipped, and PREFSHIFT_SIMULATOR_PERSONA_DIR's)."""
    from prefshift_simulator.config import Settings
    from prefshift_simulator.main import persona_models

    models, default = persona_models(Settings())
    table = Table(title="embedded persona parameter sets")
    for column in ("name", "default", "source", "estimator", "created"):
        table.add_column(column)
    for model in models.values():
        table.add_row(
            model.name,
            "yes" if model.name == default else "",
            model.source,
            model.estimator,
            model.created,
        )
    console.print(table)


@app.command("calibrate")
def calibrate(
    experiment: Annotated[int, typer.Option(help="Experiment whose recorded ratings to fit.")],
    name: Annotated[
        str | None, typer.Option(help="Name of the parameter set to save (default: exp-ID).")
    ] = None,
    start: Annotated[str, typer.Option(help="Parameter set to start from.")] = "literature",
    bootstrap: Annotated[int, typer.Option(min=0, max=500, help="Bootstrap resamples.")] = 20,
    replications: Annotated[
        int, typer.Option(min=1, max=16, help="Noise replications per replay.")
    ] = 2,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the search and bootstrap.")] = 0,
    generations: Annotated[
        int, typer.Option(min=1, max=200, help="Generations of the differential evolution.")
    ] = 15,
    output_dir: Annotated[
        Path | None,
        typer.Option(help="Where to save the set (default: PREFSHIFT_SIMULATOR_PERSONA_DIR)."),
    ] = None,
    pages: Annotated[
        str, typer.Option(help="Pages to show in the table, comma-separated (all: '').")
    ] = "1,4",
    fixed: Annotated[
        list[str] | None,
        typer.Option(help="A fitted parameter to keep at the start set's value (repeatable)."),
    ] = None,
    unmatched: Annotated[
        list[str] | None,
        typer.Option(help="A moment to report but give no weight, e.g. kendall_tau (repeatable)."),
    ] = None,
    fit_: Annotated[
        list[str] | None,
        typer.Option(
            "--fit",
            help="Fit this parameter too, beyond the default ones: spread (the ratings' spread "
            "around the persona's level; repeatable). 'human': instead of the recorded "
            "persona's moments, fit the per-occasion noise and the anchoring weight to the "
            "published human figures on the experiment's own split (docs/validity.md).",
        ),
    ] = None,
    retest_target: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="--fit human: the test-retest RMSE to fit (default: the middle of Amatriain et "
            "al.'s 0.557-0.8156).",
        ),
    ] = None,
    anchoring_slope: Annotated[
        float | None,
        typer.Option(
            help="--fit human: the anchoring slope (stars moved per star of perturbation) to "
            "fit the anchoring weight to (default: 0.277, SE 0.032, from Adomavicius et al., "
            "MIS Quarterly 2022, Table 2; docs/validity.md).",
        ),
    ] = None,
    anchoring_slope_se: Annotated[
        float | None, typer.Option(min=0.0, help="--fit human: the slope's standard error.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="PARAM=VALUE: start from the start set with this parameter changed, e.g. "
            "satiation_rate=0 (repeatable; a parameter not fitted keeps this value).",
        ),
    ] = None,
) -> None:
    """Fit the embedded persona's dynamics and noise to an experiment's recorded ratings by
    the method of simulated moments: its recorded pages are replayed through the embedded
    persona in process, and per arm and page the mean shift, |Δ|, share changed, Kendall τ
    and appraisal, plus the baseline's mean, spread and RMSE, are matched."""
    from prefshift_simulator.calibration.fit import DEFAULT_BOUNDS, OPTIONAL_BOUNDS
    from prefshift_simulator.calibration.fit import calibrate as fit
    from prefshift_simulator.calibration.moments import BASELINE_MOMENTS, PAGE_MOMENTS
    from prefshift_simulator.calibration.replay import prepare
    from prefshift_simulator.config import Settings
    from prefshift_simulator.embedded.model import EmbeddedPersonaModel
    from prefshift_simulator.embedded.persona_models import (
        PersonaModel,
        PersonaModelError,
        flat_parameters,
        save_persona_model,
        with_parameters,
    )
    from prefshift_simulator.main import persona_models

    settings = Settings()
    if "human" in (fit_ or ()):
        if set(fit_ or ()) != {"human"}:
            raise typer.BadParameter("--fit human fits on its own; give it alone")
        _calibrate_human(
            experiment,
            name=name or "human",
            start=start,
            overrides=_overrides(set_),
            bootstrap=bootstrap,
            seed=seed,
            output_dir=output_dir,
            retest_target=retest_target,
            slope=_slope(anchoring_slope, anchoring_slope_se),
        )
        return
    unknown = set(fixed or ()) - set(DEFAULT_BOUNDS)
    if unknown:
        raise typer.BadParameter(f"--fixed: not fitted anyway: {sorted(unknown)}")
    bounds = {k: v for k, v in DEFAULT_BOUNDS.items() if k not in set(fixed or ())}
    not_optional = set(fit_ or ()) - set(OPTIONAL_BOUNDS)
    if not_optional:
        raise typer.BadParameter(
            f"--fit: {sorted(not_optional)} is not one of {sorted(OPTIONAL_BOUNDS)} (the "
            f"default ones are fitted anyway: {sorted(DEFAULT_BOUNDS)})"
        )
    bounds.update({k: OPTIONAL_BOUNDS[k] for k in fit_ or ()})
    not_moments = set(unmatched or ()) - {*BASELINE_MOMENTS, *PAGE_MOMENTS}
    if not_moments:
        raise typer.BadParameter(
            f"--unmatched: no moment {sorted(not_moments)} ({[*BASELINE_MOMENTS, *PAGE_MOMENTS]})"
        )
    models, _ = persona_models(settings)
    if start not in models:
        raise typer.BadParameter(f"--start: no parameter set {start!r} ({sorted(models)})")
    base = models[start]
    overrides = _overrides(set_)
    try:
        start_params = with_parameters(base.params, overrides)
    except PersonaModelError as exc:
        raise typer.BadParameter(f"--set: {exc}") from exc
    directory = output_dir or settings.simulator_persona_dir
    if directory is None:
        raise typer.BadParameter("give --output-dir or set PREFSHIFT_SIMULATOR_PERSONA_DIR")
    name = name or f"exp-{experiment}"
    started = time.perf_counter()
    loaded = _load_recorded(settings.resolved_database_url, experiment)
    recorded, facts, stats = loaded.experiment, loaded.facts, loaded.stats
    errors.print(
        f"experiment {experiment} ({recorded.name or 'unnamed'}): {len(recorded.users)} users "
        f"on {recorded.dataset}; replaying with {start!r}"
    )
    prepared = prepare(
        recorded.users, model=EmbeddedPersonaModel(start_params), facts=facts, stats=stats
    )
    start_values = flat_parameters(start_params)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
    ) as progress:
        search = progress.add_task("search (generations)", total=generations)
        resamples = progress.add_task("bootstrap", total=bootstrap)

        def step(kind: str) -> None:
            progress.advance(search if kind == "search" else resamples)

        calibration = fit(
            prepared,
            start=start_values,
            bounds=bounds,
            bootstrap=bootstrap,
            replications=replications,
            seed=seed,
            max_generations=generations,
            unmatched=unmatched or (),
            on_step=step,
        )
    elapsed = time.perf_counter() - started
    shown_pages = {int(p) for p in pages.split(",") if p.strip()} or None
    console.print(moments_table(calibration, shown_pages))
    console.print(parameters_table(calibration, start_values))
    console.print(
        f"objective {calibration.objective_before:.1f} → {calibration.objective_after:.1f} "
        f"({calibration.evaluations} replays, {elapsed:.0f} s)"
    )
    fitted = PersonaModel(
        name=name,
        params=with_parameters(start_params, calibration.parameters),
        description=f"Calibrated on experiment {experiment} ({recorded.name or 'unnamed'}).",
        source=f"experiment {experiment} ({recorded.name or 'unnamed'}) on "
        f"{recorded.dataset}: {len(recorded.users)} users, arms {', '.join(prepared.arms)}",
        created=dt.date.today().isoformat(),
        estimator="method of simulated moments (diagonal bootstrap weights; differential "
        f"evolution + Nelder-Mead; {replications} noise replications, common random numbers), "
        f"percentile intervals from {calibration.bootstrap} bootstrap resamples of users; "
        f"started from {start!r}"
        + "".join(f" with {k}={v:g}" for k, v in sorted(overrides.items()))
        + (f"; also fitted: {', '.join(sorted(fit_))}" if fit_ else "")
        + (f"; kept at the start: {', '.join(sorted(fixed))}" if fixed else "")
        + (f"; not matched: {', '.join(sorted(unmatched))}" if unmatched else ""),
        intervals=calibration.intervals,
        extra={
            "fit": {
                "users": calibration.users,
                "objective_before": calibration.objective_before,
                "objective_after": calibration.objective_after,
                "moments": [
                    {
                        "arm": arm,
                        "page": page,
                        "moment": moment,
                        "recorded": None if math.isnan(rec) else round(float(rec), 4),
                        "simulated": None if math.isnan(sim) else round(float(sim), 4),
                    }
                    for (arm, page, moment), rec, sim in zip(
                        calibration.labels, calibration.recorded, calibration.after, strict=True
                    )
                ],
            }
        },
    )
    path = save_persona_model(fitted, directory)
    console.print(f"saved parameter set {name!r} to {path}")


def _slope(value: float | None, se: float | None) -> tuple[float, float]:
    """The anchoring slope figure to fit: the given one, else the published one."""
    from prefshift_simulator.calibration.human import ANCHORING_SLOPE

    if value is None:
        if se is not None:
            raise typer.BadParameter("--anchoring-slope-se needs --anchoring-slope")
        return ANCHORING_SLOPE
    return value, se or 0.0


def _overrides(items: list[str] | None) -> dict[str, float]:
    """``--set PARAM=VALUE`` options as a mapping."""
    overrides: dict[str, float] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not math.isfinite(number):
            raise typer.BadParameter(f"--set: expected PARAM=NUMBER, got {item!r}")
        overrides[key.strip()] = number
    return overrides


def human_table(
    title: str,
    columns: Mapping[str, Mapping[str, Measured]],
    *,
    measures: Sequence[str] | None = None,
) -> Table:
    """Every design measure: the human figure (paper, where), then each persona's value with
    its 95% interval and whether it lies in the human range."""
    from prefshift_simulator.calibration.human import HUMAN_FIGURES, MEASURES

    table = Table(title=title)
    table.add_column("measure", no_wrap=True)
    table.add_column("people (paper, where)")
    for name in columns:
        table.add_column(name, justify="right")
    for measure in measures or MEASURES:
        figure = HUMAN_FIGURES.get(measure)
        if figure is None:
            human = "—"
        elif figure.low is not None and figure.high is not None:
            human = f"{figure.low:.3f}–{figure.high:.3f} ({figure.cite})"
        else:
            human = f"toward; no figure read ({figure.cite})"
        cells = []
        for measured in columns.values():
            m = measured[measure]
            inside = figure.inside(m.value) if figure is not None else None
            mark = "" if inside is None else (" in" if inside else " OUT")
            cells.append(f"{m.value:+.3f} [{m.low:+.3f}, {m.high:+.3f}]{mark}")
        table.add_row(measure, human, *cells)
    return table


def _calibrate_human(
    experiment: int,
    *,
    name: str,
    start: str,
    overrides: dict[str, float],
    bootstrap: int,
    seed: int,
    output_dir: Path | None,
    retest_target: float | None,
    slope: tuple[float, float],
) -> None:
    """``persona calibrate --fit human``: fit σ_O (and w, given a slope figure) to the human
    figures on the experiment's own split, print the measures before and after, save the set."""
    from prefshift_simulator.calibration.fidelity import unseen_pairs
    from prefshift_simulator.calibration.human import (
        design_users,
        fit_human,
        measure_with_intervals,
        simulate,
        static_scores,
    )
    from prefshift_simulator.config import Settings
    from prefshift_simulator.embedded.model import EmbeddedPersonaModel
    from prefshift_simulator.embedded.persona_models import (
        PersonaModel,
        PersonaModelError,
        flat_parameters,
        save_persona_model,
        with_parameters,
    )
    from prefshift_simulator.main import persona_models

    settings = Settings()
    models, _ = persona_models(settings)
    if start not in models:
        raise typer.BadParameter(f"--start: no parameter set {start!r} ({sorted(models)})")
    try:
        start_params = with_parameters(models[start].params, overrides)
    except PersonaModelError as exc:
        raise typer.BadParameter(f"--set: {exc}") from exc
    directory = output_dir or settings.simulator_persona_dir
    if directory is None:
        raise typer.BadParameter("give --output-dir or set PREFSHIFT_SIMULATOR_PERSONA_DIR")
    started = time.perf_counter()
    loaded = _load_recorded(settings.resolved_database_url, experiment)
    users = design_users(unseen_pairs(loaded.experiment.users))
    if not users:
        errors.print(f"[red]experiment {experiment} has no held-out test movies[/red]")
        raise typer.Exit(1)
    errors.print(
        f"experiment {experiment}: {len(users)} users, "
        f"{sum(len(u.items) for u in users)} held-out movies; fitting from {start!r}"
    )
    statics = static_scores(
        users, model=EmbeddedPersonaModel(start_params), facts=loaded.facts, stats=loaded.stats
    )
    fit = fit_human(
        users,
        statics,
        start_params,
        retest_target=retest_target,
        slope_target=slope,
        bootstrap=bootstrap,
        seed=seed,
    )
    fitted_params = with_parameters(start_params, fit.parameters)
    before = measure_with_intervals(simulate(users, statics, start_params, seed=seed), seed=seed)
    after = measure_with_intervals(simulate(users, statics, fitted_params, seed=seed), seed=seed)
    console.print(
        human_table("the designs on the split: people, start, fitted", {start: before, name: after})
    )
    for note in fit.notes:
        console.print(f"- {note}")
    start_values = flat_parameters(start_params)
    for key, value in fit.parameters.items():
        low, high = fit.intervals[key]
        console.print(f"{key}: {start_values[key]:.4g} → {value:.4g} [{low:.4g}, {high:.4g}]")
    fitted = PersonaModel(
        name=name,
        params=fitted_params,
        description=f"Fitted to the published human figures on experiment {experiment}'s split "
        f"(from {start!r}).",
        source=f"experiment {experiment} ({loaded.experiment.name or 'unnamed'}) on "
        f"{loaded.experiment.dataset}: {len(users)} users' held-out test movies; the human "
        "figures of prefshift_simulator.calibration.human (docs/validity.md)",
        created=dt.date.today().isoformat(),
        estimator="bisection of the simulated design measures onto the human figures (common "
        f"random numbers, seed {seed}); "
        + "; ".join(fit.notes)
        + "".join(f"; start {k}={v:g}" for k, v in sorted(overrides.items())),
        intervals=fit.intervals,
        extra={
            "fit": {
                "users": len(users),
                "targets": fit.targets,
                "measures": {
                    m: {"value": round(v.value, 4), "interval": [round(v.low, 4), round(v.high, 4)]}
                    for m, v in after.items()
                },
            }
        },
    )
    path = save_persona_model(fitted, directory)
    console.print(f"saved parameter set {name!r} to {path} ({time.perf_counter() - started:.0f} s)")


@app.command("fidelity")
def fidelity(
    experiment: Annotated[int, typer.Option(help="Experiment whose recorded baseline to beat.")],
    persona_model: Annotated[
        list[str] | None,
        typer.Option(help="Parameter set to compare (repeatable; default: every set)."),
    ] = None,
    seeds: Annotated[
        str, typer.Option(help="Request seeds of the noisy ratings, comma-separated.")
    ] = "0,1",
    resamples: Annotated[
        int, typer.Option(min=100, max=20_000, help="Bootstrap resamples of users.")
    ] = 2000,
    reference_dataset: Annotated[
        str | None,
        typer.Option(
            help="Take the collaborative statistics (movie means, similarities) from this "
            "dataset, the population the experiment's users were drawn from (e.g. ml-32m for "
            "seed-cohort), instead of the experiment's own dataset. It must hold that dataset's "
            "ratings under the same user ids, so that each persona's own are left out."
        ),
    ] = None,
    movies: Annotated[
        MovieSet,
        typer.Option(
            help="test: the split's test movies the persona never saw; recommended: the "
            "movies the arms showed that the user really rated in the dataset (neither persona "
            "nor test movies), each with the recorded persona's rating on its first showing."
        ),
    ] = MovieSet.test,
) -> None:
    """The embedded persona's first ratings against the real ones on the experiment's own
    split — the test movies its recorded persona never saw among its persona movies, or the
    recommended movies the user really rated — beside the recorded persona's on the same
    pairs: RMSE, MAE, the mean error (rated − real), Pearson r and Pearson r within users (of
    each user's ratings around the user's own mean: the order of a user's movies), with 95%
    bootstrap intervals over users, and each one's paired difference from the recorded
    persona."""
    from prefshift_simulator.calibration.fidelity import (
        embedded_ratings,
        fidelity_table,
        recommended_pairs,
        unseen_pairs,
    )
    from prefshift_simulator.config import Settings
    from prefshift_simulator.embedded.model import EmbeddedPersonaModel, ModelParams
    from prefshift_simulator.embedded.persona_models import with_parameters
    from prefshift_simulator.main import persona_models

    settings = Settings()
    models, _ = persona_models(settings)
    chosen = persona_model or sorted(models)
    unknown = [name for name in chosen if name not in models]
    if unknown:
        raise typer.BadParameter(f"--persona-model: no parameter set {unknown} ({sorted(models)})")
    loaded = _load_recorded(settings.resolved_database_url, experiment, reference=reference_dataset)
    facts, stats = loaded.facts, loaded.stats
    if movies is MovieSet.recommended:
        pairs = recommended_pairs(loaded.experiment.users, loaded.known)
        what = "recommended movies the users really rated (each on its first showing)"
    else:
        pairs = unseen_pairs(loaded.experiment.users)
        what = "never-seen test movies"
    if not pairs:
        errors.print(f"[red]experiment {experiment} has no {what}[/red]")
        raise typer.Exit(1)
    predictors = {"recorded persona": [p.recorded for p in pairs]}
    quiet = {"lasting_noise": 0.0, "occasion_noise": 0.0}
    request_seeds = [int(x) for x in seeds.split(",") if x.strip()] or [0]
    for name in chosen:
        params = models[name].params
        # the drift is 0 on the baseline: only the lasting and per-occasion parts reach it
        variants: list[tuple[str, ModelParams, int]] = [(name, params, request_seeds[0])]
        if params.lasting_noise or params.occasion_noise:
            variants = [(f"{name}, noise-free", with_parameters(params, quiet), 0)] + [
                (f"{name}, as rated (seed {s})", params, s) for s in request_seeds
            ]
        for label, variant, request_seed in variants:
            predictors[label] = embedded_ratings(
                pairs,
                model=EmbeddedPersonaModel(variant),
                facts=facts,
                stats=stats,
                seed=request_seed,
            )
    rows = fidelity_table(
        [p.real for p in pairs], predictors, reference="recorded persona", resamples=resamples
    )
    metrics = ("rmse", "mae", "bias", "pearson", "pearson_within")
    columns = ("RMSE", "MAE", "mean error", "Pearson r", "r within users")
    console.print(
        f"Fidelity on experiment {experiment}'s own split: {len(pairs)} users, "
        f"{rows[0].pairs} {what}; 95% bootstrap intervals over users; "
        f"collaborative statistics of {loaded.population}"
    )
    values = Table(title="Each persona's first ratings against the real ones")
    differences = Table(
        title="Difference from the recorded persona (paired on the same resampled users)"
    )
    for table in (values, differences):
        table.add_column("persona", no_wrap=True)
        for column in columns:
            table.add_column(column if table is values else f"Δ {column}", justify="right")
    for row in rows:
        values.add_row(
            row.name,
            *(
                f"{row.values[m]:.3f} [{row.intervals[m][0]:.3f}, {row.intervals[m][1]:.3f}]"
                for m in metrics
            ),
        )
        if row.name != "recorded persona":
            differences.add_row(
                row.name,
                *(
                    f"{row.difference[m]:+.3f} [{row.difference_intervals[m][0]:+.3f}, "
                    f"{row.difference_intervals[m][1]:+.3f}]"
                    for m in metrics
                ),
            )
    console.print(values)
    console.print(differences)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="persona", help="The embedded persona's parameter sets.")
