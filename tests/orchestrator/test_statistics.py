"""Statistics across users: bootstrap intervals, Wilcoxon signed-rank p-values (against values
worked out by hand and against scipy) and the per-cell summary of a cohort's results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from prefshift_orchestrator.measurements import run_shift, stack_shift_tables
from prefshift_orchestrator.statistics import (
    CohortStatistics,
    StatCell,
    benjamini_hochberg,
    bootstrap_interval,
    statistics_table,
    summarize,
    wilcoxon_p,
)


def test_bootstrap_interval_by_hand() -> None:
    # Resampled means of [0, 1] are 0, .5, 1 with probabilities ¼, ½, ¼: the 2.5% and 97.5%
    # quantiles are 0 and 1.
    assert bootstrap_interval([0.0, 1.0], n_resamples=4000, seed=1) == (0.0, 1.0)
    assert bootstrap_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert bootstrap_interval([1.0]) is None
    assert bootstrap_interval([1.0, float("nan")]) is None


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(11)
    small = rng.normal(0.3, 1.0, size=20)
    large = rng.normal(0.3, 1.0, size=500)
    widths = []
    for sample in (small, large):
        interval = bootstrap_interval(sample, seed=5)
        assert interval is not None
        low, high = interval
        assert low < sample.mean() < high
        # the width is about 2·1.96·σ/√n
        expected = 2 * 1.96 * sample.std(ddof=1) / np.sqrt(sample.size)
        assert high - low == pytest.approx(expected, rel=0.15)
        widths.append(high - low)
    assert widths[1] < widths[0] / 3
    # seeded: the same seed gives the same interval; a higher confidence a wider one
    assert bootstrap_interval(small, seed=5) == bootstrap_interval(small, seed=5)
    narrow = bootstrap_interval(small, confidence=0.5, seed=5)
    assert narrow is not None and narrow[1] - narrow[0] < widths[0]


def test_bootstrap_interval_coverage() -> None:
    """About 95% of intervals from samples of 30 contain the true mean."""
    rng = np.random.default_rng(2)
    hits = 0
    for replicate in range(300):
        interval = bootstrap_interval(rng.normal(1.0, 1.0, 30), n_resamples=500, seed=replicate)
        assert interval is not None
        hits += interval[0] <= 1.0 <= interval[1]
    assert 0.88 <= hits / 300 <= 0.99


def test_wilcoxon_by_hand() -> None:
    # All five differences positive and distinct: W+ = 15 is the largest of 2^5 → p = 2/32.
    assert wilcoxon_p([1, 2, 3, 4, 5]) == pytest.approx(0.0625)
    # (−1, 2, 3): W+ = 5; the 8 sign patterns give W+ 0,1,2,3,3,4,5,6 → P(W+ ≥ 5) = 2/8.
    assert wilcoxon_p([-1, 2, 3]) == pytest.approx(0.5)
    # Three tied magnitudes, ranks 2,2,2: W+ = 6 only when all are positive → p = 2/8.
    assert wilcoxon_p([0.5, 0.5, 0.5]) == pytest.approx(0.25)
    # Zeros are dropped: same as (1,2,3,4,5)
    assert wilcoxon_p([0, 1, 2, 0, 3, 4, 5]) == pytest.approx(0.0625)
    # ranks (2,2,2,4) with W+ = 8: P(W+ ≥ 8) = 4/16 → p = .5
    assert wilcoxon_p([0.5, 0.5, -0.5, 1.0]) == pytest.approx(0.5)


def test_wilcoxon_ties_survive_floating_point_noise() -> None:
    # 0.1 + 0.2 != 0.3 in floating point; as shifts they are the same value and tie
    noisy = [0.1 + 0.2, 0.3, 0.3, -0.3, 0.6]
    assert wilcoxon_p(noisy) == pytest.approx(wilcoxon_p([0.3, 0.3, 0.3, -0.3, 0.6]))
    # ranks (2.5, 2.5, 2.5, 2.5, 5), W+ = 2.5·3 + 5 = 12.5; W+ = 2.5k + 5b with k of the four
    # .3s and b the .6 positive: W+ ≥ 12.5 for (k=4, b=1) and the 4 ways of (k=3, b=1) → 5/32
    assert wilcoxon_p(noisy) == pytest.approx(10 / 32)


def test_wilcoxon_undefined() -> None:
    assert wilcoxon_p([]) is None
    assert wilcoxon_p([0.0, 0.0, 0.0]) is None
    assert wilcoxon_p([0.0, 0.5]) is None
    assert wilcoxon_p([float("nan"), 1.0]) is None


@pytest.mark.parametrize("n", [5, 12, 25, 50])
def test_wilcoxon_matches_scipy_exact_without_ties(n: int) -> None:
    sample = np.random.default_rng(n).normal(0.3, 1.0, n)
    expected = stats.wilcoxon(sample, method="exact").pvalue
    assert wilcoxon_p(sample) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_wilcoxon_matches_scipy_enumeration_with_ties(seed: int) -> None:
    sample = np.random.default_rng(seed).integers(-3, 6, size=12) / 2
    sample = sample[sample != 0]
    # an exact permutation test over every sign pattern
    expected = stats.wilcoxon(sample, method=stats.PermutationMethod(n_resamples=np.inf)).pvalue
    assert wilcoxon_p(sample) == pytest.approx(expected, rel=1e-9)


def test_wilcoxon_large_samples_use_the_normal_approximation() -> None:
    rng = np.random.default_rng(4)
    sample = rng.normal(0.1, 1.0, 80)
    exact = stats.wilcoxon(sample, method="exact").pvalue
    assert wilcoxon_p(sample) == pytest.approx(exact, abs=0.01)
    for n in (80, 150, 1000):
        tied = np.round(rng.normal(0.1, 1.0, n) * 2) / 2
        tied = tied[tied != 0]
        assert tied.size > 50
        approx = stats.wilcoxon(tied, method="approx").pvalue
        assert wilcoxon_p(tied) == pytest.approx(approx, rel=1e-9)


def test_wilcoxon_small_for_a_clear_effect_and_calibrated_for_noise() -> None:
    rng = np.random.default_rng(9)
    p_effect = wilcoxon_p(rng.normal(0.5, 0.3, 30))
    assert p_effect is not None and p_effect < 1e-4
    noise = [wilcoxon_p(np.round(rng.normal(0.0, 1.0, 30) * 2) / 2) for _ in range(400)]
    rejected = np.mean([p is not None and p < 0.05 for p in noise])
    assert 0.02 <= rejected <= 0.09
    assert np.median([p for p in noise if p is not None]) > 0.3


def test_benjamini_hochberg_by_hand_and_against_scipy() -> None:
    # sorted .01 .03 .04 .2 → p·4/rank = .04 .06 .0533 .2 → running minimum from the top
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.2]) == pytest.approx(
        [0.04, 0.16 / 3, 0.16 / 3, 0.2]
    )
    assert benjamini_hochberg([]) == []
    assert benjamini_hochberg([0.9, 0.95]) == pytest.approx([0.95, 0.95])
    p_values = np.random.default_rng(0).uniform(size=40) ** 2
    expected = stats.false_discovery_control(p_values, method="bh")
    assert benjamini_hochberg(list(p_values)) == pytest.approx(list(expected))


def per_user_results() -> pd.DataFrame:
    """Four users; als and control on page 1; users 1–2 Specialists, 3–4 Generalists."""
    rows = []
    als = [0.5, 1.0, 1.5, 2.0]
    control = [0.0, 0.5, 2.0, 1.0]
    for user, (a, c) in enumerate(zip(als, control, strict=True), start=1):
        archetype = "Specialist" if user <= 2 else "Generalist"
        rows.append({"user_id": user, "archetype": archetype, "arm": "als", "page": 1, "shift": a})
        rows.append(
            {"user_id": user, "archetype": archetype, "arm": "control", "page": 1, "shift": c}
        )
    return pd.DataFrame(rows)


def cell(statistics: CohortStatistics, arm: str, archetype: str | None = None) -> StatCell:
    (found,) = [
        c
        for c in statistics.cells
        if c.arm == arm and c.archetype == archetype and c.metric == "shift" and c.page == 1
    ]
    return found


def test_summarize_by_hand() -> None:
    summary = summarize(per_user_results(), metrics=["shift"], seed=3)
    assert summary.n_users == 4
    assert summary.control_arm == "control"
    assert summary.archetypes == ["Generalist", "Specialist"]
    als = cell(summary, "als")
    assert (als.n, als.mean) == (4, pytest.approx(1.25))
    assert als.ci_low is not None and als.ci_high is not None
    assert 0.5 <= als.ci_low < 1.25 < als.ci_high <= 2.0
    assert als.p_vs_zero == pytest.approx(0.125)  # 4 positive distinct: 2/16
    # differences als − control = (.5, .5, −.5, 1) → p = .5 (see test_wilcoxon_by_hand)
    assert (als.n_vs_control, als.p_vs_control) == (4, pytest.approx(0.5))
    control = cell(summary, "control")
    assert (control.n, control.mean) == (4, pytest.approx(0.875))
    assert (control.n_vs_control, control.p_vs_control) == (0, None)
    specialists = cell(summary, "als", "Specialist")
    assert (specialists.n, specialists.mean) == (2, pytest.approx(0.75))
    assert specialists.p_vs_zero == pytest.approx(0.5)  # (0.5, 1.0): 2/4
    generalists = cell(summary, "control", "Generalist")
    assert generalists.mean == pytest.approx(1.5)
    # control is listed after the arms
    assert [c.arm for c in summary.cells if c.archetype is None] == ["als", "control"]
    # control (0, .5, 2, 1): the zero is dropped, three positive values → p = 2/8
    assert control.p_vs_zero == pytest.approx(0.25)
    # q-values: the family "shift, all users, whole test set" has p .125 and .25 → BH
    # .125·2/1 = .25 and .25·2/2 = .25; the vs-control family has the one p .5
    assert als.q_vs_zero == pytest.approx(0.25) and control.q_vs_zero == pytest.approx(0.25)
    assert als.q_vs_control == pytest.approx(0.5) and control.q_vs_control is None


def test_summarize_missing_values_and_duplicates() -> None:
    results = per_user_results()
    results.loc[(results["user_id"] == 4) & (results["arm"] == "control"), "shift"] = None
    # user 1's als row twice, with 0.5 and 1.5: counted once with the mean 1.0
    duplicate = results.iloc[[0]].assign(shift=1.5)
    summary = summarize(pd.concat([results, duplicate]), metrics=["shift"], seed=3)
    als = cell(summary, "als")
    assert (als.n, als.mean) == (4, pytest.approx((1.0 + 1.0 + 1.5 + 2.0) / 4))
    assert als.n_vs_control == 3
    assert cell(summary, "control").n == 3


def test_summarize_intervals_equal_the_single_cell_bootstrap() -> None:
    rng = np.random.default_rng(8)
    rows = [
        {"user_id": user, "arm": arm, "page": page, "shift": float(rng.normal())}
        for user in range(1, 31)
        for arm in ("als", "random")
        for page in (1, 2)
        if not (user == 30 and arm == "random")  # one user lacks random's pages
    ]
    results = pd.DataFrame(rows)
    summary = summarize(results, metrics=["shift"], seed=12, n_resamples=500)
    for found in summary.cells:
        values = results.query("arm == @found.arm and page == @found.page")["shift"]
        assert found.n == (29 if found.arm == "random" else 30)
        expected = bootstrap_interval(values.to_numpy(), n_resamples=500, seed=12)
        assert expected is not None
        assert (found.ci_low, found.ci_high) == pytest.approx(expected, rel=1e-12)


def test_fidelity_across_users() -> None:
    """The baseline row of each run's table carries its fidelity: summarised across users."""
    base = [3.0, 4.0, 2.0, 5.0]
    runs = []
    for user, offset in ((1, 0.5), (2, 1.0), (3, -0.5)):
        rows = [("baseline", 0, "test", m, r) for m, r in zip((1, 2, 3, 4), base, strict=True)]
        rows += [("control", 1, "test", m, r) for m, r in zip((1, 2, 3, 4), base, strict=True)]
        frame = pd.DataFrame(rows, columns=["arm", "page", "phase", "tmdb_id", "rating"])
        # the person's real ratings are the baseline minus a constant: bias = MAE = |offset|
        real = {m: r - offset for m, r in zip((1, 2, 3, 4), base, strict=True)}
        runs.append((user, "Explorer", run_shift(frame, test_genres={}, real_ratings=real)))
    summary = summarize(stack_shift_tables(runs), seed=2)
    found = {c.metric: c for c in summary.cells if c.arm == "baseline" and c.archetype is None}
    assert set(found) == {"bias", "mae", "rmse", "pearson_r"}
    assert found["bias"].mean == pytest.approx((0.5 + 1.0 - 0.5) / 3)
    assert found["mae"].mean == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert found["pearson_r"].mean == pytest.approx(1.0)
    assert (found["mae"].n, found["mae"].page, found["mae"].p_vs_control) == (3, 0, None)
    # three positive MAEs: exact p = 2/8
    assert found["mae"].p_vs_zero == pytest.approx(0.25)


