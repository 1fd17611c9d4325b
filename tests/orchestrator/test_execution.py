"""The pure parts of run execution, without HTTP or a database: the plan of the remaining steps
from what is stored, and the recommender contract enforced on a page."""

from __future__ import annotations

import pytest

from prefshift_common.contracts import Experience, RatedMovie
from prefshift_common.errors import UpstreamError
from prefshift_orchestrator.execution.arms import Arm, PageRequest, admissible
from prefshift_orchestrator.execution.plan import BASELINE, PageSteps, StoredPage, plan_run

ALS = Arm(name="als", kind="recommender", url="http://127.0.0.1:9", recommender="als")
CONTROL = Arm(name="control", kind="control")


def _experiences(*tmdb_ids: int) -> tuple[Experience, ...]:
    return tuple(Experience(tmdb_id=i, rating=3.5, feeling=f"felt {i}") for i in tmdb_ids)


def test_a_fresh_run_has_every_step_to_do() -> None:
    plan = plan_run(pages=3, arms=[ALS, CONTROL], stored={})

    assert plan.baseline and plan.total == 1 + 2 * 3 and plan.done == frozenset()
    als, control = plan.arms
    assert (als.arm, als.shows_pages, control.arm, control.shows_pages) == (
        "als",
        True,
        "control",
        False,
    )
    assert als.pages == (PageSteps(1), PageSteps(2), PageSteps(3))
    assert control.pages == als.pages
    assert als.experiences == () and als.shown == frozenset()


def test_a_finished_run_has_nothing_left() -> None:
    stored = {
        (BASELINE, 0): StoredPage(completed=True),
        ("als", 1): StoredPage((11, 12), _experiences(11, 12), completed=True),
        ("als", 2): StoredPage((13,), _experiences(13), completed=True),
        ("control", 1): StoredPage(completed=True),
        ("control", 2): StoredPage(completed=True),
    }

    plan = plan_run(pages=2, arms=[ALS, CONTROL], stored=stored)

    assert not plan.baseline and plan.done == frozenset(stored)
    assert [arm.pages for arm in plan.arms] == [(), ()]
    assert plan.arms[0].experiences == _experiences(11, 12, 13)
    assert plan.arms[0].shown == {11, 12, 13}


def test_a_resumed_run_repeats_no_stored_step() -> None:
    stored = {
        (BASELINE, 0): StoredPage(completed=True),
        # als: page 1 complete; page 2 recommended and rated, its test re-ratings lost.
        ("als", 1): StoredPage((11, 12), _experiences(12, 11), completed=True),
        ("als", 2): StoredPage((21, 22), _experiences(21, 22)),
        # random: page 1 recommended only.
        ("random", 1): StoredPage((31,)),
        ("control", 1): StoredPage(completed=True),
    }
    random = Arm(name="random", kind="recommender", url="http://127.0.0.1:9", recommender="r")

    plan = plan_run(pages=3, arms=[ALS, random, CONTROL], stored=stored)

    assert not plan.baseline
    assert plan.done == {(BASELINE, 0), ("als", 1), ("control", 1)}
    als, rand, control = plan.arms
    # The completed page is folded into the persona's state, in stored order.
    assert als.experiences == _experiences(12, 11) and als.shown == {11, 12}
    assert als.pages == (PageSteps(2, (21, 22), _experiences(21, 22)), PageSteps(3))
    assert rand.experiences == () and rand.shown == frozenset()
    assert rand.pages == (PageSteps(1, (31,), None), PageSteps(2), PageSteps(3))
    assert control.pages == (PageSteps(2), PageSteps(3))


def test_an_arm_that_shows_no_pages_never_reuses_recommendations() -> None:
    stored = {("control", 1): StoredPage((5,), _experiences(5))}

    plan = plan_run(pages=1, arms=[CONTROL], stored=stored)

    assert plan.arms[0].pages == (PageSteps(1),)


def _request(exclude: list[int], history: list[int], n: int) -> PageRequest:
    return PageRequest(
        arm=ALS,
        page=2,
        dataset="seed-cohort",
        history=[RatedMovie(tmdb_id=i, rating=4.0) for i in history],
        exclude=exclude,
        n=n,
        seed=7,
    )


def test_a_page_drops_excluded_history_and_repeated_movies_and_keeps_n() -> None:
    items = [{"tmdb_id": i, "title": f"m{i}"} for i in (1, 2, 3, 3, 4, 5, 6)]

    kept = admissible(items, request=_request(exclude=[1], history=[2], n=3))

    assert [item["tmdb_id"] for item in kept] == [3, 4, 5]


def test_a_page_with_no_new_movie_fails_the_arm() -> None:
    items = [{"tmdb_id": 1, "title": "m1"}, {"tmdb_id": 2, "title": "m2"}]

    with pytest.raises(UpstreamError, match="no new movies for page 2"):
        admissible(items, request=_request(exclude=[1], history=[2], n=3))
