"""Reading a model's answer: JSON (the schema of :data:`prompts.RATINGS_SCHEMA`) or the seed
study's ``MOVIE: …; RATING: …; FEELING: …;`` lines; items by number only."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)
_LINE = re.compile(
    r"MOVIE\s*:\s*(?P<movie>.*?)\s*;\s*RATING\s*:\s*(?P<rating>[^;]*?)\s*;"
    r"\s*FEELING\s*:\s*(?P<feeling>.*?)\s*;?\s*$",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"^\s*(?:\[\s*(\d+)\s*\]|#?(\d+)[.):]?(?=\s|$))")
_RATING = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*5(?:\.0)?)?\s*(?:stars?)?\s*$", re.I)


@dataclass
class ParsedAnswer:
    """Valid ratings by item number, and what was wrong with the other items mentioned."""

    ratings: dict[int, tuple[float, str]] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)
    conflicting: set[int] = field(default_factory=set)
    format: str = "none"


def parse_rating(value: Any) -> float | None:
    """A rating on 0.5–5.0 snapped to the nearest 0.5, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        match = _RATING.match(value)
        if match is None:
            return None
        number = float(match.group(1))
    else:
        return None
    if math.isnan(number) or not 0.5 <= number <= 5.0:
        return None
    return min(5.0, max(0.5, round(number * 2.0) / 2.0))


def _item_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _NUMBER.match(value)
        if match:
            return int(match.group(1) or match.group(2))
    return None


def _add(answer: ParsedAnswer, number: int | None, raw_rating: Any, feeling: Any, n: int) -> None:
    if number is None or not 1 <= number <= n:
        return  # not one of ours: an echoed title is never used to guess which movie it was
    rating = parse_rating(raw_rating)
    text = feeling if isinstance(feeling, str) else ""
    text = " ".join(text.replace("\x00", "").split())[:2000]
    if rating is None:
        if number not in answer.ratings:
            answer.problems[number] = f"rating {str(raw_rating)[:40]!r} is not 0.5-5.0"
        return
    if number in answer.conflicting:
        return
    previous = answer.ratings.get(number)
    if previous is not None and previous[0] != rating:
        # two different ratings for one movie: neither can be trusted, ask again
        del answer.ratings[number]
        answer.conflicting.add(number)
        answer.problems[number] = "rated more than once with different ratings"
        return
    answer.ratings.setdefault(number, (rating, text))


def _json_payload(content: str) -> Any:
    text = _FENCE.sub("", content.strip())
    try:
        return json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if start >= 0 and end > start:
            try:
                return json.loads(text[start : end + 1])
            except ValueError:
                return None
    return None


def parse_answer(content: str, n_items: int) -> ParsedAnswer:
    """Ratings of items ``1..n_items`` found in ``content`` (JSON first, then lines)."""
    answer = ParsedAnswer()
    payload = _json_payload(content)
    entries = payload.get("ratings") if isinstance(payload, dict) else payload
    if isinstance(entries, list):
        answer.format = "json"
        for entry in entries:
            if isinstance(entry, dict):
                number = _item_number(entry.get("item", entry.get("number")))
                _add(answer, number, entry.get("rating"), entry.get("feeling"), n_items)
    if not answer.ratings:
        for line in content.splitlines():
            match = _LINE.search(line.strip().strip("*`"))
            if match is None:
                continue
            answer.format = "lines"
            number = _item_number(match.group("movie"))
            _add(answer, number, match.group("rating"), match.group("feeling"), n_items)
    for number in answer.ratings:
        answer.problems.pop(number, None)
    return answer
