"""A dataset's movies as the recommenders see them: TMDB ids, display titles, years, genres and
how often each was rated; plus the title index the LLM recommenders resolve titles with."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from prefshift_common.movies import display_title, title_names
from prefshift_common.title_matching import CatalogueMovie, TitleCatalogue
from prefshift_recommender.repository import DatasetRef, MovieRows

#: The genre of a movie MovieLens lists none for.
NO_GENRES = "(no genres listed)"


@dataclass(frozen=True)
class CatalogMovie:
    """One movie of a dataset's catalogue."""

    tmdb_id: int
    movielens_id: int
    title: str
    year: int | None
    genres: tuple[str, ...]
    rating_count: int


@dataclass
class Catalog:
    """The movies of one dataset that have a TMDB id (one entry per TMDB id)."""

    dataset: DatasetRef
    movies: list[CatalogMovie]
    _raw_titles: list[str] = field(repr=False)
    _position: dict[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._position = {movie.tmdb_id: i for i, movie in enumerate(self.movies)}

    @classmethod
    def from_rows(cls, dataset: DatasetRef, rows: MovieRows) -> Catalog:
        """Build from repository rows; a TMDB id linked from two MovieLens ids keeps the
        more-rated one."""
        best: dict[int, int] = {}
        for i, tmdb_id in enumerate(rows.tmdb_ids):
            j = best.get(tmdb_id)
            if j is None or rows.rating_counts[i] > rows.rating_counts[j]:
                best[tmdb_id] = i
        chosen = sorted(best.values())
        movies = [
            CatalogMovie(
                tmdb_id=rows.tmdb_ids[i],
                movielens_id=rows.movielens_ids[i],
                title=display_title(rows.titles[i])[:500] or rows.titles[i][:500],
                year=rows.years[i],
                genres=tuple(rows.genres[i]),
                rating_count=rows.rating_counts[i],
            )
            for i in chosen
        ]
        return cls(dataset=dataset, movies=movies, _raw_titles=[rows.titles[i] for i in chosen])

    def __len__(self) -> int:
        return len(self.movies)

    def get(self, tmdb_id: int) -> CatalogMovie | None:
        position = self._position.get(tmdb_id)
        return self.movies[position] if position is not None else None

    def __contains__(self, tmdb_id: object) -> bool:
        return tmdb_id in self._position

    @functools.cached_property
    def titles(self) -> TitleCatalogue:
        """Title index over MovieLens titles and their alternates (built on first use)."""
        return TitleCatalogue(
            [
                CatalogueMovie(
                    tmdb_id=movie.tmdb_id,
                    names=tuple(title_names(raw)),
                    year=movie.year,
                    popularity=float(movie.rating_count),
                )
                for movie, raw in zip(self.movies, self._raw_titles, strict=True)
            ]
        )

    @functools.cached_property
    def most_rated_by_genre(self) -> dict[str, list[CatalogMovie]]:
        """Each genre's movies, most-rated first (ties by TMDB id), built on first use: the
        candidate rounds' offer walks these instead of sorting the catalogue every time."""
        by_genre: dict[str, list[CatalogMovie]] = {}
        for movie in sorted(self.movies, key=lambda m: (-m.rating_count, m.tmdb_id)):
            for genre in movie.genres or (NO_GENRES,):
                by_genre.setdefault(genre, []).append(movie)
        return by_genre

    @functools.cached_property
    def genres(self) -> list[str]:
        """Every genre of the catalogue, sorted."""
        return sorted({genre for movie in self.movies for genre in movie.genres})
