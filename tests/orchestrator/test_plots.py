"""Report plots render to valid PNG and SVG, draw what they are given, and render the same
report to the same bytes."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET

import matplotlib
import numpy as np
import pandas as pd
import pytest

from prefshift_orchestrator.measurements import fidelity_pairs, run_shift, stack_shift_tables
from prefshift_orchestrator.plots import (
    PLOT_FORMATS,
    plot_fidelity,
    plot_genre_shift,
    plot_shift_by_archetype,
    plot_shift_by_page,
    report_plots,
)
from prefshift_orchestrator.statistics import CohortStatistics, summarize

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG = "{http://www.w3.org/2000/svg}"


def cohort(n_users: int = 12) -> tuple[CohortStatistics, pd.DataFrame]:
    rng = np.random.default_rng(5)
    runs, pairs = [], []
    genres = {m: [("Drama", "Comedy", "Horror")[m % 3]] for m in range(1, 31)}
    for user in range(1, n_users + 1):
        base = rng.integers(2, 10, size=30) / 2
        rows = [("baseline", 0, "test", m, float(r)) for m, r in enumerate(base, start=1)]
        for arm, effect in (("als", 0.3), ("random", 0.0), ("control", 0.0)):
            for page in (1, 2, 3):
                noisy = base + effect * page / 3 + rng.choice([-0.5, 0.0, 0.5], size=30)
                ratings = np.clip(noisy, 0.5, 5.0)
                rows += [(arm, page, "test", m, float(r)) for m, r in enumerate(ratings, start=1)]
                if arm != "control":
                    rows += [(arm, page, "experience", 100 + k, 4.0) for k in range(5)]
        frame = pd.DataFrame(rows, columns=["arm", "page", "phase", "tmdb_id", "rating"])
        real = {m: float(np.clip(b + rng.normal(0, 0.6), 0.5, 5.0)) for m, b in enumerate(base, 1)}
        archetype = "Specialist" if user % 3 else "Explorer"
        runs.append((user, archetype, run_shift(frame, test_genres=genres, real_ratings=real)))
        pairs.append(fidelity_pairs(frame, real))
    return summarize(stack_shift_tables(runs), n_resamples=300), pd.concat(pairs)


@pytest.fixture(scope="module")
def report() -> tuple[CohortStatistics, pd.DataFrame]:
    return cohort()


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.rstrip()[-8:-4] == b"IEND"
    return width, height


def svg_tags(data: bytes) -> list[str]:
    root = ET.fromstring(data)
    assert root.tag == f"{SVG}svg"
    return [element.tag for element in root.iter()]


@pytest.mark.parametrize("fmt", PLOT_FORMATS)
def test_report_plots_render_in_both_formats(
    report: tuple[CohortStatistics, pd.DataFrame], fmt: str
) -> None:
    statistics, pairs = report
    plots = report_plots(statistics, pairs, fmt=fmt)  # type: ignore[arg-type]
    assert set(plots) == {"shift_by_page", "shift_by_archetype", "genre_shift", "fidelity"}
    for data in plots.values():
        if fmt == "png":
            width, height = png_size(data)
            assert 300 < width < 2000 and 200 < height < 2000
        else:
            tags = svg_tags(data)
            assert tags.count(f"{SVG}path") > 10


def test_shift_plot_draws_one_line_per_arm_with_bands(
    report: tuple[CohortStatistics, pd.DataFrame],
) -> None:
    statistics, _ = report
    net = ET.fromstring(plot_shift_by_page(statistics, metric="net_shift", fmt="svg"))
    raw = ET.fromstring(plot_shift_by_page(statistics, metric="shift", fmt="svg"))
    ids = [element.get("id") or "" for element in net.iter()]
    # net of control: als and random (control has no net shift) → two lines, two bands
    assert sum(i.startswith("line2d") for i in ids) >= 2
    assert (
        sum(
            i.startswith("FillBetweenPolyCollection") or i.startswith("PolyCollection") for i in ids
        )
        == 2
    )
    raw_ids = [element.get("id") or "" for element in raw.iter()]
    assert (
        sum(
            i.startswith("FillBetweenPolyCollection") or i.startswith("PolyCollection")
            for i in raw_ids
        )
        == 3
    )


def test_archetype_panels(report: tuple[CohortStatistics, pd.DataFrame]) -> None:
    statistics, _ = report
    assert statistics.archetypes == ["Explorer", "Specialist"]
    svg = ET.fromstring(plot_shift_by_archetype(statistics, fmt="svg"))
    axes = [e for e in svg.iter() if (e.get("id") or "").startswith("axes_")]
    assert len(axes) == 3  # all users, Explorer, Specialist
    png_size(plot_shift_by_archetype(statistics, metric="shift", fmt="png"))


def test_genre_heatmap_marks_the_cells_significant_after_fdr(
    report: tuple[CohortStatistics, pd.DataFrame],
) -> None:
    statistics, _ = report
    expected = {
        (c.arm, c.genre)
        for c in statistics.cells
        if (c.metric, c.archetype, c.page) == ("net_shift", None, 3)
        and c.genre
        and c.q_vs_zero is not None
        and c.q_vs_zero <= 0.05
    }
    assert ("als", "Drama") in expected  # the planted shift
    assert not any(arm == "random" for arm, _ in expected)
    # keep text as <text> elements to read the annotations back
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        svg = ET.fromstring(plot_genre_shift(statistics, fmt="svg"))
    texts = ["".join(element.itertext()) for element in svg.iter(f"{SVG}text")]
    marked = [text for text in texts if re.fullmatch(r"[+-]\d\.\d\d\*", text)]
    assert len(marked) == len(expected)


def test_genre_heatmap_and_fidelity_render(report: tuple[CohortStatistics, pd.DataFrame]) -> None:
    statistics, pairs = report
    heatmap = ET.fromstring(plot_genre_shift(statistics, fmt="svg"))
    assert any(element.tag == f"{SVG}image" for element in heatmap.iter())
    png_size(plot_genre_shift(statistics, metric="shift", page=1, fmt="png"))
    png_size(plot_fidelity(pairs, fmt="png"))


def test_plots_of_empty_reports_still_render() -> None:
    empty = summarize(stack_shift_tables([]))
    no_pairs = pd.DataFrame({"predicted": [], "real": []})
    for data in report_plots(empty, no_pairs, fmt="png").values():
        png_size(data)
    for data in report_plots(empty, no_pairs, fmt="svg").values():
        svg_tags(data)
    with pytest.raises(ValueError, match="format"):
        plot_fidelity(no_pairs, fmt="gif")  # type: ignore[arg-type]


@pytest.mark.slow
def test_rendering_is_deterministic(
    report: tuple[CohortStatistics, pd.DataFrame],
) -> None:
    statistics, pairs = report
    first = report_plots(statistics, pairs, fmt="svg")
    assert report_plots(statistics, pairs, fmt="svg") == first
    assert report_plots(statistics, pairs, fmt="png") == report_plots(statistics, pairs, fmt="png")
