"""Offline title search: an in-memory index of every movie the offline source can serve,
matched with rapidfuzz, the year as tie-breaker and TMDB vote counts as the last resort.

Every title and its MovieLens alternatives become keys with the article in front (see
:mod:`titles`), so "The Matrix", "Matrix, The", "Se7en" and "La cité des enfants perdus" match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from prefshift_tmdb_proxy.repository import TitleRow
from prefshift_tmdb_proxy.titles import normalise_query, title_keys

#: Score (0–100) below which a title is not a match.
MIN_SCORE = 60.0


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
