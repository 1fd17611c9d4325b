"""Matching movie titles as people and language models write them to a dataset's movies.

MovieLens writes "Matrix, The (1999)", "Seven (a.k.a. Se7en) (1995)" and "Cité des enfants
perdus, La (City of Lost Children, The) (1995)"; a model writes "The Matrix", "Se7en" or
"The City of Lost Children", sometimes misspelled. Titles are compared in a normal form (case,
accents, punctuation and articles removed; alternate titles indexed too), then fuzzily.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process

_ARTICLES = [
    *("the", "a", "an", "les", "la", "le", "l'", "el", "los", "las", "il", "lo", "gli", "i"),
    *("die", "der", "das", "den", "det", "de", "het", "een", "ein", "eine", "o", "os"),
]
_TRAILING_ARTICLE = re.compile(
    r",\s*(" + "|".join(re.escape(a) for a in _ARTICLES) + r")\s*$", re.I
)
_LEADING_ARTICLE = re.compile(r"^(the|a|an)\s+", re.I)
_YEAR = re.compile(r"\s*\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_TRAILING_GROUP = re.compile(r"\s*\(([^()]*)\)\s*$")
_AKA = re.compile(r"^\s*(a\.?k\.?a\.?|aka)\s+", re.I)


def strip_year(title: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` → ``("Toy Story", 1995)``."""
    match = _YEAR.search(title)
    if match is None:
        return title.strip(), None
    return title[: match.start()].strip(), int(match.group(1))


def split_alternates(title: str) -> list[str]:
    """A MovieLens title (year already stripped) and its alternates in trailing parentheses."""
    names: list[str] = []
    rest = title.strip()
    while True:
        match = _TRAILING_GROUP.search(rest)
        if match is None or match.start() == 0:
            break
        names.append(_AKA.sub("", match.group(1)).strip())
        rest = rest[: match.start()].strip()
    return [rest, *[name for name in names if name]]


def front_article(title: str) -> str:
    """``"Matrix, The"`` → ``"The Matrix"`` (display form)."""
    match = _TRAILING_ARTICLE.search(title)
    if match is None:
        return title
    article = match.group(1)
    joiner = "" if article.endswith("'") else " "
    return f"{article}{joiner}{title[: match.start()].strip()}"


def normalise(title: str) -> str:
    """The comparison form: no accents, case, punctuation, ``&`` or leading/trailing article."""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _TRAILING_ARTICLE.sub("", text.strip())
    text = text.lower().replace("&", " and ")
    text = re.sub(r"['’`´]", "", text)
    text = re.sub(r"[^\w\s]", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return _LEADING_ARTICLE.sub("", text)


def display_title(movielens_title: str) -> str:
    """What a person calls a MovieLens title: no year, no alternates, article in front."""
    main = split_alternates(strip_year(movielens_title)[0])[0]
    return front_article(main)


@dataclass
class TitleIndex:
    """Finds the catalogue position of a title (and year) among a dataset's movies."""

    years: Sequence[int | None]
    popularity: Sequence[float]
    fuzzy_cutoff: float = 88.0
    _exact: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    _by_year: dict[int | None, tuple[list[str], list[int]]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, titles: Sequence[str], years: Sequence[int | None], popularity: Sequence[float]
    ) -> TitleIndex:
        index = cls(years=years, popularity=popularity)
        by_year: dict[int | None, tuple[list[str], list[int]]] = defaultdict(lambda: ([], []))
        for position, raw in enumerate(titles):
            stripped, _ = strip_year(raw)
            for name in split_alternates(stripped):
                key = normalise(name)
                if not key:
                    continue
                if position not in index._exact[key]:
                    index._exact[key].append(position)
                keys, positions = by_year[years[position]]
                keys.append(key)
                positions.append(position)
        index._by_year = dict(by_year)
        return index

    def _best(self, positions: Sequence[int], year: int | None) -> int | None:
        if not positions:
            return None
        if year is not None:
            for tolerance in (0, 1):
                near = [
                    p
                    for p in positions
                    if self.years[p] is not None
                    and abs(int(self.years[p] or 0) - year) <= tolerance
                ]
                if near:
                    return max(near, key=lambda p: self.popularity[p])
            unknown_year = [p for p in positions if self.years[p] is None]
            return max(unknown_year, key=lambda p: self.popularity[p]) if unknown_year else None
        return max(positions, key=lambda p: self.popularity[p])

    def exact(self, title: str, year: int | None) -> int | None:
        """The movie whose title (or an alternate) normalises the same, year within one."""
        return self._best(self._exact.get(normalise(title), []), year)

    def fuzzy(self, title: str, year: int | None) -> int | None:
        """The closest title above the cutoff (rapidfuzz), among movies of that year ±1."""
        key = normalise(title)
        if not key:
            return None
        years = [year - 1, year, year + 1, None] if year is not None else list(self._by_year)
        keys: list[str] = []
        positions: list[int] = []
        for candidate_year in years:
            year_keys, year_positions = self._by_year.get(candidate_year, ([], []))
            keys.extend(year_keys)
            positions.extend(year_positions)
        if not keys:
            return None
        match = process.extractOne(key, keys, scorer=fuzz.ratio, score_cutoff=self.fuzzy_cutoff)
        if match is None:
            return None
        _, _, choice = match
        best_key = keys[choice]
        same = [positions[i] for i, k in enumerate(keys) if k == best_key]
        return (
            self._best(same, year)
            if year is not None
            else max(same, key=lambda p: self.popularity[p])
        )

    def lookup(self, title: str, year: int | None) -> int | None:
        """Exact match first, then fuzzy."""
        found = self.exact(title, year)
        return found if found is not None else self.fuzzy(title, year)
