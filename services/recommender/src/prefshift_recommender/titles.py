"""Matching movie titles as people and language models write them to a dataset's movies.

MovieLens writes "Matrix, The (1999)", "Seven (a.k.a. Se7en) (1995)" and "Cité des enfants
perdus, La (City of Lost Children, The) (1995)"; a model writes "The Matrix", "Se7en" or
"The City of Lost Children", sometimes misspelled. Which movie a title names is decided by
:mod:`prefshift_common.title_matching`.
"""

from __future__ import annotations

import re
import unicodedata

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
