"""TMDB-shaped records: TMDB ``genres`` objects, records built from a dataset's own movies and
search results (the vocabulary is ``prefshift_common.movies``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from prefshift_common.movies import TMDB_GENRE_IDS, display_titles, tmdb_genres
from prefshift_tmdb_proxy.shapes import list_item

#: The key of a stored record (the shared offline files, a dataset's own movie) holding the
#: MovieLens year where TMDB gives no release date. Never in a TMDB-shaped body: prefshift's
#: own routes serve it beside the body (``movielens_years`` of ``POST /movies/batch``, the
#: ``X-Prefshift-Movielens-Years`` header of ``/3/search/movie``).
MOVIELENS_YEAR: Final = "_year_from_movielens"


def movielens_year(record: Mapping[str, Any]) -> int | None:
    """The MovieLens year of a stored record that has no release date, else None."""
    if record.get("release_date"):
        return None
    year = record.get(MOVIELENS_YEAR)
    return year if isinstance(year, int) and not isinstance(year, bool) else None


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
        MOVIELENS_YEAR: year,
        "overview": overview or "",
        "genres": genres_from_names(names),
        "vote_average": vote_average,
        "vote_count": vote_count,
    }


def search_result(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``results[]`` item of ``GET /3/search/movie`` for a details record (the numbers TMDB
    always sends as ``0`` where unknown: the search contract requires them)."""
    result = list_item(payload)
    result["vote_average"] = result["vote_average"] or 0.0
    result["vote_count"] = result["vote_count"] or 0
    result["popularity"] = result["popularity"] or 0.0
    return result
