"""A labelled set of movie titles as language models write them — real, near misses and
invented — generated deterministically from the shared datasets (never stored: MovieLens may not
be redistributed).

The resolver's world is the one the LLM recommenders see: the ``ml-latest-small`` catalogue, then
tmdb-proxy offline search over ``tmdb-offline/movies.jsonl`` and the datasets. Each title carries
the TMDB id it names, or ``None`` when it names no movie of that world:

- **real**: MovieLens's own form ("Matrix, The", year), the article in front ("The Matrix"),
  without a year (only titles that name one movie), an alternate or foreign title ("Se7en", "La
  Cité des enfants perdus"), a misspelling (a letter dropped from the longest word), the
  subtitle left out ("Borat", where that names one movie), the sequel number written the other
  way ("Rocky 2" for "Rocky II"), and seed-cohort movies outside the catalogue (only search
  finds them);
- **near-miss**: the year off by one (still that movie), a sequel and its original both in the
  catalogue (each must resolve to itself), the year off by 5–15 (names no movie: dropped);
- **invented**: sequels of real movies by number ("X 2", "X II", "X: Part III") or subtitle ("X:
  The Return", "Return to X") in the years after the original, one word of a real title swapped
  ("The Shawshank Promise", same year), made-up titles with real-sounding years, and the sequel
  of a real movie in an unrelated year ("Amanda Knox II (1973)"). Any of them that exists in the
  world (by match key) is skipped.
"""

from __future__ import annotations

import csv
import itertools
import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prefshift_common.movies import display_title, split_title, split_year, title_names
from prefshift_common.title_matching import title_form

Label = Literal["real", "near-miss", "invented"]
LABELS: tuple[Label, ...] = ("real", "near-miss", "invented")


@dataclass(frozen=True)
class LabelledTitle:
    label: Label
    variant: str
    title: str
    year: int | None
    expected: int | None  #: the TMDB id it names; None: it names no movie (must be dropped)


@dataclass(frozen=True)
class Film:
    tmdb_id: int
    movielens_title: str  #: with the year and alternates, as MovieLens writes it
    year: int
    ratings: int


_SUBTITLES = (
    "The Return", "Reckoning", "Legacy", "Resurrection", "The Next Chapter", "Origins",
    "Revenge", "Homecoming", "Rising", "The Final Chapter", "Redemption", "Aftermath",
)  # fmt: skip
_WRAPPERS = ("Return to {}", "Son of {}", "Revenge of {}", "{} Returns", "{} Forever", "{} Reborn")
_NUMBERS = (" 2", " II", ": Part II", " 3", " III", ": Part 3", " IV", " Part Two")
_ADJECTIVES = (
    "Silent", "Crimson", "Last", "Broken", "Northern", "Velvet", "Distant", "Hollow", "Burning",
    "Quiet", "Golden", "Lonely", "Forgotten", "Endless", "Secret", "Wild", "Bitter", "Little",
)  # fmt: skip
_NOUNS = (
    "Harbor", "Midnight", "Letters", "Winter", "Garden", "Summer", "Shadow", "Promise", "River",
    "Empire", "Lights", "Storm", "Hearts", "Orchard", "Shores", "Crown", "Bridges", "Echoes",
    "Hour", "Station", "Kingdom", "Season", "Road", "Island", "Daughter", "Stranger", "Angels",
)  # fmt: skip


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def _films(folder: Path) -> list[Film]:
    """A MovieLens folder's movies with a TMDB id and a year, most rated first."""
    links = {
        row["movieId"]: int(float(row["tmdbId"]))
        for row in _rows(folder / "links.csv")
        if row["tmdbId"]
    }
    counts: dict[str, int] = defaultdict(int)
    for row in _rows(folder / "ratings.csv"):
        counts[row["movieId"]] += 1
    films = []
    for row in _rows(folder / "movies.csv"):
        year = split_year(row["title"])[1]
        if row["movieId"] in links and year is not None:
            films.append(Film(links[row["movieId"]], row["title"], year, counts[row["movieId"]]))
    return sorted(films, key=lambda f: (-f.ratings, f.tmdb_id))


