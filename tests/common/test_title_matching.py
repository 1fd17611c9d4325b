"""The rules that decide whether a title names a movie (pure; no database)."""

from __future__ import annotations

import pytest

from prefshift_common.movies import release_year
from prefshift_common.title_matching import match_score, title_form
from prefshift_common.title_resolver import search_hits


@pytest.mark.parametrize(
    ("wanted", "wanted_year", "found", "found_year"),
    [
        ("The Matrix", 1999, "Matrix, The", 1999),
        ("The Matrix", 2000, "Matrix, The", 1999),  # a year off: release dates differ
        ("The Matrix", None, "Matrix, The", 1999),
        ("Amélie", 2001, "Amelie", None),  # same title, year unknown
        ("The Godfather Part 2", 1974, "Godfather: Part II, The", 1974),
        ("Rocky Two", 1979, "Rocky II", 1979),
        ("Ocean's 11", 2001, "Ocean's Eleven", 2001),
        ("The Shawshenk Redemtion", 1994, "Shawshank Redemption, The", 1994),
        ("Spiderman", 2002, "Spider-Man", 2002),
        ("Borat", 2006, "Borat: Cultural Learnings of America for Make Benefit Glorious", 2006),
        ("Harry Potter and the Deathly Hallows", 2010, "Harry Potter and the Deathly Hallows: "
         "Part 1", 2010),
        ("Fast & Furious", 2009, "Fast and Furious", 2009),
    ],
)  # fmt: skip
def test_the_same_movie(
    wanted: str, wanted_year: int | None, found: str, found_year: int | None
) -> None:
    assert match_score(title_form(wanted), wanted_year, title_form(found), found_year)


@pytest.mark.parametrize(
    ("wanted", "wanted_year", "found", "found_year"),
    [
        ("Amanda Knox II", 1973, "Amanda Knox", 2016),
        ("Amanda Knox II", 2016, "Amanda Knox", 2016),  # sequel number, even in the same year
        ("Toy Story 2", 1999, "Toy Story", 1995),
        ("Two Weeks Notice 2", 2003, "Two Weeks Notice", 2002),  # "two" is a number too
        ("Toy Story", 1995, "Toy Story 2", 1995),
        ("Kill Bill: Vol. 2", 2004, "Kill Bill: Vol. 1", 2003),
        ("Alien: The Return", 1979, "Alien", 1979),  # a subtitle makes another movie
        ("Mad Max: Fury Road", 2015, "Mad Max: Beyond Thunderdome", 2015),
        ("Harry Potter and the Chamber of Secrets Returns", 2002, "Harry Potter and the "
         "Chamber of Secrets", 2002),  # a word added: long titles pass the ratio alone
        ("Harry Potter and the Goblet of Ice", 2005, "Harry Potter and the Goblet of Fire", 2005),
        ("The Matrix", 1985, "Matrix, The", 1999),  # same title, years apart
        ("Shawshank Redemtion", None, "Shawshank Redemption", 1994),  # near spelling, no year
        ("Shawshank Redemtion", 1994, "Shawshank Redemption", None),
        ("Heat", 1995, "Beat", 1995),
        ("Terminator Station", 2009, "Terminator Salvation", 2009),  # another word, not a typo
        ("Jurassic Dark", 1993, "Jurassic Park", 1993),
    ],
)  # fmt: skip
def test_another_movie(
    wanted: str, wanted_year: int | None, found: str, found_year: int | None
) -> None:
    assert match_score(title_form(wanted), wanted_year, title_form(found), found_year) is None


def test_title_forms() -> None:
    form = title_form("Star Wars: Episode IV - A New Hope (1977)")
    assert (form.main, form.subtitle) == ("star wars", "episode 4 a new hope")
    assert form.numbers == (4,)
    assert title_form("Harry Potter and the Deathly Hallows: Part 1").numbers == ()
    assert title_form("Mission: Impossible II").key == title_form("Mission Impossible 2").key
    assert title_form("Léon").key == title_form("LEON").key == "leon"


def test_search_results_carry_the_movielens_year_when_tmdb_has_no_date() -> None:
    body = {
        "results": [
            {"id": 1, "title": "A", "original_title": "A", "release_date": "1999-03-31"},
            {"id": 2, "title": "B", "release_date": "", "movielens_year": 2016},
            {"id": 3, "title": "C", "release_date": ""},
            {"id": "x", "title": "malformed"},
            "junk",
        ]
    }
    hits = search_hits(body)
    assert [(h.tmdb_id, h.names, h.year) for h in hits] == [
        (1, ("A",), 1999),
        (2, ("B",), 2016),
        (3, ("C",), None),
    ]
    assert release_year({"release_date": None, "year": 1980}) == 1980
    assert search_hits({"results": None}) == [] and search_hits([]) == []
