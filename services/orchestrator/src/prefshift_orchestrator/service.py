"""The orchestrator's domain operations behind the routes: submitting runs and experiments,
and turning stored ratings into measurements (via ``measurements``/``statistics``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_common.errors import NotFound, ServiceError, Unprocessable
from prefshift_orchestrator import measurements
from prefshift_orchestrator.arm_urls import ArmUrlPolicy
from prefshift_orchestrator.cohorts import (
    SeedStudyRule,
    UserListRule,
    select_cohort,
)
from prefshift_orchestrator.config import Settings
from prefshift_orchestrator.dataset_reads import DatasetReads
from prefshift_orchestrator.models import Run, RunRating
from prefshift_orchestrator.protocol import Selection
from prefshift_orchestrator.repository import ExperimentRepository, RunRepository, as_utc, utcnow
from prefshift_orchestrator.schemas import (
    ArmShiftSummary,
    ExperimentRequest,
    Protocol,
    RunError,
    RunLinks,
    RunOut,
    SimulationRequest,
    error_record,
)

RATING_COLUMNS = ["arm", "page", "phase", "tmdb_id", "rating"]


def protocol_params(request: Protocol) -> dict[str, Any]:
    """The protocol part of a request, with defaults filled in, as stored on the run."""
    params = Protocol.model_validate(
        request.model_dump(include=set(Protocol.model_fields))
    ).model_dump(mode="json")
    if params.get("persona_model") is None:
        params.pop("persona_model", None)  # runs stored before it existed keep their hash
    for arm in params.get("arms") or []:
        if isinstance(arm, dict) and arm.get("recorded") is None:
            arm.pop("recorded", None)  # likewise for arms that replay nothing
    return params


def params_hash(user_id: int, dataset: str, params: dict[str, Any], seed: int) -> str:
    canonical = json.dumps(
        {"user_id": user_id, "dataset": dataset, "params": params, "seed": seed},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def resolve_dataset(
    reads: DatasetReads, requested: str | None, settings: Settings
) -> tuple[str, int | None]:
    """The dataset's name and id (id None when it is not imported)."""
    name = requested or settings.orchestrator_dataset
    if name is None:
        names = await reads.dataset_names()
        if len(names) == 1:
            name = names[0]
        elif not names:
            raise NotFound("no dataset is imported; run `prefshift data import PATH` first")
        else:
            raise Unprocessable(
                f"several datasets are imported ({', '.join(names)}); say which with 'dataset'"
            )
    return name, await reads.dataset_id(name)


async def _validate_user(
    reads: DatasetReads, dataset: str, dataset_id: int | None, user_id: int, need: int
) -> None:
    if dataset_id is None:
        raise NotFound(f"dataset {dataset!r} is not imported")
    if not await reads.user_exists(dataset_id, user_id):
        raise NotFound(f"user {user_id} is not in dataset {dataset!r}")
    have = await reads.count_user_movies(dataset_id, user_id)
    if have < need:
        raise Unprocessable(
            f"user {user_id} has {have} rated movies with a TMDB id in {dataset!r}; the protocol "
            f"needs {need} (test + persona)"
        )


async def check_arm_urls(settings: Settings, request: Protocol) -> None:
    """Refuse (422) a request naming an arm URL the policy does not allow (``arm_urls``)."""
    policy = ArmUrlPolicy.from_settings(settings)
    for spec in request.arm_specs():
        if spec.url is not None:
            await policy.pin(spec.url)


@dataclass(frozen=True)
class Submitted:
    run: Run
    created: bool


async def submit_run(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    request: SimulationRequest,
    force: bool,
) -> Submitted:
    """Queue a run, or return the existing one for the same user, dataset, protocol and seed.

    A request that cannot run (unknown dataset or user, too few ratings, an arm URL the policy
    refuses) is raised without storing anything: refusals cost no row, so nobody can grow the
    runs table by sending requests that are refused.
    """
    reads = DatasetReads(session)
    await check_arm_urls(settings, request)
    params = protocol_params(request)
    dataset, dataset_id = await resolve_dataset(reads, request.dataset, settings)
    key = params_hash(user_id, dataset, params, request.seed)
    runs = RunRepository(session)
    if not force:
        existing = await runs.by_idempotency_key(key)
        if existing is not None:
            return Submitted(existing, created=False)
    await _validate_user(
        reads, dataset, dataset_id, user_id, request.test_size + request.persona_size
    )
    if force:
        await session.execute(
            update(Run).where(Run.idempotency_key == key).values(idempotency_key=None)
        )
    run, created = await runs.create(
        user_id=user_id,
        dataset=dataset,
        params=params,
        seed=request.seed,
        params_hash=key,
        idempotent=True,
    )
    return Submitted(run, created)


