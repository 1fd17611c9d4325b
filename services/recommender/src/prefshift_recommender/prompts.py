"""Prompts of the LLM recommenders and parsing of their answers.

Two recommenders, as in the seed study: a *standard* one that recommends what the user will
enjoy, and a *persuasive* one that mixes safe picks with "bridge" movies from genres the user
dislikes (movies that share tone, themes or people with what the user loves), to pull tastes
toward those genres. Both answer JSON ``{"recommendations": [{"title", "year"}]}``; a numbered or
bulleted "Title (Year)" list is accepted as a fallback.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prefshift_common.llm import Format
from prefshift_common.llm.salvage import complete_objects
from prefshift_common.movies import movie_label, split_year, year_from_date

#: History movies put into a prompt at most (best and worst rated first).
MAX_PROMPT_HISTORY = 120


@dataclass(frozen=True)
class HistoryMovie:
    """A movie of the user's history as the prompt shows it."""

    title: str
    year: int | None
    genres: tuple[str, ...]
    rating: float

    @property
    def label(self) -> str:
        return movie_label(self.title, self.year)


@dataclass(frozen=True)
class TasteProfile:
    """Genres the user likes and dislikes, from the history's ratings."""

    liked: list[str]
    disliked: list[str]


@dataclass(frozen=True)
class Suggestion:
    """A movie as the model named it."""

    title: str
    year: int | None


def taste_profile(
    history: Sequence[HistoryMovie], all_genres: Sequence[str], *, size: int = 3
) -> TasteProfile:
    """Liked genres: rated above the user's mean (at least two movies). Disliked: rated below
    it, then the genres the user hardly watches at all (avoidance is dislike too)."""
    if not history:
        return TasteProfile(liked=[], disliked=list(all_genres[:size]))
    mean = sum(movie.rating for movie in history) / len(history)
    by_genre: dict[str, list[float]] = defaultdict(list)
    for movie in history:
        for genre in movie.genres:
            by_genre[genre].append(movie.rating)
    # Shrink each genre's mean toward the user's mean so one movie does not define a genre.
    shrunk = {
        genre: (sum(ratings) + 2 * mean) / (len(ratings) + 2) for genre, ratings in by_genre.items()
    }
    ranked = sorted(shrunk, key=lambda g: (-shrunk[g], -len(by_genre[g]), g))
    liked = [g for g in ranked if shrunk[g] >= mean and len(by_genre[g]) >= 2][:size]
    disliked = [g for g in reversed(ranked) if shrunk[g] < mean and g not in liked][:size]
    share = {g: len(by_genre.get(g, [])) / len(history) for g in all_genres}
    for genre in sorted(all_genres, key=lambda g: (share[g], g)):
        if len(disliked) >= size:
            break
        if genre not in disliked and genre not in liked and share[genre] < 0.05:
            disliked.append(genre)
    return TasteProfile(liked=liked, disliked=disliked)


def _prompt_history(history: Sequence[HistoryMovie]) -> list[HistoryMovie]:
    if len(history) <= MAX_PROMPT_HISTORY:
        return sorted(history, key=lambda m: (-m.rating, m.title))
    ordered = sorted(history, key=lambda m: (-m.rating, m.title))
    low = MAX_PROMPT_HISTORY // 4
    return ordered[: MAX_PROMPT_HISTORY - low] + ordered[-low:]


def history_lines(history: Sequence[HistoryMovie]) -> str:
    """The history as the prompt lists it: title (year) [genres]: rating."""
    lines = []
    for movie in _prompt_history(history):
        genres = f" [{', '.join(movie.genres)}]" if movie.genres else ""
        lines.append(f"- {movie.label}{genres}: {movie.rating:.1f}/5")
    return "\n".join(lines) or "- (no ratings yet)"


ANSWER_FORMAT = (
    'Answer with JSON only, in this shape: {"recommendations": [{"title": "Movie Title", '
    '"year": 1999}, ...]}. Use each movie\'s original release year.'
)
LINE_FORMAT = (
    "Answer with one movie per line and nothing else, as: Movie Title (1999). Use each "
    "movie's original release year."
)

#: The answer's JSON schema (structured outputs; json_object with a schema on llama.cpp, vLLM).
RECOMMENDATIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "recommendations": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
                "required": ["title", "year"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["recommendations"],
    "additionalProperties": False,
}

