"""Calibration of the embedded persona: the vectorised replay is the service's own model rating
for rating, and a calibration recovers the parameters a synthetic study was generated with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prefshift_simulator.calibration.fidelity import fidelity_table, recommended_pairs
from prefshift_simulator.calibration.fit import DEFAULT_BOUNDS, OPTIONAL_BOUNDS, calibrate
from prefshift_simulator.calibration.moments import kendall_tau_b
from prefshift_simulator.calibration.recorded import RecordedPage, RecordedUser
from prefshift_simulator.calibration.replay import (
    Prepared,
    draws,
    occasion_seed,
    prepare,
    replay,
)
from prefshift_simulator.embedded.collaborative import CollaborativeStats
from prefshift_simulator.embedded.model import N_GENRES, EmbeddedPersonaModel, ModelParams
from prefshift_simulator.embedded.persona_models import flat_parameters, with_parameters
from prefshift_simulator.embedded.population import ReferencePopulationError
from prefshift_simulator.evaluation import DatasetSnapshot, check_reference_population
from tests.simulator.conftest import PersonaCase

TRUE = {
    "exposure_rate": 0.03,
    "reinforcement_rate": 0.06,
    "satiation_rate": 0.05,  # not fitted (DEFAULT_BOUNDS): the literature value
    "satiation_decay": 0.9,
    "max_offset": 1.5,
    "lasting_noise": 0.3,
    "occasion_noise": 0.2,
    "drift_noise": 0.15,
}


def test_kendall_tau_b_matches_scipy() -> None:
    from scipy.stats import kendalltau

    rng = np.random.default_rng(1)
    x = rng.integers(1, 11, size=30) / 2.0
    y = np.clip(x + rng.integers(-2, 3, size=30) / 2.0, 0.5, 5.0)
    y[3] = np.nan
    ok = ~np.isnan(y)
    assert kendall_tau_b(x, y) == pytest.approx(kendalltau(x[ok], y[ok]).statistic)


def test_replay_rates_exactly_as_the_service_model(
    seed_snapshot: DatasetSnapshot, case: PersonaCase
) -> None:
    """Two arms, three pages of 15 movies, dynamics and both noises on: every experience and
    test rating of the vectorised replay equals ``EmbeddedPersonaModel.predict`` called page by
    page with the same seeds and occasions, as the orchestrator calls the service."""
    stats = CollaborativeStats(
        dataset="seed-cohort",
        user_ids=seed_snapshot.ratings["user_id"].to_numpy(),
        tmdb_ids=seed_snapshot.ratings["tmdb_id"].to_numpy(),
        ratings=seed_snapshot.ratings["rating"].to_numpy(),
    )
    params = with_parameters(
        ModelParams(), {**TRUE, "exposure_rate": 0.2, "max_offset": 0.6, "spread": 1.3}
    )
    model = EmbeddedPersonaModel(params)
    taken = {m.tmdb_id for m in case.history} | set(case.test)
    pool = [t for t in sorted(seed_snapshot.facts) if t not in taken][:90]
    history = [(m.tmdb_id, m.rating) for m in case.history]
    arms = {
        "a": [pool[0:15], pool[15:30], pool[30:45]],
        "b": [pool[45:60], pool[60:75], pool[75:90]],
    }
    user = RecordedUser(
        user_id=case.user_id,
        history=history,
        test=case.test,
        real={t: case.real[t] for t in case.test},
        baseline={},
        arms={
            arm: [RecordedPage(shown=p, experience_ratings={}, test_ratings={}) for p in pages]
            for arm, pages in arms.items()
        },
    )
    prepared = prepare([user], model=model, facts=seed_snapshot.facts, stats=stats)
    result = replay(prepared, draws(prepared, replications=1), flat_parameters(params))

    def rate(items: list[int], experiences: list[tuple[int, float]], seed: int, page: int):
        predictions = model.predict(
            user_id=case.user_id,
            history=history,
            experiences=experiences,
            items=items,
            facts=seed_snapshot.facts,
            stats=stats,
            seed=seed,
            occasion=page,
        )
        return [p.rating for p in predictions]

    assert result.baseline[0, 0].tolist() == rate(case.test, [], occasion_seed(0, page=0), 0)
    clipped = False
    for a, arm in enumerate(prepared.arms):
        experiences: list[tuple[int, float]] = []
        for page, shown in enumerate(arms[arm], start=1):
            rated = rate(shown, experiences, occasion_seed(0, page=page, arm=a), page)
            assert result.shown[0, 0, a, page - 1].tolist() == rated
            experiences += list(zip(shown, rated, strict=True))
            test = rate(case.test, experiences, occasion_seed(0, page=page), page)
            assert result.test[0, 0, a, page - 1].tolist() == test
        state = model.evolve(experiences, seed_snapshot.facts, prepared.reference[0])
        clipped |= bool(np.any(np.abs(state.offsets) >= params.dynamics.max_offset - 1e-9))
    assert clipped  # the bound was reached, so the clipped recursion was exercised


def _synthetic_study(n_users: int = 80, seed: int = 5) -> Prepared:
    """Users, arms and pages with random static scores and genres (no dataset needed)."""
    rng = np.random.default_rng(seed)
    n_arms, n_pages, n_test, n_shown = 3, 3, 20, 15

    def genres(*shape: int) -> np.ndarray:
        weights = np.zeros((*shape, N_GENRES))
        first = rng.integers(0, 6, size=shape)  # a few common genres, so that shifts add up
        second = rng.integers(0, N_GENRES, size=shape)
        np.put_along_axis(weights, first[..., None], 0.5, axis=-1)
        np.put_along_axis(weights, second[..., None], 0.5, axis=-1)
        return weights * (2.0 - (first == second)[..., None])  # one genre: weight 1

    test_static = rng.normal(3.5, 0.6, size=(n_users, n_test))
    # arms that show what the persona likes, what it does not, and anything
    appeal = np.array([0.8, -1.0, 0.0])[None, :, None, None]
    shown_static = rng.normal(3.4, 0.6, size=(n_users, n_arms, n_pages, n_shown)) + appeal
    nan = np.nan
    return Prepared(
        user_ids=np.arange(1, n_users + 1, dtype=np.int64),
        arms=["liked", "disliked", "random"],
        reference=np.full(n_users, 3.5),
        level=np.full(n_users, 3.5),
        test_ids=np.arange(1, n_test + 1)[None].repeat(n_users, 0).astype(np.int64),
        test_static=test_static,
        test_genres=genres(n_users, n_test),
        test_mask=np.ones((n_users, n_test), dtype=bool),
        shown_ids=(1000 + np.arange(n_arms * n_pages * n_shown))
        .reshape(1, n_arms, n_pages, n_shown)
        .repeat(n_users, 0)
        .astype(np.int64),
        shown_static=shown_static,
        shown_genres=genres(n_users, n_arms, n_pages, n_shown),
        shown_mask=np.ones((n_users, n_arms, n_pages, n_shown), dtype=bool),
        real=np.clip(
            np.round((test_static + rng.normal(0, 0.8, test_static.shape)) * 2) / 2, 0.5, 5
        ),
        baseline=np.full((n_users, n_test), nan),
        test_recorded=np.full((n_users, n_arms, n_pages, n_test), nan),
        shown_recorded=np.full((n_users, n_arms, n_pages, n_shown), nan),
    )


@pytest.mark.slow
def test_calibration_recovers_the_parameters_a_study_was_generated_with() -> None:
    """A study generated by the embedded persona's replay with known dynamics and noise — with
    noise draws the fit never sees — is calibrated from the literature constants; the known
    parameters lie within the bootstrap intervals the calibration reports, and the fit moves
    every fitted parameter towards them."""
    study = _synthetic_study()
    generated = replay(study, draws(study, replications=1, salt=7), TRUE)
    study.baseline = generated.baseline[0]
    study.test_recorded = generated.test[0]
    study.shown_recorded = generated.shown[0]
    start = flat_parameters(ModelParams())  # literature: 0.02, 0.04, 0.05, no noise
    calibration = calibrate(
        study, start=start, bootstrap=12, replications=2, max_generations=10, seed=3
    )
    assert calibration.objective_after < calibration.objective_before / 10
    for name in calibration.fitted:
        low, high = calibration.intervals[name]
        assert low <= TRUE[name] <= high, (name, TRUE[name], (low, high))
        assert abs(calibration.parameters[name] - TRUE[name]) < abs(start[name] - TRUE[name])


def test_fidelity_separates_a_users_level_from_the_order_of_the_users_movies() -> None:
    rng = np.random.default_rng(0)
    levels = rng.uniform(1.5, 4.5, size=40)
    real = [level + rng.normal(0.0, 0.5, size=20) for level in levels]
    # right about each user's level, blind to the order of the user's movies
    levels_only = [np.full(20, level) + rng.normal(0.0, 0.05, size=20) for level in levels]
    # right about the order, wrong about every level
    order_only = [r - r.mean() + 3.0 for r in real]
    rows = {
        row.name: row
        for row in fidelity_table(
            real,
            {"levels": levels_only, "order": order_only, "real": real},
            reference="levels",
            resamples=200,
        )
    }
    assert rows["levels"].values["pearson"] > 0.7
    assert abs(rows["levels"].values["pearson_within"]) < 0.2
    assert rows["order"].values["pearson_within"] == pytest.approx(1.0)
    assert rows["order"].values["pearson"] < 0.6
    assert rows["real"].values["pearson_within"] == pytest.approx(1.0)
    centred = np.concatenate([p - p.mean() for p in levels_only])
    direct = np.corrcoef(centred, np.concatenate([r - r.mean() for r in real]))[0, 1]
    assert rows["levels"].values["pearson_within"] == pytest.approx(direct)
    low, high = rows["order"].difference_intervals["pearson_within"]
    assert low > 0.5 and high <= 1.5  # paired on the same users


def test_recommended_pairs_are_the_shown_movies_the_user_really_rated_on_first_showing() -> None:
    def page(ratings: dict[int, float]) -> RecordedPage:
        return RecordedPage(shown=list(ratings), experience_ratings=ratings, test_ratings={})

    user = RecordedUser(
        user_id=7,
        history=[(1, 4.0), (2, 3.0), (3, 5.0)],  # movie 3 is a test movie too
        test=[3, 4],
        real={3: 5.0, 4: 2.0},
        baseline={3: 4.5, 4: 2.5},
        arms={
            # 10 shown on page 2 here, on page 1 in "b": page 1 wins over the arm's name
            "a": [page({1: 4.0, 11: 3.0}), page({10: 2.0, 12: 4.5})],
            "b": [page({10: 3.5, 4: 3.0, 13: 1.0}), page({11: 5.0})],
        },
    )
    known = {7: {1: 4.0, 2: 3.0, 4: 2.0, 10: 4.0, 11: 2.5, 12: 5.0, 99: 1.0}}
    (pairs,) = recommended_pairs([user], known)
    # persona (1) and test (4) movies are out, and so is 13, which the user never rated
    assert pairs.items == [10, 11, 12]
    assert pairs.real.tolist() == [4.0, 2.5, 5.0]
    assert pairs.recorded.tolist() == [3.5, 3.0, 4.5]  # 11: page 1 of "a", not page 2 of "b"
    assert pairs.history == [(1, 4.0), (2, 3.0)]  # a test movie is never in the history
    assert recommended_pairs([user], {8: {10: 4.0}}) == []


def _snapshot(name: str, rows: list[tuple[int, int, float]]) -> DatasetSnapshot:
    ratings = pd.DataFrame(rows, columns=["user_id", "tmdb_id", "rating"])
    return DatasetSnapshot(name=name, ratings=ratings, facts={}, archetypes={})


def test_a_reference_population_must_hold_the_cohorts_ratings_under_the_same_ids() -> None:
    cohort = _snapshot("cohort", [(7, 1, 4.0), (7, 2, 3.0), (9, 1, 2.0)])
    drawn_from = _snapshot("population", [(7, 1, 4.0), (7, 2, 3.0), (9, 1, 2.0), (11, 1, 5.0)])
    assert check_reference_population(cohort, drawn_from) == 1.0
    renumbered = _snapshot("renumbered", [(70, 1, 4.0), (70, 2, 3.0), (90, 1, 2.0)])
    with pytest.raises(ReferencePopulationError, match=r"holds 0\.0% of 'cohort'"):
        check_reference_population(cohort, renumbered)
    # the same ids, another person: the ratings do not agree
    others = _snapshot("others", [(7, 1, 1.0), (7, 2, 3.0), (9, 1, 2.0)])
    with pytest.raises(ReferencePopulationError, match=r"holds 66\.7%"):
        check_reference_population(cohort, others)


@pytest.mark.slow
def test_calibration_recovers_a_spread_it_is_asked_to_fit() -> None:
    """The same synthetic study generated with ratings spread 1.5 times around the persona's
    level: fitted with ``--fit spread``, the known spread and noise lie within the reported
    intervals (a lasting noise widens the spread too, but not in step with the real ratings,
    so the two are told apart)."""
    study = _synthetic_study(seed=11)
    truth = {**TRUE, "spread": 1.5}
    generated = replay(study, draws(study, replications=1, salt=7), truth)
    study.baseline = generated.baseline[0]
    study.test_recorded = generated.test[0]
    study.shown_recorded = generated.shown[0]
    start = flat_parameters(ModelParams())
    calibration = calibrate(
        study,
        start=start,
        bounds={**DEFAULT_BOUNDS, **OPTIONAL_BOUNDS},
        bootstrap=12,
        replications=2,
        max_generations=10,
        seed=3,
    )
    assert "spread" in calibration.fitted
    for name in calibration.fitted:
        low, high = calibration.intervals[name]
        assert low <= truth[name] <= high, (name, truth[name], (low, high))
    assert abs(calibration.parameters["spread"] - 1.5) < 0.25
