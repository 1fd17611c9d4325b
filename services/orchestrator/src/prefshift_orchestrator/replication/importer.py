"""Importing the seed study's released runs: one experiment, one completed run per user.

Every user's files are read and checked first (``released``); a malformed file stops the import
before anything is written, naming the file. Titles are then resolved to TMDB ids (every
distinct title once, by the resolver the caller hands in — the one the LLM recommender uses:
the dataset's titles, then tmdb-proxy), and each user is written in one transaction: the run,
its pages, its ratings and its link to the experiment — all of a user or nothing.

Idempotent: a run is keyed by the user, the dataset and the sha256 of the user's files, and the
experiment by the digest of the folder; importing the same folder again finds both and writes
nothing (an import that died half-way is completed by the next one).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from prefshift_common.errors import NotFound
from prefshift_orchestrator.dataset_reads import DatasetReads
from prefshift_orchestrator.models import Experiment, ExperimentRun, Run, RunPage, RunRating
from prefshift_orchestrator.replication.matching import title_names
from prefshift_orchestrator.replication.released import (
    STUDY_ARMS,
    ReleasedRun,
    read_run,
    user_folders,
)
from prefshift_orchestrator.replication.runs import (
    STUDY_MODELS,
    ArmCounts,
    BuiltRun,
    build_run,
    study_protocol,
)
from prefshift_orchestrator.repository import utcnow

DEFAULT_NAME = "seed-study-released"
#: Titles resolved at once (each may be a tmdb-proxy search).
RESOLVE_CONCURRENCY = 8


class TitleResolution(Protocol):
    """Resolves a title (and year) to a TMDB id, ``None`` when nothing matches."""

    async def resolve(self, title: str, year: int | None) -> int | None: ...


@dataclass(frozen=True)
class Step:
    """Progress of an import: ``stage`` (read, resolve, write), done of total."""

    stage: str
    done: int
    total: int


@dataclass
class UserImport:
    user_id: int
    run_id: int
    created: bool
    archetype: str | None
    seen_test: int
    baseline_unmatched: int
    counts: dict[str, ArmCounts]


@dataclass
class ImportSummary:
    experiment_id: int
    name: str
    dataset: str
    created: bool
    users: list[UserImport] = field(default_factory=list)
    titles: int = 0
    titles_resolved: int = 0

    def appraisal_all(self) -> dict[str, float | None]:
        """Per arm, the mean over users of the mean rating of every rated recommendation (tied
        to a movie or not): the study's appraisal figure."""
        means: dict[str, list[float]] = {name: [] for name in STUDY_ARMS.values()}
        for user in self.users:
            for name, counts in user.counts.items():
                if counts.appraisal_all is not None:
                    means[name].append(counts.appraisal_all)
        return {name: sum(v) / len(v) if v else None for name, v in means.items()}

    def arm_totals(self) -> dict[str, ArmCounts]:
        totals = {name: ArmCounts() for name in STUDY_ARMS.values()}
        for user in self.users:
            for name, counts in user.counts.items():
                totals[name].add(counts)
        return totals


def _folder_digest(runs: Sequence[ReleasedRun]) -> str:
    digest = hashlib.sha256()
    for run in runs:
        digest.update(f"{run.user_id}:{run.digest}\n".encode())
    return digest.hexdigest()


def _protocol(runs: Sequence[ReleasedRun]) -> dict[str, Any]:
    """The experiment's protocol: the largest of its runs' (they are all alike in the release)."""
    protocols = [study_protocol(run) for run in runs]
    merged = dict(protocols[0])
    for protocol in protocols[1:]:
        for key in ("test_size", "persona_size", "pages", "page_size"):
            merged[key] = max(merged[key], protocol[key])
    return merged


def run_key(user_id: int, dataset: str, digest: str) -> str:
    """Idempotency key of an imported run (never equal to an executed run's params hash)."""
    return hashlib.sha256(f"imported:{dataset}:{user_id}:{digest}".encode()).hexdigest()


async def _resolve_titles(
    runs: Sequence[ReleasedRun],
    resolver: TitleResolution,
    progress: Callable[[Step], None],
) -> dict[str, int | None]:
    titles: dict[str, None] = {}
    for run in runs:
        for arm in run.arms:
            for page in arm.pages:
                titles.update(dict.fromkeys(t for t in page.recommended if t))
                titles.update(dict.fromkeys(r.title for r in page.ratings if r.title))
    resolved: dict[str, int | None] = {}
    gate = asyncio.Semaphore(RESOLVE_CONCURRENCY)
    total = len(titles)

    async def one(title: str) -> None:
        async with gate:
            # A MovieLens-style title is tried under each of its names ("Ringu (Ring)").
            names, year = title_names(title)
            found = None
            for name in names:
                found = await resolver.resolve(name, year)
                if found is not None:
                    break
            resolved[title] = found
            if len(resolved) % 200 == 0 or len(resolved) == total:
                progress(Step("resolve", len(resolved), total))

    progress(Step("resolve", 0, total))
    await asyncio.gather(*(one(title) for title in titles))
    return resolved


