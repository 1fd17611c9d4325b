"""What a calibration is fitted to, as plain data: per user, the persona and test movies, the
recorded baseline and, per arm and page, the movies shown, how the recorded persona rated them
and how it re-rated the test movies. Adapters fill it from an experiment in the database or
from any other record of a study."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RecordedPage:
    """One page of one arm: the movies shown (in order), the recorded persona's ratings of them
    (its experiences; may miss some), and its re-ratings of the test movies after the page."""

    shown: Sequence[int]
    experience_ratings: Mapping[int, float]
    test_ratings: Mapping[int, float]


@dataclass(frozen=True)
class RecordedUser:
    """One user's recorded run."""

    user_id: int
    history: Sequence[tuple[int, float]]  # persona movies with the user's real ratings
    test: Sequence[int]
    real: Mapping[int, float]  # the user's real ratings of the test movies
    baseline: Mapping[int, float]  # the recorded persona's first ratings of the test movies
    arms: Mapping[str, Sequence[RecordedPage]] = field(default_factory=dict)
    archetype: str | None = None
