"""An experiment's recorded runs as the plain data a persona calibration is fitted to
(:mod:`prefshift_simulator.calibration.recorded`), read straight from the database, and with
them the facts, collaborative statistics and real ratings the calibrations need
(:func:`load_inputs`: ``prefshift persona`` and ``prefshift validity``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from prefshift_common.contracts import TmdbMovie
from prefshift_orchestrator.models import Experiment, ExperimentRun, Run, RunPage, RunRating
from prefshift_orchestrator.schemas import BASELINE
from prefshift_simulator.calibration.recorded import RecordedPage, RecordedUser
from prefshift_simulator.embedded.collaborative import CollaborativeStats
from prefshift_simulator.metadata import MovieFacts
from prefshift_tmdb_proxy.models import OfflineMovie


class ExperimentNotFound(LookupError):
    """No experiment has this id."""


class RecordedInputsError(ValueError):
    """An experiment's recorded runs cannot serve as a calibration's inputs (the message says
    why)."""


@dataclass(frozen=True)
class RecordedExperiment:
    experiment_id: int
    name: str | None
    dataset: str
    users: list[RecordedUser]


def _pages_of(
    ratings: Iterable[RunRating], pages: Iterable[RunPage]
) -> tuple[dict[int, float], dict[str, list[RecordedPage]]]:
    tests: dict[tuple[str, int], dict[int, float]] = defaultdict(dict)
    experiences: dict[tuple[str, int], dict[int, float]] = defaultdict(dict)
    for rating in ratings:
        target = tests if rating.phase == "test" else experiences
        target[(rating.arm, rating.page)][rating.tmdb_id] = rating.rating
    shown: dict[tuple[str, int], list[int]] = {
        (page.arm, page.page): [int(item["tmdb_id"]) for item in page.recommended or []]
        for page in pages
    }
    baseline = tests.pop((BASELINE, 0), {})
    arms: dict[str, list[RecordedPage]] = defaultdict(list)
    for arm, page in sorted({*tests, *shown}):
        if arm == BASELINE:
            continue
        arms[arm].append(
            RecordedPage(
                shown=shown.get((arm, page), []),
                experience_ratings=experiences.get((arm, page), {}),
                test_ratings=tests.get((arm, page), {}),
            )
        )
    return baseline, dict(arms)


def load_recorded_experiment(connection: Connection, experiment_id: int) -> RecordedExperiment:
    """Every run of the experiment that has a baseline: its persona and test movies (with the
    real ratings), and per arm and page what was shown and how the persona rated."""
    experiment = connection.execute(
        select(Experiment).where(Experiment.id == experiment_id)
    ).first()
    if experiment is None:
        raise ExperimentNotFound(f"experiment {experiment_id} does not exist")
    runs = connection.execute(
        select(Run, ExperimentRun.archetype)
        .join(ExperimentRun, ExperimentRun.run_id == Run.id)
        .where(ExperimentRun.experiment_id == experiment_id)
        .order_by(Run.user_id)
    ).all()
    run_ids = [run.id for run in runs]
    ratings: dict[int, list[Any]] = defaultdict(list)
    pages: dict[int, list[Any]] = defaultdict(list)
    if run_ids:
        for rating in connection.execute(select(RunRating).where(RunRating.run_id.in_(run_ids))):
            ratings[rating.run_id].append(rating)
        for page in connection.execute(select(RunPage).where(RunPage.run_id.in_(run_ids))):
            pages[page.run_id].append(page)
    users: list[RecordedUser] = []
    for run in runs:  # rows: the run's columns and the archetype
        if not run.selection:
            continue
        baseline, arms = _pages_of(ratings[run.id], pages[run.id])
        if not baseline:
            continue
        test = run.selection["test"]
        users.append(
            RecordedUser(
                user_id=run.user_id,
                history=[(int(m["tmdb_id"]), float(m["rating"])) for m in run.selection["persona"]],
                test=[int(m["tmdb_id"]) for m in test],
                real={int(m["tmdb_id"]): float(m["rating"]) for m in test},
                baseline=baseline,
                arms=arms,
                archetype=run.archetype,
            )
        )
    return RecordedExperiment(
        experiment_id=experiment_id,
        name=experiment.name,
        dataset=experiment.dataset,
        users=users,
    )


def offline_facts(connection: Connection, tmdb_ids: Iterable[int]) -> dict[int, MovieFacts]:
    """What the tmdb-proxy's offline store knows of these movies (for movies outside the
    dataset, e.g. an LLM's recommendations)."""
    ids = sorted(set(tmdb_ids))
    facts: dict[int, MovieFacts] = {}
    for start in range(0, len(ids), 500):
        rows = connection.execute(
            select(OfflineMovie.payload).where(OfflineMovie.tmdb_id.in_(ids[start : start + 500]))
        )
        for (payload,) in rows:
            movie = TmdbMovie.model_validate(payload)
            facts[movie.id] = MovieFacts.from_tmdb(movie)
    return facts