def test_summarize_without_control_or_archetypes() -> None:
    results = per_user_results().drop(columns=["archetype"])
    results = results[results["arm"] == "als"]
    summary = summarize(results, metrics=["shift", "not_a_column"])
    assert summary.control_arm is None and summary.archetypes == []
    (only,) = summary.cells
    assert (only.arm, only.metric, only.n_vs_control, only.p_vs_control) == (
        "als",
        "shift",
        0,
        None,
    )
    with pytest.raises(ValueError, match="user_id"):
        summarize(results.drop(columns=["user_id"]))
    assert summarize(stack_shift_tables([])).cells == []


def test_statistics_table_is_flat() -> None:
    table = statistics_table(summarize(per_user_results(), metrics=["shift"]))
    assert list(table.columns) == list(StatCell.model_fields)
    assert len(table) == 2 * 3  # two arms × (all users, two archetypes)
    assert set(table["archetype"]) == {"", "Specialist", "Generalist"}


def test_planted_effect_across_users_from_stored_ratings() -> None:
    """Per-user runs with a planted +0.5 shift on one arm: its net shift is found with a tight
    interval and tiny p, while an arm that does nothing differs from control only by noise."""
    rng = np.random.default_rng(21)
    runs = []
    for user in range(1, 41):
        base = rng.integers(2, 9, size=30) / 2
        rows = [("baseline", 0, "test", m, float(r)) for m, r in enumerate(base, start=1)]
        for arm, effect in (("pushy", 0.5), ("inert", 0.0), ("control", 0.0)):
            noise = rng.choice([-0.5, 0.0, 0.0, 0.5], size=30)
            ratings = np.clip(base + effect + noise, 0.5, 5.0)
            rows += [(arm, 1, "test", m, float(r)) for m, r in enumerate(ratings, start=1)]
        frame = pd.DataFrame(rows, columns=["arm", "page", "phase", "tmdb_id", "rating"])
        genres = {m: ["Drama" if m % 2 else "Comedy"] for m in range(1, 31)}
        archetype = "Specialist" if user % 2 else "Explorer"
        runs.append((user, archetype, run_shift(frame, test_genres=genres)))
    summary = summarize(stack_shift_tables(runs), seed=1)

    def find(metric: str, arm: str, genre: str = "") -> StatCell:
        (found,) = [
            c
            for c in summary.cells
            if (c.metric, c.arm, c.genre, c.archetype) == (metric, arm, genre, None)
        ]
        return found

    pushy = find("net_shift", "pushy")
    assert pushy.n == 40
    assert pushy.ci_low is not None and pushy.ci_high is not None
    assert 0.35 < pushy.ci_low < pushy.mean < pushy.ci_high < 0.55
    assert pushy.p_vs_zero is not None and pushy.p_vs_zero < 1e-6
    inert = find("net_shift", "inert")
    assert inert.ci_low is not None and inert.ci_high is not None
    assert inert.ci_low < 0 < inert.ci_high
    assert inert.p_vs_zero is not None and inert.p_vs_zero > 0.05
    # vs control on the raw shift is the same test as net shift vs 0
    assert find("shift", "pushy").p_vs_control == pytest.approx(pushy.p_vs_zero)
    # per genre: the planted shift is in both genres
    assert find("net_shift", "pushy", "Drama").mean > 0.35
    assert {c.archetype for c in summary.cells} == {None, "Specialist", "Explorer"}


