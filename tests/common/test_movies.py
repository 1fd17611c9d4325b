"""The movie vocabulary (``prefshift_common.movies``): the awkward MovieLens titles, pinned once.

Every service reads titles, years and genres through this module, so a row here holds for the
recommender's title matching, tmdb-proxy's offline records and search, and the simulator's
prompts alike.
"""

from __future__ import annotations

import pytest

from prefshift_common.contracts import TmdbMovie
from prefshift_common.movies import (
    TMDB_GENRE_NAMES,
    TMDB_GENRES,
    display_title,
    display_titles,
    movie_label,
    readable_title,
    split_movielens_genres,
    split_title,
    split_year,
    title_key,
    title_keys,
    tmdb_genre,
    tmdb_genres,
    year_from_date,
    year_from_title,
)

# MovieLens title → (display title, original title, year, keys)
TITLES = [
    ("Matrix, The (1999)", "The Matrix", "The Matrix", 1999, ["matrix"]),
    ("Toy Story (1995)", "Toy Story", "Toy Story", 1995, ["toy story"]),
    ("Seven (a.k.a. Se7en) (1995)", "Seven", "Seven", 1995, ["seven", "se7en"]),
    (
        "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
        "The City of Lost Children",
        "La Cité des enfants perdus",
        1995,
        ["city of lost children", "cite des enfants perdus"],
    ),
    (
        "Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)",
        "Amelie",
        "Le Fabuleux destin d'Amélie Poulain",
        2001,
        ["amelie", "fabuleux destin damelie poulain"],
    ),
    (
        "Léon: The Professional (a.k.a. The Professional) (Léon) (1994)",
        "Léon: The Professional",
        "Léon",
        1994,
        ["leon the professional", "professional", "leon"],
    ),
    ("Avventura, L' (1960)", "L'Avventura", "L'Avventura", 1960, ["lavventura"]),
    ("Boot, Das (1981)", "Das Boot", "Das Boot", 1981, ["boot"]),
    (
        "(500) Days of Summer (2009)",
        "(500) Days of Summer",
        "(500) Days of Summer",
        2009,
        ["500 days of summer"],
    ),
    (
        "Babe: Pig in the City",
        "Babe: Pig in the City",
        "Babe: Pig in the City",
        None,
        ["babe pig in the city"],
    ),
    ("Fast & Furious (2009)", "Fast & Furious", "Fast & Furious", 2009, ["fast and furious"]),
    ("Schindler's List (1993)", "Schindler's List", "Schindler's List", 1993, ["schindlers list"]),
    ("Cosmos (1980– )", "Cosmos", "Cosmos", 1980, ["cosmos"]),
    ("Sherlock (2010 - 2017)", "Sherlock", "Sherlock", 2010, ["sherlock"]),
]


@pytest.mark.parametrize(("movielens", "title", "original", "year", "keys"), TITLES)
def test_awkward_movielens_titles(
    movielens: str, title: str, original: str, year: int | None, keys: list[str]
) -> None:
    assert display_title(movielens) == title
    assert display_titles(movielens) == (title, original)
    assert year_from_title(movielens) == year
    assert title_keys(movielens) == keys
    assert title_key(movielens) == title_keys(movielens)[0] or "(" in movielens


@pytest.mark.parametrize(
    ("written", "same_as"),
    [
        ("The Matrix", "Matrix, The (1999)"),
        ("the matrix", "Matrix, The"),
        ("Matrix", "The Matrix"),
        ("AMÉLIE", "Amelie"),
        ("Schindlers List", "Schindler's List"),
        ("Fast and Furious", "Fast & Furious"),
        ("La Cité des enfants perdus", "Cité des enfants perdus, La"),
        ("L'Avventura", "Avventura, L'"),
        ("Das Boot", "Boot, Das"),
    ],
)
def test_ways_of_writing_a_title_share_a_key(written: str, same_as: str) -> None:
    assert title_key(written) == title_key(same_as)


def test_a_title_is_never_reduced_to_nothing() -> None:
    assert title_key("The") == "the"
    assert title_key("A") == "a"
    assert title_key("Die Hard") == "hard"  # "die" is an article; both sides drop it alike
    assert split_title("")[0] == ""


def test_readable_title_keeps_brackets_and_fronts_the_article() -> None:
    assert readable_title("Godfather, The (1972)") == "The Godfather"
    assert readable_title("Seven (a.k.a. Se7en) (1995)") == "Seven (a.k.a. Se7en)"
    assert readable_title("Heat") == "Heat"
    assert movie_label("Heat", 1995) == "Heat (1995)" and movie_label("Heat", None) == "Heat"


def test_split_year() -> None:
    assert split_year("Toy Story (1995)") == ("Toy Story", 1995)
    assert split_year("1984 (1984)") == ("1984", 1984)
    assert split_year("2001: A Space Odyssey") == ("2001: A Space Odyssey", None)


@pytest.mark.parametrize(
    ("value", "year"),
    [("1999-03-31", 1999), ("1999", 1999), ("", None), (None, None), ("soon", None),
     (2004, 2004), (True, None), (1999.0, None)],
)  # fmt: skip
def test_year_from_date(value: object, year: int | None) -> None:
    assert year_from_date(value) == year


def test_tmdb_movie_year_prefers_the_release_date() -> None:
    assert TmdbMovie(id=1, title="x", release_date="1999-03-31").year == 1999
    assert TmdbMovie(id=1, title="x", release_date="", movielens_year=1995).year == 1995
    assert TmdbMovie(id=1, title="x", release_date=None).year is None


def test_genres_one_vocabulary() -> None:
    assert tmdb_genres(["Sci-Fi", "Children", "IMAX", "Drama", "Sci-Fi", "Science Fiction"]) == (
        "Science Fiction",
        "Family",
        "Drama",
    )
    assert tmdb_genre("Film-Noir") == "Crime" and tmdb_genre("Musical") == "Music"
    assert tmdb_genre("science fiction") == "Science Fiction"
    assert tmdb_genre("(no genres listed)") is None
    assert split_movielens_genres("Adventure|Children") == ("Adventure", "Children")
    assert split_movielens_genres("(no genres listed)") == ()
    # the persona's genre axes: TMDB's list, alphabetically (the embedded model's order)
    assert tuple(sorted(TMDB_GENRES.values())) == TMDB_GENRE_NAMES
    assert TMDB_GENRE_NAMES[:3] == ("Action", "Adventure", "Animation")
    assert TMDB_GENRE_NAMES[-5:] == ("Science Fiction", "TV Movie", "Thriller", "War", "Western")
