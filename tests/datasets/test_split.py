"""The protocol's persona/test split: disjoint, sized, genre-stratified, seeded."""

from __future__ import annotations

from collections import Counter

import pytest

from prefshift_datasets.split import NotEnoughRatings, SplitMovie, split_persona_and_test

GENRES = ("Drama", "Comedy", "Horror", "Documentary")


def _movies(n: int) -> list[SplitMovie]:
    # 50% Drama, 30% Comedy, 15% Horror, 5% Documentary
    shares = [0.5, 0.3, 0.15, 0.05]
    movies: list[SplitMovie] = []
    for genre, share in zip(GENRES, shares, strict=True):
        start = len(movies)
        movies.extend(
            SplitMovie(1000 + start + i, (genre, "Thriller")) for i in range(int(n * share))
        )
    return movies


def test_split_is_disjoint_and_sized() -> None:
    split = split_persona_and_test(_movies(400), seed=3)
    assert len(split.persona) == 40 and len(split.test) == 30
    assert not set(split.persona) & set(split.test)
    assert len(set(split.persona)) == 40 and len(set(split.test)) == 30


def test_split_is_stratified_by_primary_genre() -> None:
    movies = _movies(400)
    genre_of = {m.movie_id: m.primary_genre for m in movies}
    split = split_persona_and_test(movies, seed=11)
    test = Counter(genre_of[i] for i in split.test)
    persona = Counter(genre_of[i] for i in split.persona)
    # largest remainder: 30 × (.5, .3, .15, .05) = 15, 9, 4.5, 1.5 → 15, 9, and 6 for the rest
    assert test["Drama"] == 15 and test["Comedy"] == 9
    assert (test["Horror"], test["Documentary"]) in {(4, 2), (5, 1)}
    assert persona == {"Drama": 20, "Comedy": 12, "Horror": 6, "Documentary": 2}


def test_split_is_seeded_and_ignores_input_order() -> None:
    movies = _movies(300)
    first = split_persona_and_test(movies, seed=5)
    assert split_persona_and_test(list(reversed(movies)), seed=5) == first
    others = {split_persona_and_test(movies, seed=s) for s in range(6, 12)}
    assert any(other != first for other in others)


def test_split_refuses_too_few_ratings() -> None:
    with pytest.raises(NotEnoughRatings, match="70"):
        split_persona_and_test(_movies(100)[:69], seed=0)
    split = split_persona_and_test(_movies(100)[:70], seed=0)
    assert len(set(split.persona) | set(split.test)) == 70


def test_movies_without_genres_form_their_own_stratum() -> None:
    movies = [SplitMovie(i, ()) for i in range(1, 51)] + [
        SplitMovie(i, ("Drama",)) for i in range(51, 101)
    ]
    split = split_persona_and_test(movies, seed=1, n_persona=20, n_test=10)
    assert sum(1 for i in split.test if i <= 50) == 5
    assert sum(1 for i in split.persona if i <= 50) == 10
