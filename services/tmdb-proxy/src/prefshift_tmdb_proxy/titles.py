"""MovieLens titles → TMDB-style titles and search keys.

MovieLens writes "Matrix, The (1999)" and adds alternative titles in parentheses ("Seven
(a.k.a. Se7en) (1995)", "City of Lost Children, The (Cité des enfants perdus, La) (1995)").
"""

from __future__ import annotations

import re
import unicodedata

_ARTICLES = (
    "the", "a", "an", "les", "la", "le", "l'", "il", "die", "der", "das", "el", "los", "las",
    "lo", "i", "gli", "det", "den", "de", "een", "het", "o", "os", "as", "un", "une",
)  # fmt: skip
_TRAILING_ARTICLE = re.compile(
    r"^(?P<body>.+),\s*(?P<article>" + "|".join(re.escape(a) for a in _ARTICLES) + r")$",
    re.IGNORECASE,
)
_TRAILING_YEAR = re.compile(r"\s*\((\d{4})(?:[–-]\d{0,4})?\)\s*$")
_PARENTHETICAL = re.compile(r"\s*\(([^()]*)\)\s*$")
_AKA = re.compile(r"^a\.k\.a\.\s*", re.IGNORECASE)
_NON_WORD = re.compile(r"[^\w]+")


def front_article(title: str) -> str:
    """ "Matrix, The" → "The Matrix"; "Avventura, L'" → "L'Avventura"."""
    match = _TRAILING_ARTICLE.match(title.strip())
    if not match:
        return title.strip()
    article = match.group("article")
    joiner = "" if article.endswith("'") else " "
    return f"{article}{joiner}{match.group('body')}"


def split_title(title: str) -> tuple[str, list[str], list[bool]]:
    """The main title (article in front, year removed), its parenthesised alternatives (articles
    in front) and, for each alternative, whether MovieLens marked it "a.k.a."."""
    rest = _TRAILING_YEAR.sub("", title.strip())
    alternatives: list[str] = []
    aka: list[bool] = []
    while True:
        match = _PARENTHETICAL.search(rest)
        if not match or match.start() == 0:
            break
        inner = match.group(1).strip()
        aka.append(bool(_AKA.match(inner)))
        alternatives.append(front_article(_AKA.sub("", inner)))
        rest = rest[: match.start()]
    alternatives.reverse()
    aka.reverse()
    return front_article(rest), alternatives, aka


def display_titles(movielens_title: str) -> tuple[str, str]:
    """``(title, original_title)`` for a MovieLens title: "Amelie (Fabuleux destin d'Amélie
    Poulain, Le) (2001)" → ("Amelie", "Le Fabuleux destin d'Amélie Poulain")."""
    title, alternatives, aka = split_title(movielens_title)
    originals = [alt for alt, is_aka in zip(alternatives, aka, strict=True) if not is_aka]
    return title, (originals[0] if originals else title)


def fold(text: str) -> str:
    """Lowercase, accents and punctuation removed, spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_ish = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_WORD.sub(" ", ascii_ish.casefold()).strip()


def title_keys(title: str) -> list[str]:
    """Normalised search keys of a title: the main title and its alternatives."""
    main, alternatives, _ = split_title(title)
    keys = [fold(t) for t in (main, *alternatives)]
    return [key for key in dict.fromkeys(keys) if key]


def normalise_query(query: str) -> str:
    """A query normalised like the keys (so "Matrix, The" finds "The Matrix" and back)."""
    return fold(front_article(_TRAILING_YEAR.sub("", query.strip())))
