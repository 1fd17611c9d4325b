"""TMDB-shaped records: TMDB ``genres`` objects, records built from a dataset's own movies and
search results (the vocabulary is ``prefshift_common.movies``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from prefshift_common.movies import TMDB_GENRE_IDS, display_titles, tmdb_genres
from prefshift_tmdb_proxy.shapes import list_item


def genres_from_names(names: Iterable[str]) -> list[dict[str, Any]]:
    """TMDB ``genres`` objects for genre names (MovieLens or TMDB spelling), unknown dropped."""
    return [{"id": TMDB_GENRE_IDS[name.lower()], "name": name} for name in tmdb_genres(names)]


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
    }


def search_result(payload: dict[str, Any], *, year: int | None = None) -> dict[str, Any]:
    """The ``results[]`` item of ``GET /3/search/movie`` for a details record (the numbers TMDB
    always sends as ``0`` where unknown: the search contract requires them), plus, where TMDB's
    release date is unknown, the MovieLens year as ``_year_from_movielens`` (the record's own,
    else ``year``: the offline index's year, which the datasets fill in)."""
    result = list_item(payload)
    result["vote_average"] = result["vote_average"] or 0.0
    result["vote_count"] = result["vote_count"] or 0
    result["popularity"] = result["popularity"] or 0.0
    if not result["release_date"] and "_year_from_movielens" not in result and year:
        result["_year_from_movielens"] = year
    return result
