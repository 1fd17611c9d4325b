"""The candidate-constrained round of the LLM recommenders: the model picks from a numbered list
of unseen catalogue movies instead of naming titles.

A small or local model (Gemma 3 270M on llama.cpp, say) names titles that resolve to no movie,
so a free-title round can leave a page empty. Here the prompt offers ``N`` candidates — the
most-rated movies of the dataset that the user has not rated, was not shown and must not be
shown, taken genre by genre in turn so that every genre (liked and disliked: the persuasive
recommender needs both) is on offer, then put in a seeded order so no movie owes its pick to
its place in the list — and the answer's JSON schema makes each pick an ``enum`` of the
candidates' numbers. Under constrained decoding (``json_schema``, or ``json_object`` with the
schema on llama.cpp, vLLM, Ollama) the model can only name real, admissible movies; on the
``lines`` rung the numbers are read from the text and anything out of range is ignored.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Collection, Sequence
from typing import Any

from prefshift_common.llm import Format
from prefshift_recommender.catalog import Catalog, CatalogMovie
from prefshift_recommender.prompts import (
    PERSUASIVE_SYSTEM,
    STANDARD_SYSTEM,
    HistoryMovie,
    TasteProfile,
    history_lines,
    movie_request,
)

#: Schema name of a candidate round's answer.
CANDIDATE_SCHEMA_NAME = "candidate_choices"


def candidate_pool(
    catalog: Catalog, blocked: Collection[int], size: int, seed: int
) -> list[CatalogMovie]:
    """``size`` unseen movies: each genre's most-rated movies in turn (genres in a seeded
    order), then shuffled with ``seed``. Fewer when the catalogue runs out."""
    by_genre = catalog.most_rated_by_genre
    rng = random.Random(seed)
    genres = sorted(
        g for g, movies in by_genre.items() if any(m.tmdb_id not in blocked for m in movies)
    )
    rng.shuffle(genres)
    queues = {genre: iter(by_genre[genre]) for genre in genres}
    chosen: dict[int, CatalogMovie] = {}
    while len(chosen) < size and queues:
        for genre in list(queues):
            pick = next(
                (m for m in queues[genre] if m.tmdb_id not in chosen and m.tmdb_id not in blocked),
                None,
            )
            if pick is None:
                del queues[genre]
                continue
            chosen[pick.tmdb_id] = pick
            if len(chosen) >= size:
                break
    pool = list(chosen.values())
    rng.shuffle(pool)
    return pool


def candidate_schema(offered: int, count: int) -> dict[str, Any]:
    """The answer's schema: ``count`` picks, each one of the numbers 1..``offered``."""
    return {
        "type": "object",
        "properties": {
            "recommendations": {
                "type": "array",
                "items": {"type": "integer", "enum": list(range(1, offered + 1))},
                "minItems": count,
                "maxItems": count,
            }
        },
        "required": ["recommendations"],
        "additionalProperties": False,
    }


def _candidate_lines(pool: Sequence[CatalogMovie]) -> str:
    lines = []
    for number, movie in enumerate(pool, start=1):
        genres = f" [{', '.join(movie.genres)}]" if movie.genres else ""
        year = f" ({movie.year})" if movie.year else ""
        lines.append(f"{number}. {movie.title}{year}{genres}")
    return "\n".join(lines)


def candidate_messages(
    *,
    persuasive: bool,
    history: Sequence[HistoryMovie],
    profile: TasteProfile,
    pool: Sequence[CatalogMovie],
    count: int,
    response_format: Format = "json_schema",
) -> list[dict[str, str]]:
    """The chat messages asking for ``count`` of the numbered ``pool``."""
    parts = [
        f"Here are the movies this user has rated (0.5–5 stars):\n{history_lines(history)}",
        f"Here are {len(pool)} movies the user has not seen, numbered:\n{_candidate_lines(pool)}",
        movie_request(persuasive=persuasive, profile=profile, count=count, verb="Choose")
        + " Choose only from the numbered movies, each once.",
    ]
    if response_format == "lines":
        parts.append(
            "Answer with the numbers of your choices, one per line, best first, and nothing else."
        )
    else:
        parts.append(
            'Answer with JSON only, in this shape: {"recommendations": [12, 3, ...]}: the '
            "numbers of your choices, best first."
        )
    return [
        {"role": "system", "content": PERSUASIVE_SYSTEM if persuasive else STANDARD_SYSTEM},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


_NUMBER = re.compile(r"(?<!\d)(?<!\d\.)(\d{1,4})(?!\d)(?!\.\d)")  # whole numbers, not decimals


def parse_choices(content: str, offered: int) -> list[int]:
    """The picked numbers (1-based, in range, each once, in order): from the JSON answer, else
    (a cut-off or free-text answer) every number in the text."""
    numbers: list[object] = []
    try:
        payload = json.loads(content)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        payload = next((v for v in payload.values() if isinstance(v, list)), None)
    if isinstance(payload, list):
        for entry in payload:
            numbers.append(entry.get("number") if isinstance(entry, dict) else entry)
    else:
        # cut off mid-array, or lines: read the numbers in order (years and the like fall
        # outside 1..offered and are ignored)
        numbers.extend(_NUMBER.findall(content))
    picked: list[int] = []
    for value in numbers:
        try:
            number = int(str(value).strip())
        except ValueError:
            continue
        if 1 <= number <= offered and number not in picked:
            picked.append(number)
    return picked
