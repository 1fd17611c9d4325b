"""The embedded model itself: nothing of the persona's own user in the dataset reaches its
predictions, and a persona's ratings are reproducible."""

from __future__ import annotations

import numpy as np
import pytest

from prefshift_simulator.embedded.collaborative import CollaborativeStats
from prefshift_simulator.embedded.model import EmbeddedPersonaModel, ModelParams, round_rating
from prefshift_simulator.embedded.noise import response_noise
from prefshift_simulator.embedded.persona_models import shipped_persona_models
from prefshift_simulator.evaluation import DatasetSnapshot
from tests.simulator.conftest import PersonaCase


def _stats(snapshot: DatasetSnapshot, ratings: np.ndarray) -> CollaborativeStats:
    return CollaborativeStats(
        dataset="seed-cohort",
        user_ids=snapshot.ratings["user_id"].to_numpy(),
        tmdb_ids=snapshot.ratings["tmdb_id"].to_numpy(),
        ratings=ratings,
    )


def _scores(
    model: EmbeddedPersonaModel,
    snapshot: DatasetSnapshot,
    stats: CollaborativeStats,
    case: PersonaCase,
    user_id: int | None,
) -> list[float]:
    predictions = model.predict(
        user_id=user_id,
        history=[(m.tmdb_id, m.rating) for m in case.history],
        experiences=[],
        items=case.test,
        facts=snapshot.facts,
        stats=stats,
        seed=0,
    )
    return [p.score for p in predictions]


@pytest.mark.parametrize("persona_model", sorted(shipped_persona_models()))
def test_the_users_own_held_out_ratings_never_reach_the_persona(
    seed_snapshot: DatasetSnapshot, case: PersonaCase, persona_model: str
) -> None:
    model = EmbeddedPersonaModel(shipped_persona_models()[persona_model].params)
    real = seed_snapshot.ratings["rating"].to_numpy().astype(np.float64)
    # the user's real ratings of its test movies, flipped to the other end of the scale
    own_test = (seed_snapshot.ratings["user_id"].to_numpy() == case.user_id) & np.isin(
        seed_snapshot.ratings["tmdb_id"].to_numpy(), case.test
    )
    assert own_test.sum() == len(case.test)
    flipped = real.copy()
    flipped[own_test] = 5.5 - flipped[own_test]
    original, altered = _stats(seed_snapshot, real), _stats(seed_snapshot, flipped)

    with_user = _scores(model, seed_snapshot, original, case, case.user_id)
    assert np.allclose(with_user, _scores(model, seed_snapshot, altered, case, case.user_id))
    # the check has teeth: were the user not excluded, the flipped ratings would show
    leaky = _scores(model, seed_snapshot, original, case, None)
    leaky_altered = _scores(model, seed_snapshot, altered, case, None)
    assert not np.allclose(leaky, leaky_altered)


def test_scores_are_reproducible_and_noise_is_seeded(
    seed_snapshot: DatasetSnapshot, case: PersonaCase
) -> None:
    stats = _stats(seed_snapshot, seed_snapshot.ratings["rating"].to_numpy())
    quiet = EmbeddedPersonaModel(ModelParams())
    noisy = EmbeddedPersonaModel(ModelParams(occasion_noise=0.5))

    def run(model: EmbeddedPersonaModel, seed: int) -> list[float]:
        return [
            p.score
            for p in model.predict(
                user_id=case.user_id,
                history=[(m.tmdb_id, m.rating) for m in case.history],
                experiences=[],
                items=case.test,
                facts=seed_snapshot.facts,
                stats=stats,
                seed=seed,
            )
        ]

    assert run(quiet, 1) == run(quiet, 2)
    assert run(noisy, 1) == run(noisy, 1)
    difference = np.array(run(noisy, 1)) - np.array(run(quiet, 1))
    assert 0.2 < difference.std() < 0.8  # σ = 0.5 over 30 movies


def test_spread_widens_the_ratings_around_the_persona_level_and_keeps_their_order(
    seed_snapshot: DatasetSnapshot, case: PersonaCase
) -> None:
    stats = _stats(seed_snapshot, seed_snapshot.ratings["rating"].to_numpy())

    def run(spread: float) -> tuple[np.ndarray, float]:
        model = EmbeddedPersonaModel(ModelParams(spread=spread))
        scores = _scores(model, seed_snapshot, stats, case, case.user_id)
        static = model.static_scores(
            user_id=case.user_id,
            history=[(m.tmdb_id, m.rating) for m in case.history],
            items=case.test,
            facts=seed_snapshot.facts,
            stats=stats,
        )
        return np.array(scores), static.level

    plain, level = run(1.0)
    wide, wide_level = run(1.8)
    assert wide_level == pytest.approx(level)  # the persona's level does not move
    assert np.allclose(wide - level, 1.8 * (plain - level))
    assert (np.argsort(wide) == np.argsort(plain)).all()
    assert np.std(wide) > 1.7 * np.std(plain)


def test_round_rating_snaps_to_half_stars_in_range() -> None:
    assert [round_rating(x) for x in (-3.0, 0.74, 0.75, 3.24, 3.25, 4.9, 9.0)] == [
        0.5,
        0.5,
        1.0,
        3.0,
        3.5,
        5.0,
        5.0,
    ]


def test_offsets_follow_the_clipped_recursion() -> None:
    """20 experiences pushing Documentary up by 0.1 each, then 10 pushing it down by 0.1: the
    clipped recursion peaks at Δmax = 1.5 and ends at 0.5 (the plain sum would say 1.0)."""
    from prefshift_simulator.embedded.dynamics import DynamicsParams, evolve

    params = DynamicsParams(
        exposure_rate=0.0, reinforcement_rate=0.1, satiation_rate=0.0, max_offset=1.5
    )
    weights = np.zeros((30, 3))
    weights[:, 0] = 1.0
    ratings = np.array([4.0] * 20 + [2.0] * 10)  # reference 3.0: +1 then −1 per experience
    state = evolve(weights, ratings, reference_rating=3.0, params=params)
    assert np.allclose(state.offsets, [0.5, 0.0, 0.0])
    assert np.allclose(state.reinforcement, [1.0, 0.0, 0.0])
    within = evolve(weights[:10], ratings[:10], reference_rating=3.0, params=params)
    assert np.allclose(within.offsets, [1.0, 0.0, 0.0])
    decayed = evolve(
        weights[:3],
        ratings[:3],
        reference_rating=3.0,
        params=DynamicsParams(satiation_rate=0.5, satiation_decay=0.5),
    )
    assert np.allclose(decayed.satiation, [1 + 0.5 + 0.25, 0.0, 0.0])


def test_the_drift_walks_from_the_baseline_one_step_per_page() -> None:
    """No drift on the baseline; one path whatever the request's seed (arms share it); its
    variance grows by σ_D² per page, with independent steps."""
    movies = np.arange(1, 20_001)

    def drift(occasion: int, seed: int = 1) -> np.ndarray:
        return response_noise(
            user_id=7,
            movies=movies,
            seed=seed,
            occasion=occasion,
            lasting=0.0,
            per_occasion=0.0,
            drift=0.1,
        )

    assert not drift(0).any()
    assert np.array_equal(drift(3, seed=1), drift(3, seed=2))
    for page in (1, 4):
        assert abs(drift(page).var() / (page * 0.01) - 1) < 0.05
    step = drift(2) - drift(1)
    assert abs(np.corrcoef(step, drift(1))[0, 1]) < 0.03