@dataclass(frozen=True)
class RecordedInputs:
    """What the persona commands read of an experiment."""

    experiment: RecordedExperiment
    facts: dict[int, MovieFacts]  # every movie the runs name
    stats: CollaborativeStats  # the collaborative statistics the persona rates with
    population: str  # the dataset they come from
    known: dict[int, dict[int, float]]  # each run's user's ratings in the dataset
    note: str | None = None  # where the collaborative statistics come from, when not the dataset


def load_inputs(
    database_url: str, experiment: int, *, reference: str | None = None
) -> RecordedInputs:
    """An experiment's recorded runs, the facts of every movie they name (the dataset's, then
    the tmdb-proxy's offline records), the collaborative statistics of its dataset, or of the
    ``reference`` dataset its users were drawn from, and the users' ratings in the dataset.
    :class:`RecordedInputsError` when the experiment is missing or has no baseline, or the
    reference cannot be trusted."""
    from prefshift_common.db import create_sync_db_engine
    from prefshift_datasets.errors import DatasetNotFoundError
    from prefshift_simulator.embedded.population import ReferencePopulationError
    from prefshift_simulator.evaluation import population_stats, read_dataset

    engine = create_sync_db_engine(database_url)
    try:
        with engine.connect() as connection:
            try:
                recorded = load_recorded_experiment(connection, experiment)
            except ExperimentNotFound as exc:
                raise RecordedInputsError(str(exc)) from exc
            if not recorded.users:
                raise RecordedInputsError(f"experiment {experiment} has no run with a baseline")
            snapshot = read_dataset(database_url, recorded.dataset)
            wanted = {
                t
                for user in recorded.users
                for arm_pages in user.arms.values()
                for page in arm_pages
                for t in page.shown
            }
            facts = {**offline_facts(connection, wanted - set(snapshot.facts)), **snapshot.facts}
    finally:
        engine.dispose()
    users = {u.user_id for u in recorded.users}
    theirs = snapshot.ratings[snapshot.ratings["user_id"].isin(users)]
    known: dict[int, dict[int, float]] = {}
    for user_id, tmdb_id, rating in theirs[["user_id", "tmdb_id", "rating"]].itertuples(
        index=False
    ):
        known.setdefault(int(user_id), {})[int(tmdb_id)] = float(rating)
    if reference is None or reference == snapshot.name:
        stats, _, _ = population_stats(snapshot)
        return RecordedInputs(recorded, facts, stats, snapshot.name, known)
    try:
        stats, population, share = population_stats(snapshot, read_dataset(database_url, reference))
    except (DatasetNotFoundError, ReferencePopulationError) as exc:
        raise RecordedInputsError(f"--reference-dataset: {exc}") from exc
    note = (
        f"collaborative statistics from {population!r} ({stats.n_users:,} users, "
        f"{stats.n_ratings:,} ratings; it holds {share:.1%} of {snapshot.name!r}'s ratings "
        "under the same user ids, and each persona's own are left out)"
    )
    return RecordedInputs(recorded, facts, stats, population, known, note)