async def import_seed_results(
    sessions: async_sessionmaker[AsyncSession],
    path: Path,
    *,
    dataset: str = "seed-cohort",
    name: str | None = None,
    resolver: TitleResolution,
    progress: Callable[[Step], None] = lambda step: None,
) -> ImportSummary:
    """Import the released folder ``path`` (see the module docstring); returns what was matched
    and what was not, per user and arm. Raises ``released.MalformedRelease`` (nothing written)
    or ``NotFound`` when the dataset is not imported."""
    folders = user_folders(path)
    runs: list[ReleasedRun] = []
    for index, (user_id, folder) in enumerate(folders):
        runs.append(await asyncio.to_thread(read_run, user_id, folder))
        progress(Step("read", index + 1, len(folders)))
    async with sessions() as session:
        reads = DatasetReads(session)
        dataset_id = await reads.dataset_id(dataset)
        if dataset_id is None:
            raise NotFound(
                f"dataset {dataset!r} is not imported; import the study's cohort first "
                "(prefshift data import PATH/seed-cohort)"
            )
        archetypes = await reads.archetypes(dataset_id, [run.user_id for run in runs])

    resolved = await _resolve_titles(runs, resolver, progress)
    digest = _folder_digest(runs)
    experiment_id, created = await _experiment(
        sessions, dataset, name or DEFAULT_NAME, digest, path, runs
    )
    summary = ImportSummary(
        experiment_id=experiment_id,
        name=name or DEFAULT_NAME,
        dataset=dataset,
        created=created,
        titles=len(resolved),
        titles_resolved=sum(1 for value in resolved.values() if value is not None),
    )
    imported_at = utcnow()
    for index, run in enumerate(runs):
        built = build_run(
            run, resolved, source=f"{path.name}/{run.folder.name}", imported_at=imported_at
        )
        archetype = archetypes.get(run.user_id)
        run_id, run_created = await _store(sessions, experiment_id, dataset, run, built, archetype)
        summary.users.append(
            UserImport(
                user_id=run.user_id,
                run_id=run_id,
                created=run_created,
                archetype=archetype,
                seen_test=built.seen_test,
                baseline_unmatched=built.provenance["unmatched"]["baseline_test"],
                counts=built.counts,
            )
        )
        progress(Step("write", index + 1, len(runs)))
    return summary


async def _experiment(
    sessions: async_sessionmaker[AsyncSession],
    dataset: str,
    name: str,
    digest: str,
    path: Path,
    runs: Sequence[ReleasedRun],
) -> tuple[int, bool]:
    """The experiment of this folder's import: the existing one, or a new one."""
    async with sessions() as session:
        imported = await session.scalars(
            select(Experiment).where(
                Experiment.dataset == dataset, Experiment.provenance.is_not(None)
            )
        )
        for experiment in imported:
            if (experiment.provenance or {}).get("folder_sha256") == digest:
                return experiment.id, False
        experiment = Experiment(
            name=name[:64],
            dataset=dataset,
            params=_protocol(runs),
            seed=0,
            cohort={"kind": "imported", "user_ids": [run.user_id for run in runs]},
            messages=[
                f"imported from the seed study's released runs ({path.name}/, {len(runs)} users); "
                "there is no control arm in the study: shifts are against the baseline, and "
                "no net shift is defined"
            ],
            provenance={
                "kind": "imported",
                "source": path.name,
                "study": "seed study (released runs)",
                "folder_sha256": digest,
                "users": len(runs),
                "arms": dict(STUDY_ARMS),
                **STUDY_MODELS,
            },
            created_at=utcnow(),
        )
        session.add(experiment)
        await session.commit()
        return experiment.id, True


async def _store(
    sessions: async_sessionmaker[AsyncSession],
    experiment_id: int,
    dataset: str,
    released: ReleasedRun,
    built: BuiltRun,
    archetype: str | None,
) -> tuple[int, bool]:
    """Write one user's run in one transaction (or find it); link it to the experiment."""
    key = run_key(released.user_id, dataset, released.digest)
    async with sessions() as session:
        run = (await session.scalars(select(Run).where(Run.idempotency_key == key))).first()
        created = run is None
        if run is None:
            now = utcnow()
            run = Run(
                user_id=released.user_id,
                dataset=dataset,
                params=study_protocol(released),
                seed=0,
                params_hash=key,
                idempotency_key=key,
                status="completed",
                progress=1.0,
                error=None,
                messages=built.messages,
                selection=built.selection,
                arms=built.arms,
                provenance=built.provenance,
                attempts=0,
                created_at=now,
                started_at=now,
                finished_at=now,
            )
            session.add(run)
            await session.flush()
            await session.execute(
                insert(RunPage), [page | {"run_id": run.id} for page in built.pages]
            )
            if built.ratings:
                await session.execute(
                    insert(RunRating), [rating | {"run_id": run.id} for rating in built.ratings]
                )
        linked = await session.get(ExperimentRun, (experiment_id, run.id))
        if linked is None:
            session.add(
                ExperimentRun(
                    experiment_id=experiment_id,
                    run_id=run.id,
                    user_id=released.user_id,
                    archetype=archetype,
                )
            )
        await session.commit()
        return run.id, created


def summary_rows(summary: ImportSummary) -> list[dict[str, Any]]:
    """One row per user and arm: what was imported and what could not be matched."""
    return [
        {"user_id": user.user_id, "arm": arm, "seen_test": user.seen_test, **vars(counts)}
        for user in summary.users
        for arm, counts in user.counts.items()
    ]