class World:
    """Every (title key → TMDB ids and years) the resolver can find, to label titles by."""

    def __init__(self, shared_data: Path) -> None:
        self.catalogue = _films(shared_data / "ml-latest-small")
        self.catalogue_ids = {film.tmdb_id for film in self.catalogue}
        self.cohort = _films(shared_data / "seed-cohort")
        self.keys: dict[str, set[tuple[int, int | None]]] = defaultdict(set)
        self.mains: dict[str, set[tuple[int, int | None]]] = defaultdict(set)
        for film in [*self.catalogue, *self.cohort]:
            for name in title_names(film.movielens_title):
                self._add(name, film.tmdb_id, film.year)
        with (shared_data / "tmdb-offline" / "movies.jsonl").open(encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                release = str(record.get("release_date") or "")
                year = int(release[:4]) if release[:4].isdigit() else None
                year = year or record.get("_year_from_movielens")
                for name in {record.get("title"), record.get("original_title")}:
                    if isinstance(name, str):
                        self._add(name, record["id"], year)

    def _add(self, name: str, tmdb_id: int, year: int | None) -> None:
        form = title_form(name)
        self.keys[form.key].add((tmdb_id, year))
        if form.subtitle:
            self.mains[form.main].add((tmdb_id, year))

    def exists(self, title: str) -> bool:
        """Some movie of the world has this title, or this main title before its subtitle ("Airplane
        2" for "Airplane II: The Sequel"), in any year."""
        key = title_form(title).key
        return key in self.keys or key in self.mains

    def names_only(self, title: str, tmdb_id: int, year: int | None) -> bool:
        """The title names this movie and no other (near ``year``, or at all when None)."""
        near = {
            found
            for found, found_year in self.keys.get(title_form(title).key, set())
            if year is None or found_year is None or abs(found_year - year) <= 1
        }
        return near == {tmdb_id}

    def shortens_only(self, title: str, tmdb_id: int, year: int) -> bool:
        """The title is the main title of this movie, and of no other near ``year``."""
        key = title_form(title).key
        near = {
            found
            for found, found_year in self.keys.get(key, set()) | self.mains.get(key, set())
            if found_year is None or abs(found_year - year) <= 1
        }
        return near == {tmdb_id}


def _typo(title: str) -> str | None:
    words = re.findall(r"[A-Za-z]{7,}", title)
    if not words:
        return None
    word = max(words, key=len)
    middle = len(word) // 2
    return title.replace(word, word[:middle] + word[middle + 1 :], 1)


def _alternate(film: Film) -> str | None:
    names = title_names(film.movielens_title)
    return names[-1] if len(names) > 1 else None  # the last bracketed name


def _sequel_pairs(world: World) -> list[tuple[Film, Film]]:
    """(original, sequel) pairs of the catalogue: "Toy Story" and "Toy Story 2"."""
    by_key: dict[str, Film] = {}
    for film in world.catalogue:
        by_key.setdefault(title_form(display_title(film.movielens_title)).key, film)
    pairs = []
    for key, film in by_key.items():
        words = key.split()
        if len(words) > 1 and words[-1].isdigit() and int(words[-1]) in (2, 3, 4):
            original = by_key.get(" ".join(words[:-1]))
            if original is not None and original.tmdb_id != film.tmdb_id:
                pairs.append((original, film))
    return pairs


class _Maker:
    """Makes the titles of each variant from one film (``None``: this film does not fit)."""

    def __init__(self, world: World, rng: random.Random) -> None:
        self.world = world
        self.rng = rng

    def _real(self, variant: str, title: str | None, film: Film, year: int | None) -> Labelled:
        if not title or not self.world.names_only(title, film.tmdb_id, year):
            return None
        return LabelledTitle("real", variant, title, year, film.tmdb_id)

    def _invented(self, variant: str, title: str, year: int) -> Labelled:
        if self.world.exists(title):
            return None
        return LabelledTitle("invented", variant, title, year, None)

    # --- real ----------------------------------------------------------------------------------

    def movielens_form(self, film: Film) -> Labelled:
        main = split_title(film.movielens_title, articles_in_front=False)[0]
        return self._real("movielens-form", main, film, film.year)

    def article_front(self, film: Film) -> Labelled:
        return self._real("article-front", display_title(film.movielens_title), film, film.year)

    def no_year(self, film: Film) -> Labelled:
        return self._real("no-year", display_title(film.movielens_title), film, None)

    def alternate(self, film: Film) -> Labelled:
        return self._real("alternate", _alternate(film), film, film.year)

    def misspelled(self, film: Film) -> Labelled:
        typo = _typo(display_title(film.movielens_title))
        if typo is None or self.world.exists(typo):
            return None
        return LabelledTitle("real", "misspelled", typo, film.year, film.tmdb_id)

    def subtitle_dropped(self, film: Film) -> Labelled:
        full = display_title(film.movielens_title)
        form = title_form(full)
        main = re.split(r"\s*(?::|\s[-–—]\s)\s*", full, maxsplit=1)[0]
        if not form.subtitle or not self.world.shortens_only(main, film.tmdb_id, film.year):
            return None
        return LabelledTitle("real", "subtitle-dropped", main, film.year, film.tmdb_id)

    def number_rewritten(self, film: Film) -> Labelled:
        title = display_title(film.movielens_title)
        swaps = {"2": "II", "3": "III", "4": "IV", "II": "2", "III": "3", "IV": "4"}
        words = title.split()
        if not words or words[-1] not in swaps:
            return None
        rewritten = " ".join([*words[:-1], swaps[words[-1]]])
        return self._real("number-rewritten", rewritten, film, film.year)

    def outside_catalogue(self, film: Film) -> Labelled:
        return self._real("outside-catalogue", display_title(film.movielens_title), film, film.year)

    # --- near misses ---------------------------------------------------------------------------

    def year_off_by_one(self, film: Film) -> Labelled:
        title, year = display_title(film.movielens_title), film.year + self.rng.choice((-1, 1))
        if not self.world.names_only(title, film.tmdb_id, year):
            return None
        return LabelledTitle("near-miss", "year-off-by-one", title, year, film.tmdb_id)

    def year_far(self, film: Film) -> Labelled:
        title = display_title(film.movielens_title)
        year = film.year + self.rng.choice((-1, 1)) * self.rng.randint(5, 15)
        key = title_form(title).key
        near = self.world.keys.get(key, set()) | self.world.mains.get(key, set())
        if any(y is None or abs(y - year) <= 1 for _, y in near):
            return None  # names another movie of that year ("300 (2014)": Rise of an Empire)
        return LabelledTitle("near-miss", "year-far", title, year, None)

    # --- invented ------------------------------------------------------------------------------

    def sequel_number(self, film: Film) -> Labelled:
        title = display_title(film.movielens_title) + self.rng.choice(_NUMBERS)
        return self._invented("sequel-number", title, film.year + self.rng.randint(0, 4))

    def sequel_subtitle(self, film: Film) -> Labelled:
        base = display_title(film.movielens_title)
        if self.rng.random() < 0.5:
            title = f"{base}: {self.rng.choice(_SUBTITLES)}"
        else:
            title = self.rng.choice(_WRAPPERS).format(base)
        return self._invented("sequel-subtitle", title, film.year + self.rng.randint(0, 4))

    def word_swapped(self, film: Film) -> Labelled:
        words = display_title(film.movielens_title).split()
        long_words = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
        if len(words) < 2 or not long_words:
            return None
        words[self.rng.choice(long_words)] = self.rng.choice(_NOUNS)
        return self._invented("word-swapped", " ".join(words), film.year)

    def made_up(self, film: Film) -> Labelled:
        adjective, noun, other = self.rng.choice(_ADJECTIVES), *self.rng.sample(_NOUNS, 2)
        form = self.rng.choice(("The {a} {n}", "{a} {n}", "{n} of the {o}", "The {a} {n}s of {o}"))
        title = form.format(a=adjective, n=noun, o=other)
        return self._invented("made-up", title, self.rng.randint(1950, 2018))

    def sequel_any_year(self, film: Film) -> Labelled:
        title = display_title(film.movielens_title) + self.rng.choice((" II", " 2"))
        return self._invented("sequel-any-year", title, self.rng.randint(1950, 2018))


Labelled = LabelledTitle | None


def labelled_titles(
    shared_data: Path, *, per_variant: int = 30, seed: int = 0
) -> list[LabelledTitle]:
    """``per_variant`` titles of each variant (fewer where the data has fewer), in a fixed order
    for a given ``seed``."""
    world = World(shared_data)
    rng = random.Random(seed)
    maker = _Maker(world, rng)
    known = world.catalogue[:3000]  # the movies a model would name: the much-rated ones
    outside = [f for f in world.cohort if f.tmdb_id not in world.catalogue_ids][:3000]
    pairs = _sequel_pairs(world)
    plan: list[tuple[list[Film], Callable[[Film], Labelled]]] = [
        (known, maker.movielens_form),
        (known, maker.article_front),
        (known, maker.no_year),
        (world.catalogue, maker.alternate),
        (known, maker.misspelled),
        (known, maker.subtitle_dropped),
        (world.catalogue, maker.number_rewritten),
        (outside, maker.outside_catalogue),
        (known, maker.year_off_by_one),
        (known, maker.year_far),
        (known, maker.sequel_number),
        (known, maker.sequel_subtitle),
        (known, maker.word_swapped),
        (known, maker.made_up),
        (world.catalogue, maker.sequel_any_year),
    ]
    titles: list[LabelledTitle] = []
    for pool, make in plan:
        made = (make(film) for film in rng.sample(pool, len(pool)))
        titles.extend(itertools.islice((t for t in made if t is not None), per_variant))
    # A sequel and its original, both in the catalogue: each names itself.
    for original, sequel in rng.sample(pairs, min(len(pairs), per_variant // 2)):
        for film in (original, sequel):
            title = display_title(film.movielens_title)
            if world.names_only(title, film.tmdb_id, film.year):
                titles.append(
                    LabelledTitle(
                        "near-miss", "sequel-and-original", title, film.year, film.tmdb_id
                    )
                )
    return titles


@dataclass
class Tally:
    """Outcomes of one label class."""

    total: int = 0
    resolved: int = 0  #: to the movie it names
    wrong: int = 0  #: to another movie (or, for a title naming none, to any movie)
    dropped: int = 0  #: named a movie but was dropped

    def share(self, count: int) -> float:
        return count / self.total if self.total else 0.0

    def row(self, name: str) -> str:
        return (
            f"{name:<10} {self.total:>5}   resolved {self.share(self.resolved):6.1%}   "
            f"wrong-resolved {self.share(self.wrong):6.1%}   "
            f"dropped {self.share(self.dropped):6.1%}"
        )


def tally(titles: list[LabelledTitle], found: list[int | None]) -> dict[str, Tally]:
    """Per label class and in total (``"all"``): resolved / wrong-resolved / dropped. For a
    title that names no movie, dropping it is the right outcome and counts as resolved."""
    tallies: dict[str, Tally] = {name: Tally() for name in (*LABELS, "all")}
    for title, tmdb_id in zip(titles, found, strict=True):
        for name in (title.label, "all"):
            counts = tallies[name]
            counts.total += 1
            if tmdb_id == title.expected:
                counts.resolved += 1
            elif tmdb_id is None:
                counts.dropped += 1
            else:
                counts.wrong += 1
    return tallies
