"""``prefshift eval personas``: how faithful are the personas' baseline ratings?

For every user of a dataset: the protocol's split (:mod:`prefshift_datasets.split`; 40 persona
movies, 30 held-out test movies), the persona (history = the persona movies) rates the test
movies once, and those ratings are compared with the user's real ones — next to two reference
predictors that see the same 40 ratings: the user's mean, and a user + movie bias model.
Nothing of the user's own ratings reaches the item statistics (they are computed without the
user), so the held-out ratings never leak into a prediction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from prefshift_common.contracts import Backend, Persona, RatedMovie, RatingsRequest
from prefshift_common.db import sync_connection
from prefshift_common.movies import readable_title, tmdb_genres
from prefshift_datasets import repository as datasets
from prefshift_datasets.split import (
    DEFAULT_PERSONA_SIZE,
    DEFAULT_TEST_SIZE,
    NotEnoughRatings,
    SplitMovie,
    split_persona_and_test,
)
from prefshift_simulator.config import Settings
from prefshift_simulator.embedded.backend import DatasetStatsCache, EmbeddedBackend
from prefshift_simulator.embedded.collaborative import CollaborativeStats
from prefshift_simulator.embedded.persona_models import with_parameters
from prefshift_simulator.embedded.population import check_reference
from prefshift_simulator.main import persona_models
from prefshift_simulator.metadata import MovieFacts, StaticMetadata
from prefshift_simulator.service import RatingBackend, RatingService

FloatArray = npt.NDArray[np.float64]
ITEM_SHRINK = 10.0


@dataclass(frozen=True, slots=True)
class Metrics:
    """Agreement of predicted with real ratings (pooled over all users' test movies)."""

    n: int
    bias: float
    mae: float
    rmse: float
    pearson: float

    @classmethod
    def of(cls, predicted: FloatArray, real: FloatArray) -> Metrics:
        error = predicted - real
        pearson = math.nan
        if len(real) > 1 and np.std(predicted) > 0 and np.std(real) > 0:
            pearson = float(np.corrcoef(predicted, real)[0, 1])
        return cls(
            n=len(real),
            bias=float(error.mean()) if len(real) else math.nan,
            mae=float(np.abs(error).mean()) if len(real) else math.nan,
            rmse=float(np.sqrt((error**2).mean())) if len(real) else math.nan,
            pearson=pearson,
        )


@dataclass
class UserResult:
    user_id: int
    archetype: str | None
    real: FloatArray
    persona: FloatArray
    user_mean: FloatArray
    user_movie_bias: FloatArray


@dataclass
class PersonaEvaluation:
    """The evaluation of one dataset's personas."""

    dataset: str
    backend: Backend
    seed: int
    population: str  # the dataset the collaborative statistics came from
    users: list[UserResult] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    def _pooled(self, attribute: str, users: Sequence[UserResult] | None = None) -> Metrics:
        chosen = self.users if users is None else users
        if not chosen:
            return Metrics(n=0, bias=math.nan, mae=math.nan, rmse=math.nan, pearson=math.nan)
        predicted = np.concatenate([getattr(u, attribute) for u in chosen])
        real = np.concatenate([u.real for u in chosen])
        return Metrics.of(predicted, real)

    def metrics(self) -> dict[str, Metrics]:
        """Persona, per-user mean and user + movie bias, over every evaluated user."""
        return {
            f"persona ({self.backend})": self._pooled("persona"),
            "per-user mean": self._pooled("user_mean"),
            "user + movie bias": self._pooled("user_movie_bias"),
        }

    def by_archetype(self) -> dict[str, Metrics]:
        """The persona's metrics per user archetype (datasets that have archetypes)."""
        groups: dict[str, list[UserResult]] = {}
        for user in self.users:
            if user.archetype:
                groups.setdefault(user.archetype, []).append(user)
        return {name: self._pooled("persona", members) for name, members in sorted(groups.items())}


@dataclass(frozen=True)
class DatasetSnapshot:
    """What the evaluation reads from the database, once."""

    name: str
    ratings: pd.DataFrame
    facts: dict[int, MovieFacts]
    archetypes: dict[int, str | None]


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _movie_facts(movies: pd.DataFrame) -> dict[int, MovieFacts]:
    facts: dict[int, MovieFacts] = {}
    for row in movies.to_dict("records"):
        if _missing(row["tmdb_id"]) or int(row["tmdb_id"]) in facts:
            continue
        genres = row["tmdb_genres"] or row["genres"]
        facts[int(row["tmdb_id"])] = MovieFacts(
            tmdb_id=int(row["tmdb_id"]),
            title=readable_title(str(row["title"])),
            year=None if _missing(row["year"]) else int(row["year"]),
            genres=tmdb_genres(genres),
            overview=str(row["overview"] or ""),
            vote_average=None
            if _missing(row["tmdb_vote_average"])
            else float(row["tmdb_vote_average"]),
            vote_count=None if _missing(row["tmdb_vote_count"]) else int(row["tmdb_vote_count"]),
        )
    return facts


def read_dataset(database_url: str, dataset: str) -> DatasetSnapshot:
    """Ratings, movie facts and archetypes of an imported dataset (blocking)."""
    with sync_connection(database_url) as connection:
        info = datasets.get_dataset(connection, dataset)
        arrays = datasets.load_rating_arrays(connection, info.id)
        movies = datasets.load_movies(connection, info.id)
        users = datasets.load_users(connection, info.id)
    archetypes = {
        int(row["user_id"]): (None if _missing(row["archetype"]) else str(row["archetype"]))
        for row in users.to_dict("records")
    }
    ratings = pd.DataFrame(
        {
            "user_id": arrays.user_ids,
            "tmdb_id": arrays.tmdb_ids,
            "rating": arrays.ratings.astype(np.float64),
        }
    )
    return DatasetSnapshot(
        name=dataset, ratings=ratings, facts=_movie_facts(movies), archetypes=archetypes
    )


def collaborative_stats(snapshot: DatasetSnapshot) -> CollaborativeStats:
    """The snapshot's collaborative statistics (blocking: seconds for 100,000 ratings)."""
    return CollaborativeStats(
        dataset=snapshot.name,
        user_ids=snapshot.ratings["user_id"].to_numpy(),
        tmdb_ids=snapshot.ratings["tmdb_id"].to_numpy(),
        ratings=snapshot.ratings["rating"].to_numpy(),
    )


def check_reference_population(persona: DatasetSnapshot, reference: DatasetSnapshot) -> float:
    """The share of ``persona``'s ratings that ``reference`` holds under the same user id
    (:func:`prefshift_simulator.embedded.population.check_reference`, which raises
    :class:`~prefshift_simulator.embedded.population.ReferencePopulationError` when it is
    too small)."""
    return check_reference(
        persona.ratings, reference.ratings, dataset=persona.name, reference=reference.name
    )


def population_stats(
    snapshot: DatasetSnapshot, reference: DatasetSnapshot | None = None
) -> tuple[CollaborativeStats, str, float]:
    """The collaborative statistics the snapshot's personas are rated with — of the snapshot,
    or of ``reference`` once :func:`check_reference_population` accepts it — keyed by the
    snapshot's name (the dataset a persona's request names), with the name of the dataset
    they came from and the share of the snapshot's ratings that dataset holds (blocking)."""
    if reference is None or reference.name == snapshot.name:
        return collaborative_stats(snapshot), snapshot.name, 1.0
    share = check_reference_population(snapshot, reference)
    stats = collaborative_stats(dataclasses.replace(reference, name=snapshot.name))
    return stats, reference.name, share


def user_movie_bias(
    stats: CollaborativeStats, user_id: int, history: Sequence[RatedMovie], items: Sequence[int]
) -> FloatArray:
    """``b_u + b_i``: the movies' shrunk centred means without the user, plus the user's mean
    offset over its history."""

    def item_bias(tmdb_ids: list[int]) -> FloatArray:
        item = stats.item_statistics(stats.columns(tmdb_ids), exclude_user=user_id)
        return np.asarray(item.centred_sum / (item.count + ITEM_SHRINK), dtype=np.float64)

    ratings = np.array([m.rating for m in history])
    level = float(np.mean(ratings - item_bias([m.tmdb_id for m in history])))
    return np.asarray(level + item_bias(list(items)), dtype=np.float64)


async def evaluate_personas(
    snapshot: DatasetSnapshot,
    *,
    settings: Settings,
    backend: Backend = "embedded",
    persona_model: str | None = None,
    noise_free: bool = False,
    llm: RatingBackend | None = None,
    max_users: int | None = None,
    seed: int = 0,
    n_persona: int = DEFAULT_PERSONA_SIZE,
    n_test: int = DEFAULT_TEST_SIZE,
    concurrency: int = 4,
    on_user: Callable[[int], None] | None = None,
    reference: DatasetSnapshot | None = None,
) -> PersonaEvaluation:
    """Evaluate the personas of the snapshot's users (the first ``max_users`` by id). The
    collaborative statistics (of the persona and of the user + movie bias baseline) come from
    the snapshot, or from ``reference``, the population its users were drawn from
    (:func:`check_reference_population` must accept it)."""
    stats, population, _share = await asyncio.to_thread(population_stats, snapshot, reference)
    # the cache names the population its answers come from, as the service's does
    cache = DatasetStatsCache(settings.resolved_database_url, {snapshot.name: population})
    cache.put(stats)
    models, default_model = persona_models(settings)
    if noise_free:
        quiet = {"lasting_noise": 0.0, "occasion_noise": 0.0}
        models = {
            name: dataclasses.replace(m, params=with_parameters(m.params, quiet))
            for name, m in models.items()
        }
    backends: dict[Backend, RatingBackend] = {
        "embedded": EmbeddedBackend(
            models, cache, default_persona_model=persona_model or default_model
        )
    }
    if llm is not None:
        backends["llm"] = llm
    service = RatingService(
        backends=backends, default_backend=backend, metadata=StaticMetadata(snapshot.facts)
    )
    report = PersonaEvaluation(
        dataset=snapshot.name, backend=backend, seed=seed, population=population
    )
    by_user = snapshot.ratings.groupby("user_id", sort=True)
    user_ids = sorted(int(u) for u in snapshot.ratings["user_id"].unique())
    if max_users is not None:
        user_ids = user_ids[:max_users]
    limit = asyncio.Semaphore(concurrency)

    async def one(user_id: int) -> UserResult | None:
        frame = by_user.get_group(user_id).drop_duplicates("tmdb_id")
        real_by_movie = dict(zip(frame["tmdb_id"].astype(int), frame["rating"], strict=True))
        movies = [
            SplitMovie(t, snapshot.facts[t].genres if t in snapshot.facts else ())
            for t in real_by_movie
        ]
        try:
            split = split_persona_and_test(movies, seed=seed, n_persona=n_persona, n_test=n_test)
        except NotEnoughRatings:
            return None
        # plain ints: the request contract is strict (a NumPy integer is no int to it)
        history = [
            RatedMovie(tmdb_id=int(t), rating=float(real_by_movie[t])) for t in split.persona
        ]
        request = RatingsRequest(
            persona=Persona(user_id=int(user_id), dataset=snapshot.name, history=history),
            items=[int(t) for t in split.test],
            backend=backend,
            seed=seed,
            occasion=0,
            persona_model=persona_model,
        )
        async with limit:
            response = await service.rate(request)
        predicted = {r.tmdb_id: r.rating for r in response.ratings}
        # an LLM may leave a few movies unrated (response.missing): compare over the rated ones
        rated = np.array([t in predicted for t in split.test])
        real = np.array([real_by_movie[t] for t in split.test], dtype=np.float64)[rated]
        if on_user is not None:
            on_user(user_id)
        return UserResult(
            user_id=user_id,
            archetype=snapshot.archetypes.get(user_id),
            real=real,
            persona=np.array([predicted[t] for t in split.test if t in predicted]),
            user_mean=np.full(len(real), np.mean([m.rating for m in history])),
            user_movie_bias=user_movie_bias(stats, user_id, history, split.test)[rated],
        )

    results = await asyncio.gather(*(one(u) for u in user_ids))
    for user_id, result in zip(user_ids, results, strict=True):
        if result is None:
            report.skipped.append(user_id)
        else:
            report.users.append(result)
    return report
