"""The persona prompt of the ``llm`` backend, grounded as the seed study's.

The persona is told its rated history (title, its own rating, TMDB genres, overview) and what
it experienced since (its rating and how it felt), then asked to rate a numbered list of movies
(title, genres, overview) on 0.5–5.0 in 0.5 steps, each with a one-sentence feeling. Answers are
matched back by the number, never by the title the model echoes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from prefshift_simulator.metadata import MovieFacts

ResponseFormat = Literal["json_schema", "lines"]

HISTORY_OVERVIEW_CHARS = 300
ITEM_OVERVIEW_CHARS = 600

SYSTEM_PROMPT = (
    "You are role-playing one real movie viewer. Your past ratings and your recent viewing "
    "experiences are given below. Rate new movies exactly as this person would: follow their "
    "tastes as the ratings show them, not general critical opinion. Ratings go from 0.5 to 5.0 "
    "in steps of 0.5."
)

JSON_INSTRUCTIONS = (
    'Answer with JSON only: {"ratings": [{"item": <number>, "rating": <0.5-5.0>, '
    '"feeling": "<one sentence>"}]}, with exactly one entry for every numbered movie.'
)

LINE_INSTRUCTIONS = (
    "Answer with exactly one line per numbered movie and nothing else, in this format:\n"
    "MOVIE: [number] title; RATING: rating; FEELING: one sentence;"
)

#: The JSON schema the model's answer must follow (OpenAI structured outputs, strict mode).
RATINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ratings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "item": {"type": "integer"},
                    "rating": {"type": "number"},
                    "feeling": {"type": "string"},
                },
                "required": ["item", "rating", "feeling"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["ratings"],
    "additionalProperties": False,
}

RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "persona_ratings", "strict": True, "schema": RATINGS_SCHEMA},
}


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _genres(movie: MovieFacts) -> str:
    return ", ".join(movie.genres) if movie.genres else "unknown"


def _rating(value: float) -> str:
    return f"{value:.1f}"


def history_line(movie: MovieFacts, rating: float) -> str:
    line = f"- {movie.label} | your rating: {_rating(rating)} | genres: {_genres(movie)}"
    if movie.overview:
        line += f" | {_clip(movie.overview, HISTORY_OVERVIEW_CHARS)}"
    return line


def experience_line(movie: MovieFacts, rating: float, feeling: str) -> str:
    line = f"- {movie.label} | your rating: {_rating(rating)} | genres: {_genres(movie)}"
    if feeling.strip():
        line += f" | you felt: {_clip(feeling, 300)}"
    return line


def item_line(number: int, movie: MovieFacts) -> str:
    line = f"[{number}] {movie.label} | genres: {_genres(movie)}"
    if movie.overview:
        line += f" | {_clip(movie.overview, ITEM_OVERVIEW_CHARS)}"
    return line


def instructions(response_format: ResponseFormat) -> str:
    return JSON_INSTRUCTIONS if response_format == "json_schema" else LINE_INSTRUCTIONS


def persona_messages(
    *,
    history: Sequence[tuple[MovieFacts, float]],
    experiences: Sequence[tuple[MovieFacts, float, str]],
    items: Sequence[MovieFacts],
    response_format: ResponseFormat,
) -> list[dict[str, str]]:
    """The chat messages asking the persona to rate ``items`` (numbered from 1)."""
    sections = ["Movies you have rated before:"]
    sections.extend(history_line(movie, rating) for movie, rating in history)
    if experiences:
        sections.append("")
        sections.append("Movies you watched recently, in order, and how you felt about them:")
        sections.extend(experience_line(m, rating, text) for m, rating, text in experiences)
    sections.append("")
    sections.append(
        "Rate each of these movies as you would, from 0.5 to 5.0 in steps of 0.5, and say in "
        "one sentence how you feel about it. Refer to each movie by its number."
    )
    sections.extend(item_line(number, movie) for number, movie in enumerate(items, start=1))
    sections.append("")
    sections.append(instructions(response_format))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n".join(sections)},
    ]


def reask_message(
    problems: Mapping[int, str], items: Sequence[MovieFacts], response_format: ResponseFormat
) -> dict[str, str]:
    """The follow-up asking again for the movies that were missing or invalid."""
    lines = [
        "Some movies did not get a valid rating. Rate only these, by their numbers:",
        *(
            f"{item_line(number, items[number - 1])} (problem: {problem})"
            for number, problem in sorted(problems.items())
        ),
        "",
        instructions(response_format),
    ]
    return {"role": "user", "content": "\n".join(lines)}
