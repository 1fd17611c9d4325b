"""The embedded persona's anchoring to shown predictions, the re-rating designs simulated in
process, and the fit to human figures (with a recovery test of a known anchoring weight)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from prefshift_simulator.calibration.human import (
    HUMAN_FIGURES,
    DesignUser,
    fit_anchoring_weight,
    fit_human,
    fit_occasion_noise,
    measure_with_intervals,
    measures,
    simulate,
    static_scores,
)
from prefshift_simulator.embedded.model import EmbeddedPersonaModel, ModelParams, anchor
from prefshift_simulator.embedded.persona_models import shipped_persona_models


def _users(n: int = 60, items: int = 30) -> list[DesignUser]:
    """Synthetic users: 20 history ratings and ``items`` held-out real ratings each."""
    rng = np.random.default_rng(7)
    users = []
    for u in range(n):
        level = rng.uniform(2.5, 4.0)
        history = [
            (1000 + j, float(np.clip(np.round((level + rng.normal()) * 2) / 2, 0.5, 5.0)))
            for j in range(20)
        ]
        held = list(range(5000 + 100 * u, 5000 + 100 * u + items))
        real = np.clip(np.round((level + rng.normal(size=items)) * 2) / 2, 0.5, 5.0)
        users.append(DesignUser(u + 1, history, held, real))
    return users


def test_anchor_pulls_toward_the_shown_value_and_fades_with_distance() -> None:
    scores = np.array([3.0, 3.0, 3.0, 3.0])
    shown = np.array([np.nan, 4.0, 2.0, 5.0])
    linear = anchor(scores, shown, weight=0.5, distance_range=0.0)
    assert linear.tolist() == [3.0, 3.5, 2.5, 4.0]
    fading = anchor(scores, shown, weight=0.5, distance_range=1.0)
    assert fading[0] == 3.0
    assert fading[1] == pytest.approx(3.0 + 0.5 * np.exp(-1.0))
    assert fading[3] - 3.0 < (fading[1] - 3.0) * 2  # the far anchor pulls less per star
    assert anchor(scores, shown, weight=0.0, distance_range=0.0) is scores


def test_shown_moves_nothing_in_any_shipped_set_and_only_shown_movies_otherwise() -> None:
    users = _users(3)
    for name, model in shipped_persona_models().items():
        anchors = model.params.anchoring_weight > 0
        assert anchors == (name == "human"), name  # only the set fitted to people anchors
        persona = EmbeddedPersonaModel(model.params)
        user = users[0]
        kwargs = dict(
            user_id=user.user_id,
            history=user.history,
            experiences=[],
            items=user.items,
            facts={},
            stats=None,
            seed=3,
            occasion=1,
        )
        plain = [p.rating for p in persona.predict(**kwargs)]  # type: ignore[arg-type]
        shown = {user.items[0]: 5.0, user.items[1]: 0.5}
        with_shown = [p.rating for p in persona.predict(**kwargs, shown=shown)]  # type: ignore[arg-type]
        assert plain[2:] == with_shown[2:], name  # a movie shown with nothing never moves
        if anchors:
            assert with_shown[0] >= plain[0] and with_shown[1] <= plain[1]
            assert with_shown[:2] != plain[:2]
        else:
            assert plain == with_shown, name
    anchored = EmbeddedPersonaModel(dataclasses.replace(ModelParams(), anchoring_weight=1.0))
    user = users[0]
    ratings = anchored.predict(
        user_id=user.user_id,
        history=user.history,
        experiences=[],
        items=user.items[:3],
        facts={},
        stats=None,
        seed=0,
        shown={user.items[0]: 5.0, user.items[1]: 0.5},
    )
    assert [p.rating for p in ratings[:2]] == [5.0, 0.5]
    assert ratings[2].rating != 5.0 and ratings[2].rating != 0.5


def test_the_designs_measure_what_their_parameters_put_in() -> None:
    users = _users()
    model = EmbeddedPersonaModel(ModelParams())
    statics = static_scores(users, model=model, facts={}, stats=None)
    quiet = simulate(users, statics, ModelParams())
    # no noise: the persona rates alike on both occasions; no anchoring: no slope
    assert measures(quiet)["retest_rmse"] == 0.0
    assert abs(measures(quiet)["anchoring_slope"]) < 0.05
    noisy = simulate(
        users, statics, dataclasses.replace(ModelParams(), occasion_noise=0.5, anchoring_weight=0.4)
    )
    measured = measure_with_intervals(noisy, resamples=200)
    assert 0.5 < measured["retest_rmse"].value < 0.9
    slope = measured["anchoring_slope"]
    assert slope.low < 0.4 < slope.high and slope.low > 0.2
    assert measured["mean_change_up"].value > measured["mean_change_accurate"].value
    assert measured["mean_change_accurate"].value > measured["mean_change_down"].value
    assert measured["share_toward"].value > 0.5


@pytest.mark.slow
def test_recovery_of_a_known_anchoring_weight_and_occasion_noise() -> None:
    users = _users()
    params = dataclasses.replace(ModelParams(), occasion_noise=0.45, drift_noise=0.05)
    statics = static_scores(users, model=EmbeddedPersonaModel(params), facts={}, stats=None)
    for true_weight in (0.15, 0.4):
        known = dataclasses.replace(params, anchoring_weight=true_weight)
        figures = measures(simulate(users, statics, known, seed=11))
        recovered = fit_anchoring_weight(
            users, statics, params, target=figures["anchoring_slope"], seed=11
        )
        assert recovered == pytest.approx(true_weight, abs=0.03)
        sigma = fit_occasion_noise(users, statics, params, target=figures["retest_rmse"], seed=11)
        assert sigma == pytest.approx(0.45, abs=0.03)
    # through fit_human, with the slope given as a figure with a standard error
    known = dataclasses.replace(params, anchoring_weight=0.3)
    figures = measures(simulate(users, statics, known, seed=0))
    fit = fit_human(
        users,
        statics,
        params,
        retest_target=figures["retest_rmse"],
        slope_target=(figures["anchoring_slope"], 0.02),
        bootstrap=4,
    )
    assert fit.parameters["anchoring_weight"] == pytest.approx(0.3, abs=0.03)
    low, high = fit.intervals["anchoring_weight"]
    assert low < 0.3 < high
    assert fit.parameters["occasion_noise"] == pytest.approx(0.45, abs=0.03)


def test_human_figures_are_quoted_and_only_read_figures_are_numbers() -> None:
    retest = HUMAN_FIGURES["retest_rmse"]
    assert (retest.low, retest.high) == (0.557, 0.8156)
    assert "0.557 to 0.8156" in retest.quote
    assert retest.inside(0.6) is True and retest.inside(0.3) is False
    for figure in HUMAN_FIGURES.values():
        assert figure.paper and figure.quote and figure.differs
        if not figure.has_figure:
            assert figure.inside(0.5) is None
            assert "could not be read" in figure.differs
