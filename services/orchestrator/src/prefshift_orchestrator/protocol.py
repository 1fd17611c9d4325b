"""The protocol's pure parts: the seeded, genre-stratified, disjoint test/persona selection and
the seeds of each service call (DESIGN.md, "The protocol").

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

import numpy as np

NO_GENRE = "(none)"


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


def _allocate(sizes: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Split ``total`` over strata in proportion to ``sizes`` (largest remainder, ties broken by
    the seeded generator), never giving a stratum more than it holds."""
    quotas = sizes * (total / sizes.sum())
    counts = np.minimum(np.floor(quotas).astype(np.int64), sizes)
    remainders = quotas - counts
    order = np.lexsort((rng.random(len(sizes)), -remainders))
    missing = total - int(counts.sum())
    while missing > 0:
        for index in order:
            if missing == 0:
                break
            if counts[index] < sizes[index]:
                counts[index] += 1
                missing -= 1
    return np.asarray(counts, dtype=np.int64)


def _draw(
    strata: dict[str, list[int]], total: int, rng: np.random.Generator
) -> tuple[list[int], dict[str, list[int]]]:
    names = sorted(strata)
    sizes = np.array([len(strata[name]) for name in names], dtype=np.int64)
    counts = _allocate(sizes, total, rng)
    chosen: list[int] = []
    left: dict[str, list[int]] = {}
    for name, count in zip(names, counts, strict=True):
        members = strata[name]
        picked = set(rng.choice(len(members), size=int(count), replace=False).tolist())
        chosen.extend(members[i] for i in sorted(picked))
        rest = [members[i] for i in range(len(members)) if i not in picked]
        if rest:
            left[name] = rest
    return sorted(chosen), left


def select_movies(
    movies: Sequence[UserMovie], *, test_size: int, persona_size: int, seed: int
) -> Selection:
    """Seeded, genre-stratified, disjoint test and persona sets (see the module docstring).

    The same rule, draw for draw, as the simulator's ``split_persona_and_test`` (so that
    ``prefshift eval personas`` and a run pick the same movies for the same user and seed); a
    test checks that the two agree. Copied rather than imported: services share contracts only.
    """
    unique: dict[int, UserMovie] = {}
    for movie in movies:
        unique.setdefault(movie.tmdb_id, movie)
    need = test_size + persona_size
    if len(unique) < need:
        raise NotEnoughRatings(len(unique), need)
    strata: dict[str, list[int]] = {}
    for tmdb_id in sorted(unique):
        strata.setdefault(unique[tmdb_id].primary_genre, []).append(tmdb_id)
    rng = np.random.default_rng(seed)
    test, left = _draw(strata, test_size, rng)
    persona, _ = _draw(left, persona_size, rng)
    return Selection(
        test=[unique[tmdb_id] for tmdb_id in test],
        persona=[unique[tmdb_id] for tmdb_id in persona],
    )


def call_seed(seed: int, *parts: object) -> int:
    """A stable 32-bit seed for one service call (same run seed and position → same seed), so a
    resumed or repeated run asks the same questions."""
    digest = hashlib.sha256(":".join([str(seed), *map(str, parts)]).encode()).digest()
    return int.from_bytes(digest[:4], "big")
