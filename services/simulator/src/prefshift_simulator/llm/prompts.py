"""The persona prompt of the ``llm`` backend, grounded as the seed study's.

The persona is told its rated history (title, its own rating, TMDB genres, overview) and what
it experienced since (its rating and how it felt), then asked to rate a numbered list of movies
(title, genres, overview) on 0.5–5.0 in 0.5 steps, each with a one-sentence feeling. A movie
shown with a predicted rating (``RatingsRequest.shown``: a shown-prediction arm, the ``rerate``
design) carries it in its line as a recommender's page would ("Predicted for you: ★ 4.5").
Answers are matched back by the number, never by the title the model echoes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefshift_common.llm import Format
from prefshift_simulator.llm.parsing import GRID
from prefshift_simulator.metadata import MovieFacts

HISTORY_OVERVIEW_CHARS = 300
ITEM_OVERVIEW_CHARS = 600

SYSTEM_PROMPT = (
    "You are role-playing one real movie viewer. Your past ratings and your recent viewing "
    "experiences are given below. Rate new movies exactly as this person would: follow their "
    "tastes as the ratings show them, not general critical opinion. Ratings go from 0.5 to 5.0 "
    "in steps of 0.5."
)

JSON_INSTRUCTIONS = (
    'Answer with JSON only: {"ratings": {"1": {"rating": <0.5-5.0>, "feeling": "<one '
    'sentence>"}, "2": {...}, ...}}, with exactly one key for every numbered movie.'
)

LINE_INSTRUCTIONS = (
    "Answer with exactly one line per numbered movie and nothing else, in this format:\n"
    "MOVIE: [number] title; RATING: rating; FEELING: one sentence;"
)

#: Name of the response schema (OpenAI structured outputs).
SCHEMA_NAME = "persona_ratings"


def ratings_schema(n_items: int) -> dict[str, Any]:
    """The answer's JSON schema for ``n_items`` numbered movies, written so that constrained
    decoding cannot leave one out: every movie's number is a required key, and a rating is one
    of the ten values of the 0.5 grid."""
    entry = {
        "type": "object",
        "properties": {
            "rating": {"type": "number", "enum": list(GRID)},
            "feeling": {"type": "string"},
        },
        "required": ["rating", "feeling"],
        "additionalProperties": False,
    }
    numbers = [str(n) for n in range(1, n_items + 1)]
    return {
        "type": "object",
        "properties": {
            "ratings": {
                "type": "object",
                "properties": {number: entry for number in numbers},
                "required": numbers,
                "additionalProperties": False,
            }
        },
        "required": ["ratings"],
        "additionalProperties": False,
    }


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _genres(movie: MovieFacts) -> str:
    return ", ".join(movie.genres) if movie.genres else "unknown"


def _rating(value: float) -> str:
    return f"{value:.1f}"


def history_line(movie: MovieFacts, rating: float, *, compact: bool = False) -> str:
    line = f"- {movie.label} | your rating: {_rating(rating)} | genres: {_genres(movie)}"
    if movie.overview and not compact:
        line += f" | {_clip(movie.overview, HISTORY_OVERVIEW_CHARS)}"
    return line


def experience_line(movie: MovieFacts, rating: float, feeling: str) -> str:
    line = f"- {movie.label} | your rating: {_rating(rating)} | genres: {_genres(movie)}"
    if feeling.strip():
        line += f" | you felt: {_clip(feeling, 300)}"
    return line


def predicted_label(stars: float) -> str:
    """A predicted rating as a recommender's page shows it beside a movie."""
    return f"Predicted for you: ★ {stars:.1f}"


def item_line(number: int, movie: MovieFacts, predicted: float | None = None) -> str:
    line = f"[{number}] {movie.label} | genres: {_genres(movie)}"
    if predicted is not None:
        line += f" | {predicted_label(predicted)}"
    if movie.overview:
        line += f" | {_clip(movie.overview, ITEM_OVERVIEW_CHARS)}"
    return line


def instructions(response_format: Format) -> str:
    return LINE_INSTRUCTIONS if response_format == "lines" else JSON_INSTRUCTIONS


def persona_messages(
    *,
    history: Sequence[tuple[MovieFacts, float]],
    experiences: Sequence[tuple[MovieFacts, float, str]],
    items: Sequence[MovieFacts],
    response_format: Format,
    compact: bool = False,
    predicted: Sequence[float | None] = (),
) -> list[dict[str, str]]:
    """The chat messages asking the persona to rate ``items`` (numbered from 1); ``compact``
    leaves the history's overviews out (a shorter prompt, after a timeout). ``predicted``: the
    predicted rating shown beside each item (None: none shown), as a recommender's page shows
    it; without any, the prompt is as before."""
    sections = ["Movies you have rated before:"]
    sections.extend(history_line(movie, rating, compact=compact) for movie, rating in history)
    if experiences:
        sections.append("")
        sections.append("Movies you watched recently, in order, and how you felt about them:")
        sections.extend(experience_line(m, rating, text) for m, rating, text in experiences)
    sections.append("")
    sections.append(
        "Rate each of these movies as you would, from 0.5 to 5.0 in steps of 0.5, and say in "
        "one sentence how you feel about it. Refer to each movie by its number."
    )
    shown = list(predicted) + [None] * (len(items) - len(predicted))
    sections.extend(
        item_line(number, movie, stars)
        for number, (movie, stars) in enumerate(zip(items, shown, strict=True), start=1)
    )
    sections.append("")
    sections.append(instructions(response_format))
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n".join(sections)},
    ]
