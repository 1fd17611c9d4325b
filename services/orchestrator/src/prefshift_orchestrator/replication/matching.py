"""Matching titles as the study's LLM echoed them to a short list of known titles.

The persona echoed the test movies' titles in its answers ("The Ring (2002)", "Ring, The",
"Title: Pocahontas (1995)", "Loooper (2012)"), and rated recommendations under the titles it was
shown, give or take. The rule, applied to one user's test movies or to one page's titles:

1. a leading ``Title:`` label and enclosing square brackets or quotes are dropped, and the year
   in trailing brackets is split off;
2. a title is known under its name and every alternate in trailing brackets (MovieLens's
   "Ringu (Ring)", "Seven (a.k.a. Se7en)"), on both sides;
3. titles with the same match key (:func:`prefshift_common.title_matching.title_form`: case,
   accents, punctuation, articles, sequel numbers) whose years agree within one: exactly one
   movie → matched; several → the one of the same year, else ambiguous (unmatched);
4. none → the shared rules of :class:`~prefshift_common.title_matching.TitleCatalogue` (a
   shortened title, a near spelling of the same year ±1);
5. anything else is unmatched, and counted by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from prefshift_common.movies import split_year as split_trailing_year
from prefshift_common.movies import title_names as movielens_names
from prefshift_common.title_matching import (
    CatalogueMovie,
    TitleCatalogue,
    title_form,
    years_agree,
)

_LABEL = re.compile(r"^\s*title\s*:\s*", re.I)
_ENCLOSING = {("[", "]"), ('"', '"'), ("“", "”"), ("'", "'")}


def _unwrap(title: str) -> str:
    title = _LABEL.sub("", title).strip()
    while len(title) > 1 and (title[0], title[-1]) in _ENCLOSING:
        title = title[1:-1].strip()
    return title


def split_year(title: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` → ``("Toy Story", 1995)`` (label and enclosing brackets dropped)."""
    return split_trailing_year(_unwrap(title))


def title_names(title: str) -> tuple[list[str], int | None]:
    """A title's names (the title, then its alternates in trailing brackets) and its year."""
    name, year = split_year(title)
    return movielens_names(_unwrap(title)) or [name], year


class TitleMatcher:
    """Finds which of a few known titles an echoed title names (``None``: unmatched)."""

    def __init__(self, titles: Sequence[str]) -> None:
        self.titles = list(titles)
        movies = []
        for position, title in enumerate(self.titles):
            names, year = title_names(title)
            movies.append(CatalogueMovie(tmdb_id=position + 1, names=tuple(names), year=year))
        self._keys = [{title_form(name).key for name in movie.names} for movie in movies]
        self._catalogue = TitleCatalogue(movies)

    def match(self, echoed: str) -> int | None:
        """The position of the title ``echoed`` names, or ``None``."""
        names, year = title_names(echoed)
        wanted = {key for key in (title_form(part).key for part in names) if key}
        if not wanted:
            return None
        same = [
            position
            for position, keys in enumerate(self._keys)
            if wanted & keys and years_agree(year, self._catalogue.movies[position].year)
        ]
        if len(same) > 1 and year is not None:
            same = [p for p in same if self._catalogue.movies[p].year == year] or same
        # One movie listed twice (the study sampled with replacement) is still one movie.
        if len({self.titles[p] for p in same}) > 1:
            return None
        if same:
            return same[0]
        return self._catalogue.find(names[0], year)
