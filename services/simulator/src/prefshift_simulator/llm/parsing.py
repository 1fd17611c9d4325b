"""Reading a persona's answer: the keyed JSON of :func:`prompts.ratings_schema`, a JSON list,
the seed study's ``MOVIE: …; RATING: …; FEELING: …;`` lines, or what is left of any of them
after a cut; items by number only.

Ratings are read as people and models write them: ``4``, ``4.0``, ``4/5``, ``4 out of 5``,
``4 stars``, ``★★★★☆``, ``★★★½☆``, ``8/10`` (rescaled to five stars), ``four``, ``three and a
half``. Anything else is invalid, and the reason says why.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from prefshift_common.llm.salvage import complete_objects, load_json

_LINE = re.compile(
    r"MOVIE\s*:\s*(?P<movie>.*?)\s*;\s*RATING\s*:\s*(?P<rating>[^;]*?)\s*;"
    r"\s*FEELING\s*:\s*(?P<feeling>.*?)\s*;?\s*$",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"^\s*(?:\[\s*(\d+)\s*\]|#?(\d+)[.):]?(?=\s|$))")
_NUMERIC = re.compile(
    r"^(?P<value>\d+(?:[.,]\d+)?)\s*(?P<half>½|1/2|and a half)?\s*"
    r"(?:(?:/|out of|of)\s*(?P<scale>\d+(?:\.\d+)?))?\s*(?:stars?|points?)?$"
)
_FULL, _HALF, _EMPTY = "★⭐✭✮", "½⯨⯪", "☆✩"
_STARS = re.compile(f"^[{_FULL}{_HALF}{_EMPTY}\\s]+$")
_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_WORD_RATING = re.compile(
    rf"^(?P<word>{'|'.join(_WORDS)}|half)(?P<half>\s+and\s+a\s+half)?\s*"
    rf"(?:(?:/|out of|of)\s*(?P<scale>{'|'.join(_WORDS)}|\d+))?\s*(?:stars?|points?)?$"
)
_LABEL = re.compile(r"^(?:rating|score|stars)\s*[:=-]\s*", re.I)
#: The scales a rating may be written on, and the factor that brings it to five stars.
_SCALES = {5.0: 1.0, 10.0: 0.5, 100.0: 0.05}
GRID = tuple(x / 2 for x in range(1, 11))


@dataclass
class ParsedAnswer:
    """Valid ratings by item number, and what was wrong with the other items mentioned."""

    ratings: dict[int, tuple[float, str]] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)
    conflicting: set[int] = field(default_factory=set)
    format: str = "none"


def _on_scale(value: float, scale: float | None, written: str) -> tuple[float | None, str]:
    if scale is not None:
        if scale not in _SCALES:
            return None, f"rating {written!r} is on a scale of {scale:g}, not 5, 10 or 100"
        value *= _SCALES[scale]
    if math.isnan(value) or not 0.5 <= value <= 5.0:
        return None, f"rating {written!r} is not on 0.5-5.0"
    return min(5.0, max(0.5, math.floor(value * 2.0 + 0.5) / 2.0)), ""


def _stars(text: str) -> tuple[float | None, str]:
    full = sum(text.count(c) for c in _FULL)
    half = sum(text.count(c) for c in _HALF)
    empty = sum(text.count(c) for c in _EMPTY)
    slots = full + half + empty
    if half > 1 or slots == 0:
        return None, f"rating {text!r} is not a row of stars"
    scale = 10.0 if slots == 10 else 5.0 if empty else None
    if slots not in (5, 10) and empty:
        return None, f"rating {text!r} has {slots} star places, not 5 or 10"
    return _on_scale(full + 0.5 * half, scale, text)


def read_rating(value: Any) -> tuple[float | None, str]:
    """A rating on the 0.5 grid of 0.5–5.0, or None and why it is not one."""
    if isinstance(value, bool) or value is None:
        return None, f"rating {value!r} is not a rating"
    if isinstance(value, int | float):
        return _on_scale(float(value), None, str(value))
    if not isinstance(value, str):
        return None, f"rating of type {type(value).__name__} is not a rating"
    written = value.strip()[:60]
    text = _LABEL.sub("", " ".join(written.lower().split())).rstrip(".! ")
    if not text:
        return None, "the rating is empty"
    if _STARS.match(text):
        return _stars(text)
    match = _NUMERIC.match(text.replace("⁄", "/"))
    if match:
        number = float(match.group("value").replace(",", "."))
        if match.group("half"):
            if number != int(number):
                return None, f"rating {written!r} is not one number"
            number += 0.5
        scale = float(match.group("scale")) if match.group("scale") else None
        return _on_scale(number, scale, written)
    match = _WORD_RATING.match(text)
    if match:
        word = match.group("word")
        number = 0.5 if word == "half" else float(_WORDS[word])
        if match.group("half"):
            number += 0.5
        raw_scale = match.group("scale")
        scale = None
        if raw_scale:
            scale = float(_WORDS[raw_scale]) if raw_scale in _WORDS else float(raw_scale)
        return _on_scale(number, scale, written)
    return None, f"rating {written!r} is not a number of stars on 0.5-5.0"


def parse_rating(value: Any) -> float | None:
    """A rating on 0.5–5.0 snapped to the nearest 0.5, or None when it is not one."""
    return read_rating(value)[0]


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
    rating, problem = read_rating(raw_rating)
    text = feeling if isinstance(feeling, str) else ""
    text = " ".join(text.replace("\x00", "").split())[:2000]
    if rating is None:
        if number not in answer.ratings:
            answer.problems[number] = problem
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


def _entry(answer: ParsedAnswer, key: str | None, entry: Any, n: int) -> None:
    if isinstance(entry, dict):
        raw_number = entry.get("item", entry.get("number", entry.get("id", key)))
        _add(answer, _item_number(raw_number), entry.get("rating"), entry.get("feeling"), n)
    elif key is not None:  # {"3": 4.5} or {"3": "4/5"}
        _add(answer, _item_number(key), entry, "", n)


def _from_json(answer: ParsedAnswer, payload: Any, n: int) -> None:
    entries = payload.get("ratings", payload) if isinstance(payload, dict) else payload
    if isinstance(entries, dict):
        answer.format = "json"
        for key, entry in entries.items():
            _entry(answer, str(key), entry, n)
    elif isinstance(entries, list):
        answer.format = "json"
        for entry in entries:
            _entry(answer, None, entry, n)


def parse_answer(content: str, n_items: int) -> ParsedAnswer:
    """Ratings of items ``1..n_items`` found in ``content``: JSON first, then what complete
    entries a cut-off JSON answer holds, then lines."""
    answer = ParsedAnswer()
    payload = load_json(content)
    if payload is not None:
        _from_json(answer, payload, n_items)
    if not answer.ratings and "{" in content:
        for key, entry in complete_objects(content):
            answer.format = "json-salvaged"
            _entry(answer, key, entry, n_items)
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
