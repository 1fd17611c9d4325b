"""A population the seed cohort was drawn from, written by a test: the cohort's own ratings
under its users' ids, and more people with the opinions the test gives them — what
``--reference-dataset`` accepts, as MovieLens 32M would be for the seed cohort."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

#: User ids of the added people, far from any MovieLens id.
FIRST_EXTRA_USER = 9_000_000


def write_population(
    folder: Path, shared_data: Path, opinions: Mapping[int, float], *, people: int = 30
) -> Path:
    """A MovieLens-format folder: the seed cohort's movies, links and ratings, plus ``people``
    more raters who each rate every movie of ``opinions`` (MovieLens movie id → rating)."""
    cohort = shared_data / "seed-cohort"
    folder.mkdir(parents=True)
    for name in ("movies.csv", "links.csv"):
        (folder / name).write_bytes((cohort / name).read_bytes())
    extra = pd.DataFrame(
        [
            {"userId": FIRST_EXTRA_USER + k, "movieId": movie, "rating": rating}
            for k in range(people)
            for movie, rating in sorted(opinions.items())
        ]
    )
    ratings = pd.read_csv(cohort / "ratings.csv")
    pd.concat([ratings, extra]).to_csv(folder / "ratings.csv", index=False)
    return folder
