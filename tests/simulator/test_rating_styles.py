"""Ratings and answers as models and people really write them (a corpus of answer styles):
what is read, what it means, and why the rest is refused."""

from __future__ import annotations

import json

import pytest

from prefshift_simulator.llm.parsing import parse_answer, read_rating
from prefshift_simulator.llm.prompts import ratings_schema

READ: list[tuple[object, float]] = [
    ("4", 4.0),
    ("4.0", 4.0),
    ("4/5", 4.0),
    ("4 / 5", 4.0),
    ("4 out of 5", 4.0),
    ("4 stars", 4.0),
    ("4 Stars.", 4.0),
    ("3.5/5 stars", 3.5),
    ("★★★★☆", 4.0),
    ("★★★½☆", 3.5),
    ("★★★★★", 5.0),
    ("★☆☆☆☆", 1.0),
    ("★★★", 3.0),
    ("8/10", 4.0),
    ("7/10", 3.5),
    ("7 out of 10", 3.5),
    ("85/100", 4.5),
    ("four", 4.0),
    ("Four stars", 4.0),
    ("three and a half", 3.5),
    ("three and a half stars", 3.5),
    ("two out of five", 2.0),
    ("half", 0.5),
    ("3½", 3.5),
    ("3 1/2", 3.5),
    ("3,5", 3.5),
    ("Rating: 4/5", 4.0),
    ("score: 2.5", 2.5),
    (4, 4.0),
    (4.5, 4.5),
    (4.3, 4.5),
    (0.5, 0.5),
]

REFUSED: list[tuple[object, str]] = [
    ("great", "not a number of stars"),
    ("4-5", "not a number of stars"),
    ("4 or 5", "not a number of stars"),
    ("11/10", "not on 0.5-5.0"),
    ("0", "not on 0.5-5.0"),
    ("6", "not on 0.5-5.0"),
    ("-1", "not a number of stars"),
    ("3/7", "scale of 7"),
    ("★★★★★★", "not on 0.5-5.0"),
    ("★½½☆☆", "not a row of stars"),
    ("", "empty"),
    (None, "not a rating"),
    (True, "not a rating"),
    ([4], "not a rating"),
    (float("nan"), "not on 0.5-5.0"),
]


@pytest.mark.parametrize(("written", "meant"), READ)
def test_ratings_as_written_are_read(written: object, meant: float) -> None:
    assert read_rating(written) == (meant, "")


@pytest.mark.parametrize(("written", "reason"), REFUSED)
def test_anything_else_is_invalid_with_a_clear_reason(written: object, reason: str) -> None:
    rating, problem = read_rating(written)
    assert rating is None and reason in problem


ANSWERS: list[tuple[str, str, dict[int, float]]] = [
    (
        "keyed JSON (the schema's shape)",
        '{"ratings": {"1": {"rating": 4, "feeling": "a"}, "2": {"rating": "3/5", "feeling": "b"}}}',
        {1: 4.0, 2: 3.0},
    ),
    (
        "a JSON list, fenced, in prose",
        'Sure! ```json\n[{"item": 2, "rating": "★★☆☆☆"}, {"item": "[1]", "rating": 5}]\n```',
        {1: 5.0, 2: 2.0},
    ),
    ("numbers only", '{"1": 4.5, "2": "four"}', {1: 4.5, 2: 4.0}),
    (
        "cut off mid-JSON",
        '{"ratings": {"1": {"rating": 4.5, "feeling": "x"}, "2": {"rating": 2, "feel',
        {1: 4.5},
    ),
    (
        "the seed's lines, bold",
        "**MOVIE: [1] A; RATING: 4 out of 5; FEELING: fine;**\nMOVIE: [2] B; RATING: 8/10; "
        "FEELING: ok;",
        {1: 4.0, 2: 4.0},
    ),
    ("a refusal", "I'm sorry, but I can't rate movies.", {}),
    (
        "one movie rated twice differently (neither kept) and one out of range",
        '{"ratings": [{"item": 1, "rating": 4}, {"item": 1, "rating": 2}, '
        '{"item": 9, "rating": 3}]}',
        {},
    ),
]


@pytest.mark.parametrize(("style", "content", "ratings"), ANSWERS, ids=[a[0] for a in ANSWERS])
def test_answer_styles(style: str, content: str, ratings: dict[int, float]) -> None:
    parsed = parse_answer(content, 2)
    assert {n: r for n, (r, _) in parsed.ratings.items()} == ratings


def test_the_schema_makes_every_asked_movie_a_required_key_and_ratings_the_grid() -> None:
    schema = ratings_schema(3)
    ratings = schema["properties"]["ratings"]
    assert ratings["required"] == ["1", "2", "3"] and ratings["additionalProperties"] is False
    assert ratings["properties"]["2"]["properties"]["rating"]["enum"] == [
        0.5,
        1.0,
        1.5,
        2.0,
        2.5,
        3.0,
        3.5,
        4.0,
        4.5,
        5.0,
    ]
    json.dumps(schema)  # serialisable as sent
