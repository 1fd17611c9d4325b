"""TMDB-shaped records: TMDB ``genres`` objects and the typed columns of a payload,
and records built from a dataset's own movies (the vocabulary is ``prefshift_common.movies``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prefshift_common.movies import TMDB_GENRE_IDS, display_titles, tmdb_genres


def genres_from_names(names: Iterable[str]) -> list[dict[str, Any]]:
    """TMDB ``genres`` objects for genre names (MovieLens or TMDB spelling), unknown dropped."""
    return [{"id": TMDB_GENRE_IDS[name.lower()], "name": name} for name in tmdb_genres(names)]


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
