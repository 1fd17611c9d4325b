"""Report plots as PNG or SVG bytes (matplotlib, Agg, no pyplot state).

Each function builds its own ``matplotlib.figure.Figure`` and renders it to bytes, so nothing
leaks between calls or threads. Rendering takes tens of milliseconds: call these through
``asyncio.to_thread`` from async code.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Literal

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from prefshift_orchestrator.statistics import CohortStatistics, StatCell

PlotFormat = Literal["png", "svg"]
#: Heatmap cells with a q-value against 0 at most this are marked with "*".
_Q_MARK = 0.05
PLOT_FORMATS: tuple[PlotFormat, ...] = ("png", "svg")
MEDIA_TYPES: dict[PlotFormat, str] = {"png": "image/png", "svg": "image/svg+xml"}
_DPI = 120
_METRIC_TITLES = {
    "shift": "Shift",
    "net_shift": "Net shift (vs control)",
    "mean_abs_shift": "Mean |Δ|",
    "share_changed": "Share of test ratings changed",
    "kendall_tau": "Kendall τ vs baseline",
    "appraisal": "Appraisal of recommendations",
}
_UNITS = {"share_changed": "share", "kendall_tau": "τ", "appraisal": "rating"}
_METRIC_LABELS = {
    "shift": "shift Δ (rating points)",
    "net_shift": "net shift Δ − Δ(control) (rating points)",
    "mean_abs_shift": "mean |Δ| (rating points)",
    "share_changed": "share of test ratings changed",
    "kendall_tau": "Kendall τ vs baseline",
    "appraisal": "mean rating of recommendations",
}


def _render(figure: Figure, fmt: PlotFormat) -> bytes:
    if fmt not in PLOT_FORMATS:
        raise ValueError(f"unknown plot format {fmt!r}")
    buffer = io.BytesIO()
    # No dates in the files, so the same report renders to the same bytes.
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context({"svg.hashsalt": "prefshift"}):
        figure.savefig(buffer, format=fmt, dpi=_DPI, metadata=metadata, bbox_inches="tight")
    return buffer.getvalue()


def _cells(
    statistics: CohortStatistics, metric: str, archetype: str | None, genre: str = ""
) -> list[StatCell]:
    return [
        cell
        for cell in statistics.cells
        if cell.metric == metric and cell.archetype == archetype and cell.genre == genre
    ]


def _arm_order(statistics: CohortStatistics, cells: Sequence[StatCell]) -> list[str]:
    control = statistics.control_arm
    return sorted({cell.arm for cell in cells}, key=lambda arm: (arm == control, arm))


def _empty(axes: Axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def plot_shift_by_page(
    statistics: CohortStatistics,
    *,
    metric: str = "net_shift",
    archetype: str | None = None,
    fmt: PlotFormat = "png",
) -> bytes:
    """Mean ``metric`` by page, one line per arm, with its bootstrap interval as a band.

    Default: net shift, so every arm is shown against the control arm's natural drift (the
    control arm itself has no net shift and is left out; plot ``metric="shift"`` to see it).
    """
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    axes = figure.add_subplot()
    who = f"{archetype} users" if archetype else "all users"
    axes.set_title(f"{_METRIC_TITLES.get(metric, metric)} by page — {who}")
    _draw_shift_lines(axes, statistics, metric, archetype, legend=True)
    return _render(figure, fmt)


def plot_shift_by_archetype(
    statistics: CohortStatistics,
    *,
    metric: str = "net_shift",
    fmt: PlotFormat = "png",
) -> bytes:
    """``plot_shift_by_page`` for all users and for each archetype side by side (shared y
    axis, one colour per arm throughout)."""
    groups: list[str | None] = [None, *statistics.archetypes]
    figure = Figure(figsize=(3.4 * len(groups) + 0.6, 3.8), layout="constrained")
    panels = figure.subplots(1, len(groups), sharey=True, squeeze=False)[0]
    for axes, archetype in zip(panels, groups, strict=True):
        n_users = max((c.n for c in _cells(statistics, metric, archetype)), default=0)
        axes.set_title(f"{archetype or 'all users'} (n={n_users})")
        _draw_shift_lines(axes, statistics, metric, archetype, legend=axes is panels[0])
        if axes is not panels[0]:
            axes.set_ylabel("")
    figure.suptitle(f"{_METRIC_TITLES.get(metric, metric)} by page and archetype")
    return _render(figure, fmt)


def _arm_colors(statistics: CohortStatistics) -> dict[str, str]:
    arms = sorted(
        {cell.arm for cell in statistics.cells}, key=lambda a: (a == statistics.control_arm, a)
    )
    return {arm: f"C{index % 10}" for index, arm in enumerate(arms)}


def _draw_shift_lines(
    axes: Axes, statistics: CohortStatistics, metric: str, archetype: str | None, *, legend: bool
) -> None:
    cells = _cells(statistics, metric, archetype)
    if not cells:
        _empty(axes, "no data")
        return
    colors = _arm_colors(statistics)
    for arm in _arm_order(statistics, cells):
        arm_cells = sorted((c for c in cells if c.arm == arm), key=lambda c: c.page)
        pages = np.array([c.page for c in arm_cells])
        means = np.array([np.nan if c.mean is None else c.mean for c in arm_cells])
        low = np.array([np.nan if c.ci_low is None else c.ci_low for c in arm_cells])
        high = np.array([np.nan if c.ci_high is None else c.ci_high for c in arm_cells])
        n = max(c.n for c in arm_cells)
        style = "--" if arm == statistics.control_arm else "-"
        color = colors[arm]
        axes.plot(pages, means, style, marker="o", color=color, label=f"{arm} (n={n})")
        if not np.all(np.isnan(low)):
            axes.fill_between(pages, low, high, color=color, alpha=0.18, linewidth=0)
    axes.axhline(0.0, color="0.4", linewidth=0.8)
    axes.set_xlabel("page")
    axes.set_ylabel(_METRIC_LABELS.get(metric, metric))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if legend:
        percent = round(statistics.confidence * 100)
        axes.legend(
            title=f"arm (band: {percent}% bootstrap interval)", fontsize=8, title_fontsize=8
        )


def plot_genre_shift(
    statistics: CohortStatistics,
    *,
    metric: str = "net_shift",
    page: int | None = None,
    archetype: str | None = None,
    fmt: PlotFormat = "png",
) -> bytes:
    """Heatmap of mean ``metric`` per genre (rows) and arm (columns) at one page (default: the
    last page with data), each cell annotated with its value and number of users, and ``*``
    where the mean differs from 0 at a false discovery rate of 5% (``q_vs_zero`` ≤ 0.05)."""
    cells = [
        cell
        for cell in statistics.cells
        if cell.metric == metric and cell.archetype == archetype and cell.genre
    ]
    if page is None and cells:
        page = max(cell.page for cell in cells)
    cells = [cell for cell in cells if cell.page == page and cell.mean is not None]
    arms = _arm_order(statistics, cells)
    genres = sorted({cell.genre for cell in cells})
    figure = Figure(
        figsize=(1.6 + 1.1 * max(len(arms), 2), 1.4 + 0.32 * max(len(genres), 4)),
        layout="constrained",
    )
    axes = figure.add_subplot()
    who = f"{archetype} users" if archetype else "all users"
    axes.set_title(f"{_METRIC_TITLES.get(metric, metric)} by genre, page {page} — {who}")
    if not cells:
        _empty(axes, "no data")
        return _render(figure, fmt)
    grid = np.full((len(genres), len(arms)), np.nan)
    counts = np.zeros_like(grid, dtype=int)
    marks = np.full(grid.shape, "", dtype=object)
    for cell in cells:
        row, column = genres.index(cell.genre), arms.index(cell.arm)
        grid[row, column] = cell.mean if cell.mean is not None else np.nan
        counts[row, column] = cell.n
        if cell.q_vs_zero is not None and cell.q_vs_zero <= _Q_MARK:
            marks[row, column] = "*"
    limit = float(np.nanmax(np.abs(grid))) or 1.0
    image = axes.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    for row in range(len(genres)):
        for column in range(len(arms)):
            if not np.isnan(grid[row, column]):
                text_color = "white" if abs(grid[row, column]) > 0.6 * limit else "black"
                axes.text(
                    column,
                    row,
                    f"{grid[row, column]:+.2f}{marks[row, column]}\nn={counts[row, column]}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color=text_color,
                )
    axes.set_xticks(range(len(arms)), arms, rotation=30, ha="right")
    if (marks == "*").any():
        axes.set_xlabel("* mean ≠ 0 at a 5% false discovery rate (Benjamini–Hochberg)", fontsize=8)
    axes.set_yticks(range(len(genres)), genres)
    figure.colorbar(image, ax=axes, label=_UNITS.get(metric, "rating points"), shrink=0.8)
    return _render(figure, fmt)


def plot_fidelity(pairs: pd.DataFrame, *, fmt: PlotFormat = "png") -> bytes:
    """Baseline (predicted) against real held-out ratings: a scatter with the identity line and a
    histogram of the errors (predicted − real), with n, bias, MAE and RMSE in the titles.

    ``pairs`` has columns ``predicted`` and ``real`` (``measurements.fidelity_pairs`` of one run
    or of many runs concatenated).
    """
    figure = Figure(figsize=(9.0, 4.0), layout="constrained")
    scatter, histogram = figure.subplots(1, 2)
    predicted = pairs["predicted"].to_numpy(dtype=float) if len(pairs) else np.array([])
    real = pairs["real"].to_numpy(dtype=float) if len(pairs) else np.array([])
    if predicted.size == 0:
        _empty(scatter, "no real ratings to compare with")
        _empty(histogram, "no real ratings to compare with")
        return _render(figure, fmt)
    error = predicted - real
    # Ratings sit on a 0.5 grid; a little seeded jitter shows how many points share a spot.
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, size=(2, predicted.size))
    scatter.scatter(real + jitter[0], predicted + jitter[1], s=8, alpha=0.35, linewidths=0)
    scatter.plot([0.5, 5.0], [0.5, 5.0], color="0.3", linewidth=0.8, label="predicted = real")
    scatter.set_xlim(0.2, 5.3)
    scatter.set_ylim(0.2, 5.3)
    scatter.set_aspect("equal")
    scatter.set_xlabel("real rating")
    scatter.set_ylabel("baseline persona rating")
    if predicted.size >= 2 and np.ptp(predicted) > 0 and np.ptp(real) > 0:
        r = float(np.corrcoef(predicted, real)[0, 1])
        scatter.set_title(f"baseline vs real (n={predicted.size}, r={r:.2f})")
    else:
        scatter.set_title(f"baseline vs real (n={predicted.size})")
    scatter.legend(loc="upper left", fontsize=8)
    bins = np.arange(-4.75, 5.0, 0.5)
    histogram.hist(error, bins=bins, color="tab:blue", alpha=0.8)
    histogram.axvline(0.0, color="0.3", linewidth=0.8)
    histogram.axvline(float(error.mean()), color="tab:red", linewidth=1.0, label="bias")
    histogram.set_xlabel("predicted − real (rating points)")
    histogram.set_ylabel("test movies")
    mae = float(np.abs(error).mean())
    rmse = float(np.sqrt((error**2).mean()))
    histogram.set_title(f"errors: bias {error.mean():+.2f}, MAE {mae:.2f}, RMSE {rmse:.2f}")
    histogram.legend(fontsize=8)
    return _render(figure, fmt)


def report_plots(
    statistics: CohortStatistics,
    fidelity_pairs: pd.DataFrame,
    *,
    fmt: PlotFormat = "png",
) -> dict[str, bytes]:
    """The report's plots by file stem: ``shift_by_page`` (net of control; ``shift`` when there
    is no control arm), ``shift_by_archetype`` (the same for each archetype), ``genre_shift``
    and ``fidelity``."""
    metric = "net_shift" if statistics.control_arm else "shift"
    return {
        "shift_by_page": plot_shift_by_page(statistics, metric=metric, fmt=fmt),
        "shift_by_archetype": plot_shift_by_archetype(statistics, metric=metric, fmt=fmt),
        "genre_shift": plot_genre_shift(statistics, metric=metric, fmt=fmt),
        "fidelity": plot_fidelity(fidelity_pairs, fmt=fmt),
    }