def test_power_from_the_control_arm_spread() -> None:
    """The smallest detectable net shift follows (z₀.₉₇₅ + z₀.₈)·√2·sd/√n from the control
    arm's spread, and ``users_needed`` inverts it."""
    from prefshift_orchestrator.statistics import min_detectable_shift, summarize, users_needed

    rng = np.random.default_rng(0)
    rows = [
        {"user_id": u, "arm": arm, "page": page, "shift": rng.normal(0.0, 0.2)}
        for u in range(40)
        for arm in ("control", "als")
        for page in (1, 2)
    ]
    summary = summarize(pd.DataFrame(rows), metrics=["shift"], n_resamples=50)
    assert [cell.page for cell in summary.power] == [1, 2]
    for cell in summary.power:
        control = [r["shift"] for r in rows if r["arm"] == "control" and r["page"] == cell.page]
        assert cell.n == 40 and cell.control_sd == pytest.approx(np.std(control, ddof=1))
        assert cell.min_detectable_net_shift == pytest.approx(
            2.8016 * np.sqrt(2) * cell.control_sd / np.sqrt(40), rel=1e-3
        )
    assert min_detectable_shift(0.2, users_needed(0.1, 0.2)) <= 0.1
    assert min_detectable_shift(0.2, users_needed(0.1, 0.2) - 1) > 0.1
