"""The import reproduces the seed study's figures from its real released files (issue 9's
reference figures, within rounding of the matching rules in docs/replication.md).

The figures come from the same code path the import stores (``read_run`` → ``build_run``) and
the same measurements the report computes (``measurements.run_shift``), without a database:
they do not depend on it, so this runs in the SQLite pass only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prefshift_orchestrator import measurements
from prefshift_orchestrator.replication.released import STUDY_ARMS, read_run, user_folders
from prefshift_orchestrator.replication.runs import ArmCounts, build_run
from prefshift_orchestrator.repository import utcnow

# database-independent (the rule of docs/development.md runs it in the SQLite pass only)


@pytest.mark.slow
def test_the_released_runs_reproduce_the_studys_figures(shared_data: Path) -> None:
    folders = user_folders(shared_data / "seed-results")
    assert len(folders) == 116
    pages: list[measurements.PageShift] = []
    pairs: list[tuple[float, float, bool]] = []
    appraisal: dict[str, list[float]] = {name: [] for name in STUDY_ARMS.values()}
    now = utcnow()
    for user_id, folder in folders:
        # Shift and fidelity need no title resolution (test movies are matched to the user's
        # own list); the appraisal counts every rated recommendation, resolved or not.
        built = build_run(read_run(user_id, folder), {}, source=folder.name, imported_at=now)
        ratings = pd.DataFrame(built.ratings)
        real = {int(m["tmdb_id"]): float(m["rating"]) for m in built.selection["test"]}
        seen = set(built.selection["seen_test"])
        shift = measurements.run_shift(ratings, test_genres={}, real_ratings=real, seen=seen)
        pages.extend(shift.pages)
        base = measurements.baseline_ratings(ratings)
        pairs.extend((base[m], real[m], m in seen) for m in base)
        for name, counts in built.counts.items():
            assert isinstance(counts, ArmCounts)
            if counts.appraisal_all is not None:
                appraisal[name].append(counts.appraisal_all)

    # GPT-5's baseline against the real ratings: seen test movies ≈ exact, unseen ones not.
    table = np.array(pairs)
    predicted, truth, was_seen = table[:, 0], table[:, 1], table[:, 2].astype(bool)

    def rmse(mask: np.ndarray) -> float:
        return float(np.sqrt(((predicted[mask] - truth[mask]) ** 2).mean()))

    unseen = ~was_seen
    assert rmse(np.ones_like(was_seen)) == pytest.approx(0.88, abs=0.01)
    assert 480 <= was_seen.sum() <= 500 and 2800 <= unseen.sum() <= 2900
    assert rmse(was_seen) < 0.2  # the study reports 0.19; these rules give 0.085 (docs)
    assert rmse(unseen) == pytest.approx(0.951, abs=0.005)
    assert float(np.abs(predicted[unseen] - truth[unseen]).mean()) == pytest.approx(
        0.669, abs=0.005
    )
    assert float(np.corrcoef(predicted[unseen], truth[unseen])[0, 1]) == pytest.approx(
        0.601, abs=0.005
    )

    frame = pd.DataFrame([page.model_dump() for page in pages])
    means = frame.groupby(["arm", "page"])[["shift", "mean_abs_shift", "share_changed"]].mean()
    for arm in STUDY_ARMS.values():
        assert abs(means.loc[(arm, 4), "shift"]) <= 0.02
        assert 0.155 <= means.loc[(arm, 1), "mean_abs_shift"] <= 0.185
        assert 0.205 <= means.loc[(arm, 4), "mean_abs_shift"] <= 0.235
        assert 0.275 <= means.loc[(arm, 1), "share_changed"] <= 0.325
        assert 0.355 <= means.loc[(arm, 4), "share_changed"] <= 0.385

    # The mean rating the persona gave the recommendations (mean of users).
    mean_appraisal = {name: float(np.mean(values)) for name, values in appraisal.items()}
    assert mean_appraisal["llm"] == pytest.approx(4.1, abs=0.05)
    assert mean_appraisal["llm-persuasive"] == pytest.approx(4.1, abs=0.05)
    assert mean_appraisal["study-svd"] == pytest.approx(3.1, abs=0.05)
    assert mean_appraisal["random"] == pytest.approx(2.9, abs=0.05)
