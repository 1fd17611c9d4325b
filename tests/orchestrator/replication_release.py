"""A small release in the seed study's layout, written by a test: real seed-cohort movies of one
user, and every awkward case of the real files (echoed titles without a year, with the article
in front, through an alternate title in brackets, misspelt; a stringified genre list; a test
movie that is also a persona movie; an empty page; an arm with 3 re-ratings for 4 pages; a
title nothing knows; a rating of 0.0)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

#: A seed-cohort user (Specialist, 400+ ratings).
RELEASE_USER = 117669
SECOND_USER = 47425
UNKNOWN_TITLE = "Zzyzx Nonexistent Picture (2031)"
ARMS = ("path_2", "path_3", "path_4", "path_5")
_ALTERNATE = re.compile(r"^(.+?) \((?!a\.k\.a)([^()]+)\) \((\d{4})\)$")
_ARTICLE = re.compile(r"^(.+), The \((\d{4})\)$")


def user_movies(shared_data: Path, user_id: int) -> pd.DataFrame:
    (file,) = shared_data.glob(f"seed-cohort/users_*/movies_enriched-user{user_id}.csv")
    movies = pd.read_csv(file)
    return movies[movies["tmdbId"].notna()].drop_duplicates("tmdbId").reset_index(drop=True)


def _record(row: pd.Series, *, genres_as_text: bool) -> dict[str, Any]:
    genres = row["tmdb_genres"] if isinstance(row["tmdb_genres"], str) else "[]"
    return {
        "movieId": int(row["movieId"]),
        "title": str(row["title"]),
        "genres": str(row["genres"]),
        "imdbId": int(row["imdbId"]) if pd.notna(row["imdbId"]) else None,
        "tmdbId": float(row["tmdbId"]),
        "overview": str(row["overview"]) if pd.notna(row["overview"]) else "",
        "tmdb_vote_average": float(row["tmdb_vote_average"]),
        "tmdb_vote_count": int(row["tmdb_vote_count"]),
        # The released files hold both: a list, or a Python-literal string of one.
        "tmdb_genres": genres if genres_as_text else json.loads(genres.replace("'", '"')),
        "rating": float(row["rating"]),
    }


@dataclass
class Release:
    """What was written, for the test to compare against what was stored."""

    root: Path
    test: list[dict[str, Any]] = field(default_factory=list)
    persona: list[dict[str, Any]] = field(default_factory=list)
    echoes: dict[str, str] = field(default_factory=dict)  # test title → how it was echoed
    pages: dict[str, list[list[str]]] = field(default_factory=dict)  # arm → titles per page
    page_tmdb_ids: dict[str, list[list[int]]] = field(default_factory=dict)
    baseline: dict[int, float] = field(default_factory=dict)  # tmdb id → rating


def _echo(title: str, index: int) -> str:
    """How the persona echoed a MovieLens title."""
    if match := _ALTERNATE.match(title):
        return f"{match.group(2)} ({match.group(3)})"  # the alternate title, in brackets gone
    if match := _ARTICLE.match(title):
        return f"The {match.group(1)} ({match.group(2)})"
    if index == 1:
        return re.sub(r"\s*\(\d{4}\)$", "", title)  # no year
    if index == 2:
        return f"Title: {title}"
    if index == 3:
        return f"[{title}]"  # in brackets
    return title


def write_release(
    root: Path, shared_data: Path, user_id: int = RELEASE_USER, *, n_test: int = 6
) -> Release:
    """One user's folder: ``n_test`` test and 8 persona movies (one shared), 4 arms of 4 pages
    of 4 titles."""
    movies = user_movies(shared_data, user_id)
    # Test movies: ones whose titles exercise the matching rules first.
    awkward = movies[
        movies["title"].str.match(_ALTERNATE.pattern) | movies["title"].str.match(_ARTICLE.pattern)
    ].head(2)
    rest = movies.drop(awkward.index)
    test_rows = pd.concat([awkward, rest.head(n_test - len(awkward))])
    persona_rows = pd.concat([rest.iloc[n_test : n_test + 7], test_rows.iloc[[-1]]])
    shown = rest.iloc[n_test + 7 : n_test + 7 + 64]
    release = Release(root=root / f"user_{user_id}")
    release.root.mkdir(parents=True)
    release.test = [_record(r, genres_as_text=True) for _, r in test_rows.iterrows()]
    release.persona = [_record(r, genres_as_text=False) for _, r in persona_rows.iterrows()]

    def echoes(shift: float) -> list[dict[str, Any]]:
        entries = []
        for index, movie in enumerate(release.test):
            rating = min(5.0, max(0.5, movie["rating"] + shift))
            echoed = _echo(movie["title"], index)
            release.echoes[movie["title"]] = echoed
            entries.append({"title": echoed, "rating": rating, "feeling": f"felt {index}"})
        return entries

    baseline = echoes(0.0)
    release.baseline = {
        int(movie["tmdbId"]): entry["rating"]
        for movie, entry in zip(release.test, baseline, strict=True)
    }
    summary: dict[str, Any] = {"path_1": [baseline]}
    titles = [str(t) for t in shown["title"]]
    ids = [int(t) for t in shown["tmdbId"]]
    for arm_index, arm in enumerate(ARMS):
        pages = []
        release.pages[arm] = []
        release.page_tmdb_ids[arm] = []
        for page in range(1, 5):
            start = (arm_index * 4 + page - 1) * 4 % len(titles)
            page_titles = titles[start : start + 4]
            page_ids = ids[start : start + 4]
            if arm == "path_5" and page == 1:
                page_titles, page_ids = [*page_titles[:3], UNKNOWN_TITLE], page_ids[:3]
            ratings = [
                {
                    "title": t,
                    "rating": 0.0 if i == 0 and page == 2 else 3.5,
                    "feeling": "ok",
                    "genres": ["Not Found"] if i == 1 else ["Drama"],
                }
                for i, t in enumerate(page_titles)
            ]
            if arm == "path_2" and page == 3:  # an empty page
                page_titles, page_ids, ratings = [""], [], []
            pages.append(
                {"page": page, "recommended_movies": page_titles, "simulated_ratings": ratings}
            )
            release.pages[arm].append(page_titles)
            release.page_tmdb_ids[arm].append(page_ids)
        (release.root / f"{arm}_parsed_with_genres.json").write_text(json.dumps(pages))
        lists = 3 if arm == "path_4" else 4  # the study lost one re-rating in a few runs
        summary[arm] = [echoes(0.5 * (page % 2)) for page in range(1, lists + 1)]
    (release.root / "_test_movies.json").write_text(json.dumps(release.test))
    (release.root / "_initial_persona_movies.json").write_text(json.dumps(release.persona))
    (release.root / "_final_test_summary.json").write_text(json.dumps(summary))
    return release
