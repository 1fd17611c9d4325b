"""Submitting work: a run for one user (idempotent on user, dataset, protocol and seed), an
experiment's cohort of runs, and cancelling a run. Requests that cannot run are refused before
anything is stored: a run's unknown user, an experiment listing users the dataset does not have
(422, naming them), an experiment none of whose users can run. An experiment's known members
with too few rated movies are kept as failed runs beside the others. Nothing here commits: the
route does, once per request."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from prefshift_common.errors import (
    MAX_LISTED_ERRORS,
    Conflict,
    NotFound,
    ServiceError,
    Unprocessable,
)
from prefshift_datasets.reads import choose_dataset
from prefshift_orchestrator.arm_urls import ArmUrlPolicy
from prefshift_orchestrator.clients import ServiceClients
from prefshift_orchestrator.cohorts import (
    SeedStudyRule,
    UserListRule,
    select_cohort,
)
from prefshift_orchestrator.config import Settings
from prefshift_orchestrator.dataset_reads import DatasetReads
from prefshift_orchestrator.models import Run
from prefshift_orchestrator.repository import (
    ExperimentRepository,
    RunRepository,
    new_run,
)
from prefshift_orchestrator.schemas import (
    ExperimentRequest,
    Protocol,
    SimulationRequest,
    error_record,
)


def protocol_params(request: Protocol) -> dict[str, Any]:
    """The protocol part of a request, with defaults filled in, as stored on the run."""
    params = Protocol.model_validate(
        request.model_dump(include=set(Protocol.model_fields))
    ).model_dump(mode="json")
    # Runs stored before a parameter existed keep their hash: its default is not stored.
    for key, default in (("persona_model", None), ("design", "shift"), ("delta", None)):
        if params.get(key) == default:
            params.pop(key, None)
    for arm in params.get("arms") or []:
        for key in ("recorded", "shown_prediction"):  # likewise for arms without them
            if isinstance(arm, dict) and arm.get(key) is None:
                arm.pop(key, None)
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
    """The dataset's name and id (id None when a named dataset is not imported: the caller
    answers a repeated submission first, then 404). With no name, the one rule of every service
    (``prefshift_datasets.reads.choose_dataset``): the only imported dataset, 409 when none is,
    422 when several are."""
    name = requested or settings.orchestrator_dataset
    if name is not None:
        return name, await reads.dataset_id(name)
    dataset = await choose_dataset(
        reads.session, None, default=None, setting="PREFSHIFT_ORCHESTRATOR_DATASET"
    )
    return dataset.name, dataset.id


def refusal(
    *, user_id: int, dataset: str, known: bool, rated: int, need: int
) -> ServiceError | None:
    """Why a user cannot run the protocol (unknown in the dataset → 404, fewer rated movies with a
    TMDB id than test + persona → 422), or None."""
    if not known:
        return NotFound(f"user {user_id} is not in dataset {dataset!r}")
    if rated < need:
        return Unprocessable(
            f"user {user_id} has {rated} rated movies with a TMDB id in {dataset!r}; the protocol "
            f"needs {need} (test + persona)"
        )
    return None


async def check_simulator(clients: ServiceClients | None, request: Protocol) -> None:
    """Refuse (422) what the simulator says it cannot do: ``backend: llm`` when it has no LLM
    configured, a ``persona_model`` it does not have. Asked only when the request names one
    (the simulator's defaults always serve); when the simulator cannot say, the request goes
    ahead."""
    if clients is None or (request.backend != "llm" and request.persona_model is None):
        return
    backends = await clients.backends()
    if backends is None:
        return
    if request.backend == "llm":
        llm = backends.backend("llm")
        if llm is None or not llm.available:
            why = f" ({llm.detail})" if llm is not None and llm.detail else ""
            raise Unprocessable(
                f"backend 'llm': the simulator has no LLM configured{why}; every run would "
                "fail. Use backend 'embedded', or configure an LLM for the simulator"
            )
    if request.persona_model is not None:
        embedded = backends.backend("embedded")
        known = [model.name for model in embedded.persona_models] if embedded else []
        if request.persona_model not in known:
            raise Unprocessable(
                f"persona_model {request.persona_model!r} is not one of the simulator's: "
                f"{', '.join(known) or 'none'} (GET /backends on the simulator lists them)"
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
    clients: ServiceClients | None = None,
) -> Submitted:
    """Queue a run, or return the existing one for the same user, dataset, protocol and seed.
    The caller commits.

    A request that cannot run (unknown dataset or user, too few ratings, an arm URL the policy
    refuses, a backend or persona model the simulator says it does not have — asked through
    ``clients`` when given) is raised without storing anything: refusals cost no row, so nobody
    can grow the runs table by sending requests that are refused.
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
    if dataset_id is None:
        raise NotFound(f"dataset {dataset!r} is not imported")
    refused = refusal(
        user_id=user_id,
        dataset=dataset,
        known=await reads.user_exists(dataset_id, user_id),
        rated=await reads.count_user_movies(dataset_id, user_id),
        need=request.test_size + request.persona_size,
    )
    if refused is not None:
        raise refused
    await check_simulator(clients, request)
    if force:
        await runs.release_idempotency_key(key)
    run = new_run(
        user_id=user_id, dataset=dataset, params=params, seed=request.seed, params_hash=key
    )
    try:
        await runs.add([run])
    except IntegrityError:
        # An identical request inserted its run first (the key is unique): that run is the answer.
        await session.rollback()
        existing = await runs.by_idempotency_key(key)
        if existing is None:
            raise
        return Submitted(existing, created=False)
    return Submitted(run, created=True)


async def mark_cancelled(session: AsyncSession, run_id: int) -> Run:
    """Cancel a queued or running run (its worker stops at its next write or heartbeat); a run
    that has finished is a conflict. The caller commits."""
    runs = RunRepository(session)
    run = await runs.get(run_id)
    if run is None:
        raise NotFound(f"run {run_id} does not exist")
    if not await runs.cancel(run_id):
        raise Conflict(f"run {run_id} is already {run.status}")
    cancelled = await runs.get(run_id)
    assert cancelled is not None
    return cancelled


@dataclass(frozen=True)
class Member:
    user_id: int
    archetype: str | None


async def cohort_members(
    session: AsyncSession,
    dataset: str,
    dataset_id: int,
    request: ExperimentRequest,
    messages: list[str],
) -> list[Member]:
    """The cohort's users with their archetypes. A list naming users the dataset does not have
    is refused (422) before anything is stored; a user listed twice takes part once."""
    reads = DatasetReads(session)
    rule = request.cohort
    if isinstance(rule, UserListRule):
        users = list(dict.fromkeys(rule.user_ids))  # each user once, in the list's order
        known = await reads.known_users(dataset_id, users)
        unknown = [user for user in users if user not in known]
        if unknown:
            raise Unprocessable(unknown_users_detail(unknown, dataset))
        if len(users) < len(rule.user_ids):
            repeated = len(rule.user_ids) - len(users)
            messages.append(f"{repeated} repeated user id(s) listed once: {len(users)} users")
        stored = await reads.archetypes(dataset_id, users)
        return [Member(user, stored.get(user)) for user in users]
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


def unknown_users_detail(unknown: Sequence[int], dataset: str) -> str:
    """The refusal of a cohort listing users the dataset does not have: the first
    ``MAX_LISTED_ERRORS`` of them, and how many more."""
    listed = ", ".join(str(user) for user in unknown[:MAX_LISTED_ERRORS])
    more = len(unknown) - MAX_LISTED_ERRORS
    return (
        f"{len(unknown):,} listed user(s) not in dataset {dataset!r}: {listed}"
        + (f" (and {more:,} more)" if more > 0 else "")
        + "; nothing was queued"
    )


async def submit_experiment(
    session: AsyncSession,
    settings: Settings,
    request: ExperimentRequest,
    clients: ServiceClients | None = None,
) -> int:
    """Create the experiment and queue one run per cohort user (existing identical runs are
    reused). A cohort listing unknown users, or none of whose users can run, is refused (422)
    with nothing stored; known users with too few rated movies are recorded as failed runs of the
    experiment beside the others. The caller commits."""
    reads = DatasetReads(session)
    await check_arm_urls(settings, request)
    dataset, dataset_id = await resolve_dataset(reads, request.dataset, settings)
    if dataset_id is None:
        raise NotFound(f"dataset {dataset!r} is not imported")
    messages: list[str] = []
    members = await cohort_members(session, dataset, dataset_id, request, messages)
    if not members:
        raise Unprocessable("the cohort rule selected no users")
    await check_simulator(clients, request)
    for _ in range(QUEUE_ATTEMPTS):
        try:
            return await _queue_experiment(
                session, request, dataset, dataset_id, members, list(messages)
            )
        except IntegrityError:
            # A concurrent request queued one of these runs first: again, reusing it.
            await session.rollback()
    raise Conflict("other requests keep queueing the same runs; try again")


#: Tries at queueing a cohort while concurrent requests queue some of the same runs.
QUEUE_ATTEMPTS = 3


async def _queue_experiment(
    session: AsyncSession,
    request: ExperimentRequest,
    dataset: str,
    dataset_id: int,
    members: Sequence[Member],
    messages: list[str],
) -> int:
    """Queue the cohort with a handful of queries (a cohort of thousands must not cost
    thousands of round trips): existing identical runs are reused, users that cannot run are
    recorded as failed runs (unless none can: 422). Returns the experiment's id."""
    reads = DatasetReads(session)
    runs = RunRepository(session)
    params = protocol_params(request)
    keys = {m.user_id: params_hash(m.user_id, dataset, params, request.seed) for m in members}
    existing = await runs.by_idempotency_keys(list(keys.values()))
    pending = [m.user_id for m in members if keys[m.user_id] not in existing]
    known = await reads.known_users(dataset_id, pending)
    rated = await reads.count_users_movies(dataset_id, pending)
    created: dict[int, Run] = {}
    refusals = {
        user_id: refusal(
            user_id=user_id,
            dataset=dataset,
            known=user_id in known,
            rated=rated.get(user_id, 0),
            need=request.test_size + request.persona_size,
        )
        for user_id in pending
    }
    if len(members) == sum(refused is not None for refused in refusals.values()):
        # Not one user can run: the experiment could only fail, so it is refused.
        first = next(refused for refused in refusals.values() if refused is not None)
        raise Unprocessable(
            f"none of the cohort's {len(members):,} user(s) can run the protocol, e.g. "
            f"{first.detail}; nothing was queued"
        )
    for user_id, refused in refusals.items():
        if refused is not None:
            messages.append(f"user {user_id}: {refused.detail}")
        created[user_id] = new_run(
            user_id=user_id,
            dataset=dataset,
            params=params,
            seed=request.seed,
            params_hash=keys[user_id],
            error=error_record(refused) if refused else None,
        )
    await runs.add(list(created.values()))
    experiments = ExperimentRepository(session)
    experiment = await experiments.create(
        name=request.name,
        dataset=dataset,
        params=params,
        seed=request.seed,
        cohort=request.cohort.model_dump(mode="json"),
        messages=messages,
    )
    for member in members:
        run = existing.get(keys[member.user_id]) or created[member.user_id]
        await experiments.add_run(experiment.id, run.id, member.user_id, member.archetype)
    return experiment.id
