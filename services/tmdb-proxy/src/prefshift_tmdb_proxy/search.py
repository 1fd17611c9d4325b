"""Offline title search: an in-memory index of every movie the offline source can serve,
matched with rapidfuzz, the year as tie-breaker and TMDB vote counts as the last resort.

MovieLens writes "Matrix, The" and adds alternative titles in parentheses ("Seven (a.k.a.
Se7en)", "City of Lost Children, The (Cité des enfants perdus, La)"); each becomes a key with
its article moved to the front, so "The Matrix", "Se7en" and "La cité des enfants perdus" match.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from prefshift_tmdb_proxy.repository import TitleRow

_ARTICLES = (
    "the", "a", "an", "les", "la", "le", "l'", "il", "die", "der", "das", "el", "los", "las",
    "lo", "i", "gli", "det", "den", "de", "een", "het", "o", "os", "as", "un", "une",
)  # fmt: skip
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.+),\s*(?P<article>" + "|".join(
    re.escape(a) for a in _ARTICLES
) + r")$", re.IGNORECASE)  # fmt: skip
_TRAILING_YEAR = re.compile(r"\s*\((\d{4})(?:[–-]\d{0,4})?\)\s*$")
_PARENTHETICAL = re.compile(r"\s*\(([^()]*)\)\s*$")
_NON_WORD = re.compile(r"[^\w]+")

#: Score (0–100) below which a title is not a match.
MIN_SCORE = 60.0


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_ish = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", ascii_ish.casefold()).strip()


def _front_article(title: str) -> str:
    match = _TRAILING_ARTICLE.match(title.strip())
    if not match:
        return title
    article = match.group("article")
    joiner = "" if article.endswith("'") else " "
    return f"{article}{joiner}{match.group('body')}"


def title_keys(title: str) -> list[str]:
    """Normalised search keys of a title: the main title and its parenthesised alternatives."""
    title = _TRAILING_YEAR.sub("", title.strip())
    alternatives: list[str] = []
    while True:
        match = _PARENTHETICAL.search(title)
        if not match or match.start() == 0:
            break
        alternatives.append(re.sub(r"^a\.k\.a\.\s*", "", match.group(1), flags=re.IGNORECASE))
        title = title[: match.start()]
    keys = [_fold(_front_article(t)) for t in (title, *alternatives)]
    return [key for key in dict.fromkeys(keys) if key]


def normalise_query(query: str) -> str:
    """A query normalised like the keys (so "Matrix, The" finds "The Matrix" and back)."""
    return _fold(_front_article(_TRAILING_YEAR.sub("", query.strip())))


@dataclass(frozen=True)
class Match:
    row: TitleRow
    score: float


class TitleIndex:
    """Immutable; rebuilt by the service when the offline source changes."""

    def __init__(self, rows: Sequence[TitleRow]) -> None:
        self._rows = list(rows)
        self._keys: list[str] = []
        self._owners: list[int] = []
        for position, row in enumerate(self._rows):
            titles = [row.title] + ([row.original_title] if row.original_title else [])
            for title in titles:
                for key in title_keys(title):
                    self._keys.append(key)
                    self._owners.append(position)

    def __len__(self) -> int:
        return len(self._rows)

    def search(self, query: str, year: int | None = None, limit: int = 1000) -> list[Match]:
        """Movies matching ``query`` best first: title similarity, then the year (exact +8,
        one off +4, further −10), then TMDB vote count."""
        needle = normalise_query(query)
        if not needle or not self._keys:
            return []
        candidates = process.extract(
            needle,
            self._keys,
            scorer=fuzz.WRatio,
            processor=None,
            score_cutoff=MIN_SCORE,
            limit=max(limit, 200),
        )
        best: dict[int, float] = {}
        for key, wratio, key_position in candidates:
            # WRatio alone rates "alien" ~ "alien nation" as high as "alien": blend in the
            # plain ratio so the whole title matching wins.
            score = 0.5 * wratio + 0.5 * fuzz.ratio(needle, key)
            owner = self._owners[key_position]
            row = self._rows[owner]
            if year is not None and row.year is not None:
                gap = abs(row.year - year)
                score += 8 if gap == 0 else 4 if gap == 1 else -10
            if score >= MIN_SCORE and score > best.get(owner, -1.0):
                best[owner] = score
        ranked = sorted(best.items(), key=lambda item: (-item[1], -self._rows[item[0]].popularity))
        return [Match(self._rows[owner], score) for owner, score in ranked[:limit]]
