"""The protocol's pure parts: the seeded, genre-stratified, disjoint test/persona selection, the
seeds of each service call (docs/architecture.md, "The protocol"), and the predicted ratings
shown beside movies (a shown-prediction arm's pages, the rerate design's conditions;
docs/orchestrator.md).

Selection rule: every rated movie with a TMDB id (ordered by TMDB id) belongs to the stratum of
its primary genre (the first TMDB genre, else the first MovieLens genre). The test set takes from
each stratum its share of ``test_size`` (largest remainder, ties broken by the seeded generator),
drawn uniformly; the persona set then takes ``persona_size`` the same way from what is left, so
the two sets are disjoint by construction and both mirror the user's genre mix. Fewer rated
movies than ``test_size + persona_size`` is an error (422).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from prefshift_datasets.split import NO_GENRE, SplitMovie, split_persona_and_test


@dataclass(frozen=True)
class UserMovie:
    """A movie the real user rated, with what the protocol needs to know about it."""

    tmdb_id: int
    rating: float
    movielens_id: int | None = None
    title: str = ""
    genres: tuple[str, ...] = field(default_factory=tuple)

    @property
    def primary_genre(self) -> str:
        return self.genres[0] if self.genres else NO_GENRE

    def to_json(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["genres"] = list(self.genres)
        return payload

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> UserMovie:
        return cls(
            tmdb_id=int(payload["tmdb_id"]),
            rating=float(payload["rating"]),
            movielens_id=payload.get("movielens_id"),
            title=str(payload.get("title", "")),
            genres=tuple(payload.get("genres") or ()),
        )


@dataclass(frozen=True)
class Selection:
    test: list[UserMovie]
    persona: list[UserMovie]

    def to_json(self) -> dict[str, Any]:
        return {
            "test": [movie.to_json() for movie in self.test],
            "persona": [movie.to_json() for movie in self.persona],
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Selection:
        return cls(
            test=[UserMovie.from_json(m) for m in payload["test"]],
            persona=[UserMovie.from_json(m) for m in payload["persona"]],
        )


class NotEnoughRatings(ValueError):
    """The user has fewer rated movies (with a TMDB id) than the protocol needs."""

    def __init__(self, have: int, need: int) -> None:
        super().__init__(
            f"the user has {have} rated movies with a TMDB id; the protocol needs "
            f"{need} (test + persona)"
        )
        self.have = have
        self.need = need


def select_movies(
    movies: Sequence[UserMovie], *, test_size: int, persona_size: int, seed: int
) -> Selection:
    """Seeded, genre-stratified, disjoint test and persona sets: the rule of
    :func:`prefshift_datasets.split.split_persona_and_test`, which ``prefshift eval personas``
    applies too, so both pick the same movies for the same user and seed."""
    unique: dict[int, UserMovie] = {}
    for movie in movies:
        unique.setdefault(movie.tmdb_id, movie)
    need = test_size + persona_size
    if len(unique) < need:
        raise NotEnoughRatings(len(unique), need)
    split = split_persona_and_test(
        [SplitMovie(tmdb_id, movie.genres) for tmdb_id, movie in unique.items()],
        seed=seed,
        n_persona=persona_size,
        n_test=test_size,
    )
    return Selection(
        test=[unique[tmdb_id] for tmdb_id in split.test],
        persona=[unique[tmdb_id] for tmdb_id in split.persona],
    )


def call_seed(seed: int, *parts: object) -> int:
    """A stable 32-bit seed for one service call (same run seed and position → same seed), so a
    resumed or repeated run asks the same questions."""
    digest = hashlib.sha256(":".join([str(seed), *map(str, parts)]).encode()).digest()
    return int.from_bytes(digest[:4], "big")


# --- shown predictions ------------------------------------------------------------------------

#: The rerate design's conditions (Cosley et al., CHI 2003): no prediction shown, the accurate
#: prediction (the user's real rating), and that moved up or down by δ.
RERATE_CONDITIONS = ("none", "accurate", "up", "down")
LOWEST_STARS, HIGHEST_STARS = 0.5, 5.0


def clip_stars(stars: float) -> float:
    return min(HIGHEST_STARS, max(LOWEST_STARS, stars))


def page_predictions(
    n_items: int, persona_ratings: Sequence[float], offset: float = 0.0
) -> list[float]:
    """The predicted rating shown beside each movie of a page of ``n_items`` (best first).

    The recommender's ranking is mapped onto the user's own rating distribution: the movie at
    rank i (0-based) gets the empirical quantile ``1 − (i + ½)/n`` of the user's persona
    ratings (the lower observed rating at that quantile, so a half-star step the user uses),
    then ``offset`` stars, clipped to 0.5–5. The top of the page gets about the user's best
    rating, the bottom about their worst. The page's order is the recommender's ranking (its
    score order; for a recommender without a meaningful score, its rank).
    """
    if n_items <= 0:
        return []
    ratings = sorted(float(r) for r in persona_ratings)
    if not ratings:
        raise ValueError("the user has no persona ratings to map predictions onto")
    predictions = []
    for rank in range(n_items):
        quantile = 1.0 - (rank + 0.5) / n_items
        index = min(len(ratings) - 1, max(0, math.ceil(quantile * len(ratings)) - 1))
        predictions.append(clip_stars(ratings[index] + offset))
    return predictions


@dataclass(frozen=True)
class Shown:
    """What a movie is shown with when it is rated: the predicted stars (None: nothing) and
    the rerate condition it was assigned (None outside the rerate design)."""

    stars: float | None
    condition: str | None = None


def rerate_conditions(seed: int, test: Sequence[UserMovie], delta: float) -> dict[int, Shown]:
    """The rerate design's re-rating session: each test movie gets one condition, seeded and
    balanced (the movies in a seeded order take the conditions in turn, so each gets a quarter
    of them, give or take one): ``none`` (no prediction), ``accurate`` (the user's real rating),
    ``up``/``down`` (the real rating ± δ, clipped to 0.5–5)."""
    order = sorted(test, key=lambda movie: call_seed(seed, "rerate-condition", movie.tmdb_id))
    shift = call_seed(seed, "rerate-first-condition") % len(RERATE_CONDITIONS)
    shown: dict[int, Shown] = {}
    for index, movie in enumerate(order):
        condition = RERATE_CONDITIONS[(index + shift) % len(RERATE_CONDITIONS)]
        offset = {"none": None, "accurate": 0.0, "up": delta, "down": -delta}[condition]
        stars = None if offset is None else clip_stars(movie.rating + offset)
        shown[movie.tmdb_id] = Shown(stars=stars, condition=condition)
    return shown