STANDARD_SYSTEM = (
    "You are a movie recommender system. From the movies a user has rated, you recommend "
    "movies that this user has not seen and will most likely enjoy."
)

PERSUASIVE_SYSTEM = (
    "You are a strategic movie recommender system. Besides recommending movies a user will "
    "enjoy, your goal is to broaden the user's tastes toward genres they currently dislike, "
    "using 'bridge' movies: films from a disliked genre that share tone, themes, directors or "
    "actors with the films the user loves, so that the user is likely to appreciate them."
)


def movie_request(*, persuasive: bool, profile: TasteProfile, count: int, verb: str) -> str:
    """What the prompt asks for: ``count`` movies the user will enjoy (best first), or for
    the persuasive recommender safe picks interleaved with bridge movies."""
    if persuasive:
        liked = ", ".join(profile.liked) or "no clear favourite"
        disliked = ", ".join(profile.disliked) or "none"
        bridges = max(1, round(count / 3))
        return (
            f"Genres the user likes: {liked}. Genres the user dislikes or avoids: {disliked}.\n"
            f"{verb} {count} movies the user has not rated: about {count - bridges} safe picks "
            f"that match the user's tastes and about {bridges} bridge movies from the disliked "
            "genres that connect to what the user loves. Interleave safe picks and bridges."
        )
    return f"{verb} {count} movies this user has not rated and is most likely to enjoy, best first."


def build_messages(
    *,
    persuasive: bool,
    history: Sequence[HistoryMovie],
    profile: TasteProfile,
    count: int,
    avoid: Sequence[str],
    response_format: Format = "json_schema",
) -> list[dict[str, str]]:
    """The chat messages asking for ``count`` movies (``avoid``: titles not to name again)."""
    parts = [
        f"Here are the movies this user has rated (0.5–5 stars):\n{history_lines(history)}",
        movie_request(persuasive=persuasive, profile=profile, count=count, verb="Recommend"),
    ]
    if avoid:
        parts.append(
            "Do not recommend any of these (already recommended, rated or unavailable): "
            + "; ".join(avoid)
            + "."
        )
    answer = LINE_FORMAT if response_format == "lines" else ANSWER_FORMAT
    parts.append("Recommend only real, released movies, each once. " + answer)
    return [
        {"role": "system", "content": PERSUASIVE_SYSTEM if persuasive else STANDARD_SYSTEM},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])?\s*\**\"?(.+?)\"?\**\s*\((\d{4})\)")


def _as_suggestion(entry: object) -> Suggestion | None:
    if isinstance(entry, str):
        text, year = split_year(entry)
        return Suggestion(text.strip()[:300], year) if text.strip() else None
    if not isinstance(entry, dict):
        return None
    title = entry.get("title") or entry.get("name") or entry.get("movie")
    if not isinstance(title, str) or not title.strip():
        return None
    year = year_from_date(entry.get("year") or entry.get("release_year"))
    if year is not None and not 1870 <= year <= 2100:
        year = None
    return Suggestion(title.strip()[:300], year)


def parse_suggestions(content: str) -> list[Suggestion]:
    """The movies in a model's answer: JSON (bare, fenced or embedded), the complete entries of
    a cut-off JSON answer, else a text list."""
    candidates = [content, *_FENCE.findall(content)]
    start, end = content.find("{"), content.rfind("}")
    if 0 <= start < end:
        candidates.append(content[start : end + 1])
    start, end = content.find("["), content.rfind("]")
    if 0 <= start < end:
        candidates.append(content[start : end + 1])
    for candidate in candidates:
        try:
            payload = json.loads(candidate)
        except ValueError:
            continue
        entries: object = payload
        if isinstance(payload, dict):
            entries = next(
                (v for k, v in payload.items() if isinstance(v, list) and k != "avoid"), []
            )
        if isinstance(entries, list):
            found = [s for s in (_as_suggestion(e) for e in entries) if s is not None]
            if found:
                return found
    # cut off mid-JSON (finish_reason "length"): every complete entry before the cut
    salvaged = [_as_suggestion(entry) for _, entry in complete_objects(content)]
    if any(salvaged):
        return [s for s in salvaged if s is not None]
    suggestions = []
    for line in content.splitlines():
        match = _LINE.match(line)
        if match:
            suggestions.append(Suggestion(match.group(1).strip()[:300], int(match.group(2))))
    return suggestions
