"""Cohort rules: which users an experiment runs (docs/measurements.md).

Three rules, as bounded pydantic models that an experiment request can carry:

- ``UserListRule``: an explicit list of user ids;
- ``SampleRule``: n users with a number of ratings in [min_ratings, max_ratings], seeded;
- ``SeedStudyRule``: the seed study's cohort — users with 400–2,500 ratings, labelled by the
  entropy of their rating-weighted genre mix (Specialist below the 3% quantile, Explorer up to
  the 50% quantile, Generalist above it) and sampled 60/25/15 per archetype, seeded.

``select_cohort`` applies a rule to a ratings table (``user_id``, ``movielens_id``, ``rating``)
and a movie → genres mapping (the dataset's MovieLens genres).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from prefshift_common.contracts import Seed, StrictContract, UserId
from prefshift_common.movies import genre_names

SPECIALIST = "Specialist"
EXPLORER = "Explorer"
GENERALIST = "Generalist"
ARCHETYPES = (SPECIALIST, EXPLORER, GENERALIST)
MAX_COHORT = 10_000


class _Rule(StrictContract):
    """A cohort rule: strict, as every request model (a user id ``true`` is not user 1, nor a
    size ``2.0`` the size 2)."""


def _kind_required(schema: dict[str, Any]) -> None:
    schema["required"] = sorted({*schema.get("required", []), "kind"})


class _NamedRule(_Rule):
    """A rule other than the list of users: a cohort without ``kind`` is a list of users
    (``ExperimentRequest``), so the schema says that these need theirs (else ``cohort: {}``
    would be a valid seed-study rule in the schema and a 422 at the server)."""

    model_config = ConfigDict(json_schema_extra=_kind_required)


class UserListRule(_Rule):
    """Exactly these users, each once (an experiment listing unknown ones is refused)."""

    kind: Literal["users"] = "users"
    user_ids: list[UserId] = Field(min_length=1, max_length=MAX_COHORT)


class SampleRule(_NamedRule):
    """``size`` users drawn at random (seeded) among those with enough ratings."""

    kind: Literal["sample"] = "sample"
    size: int = Field(ge=1, le=MAX_COHORT)
    min_ratings: int = Field(default=70, ge=0, le=10_000_000)
    max_ratings: int | None = Field(default=None, ge=0, le=10_000_000)
    seed: Seed = 0

    @model_validator(mode="after")
    def _bounds(self) -> SampleRule:
        if self.max_ratings is not None and self.max_ratings < self.min_ratings:
            raise ValueError("max_ratings must be at least min_ratings")
        return self


class SeedStudyRule(_NamedRule):
    """The seed study's cohort rule (defaults reproduce it)."""

    kind: Literal["seed-study"] = "seed-study"
    size: int = Field(default=150, ge=1, le=MAX_COHORT)
    min_ratings: int = Field(default=400, ge=0, le=10_000_000)
    max_ratings: int = Field(default=2500, ge=0, le=10_000_000)
    specialist_quantile: float = Field(default=0.03, gt=0.0, lt=1.0)
    generalist_quantile: float = Field(default=0.50, gt=0.0, lt=1.0)
    shares: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=lambda: {SPECIALIST: 0.60, EXPLORER: 0.25, GENERALIST: 0.15},
        description="Share of the cohort drawn from each archetype (normalised to sum to 1).",
    )
    seed: Seed = 0

    @model_validator(mode="after")
    def _consistent(self) -> SeedStudyRule:
        if self.max_ratings < self.min_ratings:
            raise ValueError("max_ratings must be at least min_ratings")
        if self.specialist_quantile >= self.generalist_quantile:
            raise ValueError("specialist_quantile must be below generalist_quantile")
        unknown = set(self.shares) - set(ARCHETYPES)
        if unknown:
            raise ValueError(f"shares name unknown archetypes {sorted(unknown)}; use {ARCHETYPES}")
        if sum(self.shares.values()) <= 0:
            raise ValueError("shares must not all be zero")
        return self


CohortRule = Annotated[UserListRule | SampleRule | SeedStudyRule, Field(discriminator="kind")]


class CohortUser(BaseModel):
    """A user of the cohort and what the rule knew about them."""

    user_id: int
    n_ratings: int
    archetype: str | None = None
    entropy: float | None = None


class Cohort(BaseModel):
    """The users a rule selected, in a stable order, with what is missing."""

    rule: str
    users: list[CohortUser]
    missing_user_ids: list[int] = Field(
        default_factory=list, description="Listed users the dataset does not have."
    )
    shortfall: dict[str, int] = Field(
        default_factory=dict,
        description="Users short of the requested count, by archetype (or 'all').",
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="Entropy quantiles used to label archetypes."
    )


def _check_ratings(ratings: pd.DataFrame) -> None:
    missing = [c for c in ("user_id", "movielens_id", "rating") if c not in ratings.columns]
    if missing:
        raise ValueError(f"ratings lack columns {missing}")


