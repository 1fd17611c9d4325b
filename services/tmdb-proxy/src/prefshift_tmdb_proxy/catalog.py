"""The offline catalogue: every movie the offline source can serve, in memory, for TMDB's list
paths — ``/3/movie/popular``, ``top_rated``, ``now_playing``, ``upcoming``, ``latest``,
``/3/discover/movie``, ``/3/find/{external_id}`` and a movie's ``similar`` and
``recommendations`` — answered from the imported records and the datasets' own movies.

Orders, where TMDB's own cannot be known offline:

- **popular**: how many ratings the imported datasets hold of the movie (the datasets' own
  popularity; TMDB's ``popularity`` is a 2017 snapshot on a third of the records), then TMDB's
  vote count;
- **top_rated**: TMDB's ``vote_average`` among movies with at least :data:`TOP_RATED_MIN_VOTES`
  votes (TMDB's own list also leaves out movies with few votes), then the vote count;
- **similar** / **recommendations**: movies sharing the most genres (then keywords) with the
  movie, then by popularity as above — a transparent stand-in, not TMDB's model;
- **now_playing** / **upcoming**: release dates in TMDB's windows around today (the records are
  snapshots, so these are usually empty — which is the truth offline).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from prefshift_common.movies import release_year
from prefshift_tmdb_proxy.records import search_result

#: Fewest TMDB votes a movie needs for the offline ``top_rated`` list.
TOP_RATED_MIN_VOTES = 300


@dataclass(frozen=True)
class Entry:
    """One movie of the catalogue."""

    tmdb_id: int
    item: dict[str, Any]  # TMDB's list item (numbers 0 where unknown, as TMDB lists send them)
    genre_ids: frozenset[int]
    keyword_ids: frozenset[int]
    year: int | None
    release_date: str
    imdb_id: str | None
    ratings: int
    original_language: str | None
    title: str
    original_title: str


def _keyword_ids(record: Mapping[str, Any]) -> frozenset[int]:
    held = record.get("keywords")
    if isinstance(held, dict):
        held = held.get("keywords")
    if not isinstance(held, list):
        return frozenset()
    return frozenset(k["id"] for k in held if isinstance(k, dict) and isinstance(k.get("id"), int))


@dataclass
class Catalog:
    """Entries by id, and the lookups the list paths need."""

    entries: dict[int, Entry] = field(default_factory=dict)
    by_imdb: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        records: Mapping[int, Mapping[str, Any]],
        ratings: Mapping[int, int],
    ) -> Catalog:
        """From the records the offline source serves (imported first, then the datasets')."""
        catalog = cls()
        for tmdb_id, record in records.items():
            item = search_result(dict(record))
            imdb_id = record.get("imdb_id")
            entry = Entry(
                tmdb_id=tmdb_id,
                item=item,
                genre_ids=frozenset(item["genre_ids"]),
                keyword_ids=_keyword_ids(record),
                year=release_year(record),
                release_date=item["release_date"] or "",
                imdb_id=imdb_id if isinstance(imdb_id, str) else None,
                ratings=ratings.get(tmdb_id, 0),
                original_language=item["original_language"],
                title=item["title"] or "",
                original_title=item["original_title"] or "",
            )
            catalog.entries[tmdb_id] = entry
            if entry.imdb_id:
                catalog.by_imdb.setdefault(entry.imdb_id.lower(), tmdb_id)
        return catalog

    def __len__(self) -> int:
        return len(self.entries)

    # --- lists ----------------------------------------------------------------------------------

    def popular(self) -> list[dict[str, Any]]:
        ranked = sorted(
            self.entries.values(), key=lambda e: (-e.ratings, -e.item["vote_count"], e.tmdb_id)
        )
        return [e.item for e in ranked]

    def top_rated(self) -> list[dict[str, Any]]:
        chosen = [e for e in self.entries.values() if e.item["vote_count"] >= TOP_RATED_MIN_VOTES]
        chosen.sort(key=lambda e: (-e.item["vote_average"], -e.item["vote_count"], e.tmdb_id))
        return [e.item for e in chosen]

    def released_between(self, first: date, last: date) -> list[dict[str, Any]]:
        """Movies released in ``[first, last]``, most popular first (now_playing, upcoming)."""
        low, high = first.isoformat(), last.isoformat()
        chosen = [
            e for e in self.entries.values() if e.release_date and low <= e.release_date <= high
        ]
        chosen.sort(key=lambda e: (-e.ratings, -e.item["popularity"], e.tmdb_id))
        return [e.item for e in chosen]

    def latest(self) -> int | None:
        """TMDB's "latest" is the movie most recently added: offline, the highest id."""
        return max(self.entries, default=None)

    def find_imdb(self, imdb_id: str) -> dict[str, Any] | None:
        tmdb_id = self.by_imdb.get(imdb_id.strip().lower())
        return self.entries[tmdb_id].item if tmdb_id is not None else None

    def similar(self, tmdb_id: int) -> list[dict[str, Any]]:
        """Movies sharing the most genres, then keywords, with ``tmdb_id`` (at most 500)."""
        movie = self.entries.get(tmdb_id)
        if movie is None or not (movie.genre_ids or movie.keyword_ids):
            return []
        scored = []
        for entry in self.entries.values():
            if entry.tmdb_id == tmdb_id:
                continue
            genres = len(movie.genre_ids & entry.genre_ids)
            keywords = len(movie.keyword_ids & entry.keyword_ids)
            if genres or keywords:
                scored.append(
                    (-genres, -keywords, -entry.ratings, -entry.item["vote_count"], entry)
                )
        scored.sort(key=operator.itemgetter(0, 1, 2, 3))
        return [row[4].item for row in scored[:500]]

    # --- discover -------------------------------------------------------------------------------

    def discover(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """``/3/discover/movie``'s filters and ``sort_by`` over the catalogue (the parameters
        that the records can answer; others are ignored, as unknown ones are by TMDB)."""
        tests = _discover_filters(params)
        chosen = [e for e in self.entries.values() if all(test(e) for test in tests)]
        key, reverse = _SORTS.get(params.get("sort_by", ""), _SORTS["popularity.desc"])
        chosen.sort(key=lambda e: e.tmdb_id)
        chosen.sort(key=key, reverse=reverse)
        return [e.item for e in chosen]


def _genre_test(value: str, *, negate: bool) -> Callable[[Entry], bool]:
    """TMDB's genre lists: ``a,b`` is AND, ``a|b`` is OR."""
    any_of = "|" in value
    wanted = {int(part) for part in value.replace("|", ",").split(",") if part.strip().isdigit()}
    if negate:
        return lambda e: not (e.genre_ids & wanted)
    if any_of:
        return lambda e: bool(e.genre_ids & wanted)
    return lambda e: wanted <= e.genre_ids


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _year_test(year: int) -> Callable[[Entry], bool]:
    return lambda e: e.year == year


def _date_test(bound: str, compare: Callable[[str, str], bool]) -> Callable[[Entry], bool]:
    return lambda e: bool(e.release_date) and compare(e.release_date, bound)


def _number_test(
    column: str, bound: float, compare: Callable[[float, float], bool]
) -> Callable[[Entry], bool]:
    return lambda e: compare(float(e.item[column]), bound)


def _discover_filters(params: Mapping[str, str]) -> list[Callable[[Entry], bool]]:
    tests: list[Callable[[Entry], bool]] = []
    if params.get("with_genres"):
        tests.append(_genre_test(params["with_genres"], negate=False))
    if params.get("without_genres"):
        tests.append(_genre_test(params["without_genres"], negate=True))
    for name in ("primary_release_year", "year"):
        year = params.get(name, "")
        if year.isdigit():
            tests.append(_year_test(int(year)))
    for prefix in ("primary_release_date", "release_date"):
        low, high = params.get(f"{prefix}.gte"), params.get(f"{prefix}.lte")
        if low:
            tests.append(_date_test(low, operator.ge))
        if high:
            tests.append(_date_test(high, operator.le))
    for name, compare in (("gte", operator.ge), ("lte", operator.le)):
        for column in ("vote_count", "vote_average"):
            bound = _number(params.get(f"{column}.{name}", ""))
            if bound is not None:
                tests.append(_number_test(column, bound, compare))
    if params.get("with_original_language"):
        language = params["with_original_language"]
        tests.append(lambda e: e.original_language == language)
    return tests


_SORTS: dict[str, tuple[Callable[[Entry], Any], bool]] = {
    "popularity.desc": (lambda e: (e.ratings, e.item["vote_count"]), True),
    "popularity.asc": (lambda e: (e.ratings, e.item["vote_count"]), False),
    "vote_average.desc": (lambda e: e.item["vote_average"], True),
    "vote_average.asc": (lambda e: e.item["vote_average"], False),
    "vote_count.desc": (lambda e: e.item["vote_count"], True),
    "vote_count.asc": (lambda e: e.item["vote_count"], False),
    "primary_release_date.desc": (lambda e: e.release_date, True),
    "primary_release_date.asc": (lambda e: e.release_date, False),
    "title.asc": (lambda e: e.title.casefold(), False),
    "title.desc": (lambda e: e.title.casefold(), True),
    "original_title.asc": (lambda e: e.original_title.casefold(), False),
    "original_title.desc": (lambda e: e.original_title.casefold(), True),
}
#: The ``sort_by`` values answered offline (others sort by popularity, as TMDB's default).
DISCOVER_SORTS = tuple(_SORTS)


def window(kind: str, today: date) -> tuple[date, date]:
    """TMDB's date windows: now_playing the last ~6 weeks, upcoming the next ~4."""
    if kind == "now_playing":
        return today - timedelta(days=42), today
    return today + timedelta(days=1), today + timedelta(days=28)
