"""Pure functions of the recommender: title matching, answer parsing, the taste profile, the
training matrix, top-n selection and every scorer's save/restore and cold-start scoring."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from prefshift_common.movies import title_names
from prefshift_common.title_matching import CatalogueMovie, TitleCatalogue
from prefshift_recommender.algorithms import SCORERS, make_scorer, top_n
from prefshift_recommender.artifacts import build_matrix
from prefshift_recommender.prompts import HistoryMovie, parse_suggestions, taste_profile
from prefshift_recommender.repository import RatingArrays


def test_title_catalogue_exact_fuzzy_and_years() -> None:
    titles = [
        "Seven (a.k.a. Se7en) (1995)",
        "Matrix, The (1999)",
        "Shawshank Redemption, The (1994)",
        "Hamlet (1990)",
        "Hamlet (1996)",
    ]
    years = [1995, 1999, 1994, 1990, 1996]
    index = TitleCatalogue(
        [
            CatalogueMovie(i, tuple(title_names(t)), y, p)
            for i, (t, y, p) in enumerate(zip(titles, years, [10, 50, 40, 1, 5], strict=True))
        ]
    )
    assert index.exact("Se7en", 1995) == 0
    assert index.exact("The Matrix", 2000) == 1  # a year off is tolerated
    assert index.exact("The Matrix", 2003) is None  # not The Matrix Reloaded's year
    assert index.exact("Hamlet", 1990) == 3 and index.exact("Hamlet", 1996) == 4
    assert index.exact("Hamlet", None) == 4  # the more-rated one
    assert index.exact("The Shawshenk Redemtion", 1994) is None
    assert index.fuzzy("The Shawshenk Redemtion", 1994) == 2
    assert index.fuzzy("The Shawshenk Redemtion", 1980) is None
    assert index.fuzzy("The Shawshenk Redemtion", None) is None  # a near spelling needs a year
    assert index.find("Completely Different Film", 1995) is None
    assert index.find("The Matrix II", 1999) is None


def test_parse_suggestions_in_every_shape() -> None:
    expected = [("The Matrix", 1999), ("Heat", 1995)]
    matrix = '{"title": "The Matrix", "year": 1999}'
    heat = '{"title": "Heat", "year": 1995}'
    shapes = [
        f'{{"recommendations": [{matrix}, {{"title": "Heat", "year": "1995"}}]}}',
        f'Here:\n```json\n{{"movies": [{matrix}, {heat}]}}\n```',
        f"[{matrix}, {heat}]",
        "1. The Matrix (1999)\n2. **Heat** (1995)\n",
        '{"recommendations": ["The Matrix (1999)", "Heat (1995)"]}',
    ]
    for content in shapes:
        parsed = [(s.title, s.year) for s in parse_suggestions(content)]
        assert parsed == expected, content
    assert parse_suggestions("I cannot help with that.") == []
    odd = parse_suggestions('{"recommendations": [{"title": "X", "year": 99999}, {"year": 1}]}')
    assert [(s.title, s.year) for s in odd] == [("X", None)]


def test_taste_profile_names_liked_and_disliked_genres() -> None:
    history = [
        HistoryMovie("A", 2000, ("Drama",), 5.0),
        HistoryMovie("B", 2000, ("Drama", "Romance"), 4.5),
        HistoryMovie("C", 2000, ("Drama",), 4.5),
        HistoryMovie("D", 2000, ("Horror",), 1.0),
        HistoryMovie("E", 2000, ("Horror",), 1.5),
        HistoryMovie("F", 2000, ("Comedy",), 3.0),
    ]
    profile = taste_profile(history, ["Comedy", "Drama", "Horror", "Romance", "Western"])
    assert profile.liked[0] == "Drama"
    assert profile.disliked[0] == "Horror"
    assert "Western" in profile.disliked  # never watched
    assert not set(profile.liked) & set(profile.disliked)


def test_build_matrix_keeps_the_higher_of_duplicate_ratings() -> None:
    arrays = RatingArrays(
        user_ids=np.array([7, 7, 7, 9], dtype=np.int64),
        tmdb_ids=np.array([100, 100, 50, 100], dtype=np.int64),  # user 7 rated tmdb 100 twice
        ratings=np.array([2.0, 4.5, 3.0, 1.0], dtype=np.float32),
    )
    matrix = build_matrix(arrays)
    assert list(matrix.user_ids) == [7, 9] and list(matrix.item_ids) == [50, 100]
    assert matrix.ratings.toarray().tolist() == [[3.0, 4.5], [0.0, 1.0]]


def test_top_n_never_returns_blocked_items() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5], dtype=np.float32)
    assert top_n(scores, 3, np.array([0, 2], dtype=np.int64)).tolist() == [1, 3, 4]
    assert top_n(scores, 10, np.array([0, 0, 4], dtype=np.int64)).tolist() == [1, 2, 3]
    assert top_n(scores, 2, np.arange(5, dtype=np.int64)).tolist() == []


def _clustered_ratings(seed: int = 0) -> sp.csr_matrix:
    """Two taste groups over 60 movies: users of group g rate the movies of group g highly."""
    rng = np.random.default_rng(seed)
    rows, cols, values = [], [], []
    for user in range(200):
        group = user % 2
        liked = rng.choice(30, size=12, replace=False) + 30 * group
        for item in liked:
            rows.append(user)
            cols.append(int(item))
            values.append(float(rng.choice([4.0, 4.5, 5.0])))
    return sp.csr_matrix((values, (rows, cols)), shape=(200, 60), dtype=np.float32)


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_scorers_fold_in_and_survive_a_save(name: str) -> None:
    ratings = _clustered_ratings()
    params = {"factors": 8, "iterations": 20} if name in ("als", "bpr") else {}
    if name == "bpr":
        params["learning_rate"] = 0.05
    scorer = make_scorer(name, params)
    scorer.fit(ratings, progress=lambda _p: None)
    history = sp.csr_matrix(
        ([5.0, 4.5, 5.0], ([0, 0, 0], [31, 35, 40])), shape=(1, 60), dtype=np.float32
    )
    scores = scorer.score(history, seed=3)
    assert scores.shape == (1, 60)
    if name in ("als", "bpr", "item-knn"):
        # A history from the second group ranks that group's other movies first.
        best = top_n(scores[0], 10, np.array([31, 35, 40], dtype=np.int64))
        assert (best >= 30).mean() >= 0.8, best
    restored = make_scorer(name, params)
    restored.restore(scorer.arrays())
    assert np.allclose(restored.score(history, seed=3), scores)
