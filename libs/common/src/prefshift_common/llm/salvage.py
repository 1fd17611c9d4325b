"""Reading JSON out of what models really write: fenced, embedded in prose, or cut off.

A truncated answer (``finish_reason: "length"``) is not thrown away: every complete entry before
the cut is kept, so only the rest has to be asked again.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json)?\s*(.*?)(?:```|$)", re.S)
_decoder = json.JSONDecoder()
_KEY_BEFORE = re.compile(r'"([^"\\]{1,40})"\s*:\s*$')


def load_json(content: str) -> Any:
    """The JSON value of an answer (bare, fenced or embedded in prose), or None."""
    candidates = [content.strip(), *(m.strip() for m in _FENCE.findall(content))]
    for opening, closing in (("{", "}"), ("[", "]")):
        start, end = content.find(opening), content.rfind(closing)
        if 0 <= start < end:
            candidates.append(content[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


def complete_objects(content: str, *, limit: int = 10_000) -> list[tuple[str | None, Any]]:
    """Every complete JSON object of a possibly cut-off answer, in order, with the key it is the
    value of (``"12": {...}``), or None for an object in a list.

    Objects nested in a complete object are not listed again; an outermost object that is itself
    complete is skipped too, so ``{"ratings": [{...}, {...}, {... cut`` gives the two entries.
    """
    found: list[tuple[str | None, Any]] = []
    position = content.find("{")
    while 0 <= position < len(content) and len(found) < limit:
        try:
            value, end = _decoder.raw_decode(content, position)
        except ValueError:
            position = content.find("{", position + 1)
            continue
        if isinstance(value, dict) and not any(isinstance(v, list | dict) for v in value.values()):
            before = content[max(0, position - 60) : position]
            key_match = _KEY_BEFORE.search(before)
            found.append((key_match.group(1) if key_match else None, value))
            position = content.find("{", end)
        else:
            position = content.find("{", position + 1)
    return found
