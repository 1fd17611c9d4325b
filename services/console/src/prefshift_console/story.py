"""One persona's story, put together from a run's public records: the movies its persona was
built from, the baseline, each page's recommendations with the rating and feeling they got (and
the predicted rating shown beside them, with their rating without it), and the test movies
re-rated page by page (beside the rerate design's predictions, with their conditions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from prefshift_common.contracts import TmdbMovie

BASELINE = "baseline"


@dataclass(frozen=True)
class MovieLine:
    tmdb_id: int
    title: str
    year: str
    genres: str
    rating: float | None = None
    feeling: str = ""
    #: The predicted rating shown beside the movie, and its rating without it (blind), if any.
    shown: float | None = None
    blind: float | None = None


@dataclass(frozen=True)
class TestLine:
    """A test movie: the real user's rating, the baseline and the re-rating after each page
    (with the prediction shown beside it and the rerate condition, per page)."""

    movie: MovieLine
    real: float
    baseline: float | None
    pages: list[float | None]
    shown: list[float | None] = field(default_factory=list)
    conditions: list[str | None] = field(default_factory=list)

    @property
    def last_change(self) -> float | None:
        last = next((value for value in reversed(self.pages) if value is not None), None)
        if last is None or self.baseline is None:
            return None
        return last - self.baseline


@dataclass
class ArmStory:
    arm: str
    pages: dict[int, list[MovieLine]] = field(default_factory=dict)
    tests: list[TestLine] = field(default_factory=list)


@dataclass(frozen=True)
class Story:
    history: list[MovieLine]
    baseline: list[MovieLine]
    arms: list[ArmStory]
    n_pages: int


def movie_line(
    tmdb_id: int,
    records: Mapping[int, TmdbMovie],
    *,
    fallback_title: str = "",
    fallback_genres: Sequence[str] = (),
    rating: float | None = None,
    feeling: str = "",
    shown: float | None = None,
) -> MovieLine:
    """A movie as shown: the title, year and genres of its TMDB-shaped record (tmdb-proxy),
    or what the run stored when the proxy does not know it."""
    record = records.get(tmdb_id)
    year = record.year if record is not None else None
    genres = record.genre_names if record is not None else []
    return MovieLine(
        tmdb_id=tmdb_id,
        title=(record.title if record is not None else "") or fallback_title or f"TMDB {tmdb_id}",
        year=str(year) if year is not None else "",
        genres=", ".join(genres or list(fallback_genres)),
        rating=rating,
        feeling=feeling,
        shown=shown,
    )


def movie_ids(selection: Mapping[str, Any], ratings: Sequence[Mapping[str, Any]]) -> list[int]:
    """Every movie a story mentions (for one batch call to tmdb-proxy)."""
    ids = [int(m["tmdb_id"]) for part in ("persona", "test") for m in selection.get(part, [])]
    ids += [int(r["tmdb_id"]) for r in ratings]
    return list(dict.fromkeys(ids))


def build_story(
    *,
    run: Mapping[str, Any],
    selection: Mapping[str, Any],
    ratings: Sequence[Mapping[str, Any]],
    records: Mapping[int, TmdbMovie],
) -> Story:
    """The story of ``run`` from ``GET /runs/{id}``, ``/selection``, ``/ratings`` and the movies'
    records."""
    history = [
        movie_line(
            int(m["tmdb_id"]),
            records,
            fallback_title=m.get("title", ""),
            fallback_genres=m.get("genres", []),
            rating=float(m["rating"]),
        )
        for m in selection.get("persona", [])
    ]
    test_movies = {int(m["tmdb_id"]): m for m in selection.get("test", [])}
    tests: dict[tuple[str, int], dict[int, Mapping[str, Any]]] = {}
    experiences: dict[str, dict[int, list[MovieLine]]] = {}
    blind: dict[tuple[str, int, int], float] = {}
    baseline_ratings: dict[int, Mapping[str, Any]] = {}
    for rating in ratings:
        arm, page, tmdb_id = str(rating["arm"]), int(rating["page"]), int(rating["tmdb_id"])
        if arm == BASELINE:
            baseline_ratings[tmdb_id] = rating
        elif rating["phase"] == "test":
            tests.setdefault((arm, page), {})[tmdb_id] = rating
        elif rating["phase"] == "blind":
            blind[(arm, page, tmdb_id)] = float(rating["rating"])
        else:
            experiences.setdefault(arm, {}).setdefault(page, []).append(
                movie_line(
                    tmdb_id,
                    records,
                    rating=float(rating["rating"]),
                    feeling=rating["feeling"],
                    shown=rating.get("shown"),
                )
            )
    for arm, pages in experiences.items():
        for page, lines in pages.items():
            lines[:] = [replace(m, blind=blind.get((arm, page, m.tmdb_id))) for m in lines]

    def test_line(tmdb_id: int) -> MovieLine:
        movie = test_movies.get(tmdb_id, {})
        stored = baseline_ratings.get(tmdb_id, {})
        return movie_line(
            tmdb_id,
            records,
            fallback_title=movie.get("title", ""),
            fallback_genres=movie.get("genres", []),
            rating=float(stored["rating"]) if stored else None,
            feeling=str(stored.get("feeling", "")),
        )

    baseline = [test_line(tmdb_id) for tmdb_id in test_movies]
    n_pages = int((run.get("params") or {}).get("pages") or 0)
    n_pages = max(
        [n_pages, *(page for _, page in tests), *(p for a in experiences.values() for p in a)]
    )
    arm_names = [str(a.get("name")) for a in run.get("arms") or []] or sorted(
        {arm for arm, _ in tests} | set(experiences)
    )
    arms = []
    for arm in arm_names:
        story = ArmStory(arm=arm, pages=dict(sorted(experiences.get(arm, {}).items())))
        for line in baseline:
            stored = [
                tests.get((arm, page), {}).get(line.tmdb_id) for page in range(1, n_pages + 1)
            ]
            story.tests.append(
                TestLine(
                    movie=line,
                    real=float(test_movies[line.tmdb_id]["rating"]),
                    baseline=line.rating,
                    pages=[None if r is None else float(r["rating"]) for r in stored],
                    shown=[None if r is None else r.get("shown") for r in stored],
                    conditions=[None if r is None else r.get("condition") for r in stored],
                )
            )
        arms.append(story)
    return Story(history=history, baseline=baseline, arms=arms, n_pages=n_pages)
