"""The protocol's pure parts: the seeded, genre-stratified, disjoint test/persona selection and
the seeds of each service call (docs/architecture.md, "The protocol").

Selection rule: every rated movie with a TMDB id (ordered by TMDB id) belongs to the stratum of
its primary genre (the first TMDB genre, else the first MovieLens genre). The test set takes from
each stratum its share of ``test_size`` (largest remainder, ties broken by the seeded generator),
drawn uniformly; the persona set then takes ``persona_size`` the same way from what is left, so
the two sets are disjoint by construction and both mirror the user's genre mix. Fewer rated
movies than ``test_size + persona_size`` is an error (422).
"""

from __future__ import annotations

import hashlib
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
