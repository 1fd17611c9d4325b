"""The plan of a run: which protocol steps remain, from the protocol, the arms and what is
stored. Pure: no HTTP, no database.

A run is a *baseline* (arm ``baseline``, page 0: the fresh persona rates the test movies) and,
for every arm, pages ``1..pages``. A page of an arm that shows pages has three steps — the
recommendations, the persona's ratings of them (*experience*) and its re-ratings of the test
movies (*test*, which completes the page); a page of ``control`` has only the test step.

The checkpoint store writes one arm's steps in protocol order, so what is stored of an arm is a
prefix of its steps: some completed pages, then at most one page with its first step or two.
The plan folds the completed pages into the persona's state (its experiences so far and the
movies it was shown) and lists the pages still to run, each with what of it is stored, so a
resumed run repeats no stored step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from prefshift_common.contracts import Experience

BASELINE = "baseline"

#: A page of an arm: (arm name, page number); the baseline is (``baseline``, 0).
PageKey = tuple[str, int]


class PlannedArm(Protocol):
    """What the plan needs to know of an arm (an :class:`~.arms.Arm`): its name and whether
    it shows pages."""

    @property
    def name(self) -> str: ...

    @property
    def shows_pages(self) -> bool: ...


@dataclass(frozen=True)
class StoredPage:
    """What is stored of one page of one arm."""

    #: The movies shown on the page (TMDB ids, in order), once the recommendations are stored.
    recommended: tuple[int, ...] | None = None
    #: The persona's ratings of them (in the order they were stored), once stored.
    experiences: tuple[Experience, ...] | None = None
    #: The test re-ratings are stored: the page is complete.
    completed: bool = False


NOTHING_STORED = StoredPage()


@dataclass(frozen=True)
class PageSteps:
    """A page still to run. Stored parts are reused instead of being asked for again."""

    page: int
    recommended: tuple[int, ...] | None = None
    experiences: tuple[Experience, ...] | None = None


@dataclass(frozen=True)
class ArmPlan:
    """One arm's remaining pages and the persona's state before the first of them."""

    arm: str
    shows_pages: bool
    #: Experiences of the completed pages, in protocol order.
    experiences: tuple[Experience, ...]
    #: Movies shown on the completed pages.
    shown: frozenset[int]
    pages: tuple[PageSteps, ...]


@dataclass(frozen=True)
class RunPlan:
    """Everything a run still has to do."""

    #: The baseline ratings are still to be asked for.
    baseline: bool
    arms: tuple[ArmPlan, ...]
    #: Pages already complete (for the run's progress) and how many pages the run has.
    done: frozenset[PageKey]
    total: int


def plan_run(
    *, pages: int, arms: Sequence[PlannedArm], stored: Mapping[PageKey, StoredPage]
) -> RunPlan:
    """The steps left of a run of ``pages`` pages per arm, given what is ``stored``."""
    done = frozenset(key for key, page in stored.items() if page.completed)
    return RunPlan(
        baseline=(BASELINE, 0) not in done,
        arms=tuple(plan_arm(arm, pages=pages, stored=stored) for arm in arms),
        done=done,
        total=1 + len(arms) * pages,
    )


def plan_arm(arm: PlannedArm, *, pages: int, stored: Mapping[PageKey, StoredPage]) -> ArmPlan:
    """The pages left of one arm: the completed prefix is folded into the persona's state."""
    experiences: list[Experience] = []
    shown: set[int] = set()
    remaining: list[PageSteps] = []
    for page in range(1, pages + 1):
        state = stored.get((arm.name, page), NOTHING_STORED)
        if state.completed and not remaining:
            shown.update(state.recommended or ())
            experiences.extend(state.experiences or ())
            continue
        remaining.append(
            PageSteps(
                page=page,
                recommended=state.recommended if arm.shows_pages else None,
                experiences=state.experiences if arm.shows_pages else None,
            )
        )
    return ArmPlan(
        arm=arm.name,
        shows_pages=arm.shows_pages,
        experiences=tuple(experiences),
        shown=frozenset(shown),
        pages=tuple(remaining),
    )
