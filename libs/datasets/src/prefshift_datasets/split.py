"""The protocol's persona/test split: disjoint, genre-stratified, seeded (the protocol:
docs/architecture.md).

One pure function that every component needing the split calls (``prefshift eval personas`` in
the simulator, the orchestrator's runs), so both get the same movies for the same user and seed.

Rule:

1. Movies are sorted by id (the result does not depend on the input order) and each is put in
   the stratum of its *primary genre* (its first genre; ``"(none)"`` without genres).
2. ``n_test`` test movies are allocated to strata in proportion to the strata sizes (largest
   remainder, ties broken by the seeded generator) and drawn uniformly within each stratum.
3. ``n_persona`` persona movies are drawn the same way from the movies left, so the two sets are
   disjoint by construction (the seed study's selection let them overlap).

Fewer than ``n_persona + n_test`` rated movies raises :class:`NotEnoughRatings`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DEFAULT_PERSONA_SIZE = 40
DEFAULT_TEST_SIZE = 30
NO_GENRE = "(none)"


class NotEnoughRatings(ValueError):
    """The user has rated fewer movies than the split needs."""


@dataclass(frozen=True, slots=True)
class SplitMovie:
    """A movie the user rated, identified by any stable id (TMDB or MovieLens), with its genres
    in order of importance (TMDB's order, or MovieLens's)."""

    movie_id: int
    genres: tuple[str, ...] = ()

    @property
    def primary_genre(self) -> str:
        return self.genres[0] if self.genres else NO_GENRE


@dataclass(frozen=True, slots=True)
class PersonaSplit:
    """Ids of the persona movies (the persona's history) and the held-out test movies."""

    persona: tuple[int, ...]
    test: tuple[int, ...]


def _allocate(
    sizes: npt.NDArray[np.int64], total: int, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Split ``total`` over strata in proportion to ``sizes`` (largest remainder), never giving a
    stratum more than it holds."""
    quotas = sizes * (total / sizes.sum())
    counts: npt.NDArray[np.int64] = np.minimum(np.floor(quotas).astype(np.int64), sizes)
    remainders = quotas - counts
    # Random tie-breaking keeps strata of equal remainder from always favouring the same genre.
    order = np.lexsort((rng.random(len(sizes)), -remainders))
    missing = total - int(counts.sum())
    while missing > 0:
        for index in order:
            if missing == 0:
                break
            if counts[index] < sizes[index]:
                counts[index] += 1
                missing -= 1
    return counts


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


def split_persona_and_test(
    movies: Sequence[SplitMovie],
    *,
    seed: int,
    n_persona: int = DEFAULT_PERSONA_SIZE,
    n_test: int = DEFAULT_TEST_SIZE,
) -> PersonaSplit:
    """The disjoint, genre-stratified persona/test split of one user's rated movies."""
    if n_persona < 1 or n_test < 1:
        raise ValueError("n_persona and n_test must be positive")
    unique = {movie.movie_id: movie for movie in movies}
    if len(unique) < n_persona + n_test:
        raise NotEnoughRatings(
            f"the split needs {n_persona + n_test} rated movies "
            f"({n_persona} persona + {n_test} test); the user has {len(unique)}"
        )
    strata: dict[str, list[int]] = {}
    for movie_id in sorted(unique):
        strata.setdefault(unique[movie_id].primary_genre, []).append(movie_id)
    rng = np.random.default_rng(seed)
    test, left = _draw(strata, n_test, rng)
    persona, _ = _draw(left, n_persona, rng)
    return PersonaSplit(persona=tuple(persona), test=tuple(test))
