"""Small pure parts: the metadata cache, titles and genres, and reading a model's answer."""

from __future__ import annotations

import pytest

from prefshift_simulator.llm.parsing import parse_answer, parse_rating
from prefshift_simulator.metadata import CachedMetadata, MovieFacts


class CountingSource:
    def __init__(self) -> None:
        self.asked: list[list[int]] = []

    async def fetch(self, tmdb_ids: list[int]) -> dict[int, MovieFacts]:
        self.asked.append(list(tmdb_ids))
        return {t: MovieFacts(tmdb_id=t, title=f"M{t}") for t in tmdb_ids if t != 404}


async def test_cache_asks_the_source_once_for_what_it_lacks() -> None:
    source = CountingSource()
    cache = CachedMetadata(source, ttl=60)
    first = await cache.fetch([1, 2, 404])
    assert set(first) == {1, 2}
    second = await cache.fetch([2, 3, 1, 404])
    assert list(second) == [2, 3, 1]
    assert source.asked == [[1, 2, 404], [3, 404]]  # unknown ids are asked for again
    expired = CachedMetadata(source, ttl=1e-9)
    await expired.fetch([1])
    await expired.fetch([1])
    assert source.asked[-2:] == [[1], [1]]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (4, 4.0),
        ("3.5", 3.5),
        ("4/5", 4.0),
        ("4.0 stars", 4.0),
        (3.7, 3.5),
        (0.2, None),
        (5.5, None),
        ("great", None),
        (True, None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_parse_rating(raw: object, expected: float | None) -> None:
    assert parse_rating(raw) == expected


def test_answers_are_read_by_number_only() -> None:
    content = "\n".join(
        [
            "Here you go:",
            "MOVIE: [2] The Wrong Title; RATING: 4.5; FEELING: Lovely.;",
            "**MOVIE: 1. Another Title; RATING: 2; FEELING: Meh;**",
            "MOVIE: Heat; RATING: 5; FEELING: no number, so not used;",
            "MOVIE: [9] Out of range; RATING: 3; FEELING: ignored;",
            "MOVIE: [3] X; RATING: eleven; FEELING: bad;",
        ]
    )
    answer = parse_answer(content, 3)
    assert answer.format == "lines"
    assert answer.ratings == {2: (4.5, "Lovely."), 1: (2.0, "Meh")}
    assert set(answer.problems) == {3}


def test_json_inside_prose_and_conflicting_duplicates() -> None:
    content = (
        'Sure! ```json\n{"ratings": [{"item": 1, "rating": 4, "feeling": "a"}, '
        '{"item": 1, "rating": 2, "feeling": "b"}, {"item": "[2]", "rating": 3, '
        '"feeling": "c"}]}\n```'
    )
    answer = parse_answer(content, 2)
    assert answer.format == "json"
    assert answer.ratings == {2: (3.0, "c")}
    assert "more than once" in answer.problems[1]
    assert parse_answer("no answer at all", 2).ratings == {}
