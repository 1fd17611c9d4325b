"""Whether a title someone wrote names a given movie: the rules, and an index over a catalogue.

A language model names movies as "The Matrix (1999)", "Se7en", "Shawshenk Redemtion" — and
also invents them: "Amanda Knox II (1973)", "Heat 2 (1996)", "Alien: The Return (1980)". A
wrong match is worse than none (the persona would rate a movie nobody recommended), so a title
that does not clearly name one movie is dropped, never mapped to the nearest film:

- **same title** (the same match key, see :func:`title_form`): the years agree within one
  when both are known;
- **shortened title** ("Borat" for "Borat: Cultural Learnings of America…"): the title is the
  movie's main title before its subtitle, with no subtitle of its own and the same numbers
  ("Rambo" is not "Rambo: First Blood Part II"), and both years are known and agree within one;
- **fuzzy** (typos): both years known and within one; the same sequel
  numbers (``II`` = ``2`` = ``two``; "Part 1" counts as no number); no whole word added or
  removed (apart from articles and "of"/"and"), the differing words one edit apart per five
  letters ("Shawshenk" for "Shawshank", not "Station" for "Salvation"); where both
  titles have a subtitle, main title and subtitle each similar; and a whole-title
  ``rapidfuzz`` ratio of at least ``cutoff`` (88).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from prefshift_common.movies import split_year, title_key

#: Whole-title similarity (0–100) a fuzzy match needs.
FUZZY_CUTOFF = 88.0
#: Letters per edit allowed in the words two titles do not share (typos, not other words).
LETTERS_PER_EDIT = 5
#: Words whose absence does not make another title ("Lord of Rings").
_FILLER = frozenset({"the", "a", "an", "of", "and"})
_SUBTITLE = re.compile(r"\s*(?::|\s[-–—]\s)\s*")
_ROMAN = re.compile(r"^(x{0,3})(ix|iv|v?i{0,3})$")
_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10}
_NUMBER_WORDS = {
    **{"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6},
    **{"seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12},
}


def _roman(token: str) -> int | None:
    if not token or _ROMAN.match(token) is None:
        return None
    total = 0
    for current, following in zip(token, [*token[1:], ""], strict=True):
        value = _ROMAN_VALUES[current]
        total += -value if following and _ROMAN_VALUES[following] > value else value
    return total


def _number(token: str) -> int | None:
    """The number a word of a title stands for: ``2``, ``ii``, ``two`` → 2."""
    if token.isdigit():
        return int(token)
    if token in _NUMBER_WORDS:
        return _NUMBER_WORDS[token]
    return _roman(token)


def _canonical(folded: str) -> tuple[str, ...]:
    """Words with numbers written one way (``part ii`` → ``part 2``)."""
    words = []
    for word in folded.split():
        number = _number(word)
        words.append(str(number) if number is not None else word)
    return tuple(words)


@dataclass(frozen=True)
class TitleForm:
    """A title as the rules compare it."""

    key: str  #: the whole title: folded, numbers canonical ("godfather part 2")
    main: str  #: the key of the part before a subtitle (the whole key when there is none)
    subtitle: str  #: the key of the subtitle ("" when there is none)
    words: tuple[str, ...]
    numbers: tuple[int, ...]  #: every number, sorted; 1 left out ("Part 1" = no part)


@lru_cache(maxsize=1 << 16)
def title_form(title: str) -> TitleForm:
    """The comparison form of one title (a trailing "(1999)" is ignored). Cached: a replay or an
    import compares the same few thousand titles again and again (the form is immutable)."""
    text, _ = split_year(title)
    parts = _SUBTITLE.split(text, maxsplit=1)
    words = _canonical(title_key(text))
    main = " ".join(_canonical(title_key(parts[0])))
    subtitle = " ".join(_canonical(title_key(parts[1]))) if len(parts) == 2 else ""
    if not main or not subtitle:  # ": The Movie" or "Title:" alone is no subtitle
        main, subtitle = " ".join(words), ""
    numbers = tuple(sorted(n for n in map(_number, words) if n is not None and n != 1))
    return TitleForm(" ".join(words), main, subtitle, words, numbers)


def years_agree(wanted: int | None, found: int | None) -> bool:
    """Within one year (release dates and the years people remember differ by one)."""
    return wanted is None or found is None or abs(wanted - found) <= 1


def _differing_words_similar(wanted: TitleForm, found: TitleForm) -> bool:
    extra = [w for w in wanted.words if w not in found.words and w not in _FILLER]
    missing = [w for w in found.words if w not in wanted.words and w not in _FILLER]
    if not extra and not missing:
        return True
    if not extra or not missing:
        return False  # a word added ("X Returns") or dropped: another title
    wrote, named = "".join(extra), "".join(missing)
    return Levenshtein.distance(wrote, named) <= max(len(wrote), len(named)) // LETTERS_PER_EDIT


def match_score(
    wanted: TitleForm,
    wanted_year: int | None,
    found: TitleForm,
    found_year: int | None,
    *,
    cutoff: float = FUZZY_CUTOFF,
) -> float | None:
    """How well ``found`` matches ``wanted`` (100 = the same title), or ``None`` when the rules
    of this module say they name different movies."""
    if not wanted.key or not found.key:
        return None
    if wanted.key == found.key:
        return 100.0 if years_agree(wanted_year, found_year) else None
    if wanted_year is None or found_year is None or abs(wanted_year - found_year) > 1:
        return None
    if wanted.numbers != found.numbers:
        return None
    if not wanted.subtitle and found.subtitle and wanted.key == found.main:
        return 95.0  # shortened: "Borat" for "Borat: Cultural Learnings of America…"
    if bool(wanted.subtitle) != bool(found.subtitle):
        return None
    if wanted.subtitle and (
        fuzz.ratio(wanted.main, found.main) < cutoff
        or fuzz.ratio(wanted.subtitle, found.subtitle) < cutoff
    ):
        return None
    if not _differing_words_similar(wanted, found):
        return None
    score = fuzz.ratio(wanted.key, found.key)
    return score if score >= cutoff else None


@dataclass(frozen=True)
class CatalogueMovie:
    """A movie a title may name: every name it is known by, its year and how well known it is
    (which of several same-titled movies a yearless title means)."""

    tmdb_id: int
    names: tuple[str, ...]
    year: int | None
    popularity: float = 0.0


class TitleCatalogue:
    """Finds the movie of a catalogue (by position) that a title and year name, by the rules of
    :func:`match_score`; ``None`` when no movie clearly matches."""

    def __init__(self, movies: Sequence[CatalogueMovie], *, cutoff: float = FUZZY_CUTOFF):
        self.movies = list(movies)
        self.cutoff = cutoff
        self._forms: list[list[TitleForm]] = []
        self._by_key: dict[str, list[int]] = defaultdict(list)
        self._by_main: dict[str, list[int]] = defaultdict(list)
        by_year: dict[int, tuple[list[str], list[int]]] = defaultdict(lambda: ([], []))
        for position, movie in enumerate(self.movies):
            forms = [form for form in map(title_form, movie.names) if form.key]
            self._forms.append(forms)
            for form in forms:
                self._by_key[form.key].append(position)
                if form.subtitle:
                    self._by_main[form.main].append(position)
                if movie.year is not None:
                    keys, owners = by_year[movie.year]
                    keys.append(form.key)
                    owners.append(position)
        self._by_year = dict(by_year)

    def __len__(self) -> int:
        return len(self.movies)

    def _score(self, position: int, wanted: TitleForm, year: int | None) -> float | None:
        scores = [
            match_score(wanted, year, form, self.movies[position].year, cutoff=self.cutoff)
            for form in self._forms[position]
        ]
        return max((s for s in scores if s is not None), default=None)

    def _best(self, positions: Sequence[int], wanted: TitleForm, year: int | None) -> int | None:
        scored = [(self._score(p, wanted, year), p) for p in dict.fromkeys(positions)]
        kept = [(score, p) for score, p in scored if score is not None]
        if not kept:
            return None

        def rank(item: tuple[float, int]) -> tuple[float, int, float]:
            score, position = item
            found_year = self.movies[position].year
            gap = abs(found_year - year) if year is not None and found_year is not None else 9
            return (score, -gap, self.movies[position].popularity)

        return max(kept, key=rank)[1]

    def exact(self, title: str, year: int | None) -> int | None:
        """A movie with this very title (or one of its names), or shortened to it."""
        wanted = title_form(title)
        found = self._best(self._by_key.get(wanted.key, []), wanted, year)
        if found is None and not wanted.subtitle:
            found = self._best(self._by_main.get(wanted.key, []), wanted, year)
        return found

    def fuzzy(self, title: str, year: int | None) -> int | None:
        """A movie of that year (± 1) whose title is a near spelling of this one."""
        wanted = title_form(title)
        if year is None or not wanted.key:
            return None
        keys: list[str] = []
        owners: list[int] = []
        for candidate_year in (year - 1, year, year + 1):
            year_keys, year_owners = self._by_year.get(candidate_year, ([], []))
            keys.extend(year_keys)
            owners.extend(year_owners)
        close = process.extract(
            wanted.key, keys, scorer=fuzz.ratio, score_cutoff=self.cutoff, limit=20
        )
        return self._best([owners[i] for _, _, i in close], wanted, year)

    def find(self, title: str, year: int | None) -> int | None:
        """Same title first, then a near spelling."""
        found = self.exact(title, year)
        return found if found is not None else self.fuzzy(title, year)
