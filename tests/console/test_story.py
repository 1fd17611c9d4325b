"""A run's story from its public records."""

from __future__ import annotations

from prefshift_common.contracts import TmdbMovie
from prefshift_console.story import build_story, movie_ids

RUN = {"params": {"pages": 2}, "arms": [{"name": "als"}, {"name": "control"}]}
SELECTION = {
    "persona": [{"tmdb_id": 1, "rating": 4.0, "title": "Stored One", "genres": ["Drama"]}],
    "test": [
        {"tmdb_id": 2, "rating": 3.0, "title": "Two", "genres": ["Comedy"]},
        {"tmdb_id": 3, "rating": 5.0, "title": "Three", "genres": []},
    ],
}
RATINGS = [
    {"arm": "baseline", "page": 0, "phase": "test", "tmdb_id": 2, "rating": 3.5, "feeling": "fine"},
    {"arm": "baseline", "page": 0, "phase": "test", "tmdb_id": 3, "rating": 4.0, "feeling": "ok"},
    {"arm": "als", "page": 1, "phase": "experience", "tmdb_id": 9, "rating": 2.0, "feeling": "meh"},
    {"arm": "als", "page": 1, "phase": "test", "tmdb_id": 2, "rating": 4.0, "feeling": ""},
    {"arm": "als", "page": 2, "phase": "test", "tmdb_id": 2, "rating": 4.5, "feeling": ""},
    {"arm": "control", "page": 1, "phase": "test", "tmdb_id": 3, "rating": 3.5, "feeling": ""},
]
RECORDS = {
    9: TmdbMovie.model_validate(
        {
            "id": 9,
            "title": "Nine",
            "release_date": "1999-03-31",
            "genres": [{"id": 1, "name": "Action"}],
        }
    ),
    # an offline record: the year comes from MovieLens
    1: TmdbMovie.model_validate(
        {"id": 1, "title": "One", "release_date": "", "genres": [], "movielens_year": 1995}
    ),
}


def test_the_story_has_history_baseline_pages_and_re_ratings() -> None:
    story = build_story(run=RUN, selection=SELECTION, ratings=RATINGS, records=RECORDS)
    assert movie_ids(SELECTION, RATINGS) == [1, 2, 3, 9]
    # the record's title wins, the stored genres fill in where the record has none
    assert [(m.title, m.year, m.genres, m.rating) for m in story.history] == [
        ("One", "1995", "Drama", 4.0)
    ]
    assert [(m.title, m.rating, m.feeling) for m in story.baseline] == [
        ("Two", 3.5, "fine"),
        ("Three", 4.0, "ok"),
    ]
    assert story.n_pages == 2
    als, control = story.arms
    assert als.arm == "als" and control.arm == "control"
    (nine,) = als.pages[1]
    assert (nine.title, nine.year, nine.genres, nine.rating, nine.feeling) == (
        "Nine",
        "1999",
        "Action",
        2.0,
        "meh",
    )
    two, three = als.tests
    assert (two.real, two.baseline, two.pages, two.last_change) == (3.0, 3.5, [4.0, 4.5], 1.0)
    assert three.pages == [None, None] and three.last_change is None
    assert control.pages == {} and control.tests[1].pages == [3.5, None]
    assert control.tests[1].last_change == -0.5


def test_the_story_shows_the_predictions_and_the_blind_ratings() -> None:
    run = {"params": {"pages": 1}, "arms": [{"name": "als_up1"}, {"name": "rerate"}]}
    ratings = [
        *RATINGS[:2],
        {"arm": "als_up1", "page": 1, "phase": "experience", "tmdb_id": 9, "rating": 4.5}
        | {"feeling": "", "shown": 5.0},
        {"arm": "als_up1", "page": 1, "phase": "blind", "tmdb_id": 9, "rating": 3.5}
        | {"feeling": "", "shown": None},
        {"arm": "rerate", "page": 1, "phase": "test", "tmdb_id": 2, "rating": 4.0}
        | {"feeling": "", "shown": 4.0, "condition": "up"},
        {"arm": "rerate", "page": 1, "phase": "test", "tmdb_id": 3, "rating": 4.0}
        | {"feeling": "", "shown": None, "condition": "none"},
    ]
    story = build_story(run=run, selection=SELECTION, ratings=ratings, records=RECORDS)
    shown, rerate = story.arms
    (nine,) = shown.pages[1]
    assert (nine.rating, nine.shown, nine.blind) == (4.5, 5.0, 3.5)
    two, three = rerate.tests
    assert (two.pages, two.shown, two.conditions) == ([4.0], [4.0], ["up"])
    assert (three.shown, three.conditions) == ([None], ["none"])
