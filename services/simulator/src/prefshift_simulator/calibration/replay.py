"""The recorded pages replayed through the embedded persona, in process and vectorised.

What experiences and noise do not touch — ``b_u + b_m + taste + neighbours`` of every test and
shown movie, at spread 1 — is computed once per user
(:meth:`EmbeddedPersonaModel.static_scores`); a replay under given dynamics and noise
parameters is then array arithmetic over every user, arm, page and movie at once: the spread
``k`` scales the static scores around the user's level ``b_u``, then the rules of
:mod:`prefshift_simulator.embedded.dynamics` apply page by page (the persona rates the page's
movies with its state so far, those ratings become its experiences, then it re-rates the test
movies), with the noise of :mod:`prefshift_simulator.embedded.noise` under the same keys as the
service, and the same rounding. ``tests/simulator/test_calibration.py`` checks a replay against
the service's own ``predict`` rating for rating.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from prefshift_simulator.calibration.recorded import RecordedUser
from prefshift_simulator.embedded.collaborative import CollaborativeStats
from prefshift_simulator.embedded.model import N_GENRES, EmbeddedPersonaModel
from prefshift_simulator.embedded.noise import LASTING, OCCASION, drift_walk, keyed_normals
from prefshift_simulator.metadata import MovieFacts

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def occasion_seed(replication: int, *, page: int, arm: int | None = None) -> int:
    """The request seed of a replayed rating: test re-ratings share it across arms (as the
    orchestrator's common random numbers), experience ratings have one per arm and page."""
    if arm is None:
        return replication * 10_007 + page
    return replication * 10_007 + 1_000 + arm * 100 + page


@dataclass
class Prepared:
    """Every user's static scores, genres and recorded ratings as padded arrays
    (U users, A arms, P pages, T test movies, S shown movies per page, G genres)."""

    user_ids: IntArray  # (U,)
    arms: list[str]
    reference: FloatArray  # (U,) r̄
    level: FloatArray  # (U,) b_u, the centre of the spread
    test_ids: IntArray  # (U, T), 0 = padding
    test_static: FloatArray  # (U, T)
    test_genres: FloatArray  # (U, T, G)
    test_mask: BoolArray  # (U, T)
    shown_ids: IntArray  # (U, A, P, S)
    shown_static: FloatArray  # (U, A, P, S)
    shown_genres: FloatArray  # (U, A, P, S, G)
    shown_mask: BoolArray  # (U, A, P, S)
    real: FloatArray  # (U, T), NaN: unknown
    baseline: FloatArray  # (U, T) recorded, NaN: not recorded
    test_recorded: FloatArray  # (U, A, P, T) recorded, NaN: not recorded
    shown_recorded: FloatArray  # (U, A, P, S) recorded experience ratings, NaN: not recorded

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_pages(self) -> int:
        return int(self.shown_ids.shape[2])


def prepare(
    users: Sequence[RecordedUser],
    *,
    model: EmbeddedPersonaModel,
    facts: Mapping[int, MovieFacts],
    stats: CollaborativeStats | None,
) -> Prepared:
    """Static scores of every user's test and shown movies (the slow part, done once). A test
    movie that is also among the persona movies leaves the history: no test movie's own rating
    reaches the persona. The static scores are taken at spread 1 (the replay applies any)."""
    model = EmbeddedPersonaModel(dataclasses.replace(model.params, spread=1.0), model.encoder)
    arms = sorted({arm for user in users for arm in user.arms})
    n_users, n_arms = len(users), len(arms)
    n_test = max(len(u.test) for u in users)
    n_pages = max((len(pages) for u in users for pages in u.arms.values()), default=0)
    n_shown = max(
        (len(page.shown) for u in users for pages in u.arms.values() for page in pages),
        default=0,
    )
    nan = np.nan
    p = Prepared(
        user_ids=np.array([u.user_id for u in users], dtype=np.int64),
        arms=arms,
        reference=np.zeros(n_users),
        level=np.zeros(n_users),
        test_ids=np.zeros((n_users, n_test), dtype=np.int64),
        test_static=np.zeros((n_users, n_test)),
        test_genres=np.zeros((n_users, n_test, N_GENRES)),
        test_mask=np.zeros((n_users, n_test), dtype=bool),
        shown_ids=np.zeros((n_users, n_arms, n_pages, n_shown), dtype=np.int64),
        shown_static=np.zeros((n_users, n_arms, n_pages, n_shown)),
        shown_genres=np.zeros((n_users, n_arms, n_pages, n_shown, N_GENRES)),
        shown_mask=np.zeros((n_users, n_arms, n_pages, n_shown), dtype=bool),
        real=np.full((n_users, n_test), nan),
        baseline=np.full((n_users, n_test), nan),
        test_recorded=np.full((n_users, n_arms, n_pages, n_test), nan),
        shown_recorded=np.full((n_users, n_arms, n_pages, n_shown), nan),
    )
    for u, user in enumerate(users):
        test = list(dict.fromkeys(user.test))
        test_set = set(test)
        history = [(t, r) for t, r in user.history if t not in test_set]
        shown = [t for pages in user.arms.values() for page in pages for t in page.shown]
        static = model.static_scores(
            user_id=user.user_id,
            history=history,
            items=[*test, *(t for t in dict.fromkeys(shown) if t not in test_set)],
            facts=facts,
            stats=stats,
        )
        row = {t: i for i, t in enumerate(static.item_ids)}
        p.reference[u] = static.reference
        p.level[u] = static.level
        n = len(test)
        p.test_ids[u, :n] = test
        p.test_mask[u, :n] = True
        p.test_static[u, :n] = static.scores[[row[t] for t in test]]
        p.test_genres[u, :n] = static.genres[[row[t] for t in test]]
        p.real[u, :n] = [user.real.get(t, nan) for t in test]
        p.baseline[u, :n] = [user.baseline.get(t, nan) for t in test]
        for a, arm in enumerate(arms):
            for page_index, page in enumerate(user.arms.get(arm, ())):
                ids = [t for t in dict.fromkeys(page.shown) if t not in test_set]
                k = len(ids)
                p.shown_ids[u, a, page_index, :k] = ids
                p.shown_mask[u, a, page_index, :k] = True
                p.shown_static[u, a, page_index, :k] = static.scores[[row[t] for t in ids]]
                p.shown_genres[u, a, page_index, :k] = static.genres[[row[t] for t in ids]]
                p.shown_recorded[u, a, page_index, :k] = [
                    page.experience_ratings.get(t, nan) for t in ids
                ]
                p.test_recorded[u, a, page_index, :n] = [
                    page.test_ratings.get(t, nan) for t in test
                ]
    return p


@dataclass(frozen=True)
class Draws:
    """Standard normal draws of R replications (common random numbers across a fit)."""

    test_lasting: FloatArray  # (U, T)
    shown_lasting: FloatArray  # (U, A, P, S)
    test_occasion: FloatArray  # (R, U, P + 1, T); occasion 0 is the baseline
    shown_occasion: FloatArray  # (R, U, A, P, S)
    test_drift: FloatArray  # (U, P + 1, T): the drift walk on each occasion (0 at the baseline)
    shown_drift: FloatArray  # (U, A, P, S)

    @property
    def replications(self) -> int:
        return int(self.test_occasion.shape[0])


def draws(prepared: Prepared, *, replications: int, salt: int = 0) -> Draws:
    """The noise the service would draw for these ratings (``salt`` 0), or an independent copy
    of it (another ``salt``: a synthetic study whose noise the fit has never seen)."""
    p = prepared
    n_users, n_arms, n_pages, _ = p.shown_ids.shape
    lasting_key = (LASTING,) if salt == 0 else (LASTING, salt)
    test_lasting = np.zeros(p.test_ids.shape)
    shown_lasting = np.zeros(p.shown_ids.shape)
    test_occasion = np.zeros((replications, n_users, n_pages + 1, p.test_ids.shape[1]))
    shown_occasion = np.zeros((replications, *p.shown_ids.shape))
    test_drift = np.zeros((n_users, n_pages + 1, p.test_ids.shape[1]))
    shown_drift = np.zeros(p.shown_ids.shape)
    for u, user in enumerate(p.user_ids.tolist()):
        for page in range(1, n_pages + 1):
            test_drift[u, page] = drift_walk(user, p.test_ids[u], page, salt=salt)
            for a in range(n_arms):
                shown_drift[u, a, page - 1] = drift_walk(
                    user, p.shown_ids[u, a, page - 1], page, salt=salt
                )
        test_lasting[u] = keyed_normals((*lasting_key, user), p.test_ids[u])
        shown_lasting[u] = keyed_normals((*lasting_key, user), p.shown_ids[u].ravel()).reshape(
            p.shown_ids.shape[1:]
        )
        for r in range(replications):
            replication = r + 1_000 * salt
            for page in range(n_pages + 1):
                seed = occasion_seed(replication, page=page)
                test_occasion[r, u, page] = keyed_normals(
                    (OCCASION, seed, user, page), p.test_ids[u]
                )
            for a in range(n_arms):
                for page in range(n_pages):
                    seed = occasion_seed(replication, page=page + 1, arm=a)
                    shown_occasion[r, u, a, page] = keyed_normals(
                        (OCCASION, seed, user, page + 1), p.shown_ids[u, a, page]
                    )
    return Draws(
        test_lasting, shown_lasting, test_occasion, shown_occasion, test_drift, shown_drift
    )


def round_ratings(scores: FloatArray) -> FloatArray:
    """:func:`~prefshift_simulator.embedded.model.round_rating`, vectorised."""
    return np.clip(np.floor(scores * 2.0 + 0.5) / 2.0, 0.5, 5.0)


@dataclass(frozen=True)
class Replay:
    """Simulated ratings: (R, U, T) baseline, (R, U, A, P, T) re-ratings, (R, U, A, P, S)
    ratings of the shown movies (NaN at padding)."""

    baseline: FloatArray
    test: FloatArray
    shown: FloatArray


def replay(prepared: Prepared, noise: Draws, parameters: Mapping[str, float]) -> Replay:
    """Replay every user's recorded pages under these dynamics and noise parameters."""
    p = prepared
    alpha_e = float(parameters["exposure_rate"])
    alpha_r = float(parameters["reinforcement_rate"])
    alpha_s = float(parameters["satiation_rate"])
    rho = float(parameters["satiation_decay"])
    bound = float(parameters["max_offset"])
    sigma_l = float(parameters["lasting_noise"])
    sigma_o = float(parameters["occasion_noise"])
    sigma_d = float(parameters.get("drift_noise", 0.0))
    spread = float(parameters.get("spread", 1.0))
    n_rep = noise.replications
    n_users, n_arms, n_pages, n_shown = p.shown_ids.shape
    test_static, shown_static = p.test_static, p.shown_static  # (U, T), (U, A, P, S)
    if spread != 1.0:
        level = p.level[:, None]
        test_static = level + spread * (test_static - level)
        shown_static = level[..., None, None] + spread * (shown_static - level[..., None, None])

    test_base = test_static + sigma_l * noise.test_lasting  # (U, T)
    occasion_scores = (
        test_base[None, :, None, :] + sigma_o * noise.test_occasion + sigma_d * noise.test_drift
    )
    baseline = round_ratings(occasion_scores[:, :, 0, :])
    shown_base = shown_static + sigma_l * noise.shown_lasting + sigma_d * noise.shown_drift

    offsets = np.zeros((n_rep, n_users, n_arms, N_GENRES))
    satiation = np.zeros((n_rep, n_users, n_arms, N_GENRES))
    test = np.full((n_rep, n_users, n_arms, n_pages, p.test_ids.shape[1]), np.nan)
    shown = np.full((n_rep, n_users, n_arms, n_pages, n_shown), np.nan)
    reference = p.reference[None, :, None, None]
    test_genres_t = np.swapaxes(p.test_genres, 1, 2)  # (U, G, T)
    for page in range(n_pages):
        mask = p.shown_mask[:, :, page]  # (U, A, S)
        weights = p.shown_genres[:, :, page] * mask[..., None]  # (U, A, S, G)
        per_genre = offsets - alpha_s * satiation  # (R, U, A, G)
        shift = np.matmul(weights, per_genre[..., None])[..., 0]  # (R, U, A, S)
        occasion = sigma_o * noise.shown_occasion[:, :, :, page]
        rated = round_ratings(shown_base[None, :, :, page] + shift + occasion)
        shown[:, :, :, page] = np.where(mask, rated, np.nan)
        # the page's ratings become experiences, in order (the clipped recursion of
        # dynamics.evolve; skipped when no partial sum can reach the bound)
        strength = alpha_e + alpha_r * (rated - reference)  # (R, U, A, S)
        reach = np.abs(offsets) + np.matmul(np.abs(strength)[..., None, :], weights)[..., 0, :]
        if np.all(reach <= bound):
            offsets = offsets + np.matmul(strength[..., None, :], weights)[..., 0, :]
        else:
            for k in range(n_shown):
                step = strength[..., k, None] * weights[None, :, :, k]
                offsets = np.clip(offsets + step, -bound, bound)
        count = mask.sum(axis=2)  # (U, A)
        rank = np.cumsum(mask, axis=2) - 1  # position among the page's real movies
        decay = np.where(mask, rho ** np.maximum(count[..., None] - 1 - rank, 0), 0.0)
        satiation = (rho**count)[None, ..., None] * satiation + np.matmul(
            decay[..., None, :], weights
        )[None, ..., 0, :]
        per_genre = offsets - alpha_s * satiation
        test_shift = np.matmul(per_genre, test_genres_t)  # (R, U, A, T)
        rerated = round_ratings(occasion_scores[:, :, None, page + 1, :] + test_shift)
        test[:, :, :, page] = np.where(p.test_mask[None, :, None, :], rerated, np.nan)
    baseline = np.where(p.test_mask[None], baseline, np.nan)
    return Replay(baseline=baseline, test=test, shown=shown)
