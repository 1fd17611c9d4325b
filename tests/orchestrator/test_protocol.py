"""The test/persona selection: seeded, disjoint, genre-stratified, and the simulator's rule."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from prefshift_datasets.split import SplitMovie, split_persona_and_test
from prefshift_orchestrator.protocol import (
    NotEnoughRatings,
    UserMovie,
    call_seed,
    select_movies,
)

GENRES = ["Drama", "Comedy", "Action", "Horror", "Documentary"]


def _movies(n: int, seed: int = 0) -> list[UserMovie]:
    rng = random.Random(seed)
    weights = [50, 25, 15, 7, 3]
    return [
        UserMovie(
            tmdb_id=1000 + 7 * i,
            rating=rng.choice([1.0, 2.5, 3.0, 4.0, 5.0]),
            genres=(rng.choices(GENRES, weights)[0], "Romance"),
        )
        for i in range(n)
    ]


def test_sets_are_disjoint_sized_and_seeded() -> None:
    movies = _movies(300)
    first = select_movies(movies, test_size=30, persona_size=40, seed=1)
    again = select_movies(list(reversed(movies)), test_size=30, persona_size=40, seed=1)
    other = select_movies(movies, test_size=30, persona_size=40, seed=2)
    test = {m.tmdb_id for m in first.test}
    persona = {m.tmdb_id for m in first.persona}
    assert len(test) == 30 and len(persona) == 40 and not test & persona
    assert first == again  # input order does not matter
    assert {m.tmdb_id for m in other.test} != test


def test_sets_mirror_the_users_genre_mix() -> None:
    movies = _movies(500, seed=3)
    selection = select_movies(movies, test_size=30, persona_size=40, seed=5)
    share = Counter(m.primary_genre for m in movies)
    for chosen, size in ((selection.test, 30), (selection.persona, 40)):
        counts = Counter(m.primary_genre for m in chosen)
        for genre, n in share.items():
            # Largest remainder: each stratum within one movie of its proportional share.
            assert abs(counts[genre] - size * n / len(movies)) < 1.0 + 1e-9, (genre, counts)


def test_too_few_movies_is_refused_with_the_numbers() -> None:
    with pytest.raises(NotEnoughRatings, match=r"has 69 .* needs 70"):
        select_movies(_movies(69), test_size=30, persona_size=40, seed=0)
    exactly = select_movies(_movies(70), test_size=30, persona_size=40, seed=0)
    assert len(exactly.test) + len(exactly.persona) == 70


@pytest.mark.parametrize("seed", [0, 1, 99])
def test_a_run_picks_the_movies_of_the_shared_split(seed: int) -> None:
    """A run picks exactly the movies of the shared split rule, as `eval personas` does."""
    movies = _movies(400, seed=seed)
    ours = select_movies(movies, test_size=30, persona_size=40, seed=seed)
    theirs = split_persona_and_test(
        [SplitMovie(movie_id=m.tmdb_id, genres=m.genres) for m in movies],
        seed=seed,
        n_persona=40,
        n_test=30,
    )
    assert sorted(m.tmdb_id for m in ours.test) == sorted(theirs.test)
    assert sorted(m.tmdb_id for m in ours.persona) == sorted(theirs.persona)


def test_call_seeds_are_stable_and_distinct() -> None:
    assert call_seed(7, "als", 1, "experience") == call_seed(7, "als", 1, "experience")
    seeds = {call_seed(7, arm, page, "x") for arm in ("als", "random") for page in range(1, 5)}
    assert len(seeds) == 8
    assert all(0 <= s < 2**32 for s in seeds)