def genre_entropy(
    ratings: pd.DataFrame, movie_genres: Mapping[int, Sequence[str] | str]
) -> pd.Series:
    """Shannon entropy (nats) of each user's rating-weighted genre mix.

    A user's weight of genre g is the sum of the user's ratings of movies listed in g (a movie
    counts fully in each of its genres); the mix is those weights normalised to sum to 1, and
    the entropy is −Σ p_g ln p_g. Movies without genres are left out. Index: user_id.
    """
    _check_ratings(ratings)
    rows = [
        (int(movie), genre)
        for movie, genres in movie_genres.items()
        for genre in genre_names(genres)
    ]
    genre_table = pd.DataFrame(rows, columns=["movielens_id", "genre"])
    genre_table["movielens_id"] = genre_table["movielens_id"].astype("int64")
    frame = pd.DataFrame(
        {
            "user_id": ratings["user_id"].astype("int64").to_numpy(),
            "movielens_id": ratings["movielens_id"].astype("int64").to_numpy(),
            "rating": ratings["rating"].astype("float64").to_numpy(),
        }
    ).merge(genre_table, on="movielens_id", how="inner")
    weights = frame.groupby(["user_id", "genre"])["rating"].sum()
    weights = weights[weights > 0]
    share = weights / weights.groupby(level="user_id").transform("sum")
    entropy = -(share * np.log(share)).groupby(level="user_id").sum()
    entropy.name = "entropy"
    return entropy.astype("float64")


def label_archetypes(
    entropy: pd.Series,
    *,
    specialist_quantile: float = 0.03,
    generalist_quantile: float = 0.50,
) -> tuple[pd.Series, dict[str, float]]:
    """Label users by their entropy among the given users.

    Specialist: entropy ≤ the ``specialist_quantile`` quantile; Generalist: entropy > the
    ``generalist_quantile`` quantile; Explorer: in between. Returns the labels and the thresholds
    (none without users).
    """
    if entropy.empty:
        return pd.Series([], index=entropy.index, name="archetype", dtype=object), {}
    low = float(entropy.quantile(specialist_quantile))
    high = float(entropy.quantile(generalist_quantile))
    labels = pd.Series(EXPLORER, index=entropy.index, name="archetype", dtype=object)
    labels[entropy <= low] = SPECIALIST
    labels[entropy > high] = GENERALIST
    return labels, {"specialist_max": low, "generalist_min": high}


def allocate(size: int, shares: Mapping[str, float]) -> dict[str, int]:
    """Split ``size`` by ``shares``: each group gets the floor of its share, and the users left
    over go to the largest remainders, ties to the later group (150 at 60/25/15 → 90/37/23, the
    seed study's cohort)."""
    total = sum(shares.values())
    names = list(shares)
    exact = {name: size * shares[name] / total for name in names}
    counts = {name: int(np.floor(exact[name] + 1e-9)) for name in names}
    left = size - sum(counts.values())
    by_remainder = sorted(
        range(len(names)), key=lambda i: (-(exact[names[i]] - counts[names[i]]), -i)
    )
    for index in by_remainder[:left]:
        counts[names[index]] += 1
    return counts


def _counts(ratings: pd.DataFrame) -> pd.Series:
    return ratings.groupby(ratings["user_id"].astype("int64")).size().astype("int64")


def _sample(users: Sequence[int], k: int, rng: np.random.Generator) -> list[int]:
    pool = np.array(sorted(users), dtype="int64")
    if k >= pool.size:
        return [int(user) for user in pool]
    return sorted(int(user) for user in rng.choice(pool, size=k, replace=False))


def select_cohort(
    rule: UserListRule | SampleRule | SeedStudyRule,
    ratings: pd.DataFrame,
    movie_genres: Mapping[int, Sequence[str] | str] | None = None,
) -> Cohort:
    """Apply a cohort rule to a dataset's ratings (and, for the seed-study rule, its genres)."""
    _check_ratings(ratings)
    counts = _counts(ratings)
    if isinstance(rule, UserListRule):
        known = [user for user in dict.fromkeys(rule.user_ids) if user in counts.index]
        return Cohort(
            rule=rule.kind,
            users=[CohortUser(user_id=user, n_ratings=int(counts[user])) for user in known],
            missing_user_ids=[user for user in dict.fromkeys(rule.user_ids) if user not in known],
        )
    if isinstance(rule, SampleRule):
        eligible = counts[counts >= rule.min_ratings]
        if rule.max_ratings is not None:
            eligible = eligible[eligible <= rule.max_ratings]
        chosen = _sample(list(eligible.index), rule.size, np.random.default_rng(rule.seed))
        short = rule.size - len(chosen)
        return Cohort(
            rule=rule.kind,
            users=[CohortUser(user_id=user, n_ratings=int(counts[user])) for user in chosen],
            shortfall={"all": short} if short else {},
        )
    if movie_genres is None:
        raise ValueError("the seed-study rule needs the movies' genres")
    eligible = counts[(counts >= rule.min_ratings) & (counts <= rule.max_ratings)]
    in_range = ratings[ratings["user_id"].astype("int64").isin(eligible.index)]
    entropy = genre_entropy(in_range, movie_genres)
    labels, thresholds = label_archetypes(
        entropy,
        specialist_quantile=rule.specialist_quantile,
        generalist_quantile=rule.generalist_quantile,
    )
    rng = np.random.default_rng(rule.seed)
    wanted = allocate(rule.size, {name: rule.shares.get(name, 0.0) for name in ARCHETYPES})
    users: list[CohortUser] = []
    shortfall: dict[str, int] = {}
    for archetype in ARCHETYPES:
        pool = [int(user) for user in labels.index[labels == archetype]]
        chosen = _sample(pool, wanted[archetype], rng)
        if len(chosen) < wanted[archetype]:
            shortfall[archetype] = wanted[archetype] - len(chosen)
        users.extend(
            CohortUser(
                user_id=user,
                n_ratings=int(counts[user]),
                archetype=archetype,
                entropy=float(entropy[user]),
            )
            for user in chosen
        )
    return Cohort(rule=rule.kind, users=users, shortfall=shortfall, thresholds=thresholds)
