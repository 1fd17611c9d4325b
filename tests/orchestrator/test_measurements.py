"""Shift measurements of one run, against figures worked out by hand (see the comments) and
against scipy/numpy on random runs."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from prefshift_orchestrator.measurements import (
    SHIFT_TABLE_COLUMNS,
    PageShift,
    RunShift,
    fidelity,
    fidelity_pairs,
    kendall_tau,
    run_shift,
    shift_table,
    stack_shift_tables,
)

COLUMNS = ["arm", "page", "phase", "tmdb_id", "rating"]
GENRES = {101: ["Drama"], 102: ["Drama", "Comedy"], 103: ["Comedy"], 104: ["Horror"]}
REAL = {101: 3.5, 102: 4.0, 103: 1.0, 999: 4.0}


def hand_run() -> pd.DataFrame:
    """Four test movies; control and als for two pages; als page 2 lacks movie 104."""
    test = {
        ("baseline", 0): [3.0, 4.0, 2.0, 5.0],
        ("control", 1): [3.0, 4.0, 2.5, 5.0],  # Δ = (0+0+.5+0)/4 = .125
        ("control", 2): [3.0, 4.5, 2.5, 4.5],  # Δ = (0+.5+.5−.5)/4 = .125
        ("als", 1): [4.0, 4.0, 3.0, 4.0],  # Δ = (1+0+1−1)/4 = .25
        ("als", 2): [4.5, 4.5, 3.0, None],  # Δ = (1.5+.5+1)/3 = 1.0
    }
    rows = [
        (arm, page, "test", movie, rating)
        for (arm, page), values in test.items()
        for movie, rating in zip((101, 102, 103, 104), values, strict=True)
        if rating is not None
    ]
    rows += [("als", 1, "experience", 201, 5.0), ("als", 1, "experience", 202, 4.0)]
    rows += [("als", 1, "experience", 203, 3.0), ("als", 2, "experience", 204, 2.0)]
    return pd.DataFrame(rows, columns=COLUMNS)


@pytest.fixture
def shift() -> RunShift:
    return run_shift(hand_run(), test_genres=GENRES, real_ratings=REAL)


def page(shift: RunShift, arm: str, number: int) -> PageShift:
    (found,) = [p for p in shift.pages if p.arm == arm and p.page == number]
    return found


def test_page_shifts_match_hand_computed_values(shift: RunShift) -> None:
    assert shift.control_arm == "control"
    assert shift.n_test_movies == 4
    assert [(p.arm, p.page) for p in shift.pages] == [
        ("als", 1),
        ("als", 2),
        ("control", 1),
        ("control", 2),
    ]
    als1, als2 = page(shift, "als", 1), page(shift, "als", 2)
    control1, control2 = page(shift, "control", 1), page(shift, "control", 2)
    assert (als1.n, als2.n, control1.n, control2.n) == (4, 3, 4, 4)
    assert als1.shift == pytest.approx(0.25)
    assert als2.shift == pytest.approx(1.0)
    assert control1.shift == pytest.approx(0.125)
    assert control2.shift == pytest.approx(0.125)
    # net = Δ(als,p) − Δ(control,p)
    assert als1.net_shift == pytest.approx(0.125)
    assert als2.net_shift == pytest.approx(0.875)
    assert control1.net_shift is None and control2.net_shift is None
    # mean |Δ|: als1 (1+0+1+1)/4; als2 (1.5+.5+1)/3; control2 (0+.5+.5+.5)/4
    assert als1.mean_abs_shift == pytest.approx(0.75)
    assert als2.mean_abs_shift == pytest.approx(1.0)
    assert control2.mean_abs_shift == pytest.approx(0.375)
    assert (als1.share_changed, als2.share_changed) == (pytest.approx(0.75), pytest.approx(1.0))
    assert (control1.share_changed, control2.share_changed) == (0.25, 0.75)


def test_kendall_tau_b_matches_hand_count(shift: RunShift) -> None:
    # als1: baseline (3,4,2,5) vs (4,4,3,4): C=3, D=0, no baseline ties, 3 tied pairs in the
    # arm → τb = 3/√(6·3) = 1/√2.
    assert page(shift, "als", 1).kendall_tau == pytest.approx(1 / math.sqrt(2))
    # als2 (movies 101–103): (3,4,2) vs (4.5,4.5,3): C=2, one tie in the arm → 2/√(3·2).
    assert page(shift, "als", 2).kendall_tau == pytest.approx(2 / math.sqrt(6))
    # control1 keeps the order → 1; control2: C=5, one arm tie → 5/√(6·5).
    assert page(shift, "control", 1).kendall_tau == pytest.approx(1.0)
    assert page(shift, "control", 2).kendall_tau == pytest.approx(5 / math.sqrt(30))


def test_appraisal_per_page_and_overall(shift: RunShift) -> None:
    assert page(shift, "als", 1).appraisal == pytest.approx(4.0)  # (5+4+3)/3
    assert page(shift, "als", 1).n_appraisal == 3
    assert page(shift, "als", 2).appraisal == pytest.approx(2.0)
    assert page(shift, "control", 1).appraisal is None
    assert page(shift, "control", 1).n_appraisal == 0
    als, control = shift.arms
    assert (als.arm, control.arm) == ("als", "control")
    assert als.appraisal == pytest.approx(3.5)  # (5+4+3+2)/4
    assert als.n_appraisal == 4
    assert (als.pages, als.last_page) == (2, 2)
    assert als.shift == pytest.approx(1.0)
    assert als.net_shift == pytest.approx(0.875)
    assert control.appraisal is None and control.net_shift is None
    assert control.shift == pytest.approx(0.125)


def test_per_genre_shift_counts_a_movie_in_each_of_its_genres(shift: RunShift) -> None:
    cells = {(g.arm, g.page, g.genre): g for g in shift.genres}
    # page 1: Drama {101,102}: als (1+0)/2, control 0; Comedy {102,103}: als .5, control .25;
    # Horror {104}: als −1, control 0.
    assert cells[("als", 1, "Drama")].shift == pytest.approx(0.5)
    assert cells[("als", 1, "Drama")].net_shift == pytest.approx(0.5)
    assert cells[("als", 1, "Drama")].n == 2
    assert cells[("als", 1, "Comedy")].net_shift == pytest.approx(0.25)
    assert cells[("als", 1, "Horror")].shift == pytest.approx(-1.0)
    assert cells[("als", 1, "Horror")].n == 1
    # page 2: Drama als (1.5+.5)/2 − control (0+.5)/2 = .75; Comedy (.5+1)/2 − .5 = .25;
    # the only Horror movie is missing on als page 2, so that cell does not exist.
    assert cells[("als", 2, "Drama")].net_shift == pytest.approx(0.75)
    assert cells[("als", 2, "Comedy")].net_shift == pytest.approx(0.25)
    assert ("als", 2, "Horror") not in cells
    assert cells[("control", 2, "Horror")].shift == pytest.approx(-0.5)
    assert cells[("control", 2, "Horror")].net_shift is None


def test_fidelity_against_real_ratings_by_hand(shift: RunShift) -> None:
    # Common movies 101–103: errors −.5, 0, 1 (movie 999 was not a test movie).
    assert shift.fidelity.n == 3
    assert shift.fidelity.bias == pytest.approx(0.5 / 3)
    assert shift.fidelity.mae == pytest.approx(0.5)
    assert shift.fidelity.rmse == pytest.approx(math.sqrt(1.25 / 3))
    # Pearson: deviations (0,1,−1) and (2/3,7/6,−11/6) → 3/√(2·31/6)
    assert shift.fidelity.pearson_r == pytest.approx(3 / math.sqrt(2 * 31 / 6))


def test_genres_as_movielens_strings(shift: RunShift) -> None:
    as_strings = {movie: "|".join(names) for movie, names in GENRES.items()}
    assert run_shift(hand_run(), test_genres=as_strings, real_ratings=REAL) == shift


def test_fidelity_undefined_cases() -> None:
    assert fidelity({1: 3.0}, {}).model_dump() == {
        "n": 0,
        "bias": None,
        "mae": None,
        "rmse": None,
        "pearson_r": None,
    }
    one = fidelity({1: 3.0, 2: 4.0}, {1: 2.0})
    assert (one.n, one.bias, one.mae, one.rmse, one.pearson_r) == (1, 1.0, 1.0, 1.0, None)
    constant = fidelity({1: 3.0, 2: 3.0, 3: 3.0}, {1: 2.0, 2: 4.0, 3: 5.0})
    assert constant.pearson_r is None
    assert constant.bias == pytest.approx(-2 / 3)


def test_without_control_arm_net_shift_is_none() -> None:
    ratings = hand_run()
    ratings = ratings[ratings["arm"] != "control"]
    shift = run_shift(ratings, test_genres=GENRES)
    assert shift.control_arm is None
    assert all(p.net_shift is None for p in shift.pages)
    assert all(g.net_shift is None for g in shift.genres)
    assert page(shift, "als", 1).shift == pytest.approx(0.25)
    assert shift.fidelity.n == 0
    # a control arm named otherwise
    renamed = hand_run().replace({"arm": {"control": "natural"}})
    assert page(
        run_shift(renamed, test_genres=GENRES, control_arm="natural"), "als", 2
    ).net_shift == (pytest.approx(0.875))


def test_partial_runs_duplicates_and_unknown_movies() -> None:
    ratings = hand_run()
    extra = pd.DataFrame(
        [
            # a duplicate of als page 1 movie 101 (4.0 before): the cell's mean 4.5 is used
            ("als", 1, "test", 101, 5.0),
            # a movie the baseline never rated is ignored
            ("als", 1, "test", 555, 1.0),
            # a third page only for als (partial run of the others)
            ("als", 3, "test", 101, 3.0),
        ],
        columns=COLUMNS,
    )
    shift = run_shift(pd.concat([ratings, extra]), test_genres=GENRES)
    als1 = page(shift, "als", 1)
    assert als1.n == 4
    assert als1.shift == pytest.approx((1.5 + 0 + 1 - 1) / 4)
    als3 = page(shift, "als", 3)
    assert (als3.n, als3.shift, als3.net_shift, als3.kendall_tau) == (1, 0.0, None, None)
    assert shift.arms[0].last_page == 3


def test_run_without_arm_pages_and_with_missing_columns() -> None:
    baseline_only = hand_run().query("arm == 'baseline'")
    shift = run_shift(baseline_only, test_genres=GENRES, real_ratings=REAL)
    assert (shift.pages, shift.genres, shift.arms) == ([], [], [])
    assert shift.fidelity.n == 3
    with pytest.raises(ValueError, match="phase"):
        run_shift(hand_run().drop(columns=["phase"]), test_genres=GENRES)


def test_random_runs_agree_with_numpy_and_scipy() -> None:
    rng = np.random.default_rng(7)
    movies = np.arange(1, 31)
    base = rng.integers(1, 11, size=30) / 2
    rows = [("baseline", 0, "test", int(m), float(r)) for m, r in zip(movies, base, strict=True)]
    expected: dict[tuple[str, int], np.ndarray] = {}
    for arm in ("llm", "control"):
        for number in (1, 2, 3):
            ratings = np.clip(base + rng.integers(-2, 3, size=30) / 2, 0.5, 5.0)
            expected[(arm, number)] = ratings
            rows += [
                (arm, number, "test", int(m), float(r))
                for m, r in zip(movies, ratings, strict=True)
            ]
    shuffled = pd.DataFrame(rows, columns=COLUMNS).sample(frac=1.0, random_state=3)
    shift = run_shift(shuffled, test_genres={})
    for (arm, number), ratings in expected.items():
        result = page(shift, arm, number)
        assert result.shift == pytest.approx(float(np.mean(ratings - base)))
        assert result.mean_abs_shift == pytest.approx(float(np.mean(np.abs(ratings - base))))
        assert result.share_changed == pytest.approx(float(np.mean(ratings != base)))
        assert result.kendall_tau == pytest.approx(stats.kendalltau(base, ratings).statistic)
        if arm == "llm":
            control = expected[("control", number)]
            assert result.net_shift == pytest.approx(
                float(np.mean(ratings - base) - np.mean(control - base))
            )


@pytest.mark.parametrize("n", [5, 30, 400, 700])
def test_kendall_tau_matches_scipy_with_many_ties(n: int) -> None:
    rng = np.random.default_rng(n)
    first = rng.integers(1, 11, size=n) / 2
    second = np.clip(first + rng.integers(-2, 3, size=n) / 2, 0.5, 5.0)
    expected = stats.kendalltau(first, second, variant="b").statistic
    assert kendall_tau(first, second) == pytest.approx(expected, rel=1e-12)


def test_kendall_tau_none_when_constant() -> None:
    assert kendall_tau([3.0, 3.0, 3.0], [1.0, 2.0, 3.0]) is None
    assert kendall_tau([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]) is None
    assert kendall_tau([1.0], [2.0]) is None
    assert kendall_tau([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)


def test_shift_table_and_stacking(shift: RunShift) -> None:
    table = shift_table(shift)
    assert list(table.columns) == list(SHIFT_TABLE_COLUMNS)
    whole = table[(table["genre"] == "") & (table["arm"] != "baseline")]
    assert len(whole) == len(shift.pages) == 4
    (fidelity_row,) = table[table["arm"] == "baseline"].to_dict("records")
    assert (fidelity_row["page"], fidelity_row["n"]) == (0, 3)
    assert fidelity_row["bias"] == pytest.approx(0.5 / 3)
    assert fidelity_row["mae"] == pytest.approx(0.5)
    assert fidelity_row["rmse"] == pytest.approx(math.sqrt(1.25 / 3))
    assert math.isnan(fidelity_row["shift"])
    assert len(table) - len(whole) - 1 == len(shift.genres)
    # without real ratings there is no fidelity row
    no_real = shift_table(run_shift(hand_run(), test_genres=GENRES))
    assert "baseline" not in set(no_real["arm"])
    row = whole[(whole["arm"] == "als") & (whole["page"] == 2)].iloc[0]
    assert (row["n"], row["shift"], row["net_shift"]) == (3, 1.0, pytest.approx(0.875))
    assert math.isnan(whole[whole["arm"] == "control"].iloc[0]["net_shift"])
    drama = table[(table["genre"] == "Drama") & (table["arm"] == "als") & (table["page"] == 2)]
    assert drama.iloc[0]["net_shift"] == pytest.approx(0.75)
    assert math.isnan(drama.iloc[0]["kendall_tau"])
    stacked = stack_shift_tables([(7, "Specialist", shift), (8, None, shift)])
    assert list(stacked.columns[:2]) == ["user_id", "archetype"]
    assert len(stacked) == 2 * len(table)
    assert set(stacked["archetype"]) == {"Specialist", ""}
    assert stack_shift_tables([]).empty
    # CSV round trip keeps the figures
    assert pd.read_csv(io.StringIO(table.to_csv(index=False)))["shift"].sum() == (
        pytest.approx(table["shift"].sum())
    )


def test_json_ready(shift: RunShift) -> None:
    assert RunShift.model_validate_json(shift.model_dump_json()) == shift


def test_fidelity_pairs() -> None:
    pairs = fidelity_pairs(hand_run(), REAL)
    assert pairs.to_dict("list") == {
        "tmdb_id": [101, 102, 103],
        "predicted": [3.0, 4.0, 2.0],
        "real": [3.5, 4.0, 1.0],
    }