def pages_total(run: Run) -> int:
    arms = run.arms if run.arms is not None else Protocol.model_validate(run.params).arm_specs()
    return 1 + len(arms) * int(run.params.get("pages", 4))


def run_out(run: Run, pages_done: int, base: str = "") -> RunOut:
    error = RunError.model_validate(run.error) if run.error else None
    return RunOut(
        run_id=run.id,
        user_id=run.user_id,
        dataset=run.dataset,
        seed=run.seed,
        status=run.status,  # type: ignore[arg-type]
        progress=max(0.0, min(1.0, run.progress)),
        params=run.params,
        arms=run.arms,
        messages=list(run.messages or []),
        provenance=run.provenance,
        error=error,
        attempts=run.attempts,
        claimed_by=run.claimed_by,
        created_at=as_utc(run.created_at),  # type: ignore[arg-type]
        started_at=as_utc(run.started_at),
        finished_at=as_utc(run.finished_at),
        pages_done=pages_done,
        pages_total=pages_total(run),
        links=RunLinks(
            self=f"{base}/runs/{run.id}",
            ratings=f"{base}/runs/{run.id}/ratings",
            shift=f"{base}/runs/{run.id}/shift",
        ),
    )


# --- measurements ---------------------------------------------------------------------------


def ratings_frame(ratings: Sequence[RunRating]) -> pd.DataFrame:
    """A run's ratings in the shape ``measurements`` takes."""
    return pd.DataFrame(
        [(r.arm, r.page, r.phase, r.tmdb_id, r.rating) for r in ratings], columns=RATING_COLUMNS
    ).astype({"arm": str, "page": "int64", "phase": str, "tmdb_id": "int64", "rating": "float64"})


def selection_inputs(run: Run) -> tuple[dict[int, list[str]], dict[int, float]]:
    """Genres and real ratings of the run's test movies."""
    if run.selection is None:
        return {}, {}
    selection = Selection.from_json(run.selection)
    stored_genres = run.selection.get("test_genres") or {}
    genres = {
        movie.tmdb_id: list(stored_genres.get(str(movie.tmdb_id), movie.genres))
        for movie in selection.test
    }
    real = {movie.tmdb_id: movie.rating for movie in selection.test}
    return genres, real


def seen_test_movies(run: Run) -> set[int]:
    """Test movies that are also persona movies (possible only in imported runs)."""
    if run.selection is None:
        return set()
    selection = Selection.from_json(run.selection)
    return {m.tmdb_id for m in selection.test} & {m.tmdb_id for m in selection.persona}


def compute_shift(run: Run, ratings: Sequence[RunRating]) -> measurements.RunShift:
    genres, real = selection_inputs(run)
    return measurements.run_shift(
        ratings_frame(ratings), test_genres=genres, real_ratings=real, seen=seen_test_movies(run)
    )


async def run_shift(session: AsyncSession, run: Run) -> measurements.RunShift:
    ratings = await RunRepository(session).ratings(run.id)
    return await asyncio.to_thread(compute_shift, run, ratings)


def shift_summary(shift: measurements.RunShift) -> list[ArmShiftSummary]:
    return [
        ArmShiftSummary(
            arm=arm.arm, page=arm.last_page or 0, shift=arm.shift, net_shift=arm.net_shift
        )
        for arm in shift.arms
    ]


# --- experiments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    user_id: int
    archetype: str | None


async def cohort_members(
    session: AsyncSession, dataset_id: int, request: ExperimentRequest, messages: list[str]
) -> list[Member]:
    reads = DatasetReads(session)
    rule = request.cohort
    if isinstance(rule, UserListRule):
        stored = await reads.archetypes(dataset_id, rule.user_ids)
        return [Member(user, stored.get(user)) for user in dict.fromkeys(rule.user_ids)]
    ratings, genres = await reads.cohort_inputs(dataset_id)
    cohort = await asyncio.to_thread(
        select_cohort, rule, ratings, genres if isinstance(rule, SeedStudyRule) else None
    )
    if cohort.missing_user_ids:
        messages.append(f"users not in the dataset: {cohort.missing_user_ids[:20]}")
    for archetype, short in cohort.shortfall.items():
        messages.append(f"cohort short of {short} users ({archetype})")
    if cohort.thresholds:
        messages.append(
            "entropy thresholds: "
            + ", ".join(f"{name} {value:.4f}" for name, value in cohort.thresholds.items())
        )
    stored = await reads.archetypes(dataset_id, [user.user_id for user in cohort.users])
    return [
        Member(user.user_id, user.archetype or stored.get(user.user_id)) for user in cohort.users
    ]


