"""Offline title search: an in-memory index of every movie the offline source can serve,
matched with rapidfuzz, filtered and ranked by the year (TMDB's release year, else the MovieLens
year), TMDB vote counts as the last resort.

Every title and its MovieLens alternatives become keys (``prefshift_common.movies.title_keys``),
so "The Matrix", "Matrix, The", "Se7en" and "La cité des enfants perdus" match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from prefshift_common.movies import title_key, title_keys
from prefshift_tmdb_proxy.repository import TitleRow

#: Score (0–100) below which a title is not a match.
MIN_SCORE = 60.0


@dataclass(frozen=True)
class Match:
    row: TitleRow
    score: float


class TitleIndex:
    """Immutable; rebuilt by the service when the offline source changes.

    Candidates come from two cheap passes — the plain ratio over every key (typos, small
    differences) and an inverted word index (titles containing every word of the query, e.g.
    "Star Wars" in "Star Wars: Episode IV") — and only they get the costly WRatio (a full
    WRatio scan of 20,000 keys takes ~60 ms; this takes a few)."""

    def __init__(self, rows: Sequence[TitleRow]) -> None:
        self._rows = list(rows)
        self._keys: list[str] = []
        self._owners: list[int] = []
        self._words: dict[str, list[int]] = {}
        for position, row in enumerate(self._rows):
            titles = [row.title, *([row.original_title] if row.original_title else [])]
            titles.extend(row.other_titles)
            for title in titles:
                for key in title_keys(title):
                    for word in set(key.split()):
                        self._words.setdefault(word, []).append(len(self._keys))
                    self._keys.append(key)
                    self._owners.append(position)

    def __len__(self) -> int:
        return len(self._rows)

    def _candidates(self, needle: str) -> set[int]:
        close = process.extract(
            needle, self._keys, scorer=fuzz.ratio, processor=None, score_cutoff=50, limit=300
        )
        found = {position for _, _, position in close}
        postings = sorted((self._words.get(word, []) for word in set(needle.split())), key=len)
        if postings and postings[0]:
            containing = set(postings[0])
            for posting in postings[1:]:
                containing.intersection_update(posting)
            found.update(containing)
        return found

    def search(self, query: str, year: int | None = None, limit: int = 1000) -> list[Match]:
        """Movies matching ``query`` best first: title similarity, then the year (exact +8,
        one off +4), then TMDB vote count. With a year, movies of other years (more than one
        off) are left out, as TMDB's ``year`` filter does; movies of unknown year stay."""
        needle = title_key(query)
        if not needle or not self._keys:
            return []
        best: dict[int, float] = {}
        for key_position in self._candidates(needle):
            key = self._keys[key_position]
            # WRatio alone rates "alien" ~ "alien nation" as high as "alien": blend in the
            # plain ratio so the whole title matching wins.
            score = 0.5 * fuzz.WRatio(needle, key) + 0.5 * fuzz.ratio(needle, key)
            owner = self._owners[key_position]
            row = self._rows[owner]
            if year is not None and row.year is not None:
                gap = abs(row.year - year)
                if gap > 1:
                    continue
                score += 8 if gap == 0 else 4
            if score >= MIN_SCORE and score > best.get(owner, -1.0):
                best[owner] = score
        ranked = sorted(best.items(), key=lambda item: (-item[1], -self._rows[item[0]].popularity))
        return [Match(self._rows[owner], score) for owner, score in ranked[:limit]]
