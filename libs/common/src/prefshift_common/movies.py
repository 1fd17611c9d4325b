"""The movie vocabulary every service shares: TMDB's genres and MovieLens's names for them,
release years, display titles and the keys titles are compared by.

MovieLens writes "Matrix, The (1999)", adds alternative titles in parentheses ("Seven (a.k.a.
Se7en) (1995)", "City of Lost Children, The (Cité des enfants perdus, La) (1995)") and its own
genre names ("Sci-Fi", "Children"); TMDB writes "The Matrix", a ``release_date`` and "Science
Fiction". People and language models write "the matrix", "Se7en" or "The City of Lost Children".
Everything that reads or compares such names goes through this module, so that "Sci-Fi" and
"Matrix, The" are handled one way everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# --- genres -----------------------------------------------------------------------------------

#: TMDB's movie genres (``GET /3/genre/movie/list``), id → name.
TMDB_GENRES: dict[int, str] = {
    28: "Action",
    12: "Adventure",
    16: "Animation",
    35: "Comedy",
    80: "Crime",
    99: "Documentary",
    18: "Drama",
    10751: "Family",
    14: "Fantasy",
    36: "History",
    27: "Horror",
    10402: "Music",
    9648: "Mystery",
    10749: "Romance",
    878: "Science Fiction",
    10770: "TV Movie",
    53: "Thriller",
    10752: "War",
    37: "Western",
}
#: TMDB's genre names in alphabetical order: the genre axes of a persona's preferences.
TMDB_GENRE_NAMES: tuple[str, ...] = tuple(sorted(TMDB_GENRES.values()))
#: genre name (any case) → TMDB genre id.
TMDB_GENRE_IDS: dict[str, int] = {name.lower(): genre_id for genre_id, name in TMDB_GENRES.items()}

#: MovieLens genre names → TMDB's. IMAX and "(no genres listed)" have no counterpart.
MOVIELENS_TO_TMDB_GENRE: dict[str, str] = {
    "Action": "Action",
    "Adventure": "Adventure",
    "Animation": "Animation",
    "Children": "Family",
    "Comedy": "Comedy",
    "Crime": "Crime",
    "Documentary": "Documentary",
    "Drama": "Drama",
    "Fantasy": "Fantasy",
    "Film-Noir": "Crime",
    "Horror": "Horror",
    "Musical": "Music",
    "Mystery": "Mystery",
    "Romance": "Romance",
    "Sci-Fi": "Science Fiction",
    "Thriller": "Thriller",
    "War": "War",
    "Western": "Western",
}


def tmdb_genre(name: str) -> str | None:
    """TMDB's name for a genre written the MovieLens or the TMDB way (any case); None when TMDB
    has no such genre ("IMAX", "(no genres listed)")."""
    name = name.strip()
    genre_id = TMDB_GENRE_IDS.get(MOVIELENS_TO_TMDB_GENRE.get(name, name).lower())
    return TMDB_GENRES[genre_id] if genre_id is not None else None


def tmdb_genres(names: Iterable[str]) -> tuple[str, ...]:
    """TMDB genre names, in the given order (TMDB's order is importance), no duplicates."""
    seen: dict[str, None] = {}
    for name in names:
        genre = tmdb_genre(name)
        if genre is not None:
            seen.setdefault(genre)
    return tuple(seen)


#: How MovieLens marks a movie without genres; it is not a genre.
NO_GENRES_LISTED = "(no genres listed)"


def split_movielens_genres(genres: str | None) -> tuple[str, ...]:
    """MovieLens's ``genres`` column ("Adventure|Children|Fantasy") as names; the
    "(no genres listed)" placeholder is no genre."""
    return tuple(g for g in (genres or "").split("|") if g and g != NO_GENRES_LISTED)


def genre_names(genres: Sequence[str] | str) -> list[str]:
    """Distinct genre names in their order; a MovieLens ``"A|B"`` string is split and its
    "(no genres listed)" is no genre. Names are kept as written (no mapping)."""
    names = split_movielens_genres(genres) if isinstance(genres, str) else genres
    return [str(name) for name in dict.fromkeys(names) if name and name != NO_GENRES_LISTED]


# --- years ------------------------------------------------------------------------------------

# "(1995)" and a series' "(2007-2013)" / "(2007– )" at the end of a MovieLens title
_TRAILING_YEAR = re.compile(r"\s*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")
_LEADING_YEAR = re.compile(r"^\s*(\d{4})")


def split_year(title: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` → ``("Toy Story", 1995)``; a title without a year is kept whole."""
    match = _TRAILING_YEAR.search(title)
    if match is None:
        return title.strip(), None
    return title[: match.start()].strip(), int(match.group(1))


def year_from_title(title: str) -> int | None:
    """The year MovieLens writes at the end of a title, if any."""
    return split_year(title)[1]


def year_from_date(release_date: object) -> int | None:
    """The year of a TMDB ``release_date`` ("1999-03-31"), or of a year given as text or a
    number; None when there is none ("", None, "unknown")."""
    if isinstance(release_date, bool):
        return None
    if isinstance(release_date, int):
        return release_date
    if isinstance(release_date, str):
        match = _LEADING_YEAR.match(release_date)
        return int(match.group(1)) if match else None
    return None


def release_year(record: Mapping[str, Any]) -> int | None:
    """The year of a TMDB-shaped record: its ``release_date``, else the year prefshift keeps
    where TMDB's date is unknown: ``year``, ``movielens_year`` (what tmdb-proxy serves beside
    TMDB's body, merged by ``prefshift_common.tmdb_client``) or ``_year_from_movielens`` (the
    key of the stored offline records, never served)."""
    year = year_from_date(record.get("release_date"))
    if year is not None:
        return year
    for key in ("year", "movielens_year", "_year_from_movielens"):
        value = record.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


# --- titles -----------------------------------------------------------------------------------

#: Articles MovieLens moves to the end ("Matrix, The", "Avventura, L'", "Boot, Das") in the
#: languages its titles come in.
ARTICLES: tuple[str, ...] = (
    *("the", "a", "an"),  # English
    *("les", "la", "le", "l'", "un", "une"),  # French
    *("il", "lo", "gli", "i"),  # Italian
    *("el", "los", "las"),  # Spanish
    *("die", "der", "das", "ein", "eine"),  # German
    *("det", "den"),  # Scandinavian
    *("de", "het", "een"),  # Dutch
    *("o", "os", "as"),  # Portuguese
)
_TRAILING_ARTICLE = re.compile(
    r"^(?P<body>.+),\s*(?P<article>" + "|".join(re.escape(a) for a in ARTICLES) + r")$",
    re.IGNORECASE,
)
_LEADING_ARTICLE = re.compile(r"^(?:" + "|".join(ARTICLES) + r")\s+(?=\S)")
_PARENTHETICAL = re.compile(r"\s*\(([^()]*)\)\s*$")
_AKA = re.compile(r"^\s*(?:a\.?k\.?a\.?|aka)\s+", re.IGNORECASE)
_APOSTROPHES = re.compile(r"['’`´]")
_NON_WORD = re.compile(r"[\W_]+")


def front_article(title: str) -> str:
    """ "Matrix, The" → "The Matrix"; "Avventura, L'" → "L'Avventura"."""
    title = title.strip()
    match = _TRAILING_ARTICLE.match(title)
    if match is None:
        return title
    article = match.group("article")
    joiner = "" if article.endswith("'") else " "
    return f"{article}{joiner}{match.group('body').strip()}"


def split_title(title: str, *, articles_in_front: bool = True) -> tuple[str, list[str], list[bool]]:
    """A MovieLens title's main title (year removed, article in front), its parenthesised
    alternatives (articles in front, "a.k.a." removed) and, for each alternative, whether
    MovieLens marked it "a.k.a." (a better-known name) rather than the original title.
    ``articles_in_front=False`` leaves the articles where MovieLens wrote them."""
    arrange = front_article if articles_in_front else str.strip
    rest = split_year(title)[0]
    alternatives: list[str] = []
    aka: list[bool] = []
    while True:
        match = _PARENTHETICAL.search(rest)
        if match is None or match.start() == 0:
            break
        inner = match.group(1).strip()
        if inner:
            aka.append(bool(_AKA.match(inner)))
            alternatives.append(arrange(_AKA.sub("", inner)))
        rest = rest[: match.start()]
    alternatives.reverse()
    aka.reverse()
    return arrange(rest), alternatives, aka


def title_names(movielens_title: str) -> list[str]:
    """Every name a MovieLens title gives its movie: the main title, then its alternatives
    (year removed, articles in front, no duplicates)."""
    main, alternatives, _ = split_title(movielens_title)
    return [name for name in dict.fromkeys([main, *alternatives]) if name]


def display_title(movielens_title: str) -> str:
    """What a person calls a MovieLens title: no year, no alternatives, article in front
    ("Seven (a.k.a. Se7en) (1995)" → "Seven")."""
    return split_title(movielens_title)[0]


def display_titles(movielens_title: str) -> tuple[str, str]:
    """``(title, original_title)`` for a MovieLens title: "Amelie (Fabuleux destin d'Amélie
    Poulain, Le) (2001)" → ("Amelie", "Le Fabuleux destin d'Amélie Poulain")."""
    title, alternatives, aka = split_title(movielens_title)
    originals = [alt for alt, is_aka in zip(alternatives, aka, strict=True) if not is_aka]
    return title, (originals[0] if originals else title)


def readable_title(title: str) -> str:
    """A title as people write it, whether TMDB's or MovieLens's, keeping what is in brackets:
    "Godfather, The (1972)" → "The Godfather" (the year is shown separately)."""
    return front_article(split_year(title)[0])


def fold(text: str) -> str:
    """Lowercase, accents and punctuation removed ("&" is "and", "Schindler's" is
    "schindlers"), spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    plain = _APOSTROPHES.sub("", plain.replace("&", " and "))
    return _NON_WORD.sub(" ", plain).strip()


def title_key(title: str) -> str:
    """The form two ways of writing one title share: no year, article in front then dropped,
    folded ("Matrix, The (1999)", "The Matrix" and "matrix" → "matrix"). Alternative titles
    in brackets stay part of it; :func:`title_keys` splits them."""
    return _LEADING_ARTICLE.sub("", fold(front_article(split_year(title)[0])))


def title_keys(title: str) -> list[str]:
    """The keys of a MovieLens title: its main title's, then its alternatives'."""
    keys = [title_key(name) for name in title_names(title)]
    return [key for key in dict.fromkeys(keys) if key]


def movie_label(title: str, year: int | None) -> str:
    """A title with its year, as prompts and tables show a movie: "Heat (1995)"."""
    return f"{title} ({year})" if year else title
