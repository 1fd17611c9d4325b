"""TMDB-shaped records: genre tables, MovieLens → TMDB mapping, and the typed columns of a
payload."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from prefshift_tmdb_proxy.titles import display_titles

#: TMDB's movie genre list (``GET /3/genre/movie/list``).
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
TMDB_GENRE_IDS: dict[str, int] = {name.lower(): genre_id for genre_id, name in TMDB_GENRES.items()}

#: MovieLens genres whose TMDB name differs; IMAX and "(no genres listed)" have no counterpart.
MOVIELENS_TO_TMDB: dict[str, str] = {
    "Children": "Family",
    "Sci-Fi": "Science Fiction",
    "Musical": "Music",
    "Film-Noir": "Crime",
}

_YEAR = re.compile(r"^(\d{4})")


def genres_from_names(names: Iterable[str]) -> list[dict[str, Any]]:
    """TMDB ``genres`` objects for genre names (MovieLens or TMDB spelling), unknown dropped."""
    genres: list[dict[str, Any]] = []
    seen: set[int] = set()
    for raw in names:
        name = MOVIELENS_TO_TMDB.get(raw.strip(), raw.strip())
        genre_id = TMDB_GENRE_IDS.get(name.lower())
        if genre_id is not None and genre_id not in seen:
            seen.add(genre_id)
            genres.append({"id": genre_id, "name": TMDB_GENRES[genre_id]})
    return genres


def year_of(payload: dict[str, Any]) -> int | None:
    """The release year of a TMDB-shaped record (release date, else the ``year`` fields)."""
    match = _YEAR.match(str(payload.get("release_date") or ""))
    if match:
        return int(match.group(1))
    for key in ("year", "_year_from_movielens"):
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def normalise(payload: dict[str, Any], source: str) -> dict[str, Any]:
    """A copy in the shape TMDB answers: ``release_date`` is a string ("" when unknown), and
    ``prefshift_source`` says where the record came from."""
    record = dict(payload)
    if record.get("release_date") is None:
        record["release_date"] = ""
    record["prefshift_source"] = source
    return record


def from_dataset_movie(
    *,
    tmdb_id: int,
    title: str,
    year: int | None,
    genres: Sequence[str],
    overview: str | None,
    imdb_id: str | None,
    tmdb_genres: Sequence[str],
    vote_average: float | None,
    vote_count: int | None,
) -> dict[str, Any]:
    """A TMDB-shaped record built from a dataset's own movie row: MovieLens title (as TMDB would
    write it), year and genres; the seed files' overview and TMDB genres when present."""
    names = tmdb_genres or genres
    display_title, original_title = display_titles(title)
    imdb = None
    if imdb_id:
        imdb = f"tt{imdb_id.zfill(7)}" if imdb_id.isdigit() else imdb_id
    return {
        "id": tmdb_id,
        "imdb_id": imdb,
        "title": display_title,
        "original_title": original_title,
        "release_date": "",
        "_year_from_movielens": year,
        "overview": overview or "",
        "genres": genres_from_names(names),
        "vote_average": vote_average,
        "vote_count": vote_count,
        "popularity": None,
        "poster_path": None,
        "prefshift_source": "movielens",
    }


def search_result(payload: dict[str, Any], *, year: int | None = None) -> dict[str, Any]:
    """The ``results[]`` item of ``GET /3/search/movie`` for a details record, plus, where TMDB's
    release date is unknown, the MovieLens year as ``_year_from_movielens`` (the record's own,
    else ``year``: the offline index's year, which the datasets fill in)."""
    result = {
        "id": payload["id"],
        "title": payload.get("title") or "",
        "original_title": payload.get("original_title") or payload.get("title") or "",
        "release_date": payload.get("release_date") or "",
        "overview": payload.get("overview") or "",
        "genre_ids": [g["id"] for g in payload.get("genres") or [] if isinstance(g, dict)],
        "vote_average": payload.get("vote_average") or 0.0,
        "vote_count": payload.get("vote_count") or 0,
        "popularity": payload.get("popularity") or 0.0,
        "poster_path": payload.get("poster_path"),
        "prefshift_source": payload.get("prefshift_source"),
    }
    if not result["release_date"]:
        known = payload.get("_year_from_movielens") or year
        if known:
            result["_year_from_movielens"] = known
    return result
