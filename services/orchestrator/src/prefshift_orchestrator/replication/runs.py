"""One released run as prefshift stores a run: its selection, arms, pages and ratings (pure).

- **Selection**: the study's test and persona movies exactly as it drew them (a movie the study
  listed twice counts once). Test movies that are also persona movies — the persona saw their
  real rating — are listed in ``selection["seen_test"]``; fidelity is given on all test movies
  and on the others (``measurements.RunShift.fidelity_unseen``).
- **Ratings**: the baseline (arm ``baseline``, page 0) and each page's test re-ratings, matched
  to the test movies by title (``matching``); each page's ratings of its recommendations
  (``experience``), tied to the TMDB id its title resolves to. A movie rated twice in one list
  keeps its first rating.
- **Pages**: ``run_pages.recommended`` holds the shown titles that resolved, in the order shown
  (what the ``recorded`` arm replays); ``recommender_info`` holds the source, the count of
  titles, and every title and rating that could not be tied to a TMDB id (kept, not dropped).
  A page without ratings is stored without experiences (missing, not zero); a page without its
  re-rating (a run with 3 lists) is stored without test ratings and left incomplete.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prefshift_orchestrator.protocol import Selection, UserMovie
from prefshift_orchestrator.replication.matching import TitleMatcher
from prefshift_orchestrator.replication.released import (
    EchoedRating,
    ReleasedArm,
    ReleasedMovie,
    ReleasedRun,
)

BASELINE = "baseline"


def study_protocol(released: ReleasedRun) -> dict[str, Any]:
    """What the study ran for this user, in prefshift's protocol terms (the run's ``params``;
    30 test, 40 persona movies, 4 pages of 30 in the released runs)."""
    return {
        "test_size": len(_distinct(released.test)),
        "persona_size": len(_distinct(released.persona)),
        "pages": max(len(arm.pages) for arm in released.arms),
        "page_size": max(
            (len(page.recommended) for arm in released.arms for page in arm.pages), default=0
        ),
        "arms": [arm.name for arm in released.arms],
        "backend": "llm",
    }


#: Who the study's personas and recommenders were (README of the released runs).
STUDY_MODELS: dict[str, Any] = {
    "persona": {"model": "gpt-5", "temperature": 0.3},
    "recommender": {"model": "gpt-5", "temperature": 0.7},
}


@dataclass
class ArmCounts:
    """What one arm of one user's run held, and what could not be matched."""

    pages: int = 0
    empty_pages: int = 0
    titles: int = 0
    unresolved_titles: int = 0
    ratings: int = 0
    unmatched_ratings: int = 0
    test_pages: int = 0
    test_echoes: int = 0
    unmatched_test: int = 0
    rating_total: float = 0.0  # of every rating of a recommendation, tied to a movie or not

    @property
    def appraisal_all(self) -> float | None:
        """Mean rating of the recommendations over every rated title (the study's figure)."""
        return self.rating_total / self.ratings if self.ratings else None

    def add(self, other: ArmCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class BuiltRun:
    """A released run in prefshift's tables' terms (see the module docstring)."""

    user_id: int
    selection: dict[str, Any]
    arms: list[dict[str, Any]]
    messages: list[str]
    provenance: dict[str, Any]
    pages: list[dict[str, Any]]
    ratings: list[dict[str, Any]]
    counts: dict[str, ArmCounts] = field(default_factory=dict)
    seen_test: int = 0


def _distinct(movies: tuple[ReleasedMovie, ...]) -> list[ReleasedMovie]:
    unique: dict[int, ReleasedMovie] = {}
    for movie in movies:
        unique.setdefault(movie.tmdb_id, movie)
    return list(unique.values())


def _user_movie(movie: ReleasedMovie) -> UserMovie:
    return UserMovie(
        tmdb_id=movie.tmdb_id,
        rating=movie.rating,
        movielens_id=movie.movielens_id,
        title=movie.title,
        genres=movie.genres,
    )


def _test_ratings(
    matcher: TitleMatcher, ids: list[int], echoes: tuple[EchoedRating, ...]
) -> tuple[list[tuple[int, EchoedRating]], int]:
    """Echoed test ratings tied to test movies (first rating of a movie wins) and how many
    could not be matched."""
    found: dict[int, EchoedRating] = {}
    unmatched = 0
    for echo in echoes:
        position = matcher.match(echo.title)
        if position is None:
            unmatched += 1
            continue
        found.setdefault(ids[position], echo)
    return list(found.items()), unmatched


def build_run(
    released: ReleasedRun,
    resolved: Mapping[str, int | None],
    *,
    source: str,
    imported_at: datetime,
) -> BuiltRun:
    """The run, pages and ratings to store for one released run; ``resolved`` maps every
    recommended and rated title to its TMDB id (``None``: unresolved)."""
    test = _distinct(released.test)
    persona = _distinct(released.persona)
    persona_ids = {movie.tmdb_id for movie in persona}
    seen = sorted(movie.tmdb_id for movie in test if movie.tmdb_id in persona_ids)
    selection = Selection(
        test=[_user_movie(m) for m in test], persona=[_user_movie(m) for m in persona]
    )
    test_ids = [movie.tmdb_id for movie in test]
    matcher = TitleMatcher([movie.title for movie in test])

    ratings: list[dict[str, Any]] = []
    pages: list[dict[str, Any]] = []
    baseline, baseline_unmatched = _test_ratings(matcher, test_ids, released.baseline)
    ratings.extend(_rows(BASELINE, 0, "test", baseline))
    pages.append(
        _page(BASELINE, 0, None, {"source": "path_1", "unmatched_test": baseline_unmatched})
        | {"completed_at": imported_at}
    )
    counts: dict[str, ArmCounts] = {}
    for arm in released.arms:
        arm_pages, arm_ratings, counts[arm.name] = _arm(
            arm, resolved, matcher, test_ids, imported_at
        )
        pages.extend(arm_pages)
        ratings.extend(arm_ratings)

    messages = [
        f"imported from the seed study's released run {source} (persona GPT-5, temperature 0.3)"
    ]
    if seen:
        messages.append(
            f"{len(seen)} of the {len(test)} test movies were also persona movies (the persona "
            "saw their real rating): fidelity_unseen leaves them out"
        )
    if baseline_unmatched:
        messages.append(f"{baseline_unmatched} baseline test ratings matched no test movie")
    duplicates = len(released.test) - len(test), len(released.persona) - len(persona)
    if any(duplicates):
        messages.append(
            f"the study listed {duplicates[0]} test and {duplicates[1]} persona movies twice; "
            "each counts once"
        )
    for name, arm_counts in counts.items():
        if arm_counts.test_pages < len(next(a for a in released.arms if a.name == name).pages):
            messages.append(
                f"arm {name!r}: {arm_counts.test_pages} test re-ratings for "
                f"{arm_counts.pages} pages (the last page's is missing)"
            )
    provenance = {
        "kind": "imported",
        "source": source,
        "study": "seed study (released runs)",
        "files_sha256": released.digest,
        "arms": {arm.source: arm.name for arm in released.arms},
        **STUDY_MODELS,
        "seen_test": len(seen),
        "duplicate_test": duplicates[0],
        "duplicate_persona": duplicates[1],
        "unmatched": {
            "baseline_test": baseline_unmatched,
            **{
                name: {
                    "titles": c.unresolved_titles,
                    "ratings": c.unmatched_ratings,
                    "test": c.unmatched_test,
                    "appraisal_all": c.appraisal_all,
                }
                for name, c in counts.items()
            },
        },
    }
    return BuiltRun(
        user_id=released.user_id,
        selection={
            **selection.to_json(),
            "test_genres": {str(m.tmdb_id): list(m.genres) for m in test},
            "seen_test": seen,
        },
        arms=[
            {"name": arm.name, "kind": "imported", "url": None, "recommender": arm.source}
            for arm in released.arms
        ],
        messages=messages,
        provenance=provenance,
        pages=pages,
        ratings=ratings,
        counts=counts,
        seen_test=len(seen),
    )


def _arm(
    arm: ReleasedArm,
    resolved: Mapping[str, int | None],
    test_matcher: TitleMatcher,
    test_ids: list[int],
    imported_at: datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], ArmCounts]:
    counts = ArmCounts(pages=len(arm.pages), test_pages=len(arm.test_pages))
    pages: list[dict[str, Any]] = []
    ratings: list[dict[str, Any]] = []
    for page in arm.pages:
        titles = [title for title in page.recommended if title]
        recommended: list[dict[str, Any]] = []
        unresolved: list[str] = []
        for title in titles:
            tmdb_id = resolved.get(title)
            if tmdb_id is None:
                unresolved.append(title)
            elif all(item["tmdb_id"] != tmdb_id for item in recommended):
                recommended.append({"tmdb_id": tmdb_id, "title": title})
        page_matcher = TitleMatcher(titles)
        rated: dict[int, EchoedRating] = {}
        unrated: list[dict[str, Any]] = []
        for echo in page.ratings:
            position = page_matcher.match(echo.title)
            tmdb_id = resolved.get(titles[position] if position is not None else echo.title)
            if tmdb_id is None:
                unrated.append(
                    {"title": echo.title, "rating": echo.rating, "feeling": echo.feeling}
                )
            else:
                rated.setdefault(tmdb_id, echo)
        counts.titles += len(titles)
        counts.unresolved_titles += len(unresolved)
        counts.empty_pages += not titles
        counts.ratings += len(page.ratings)
        counts.rating_total += sum(echo.rating for echo in page.ratings)
        counts.unmatched_ratings += len(unrated)
        info = {
            "source": arm.source,
            "titles": len(titles),
            "unresolved_titles": unresolved,
            "unresolved_ratings": unrated,
            "empty": not titles,
            "rated": len(page.ratings),
        }
        row = _page(arm.name, page.page, recommended, info)
        if rated:
            row["experienced_at"] = imported_at
            ratings.extend(_rows(arm.name, page.page, "experience", list(rated.items())))
        if page.page <= len(arm.test_pages):
            echoes = arm.test_pages[page.page - 1]
            matched, unmatched = _test_ratings(test_matcher, test_ids, echoes)
            counts.test_echoes += len(echoes)
            counts.unmatched_test += unmatched
            info["unmatched_test"] = unmatched
            ratings.extend(_rows(arm.name, page.page, "test", matched))
            row["completed_at"] = imported_at
        pages.append(row)
    return pages, ratings, counts


def _page(
    arm: str, page: int, recommended: list[dict[str, Any]] | None, info: dict[str, Any]
) -> dict[str, Any]:
    return {
        "arm": arm,
        "page": page,
        "recommended": recommended,
        "recommender_info": info,
        "experienced_at": None,
        "completed_at": None,
        "timings": {},
    }


def _rows(
    arm: str, page: int, phase: str, rated: list[tuple[int, EchoedRating]]
) -> list[dict[str, Any]]:
    return [
        {
            "arm": arm,
            "page": page,
            "phase": phase,
            "tmdb_id": tmdb_id,
            "rating": echo.rating,
            "feeling": echo.feeling[:2000],
        }
        for tmdb_id, echo in rated
    ]