async def submit_experiment(
    session: AsyncSession, settings: Settings, request: ExperimentRequest
) -> int:
    """Create the experiment and queue one run per cohort user (existing identical runs are
    reused). Users that cannot run are recorded as failed runs of the experiment."""
    reads = DatasetReads(session)
    await check_arm_urls(settings, request)
    dataset, dataset_id = await resolve_dataset(reads, request.dataset, settings)
    if dataset_id is None:
        raise NotFound(f"dataset {dataset!r} is not imported")
    messages: list[str] = []
    members = await cohort_members(session, dataset_id, request, messages)
    if not members:
        raise Unprocessable("the cohort rule selected no users")
    params = protocol_params(request)
    experiments = ExperimentRepository(session)
    experiment = await experiments.create(
        name=request.name,
        dataset=dataset,
        params=params,
        seed=request.seed,
        cohort=request.cohort.model_dump(mode="json"),
        messages=messages,
    )
    experiment_id = experiment.id
    try:
        await _queue_members(
            session, experiment_id, dataset, dataset_id, params, request, members, messages
        )
        await session.commit()
    except IntegrityError:
        # A concurrent request created one of these runs first: go user by user instead.
        await session.rollback()
        await _queue_members_one_by_one(
            session, settings, experiment_id, dataset, params, request, members, messages
        )
    if messages:
        refreshed = await experiments.get(experiment_id)
        assert refreshed is not None
        refreshed.messages = list(messages)
        await session.commit()
    return experiment_id


async def _queue_members(
    session: AsyncSession,
    experiment_id: int,
    dataset: str,
    dataset_id: int,
    params: dict[str, Any],
    request: ExperimentRequest,
    members: Sequence[Member],
    messages: list[str],
) -> None:
    """Queue the cohort in one transaction with a handful of queries (a cohort of thousands
    must not cost thousands of round trips): existing identical runs are reused, users that
    cannot run are recorded as failed runs."""
    reads = DatasetReads(session)
    runs = RunRepository(session)
    keys = {m.user_id: params_hash(m.user_id, dataset, params, request.seed) for m in members}
    existing = await runs.by_idempotency_keys(list(keys.values()))
    pending = [m.user_id for m in members if keys[m.user_id] not in existing]
    known = await reads.known_users(dataset_id, pending)
    counts = await reads.count_users_movies(dataset_id, pending)
    need = request.test_size + request.persona_size
    now = utcnow()
    created: dict[int, Run] = {}
    for user_id in pending:
        error: ServiceError | None = None
        if user_id not in known:
            error = NotFound(f"user {user_id} is not in dataset {dataset!r}")
        elif counts.get(user_id, 0) < need:
            error = Unprocessable(
                f"user {user_id} has {counts.get(user_id, 0)} rated movies with a TMDB id in "
                f"{dataset!r}; the protocol needs {need} (test + persona)"
            )
        if error is not None:
            messages.append(f"user {user_id}: {error.detail}")
        created[user_id] = Run(
            user_id=user_id,
            dataset=dataset,
            params=params,
            seed=request.seed,
            params_hash=keys[user_id],
            idempotency_key=None if error else keys[user_id],
            status="failed" if error else "queued",
            progress=0.0,
            error=error_record(error) if error else None,
            messages=[],
            attempts=0,
            created_at=now,
            finished_at=now if error else None,
        )
    session.add_all(created.values())
    await session.flush()
    experiments = ExperimentRepository(session)
    for member in members:
        run = existing.get(keys[member.user_id]) or created[member.user_id]
        await experiments.add_run(experiment_id, run.id, member.user_id, member.archetype)


async def _queue_members_one_by_one(
    session: AsyncSession,
    settings: Settings,
    experiment_id: int,
    dataset: str,
    params: dict[str, Any],
    request: ExperimentRequest,
    members: Sequence[Member],
    messages: list[str],
) -> None:
    experiments = ExperimentRepository(session)
    simulation = SimulationRequest.model_validate(
        {**params, "dataset": dataset, "seed": request.seed}
    )
    for member in members:
        try:
            submitted = await submit_run(
                session, settings, user_id=member.user_id, request=simulation, force=False
            )
            run_id = submitted.run.id
        except ServiceError as error:
            # The experiment was accepted: its member that cannot run is kept as a failed run.
            failed, _ = await RunRepository(session).create(
                user_id=member.user_id,
                dataset=dataset,
                params=params,
                seed=request.seed,
                params_hash=params_hash(member.user_id, dataset, params, request.seed),
                idempotent=False,
                status="failed",
                error=error_record(error),
            )
            run_id = failed.id
            messages.append(f"user {member.user_id}: {error.detail}")
        await experiments.add_run(experiment_id, run_id, member.user_id, member.archetype)
        await session.commit()
