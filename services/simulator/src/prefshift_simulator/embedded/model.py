"""The embedded persona: predicts a user's ratings from its history, and lets them move with
its experiences. Deterministic for a seed; no network, no key.

For a persona with history ratings ``r_j`` (movies ``j ∈ H``) the score of a movie ``m`` is::

    score(m) = b_u + k · (b_m + w_T · taste(m) + w_N · neighbours(m) + w_C · content(m))
               + shift(m) + σ_L · ε_L(user, m) + σ_O · ε_O(seed, user, m, occasion)
               + σ_D · D(user, m, occasion)

- ``b_m`` (quality): the movie's mean centred rating in the dataset, *without the persona's own
  user*, shrunk towards a prior from its TMDB votes:
  ``b_m = (Σ_v c_vm + λ · p_m) / (n_m + λ)`` with
  ``p_m = a + κ · (vote_average − 6.5) + c · (log(1 + vote_count) − 5)`` and ``λ = λ_P`` for
  a movie TMDB has votes of, else ``p_m = 0`` and ``λ = λ_I`` (defaults: a = c = 0, κ = 0.5,
  λ_P = λ_I = 10); a movie outside the dataset gets ``p_m``.
- ``b_u``: the persona's mean of ``r_j − b_j`` (its own level); residuals ``e_j = r_j − b_u − b_j``.
- ``taste(m)``: a ridge regression (λ = 3) of the residuals ``e_j`` on the history movies' TMDB
  genres (1/|genres| each), vote average, log vote count and release year — what this person
  likes beyond the crowd.
- ``neighbours(m) = Σ_j s⁺_mj e_j / (Σ_j s⁺_mj + 0.5)``: item–item collaborative filtering with
  the shrunk cosine similarity of centred ratings ``s⁺`` (positive part), without the user.
- ``content(m) = Σ_j o_mj e_j / (Σ_j o_mj + 0.3)``: the same over the cosine similarity ``o``
  of overview word vectors, for movies the dataset knows little or nothing of.
- ``shift(m)``: what the persona's experiences did to its taste,
  :mod:`prefshift_simulator.embedded.dynamics`.
- ``σ_L · ε_L + σ_O · ε_O + σ_D · D``: response noise, a lasting part per (persona, movie), one
  per rating occasion and a drift that walks from page to page
  (:mod:`prefshift_simulator.embedded.noise`).

- **anchoring** (``w``, 0 by default): a movie shown with a predicted rating ``s`` (a
  recommender's "we think you'll rate this 4 stars") is rated ``w · (s − score)`` closer to
  it, the pull optionally fading with the distance (:func:`anchor`) — the effect people show
  in Cosley et al. (CHI 2003) and Adomavicius et al. (ISR 2013). It acts only when something
  is shown: a set's ratings with nothing shown are the same whatever ``w``.

- ``k`` (spread, 1 by default): how far the persona's ratings spread around its level. The
  prediction from 40 ratings is shrunk (at ``k = 1`` its spread within a user is about half the
  real ratings'); a set calibrated to a recorded persona's rating behaviour may widen it.

Weights w_T = 0.8, w_N = 0.8, w_C = 0.4. The rating is ``score`` rounded to the nearest 0.5 and
clipped to 0.5–5.0. On the seed study's cohort (40 persona movies, 30 held-out test movies
each) this scores RMSE ≈ 0.94 against the real ratings (per-user mean: 1.03); see
``prefshift eval personas``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from prefshift_common.movies import TMDB_GENRE_NAMES
from prefshift_simulator.embedded.collaborative import CollaborativeStats
from prefshift_simulator.embedded.content import ContentEncoder
from prefshift_simulator.embedded.dynamics import DynamicsParams, PreferenceState, evolve
from prefshift_simulator.embedded.noise import response_noise
from prefshift_simulator.metadata import MovieFacts

FloatArray = npt.NDArray[np.float64]

GENRE_INDEX = {genre: i for i, genre in enumerate(TMDB_GENRE_NAMES)}
N_GENRES = len(TMDB_GENRE_NAMES)
VOTE_CENTRE = 6.5
VOTE_COUNT_CENTRE = 5.0  # log(1 + votes): about 150 votes


@dataclass(frozen=True, slots=True)
class ModelParams:
    """The constants of the module docstring."""

    vote_prior_slope: float = 0.5
    prior_intercept: float = 0.0
    prior_count_slope: float = 0.0
    item_shrink: float = 10.0
    prior_shrink: float = 10.0
    ridge_lambda: float = 3.0
    neighbour_damping: float = 0.5
    content_damping: float = 0.3
    taste_weight: float = 0.8
    neighbour_weight: float = 0.8
    content_weight: float = 0.4
    default_rating: float = 3.5
    lasting_noise: float = 0.0
    occasion_noise: float = 0.0
    drift_noise: float = 0.0
    spread: float = 1.0
    anchoring_weight: float = 0.0
    anchoring_range: float = 0.0
    dynamics: DynamicsParams = field(default_factory=DynamicsParams)


@dataclass(frozen=True, slots=True)
class Neighbour:
    """The history movie that moved a prediction most, and how."""

    title: str
    rating: float
    effect: float


@dataclass(frozen=True, slots=True)
class Reasons:
    """Why a movie got its score (each part in stars)."""

    level: float
    quality: float
    taste: float
    genre: str | None
    genre_effect: float
    neighbour: Neighbour | None
    neighbour_effect: float
    shift: float
    shift_genre: str | None
    satiation: float


@dataclass(frozen=True, slots=True)
class StaticScores:
    """The scores of some movies before experiences and noise, with their parts."""

    item_ids: list[int]
    scores: FloatArray  # b_u + b_m + taste + neighbours
    genres: FloatArray  # genre weights, one row per movie
    reference: float  # r̄, the persona's mean history rating
    level: float
    quality: FloatArray
    taste: FloatArray
    taste_parts: FloatArray
    contributions: FloatArray
    neighbour_names: list[tuple[str, float]]


@dataclass(frozen=True, slots=True)
class Prediction:
    tmdb_id: int
    score: float
    rating: float
    reasons: Reasons


def genre_matrix(movies: Sequence[MovieFacts | None]) -> FloatArray:
    """One row per movie: 1/|genres| on each of its TMDB genres."""
    weights = np.zeros((len(movies), N_GENRES))
    for row, movie in enumerate(movies):
        if movie is None:
            continue
        indices = [GENRE_INDEX[g] for g in movie.genres if g in GENRE_INDEX]
        if indices:
            weights[row, indices] = 1.0 / len(indices)
    return weights


def feature_matrix(movies: Sequence[MovieFacts | None]) -> FloatArray:
    """Genre weights, then vote average, log vote count and year (centred, scaled)."""
    extra = np.zeros((len(movies), 3))
    for row, movie in enumerate(movies):
        if movie is None:
            continue
        if movie.vote_average:
            extra[row, 0] = movie.vote_average - VOTE_CENTRE
        if movie.vote_count is not None:
            extra[row, 1] = math.log1p(movie.vote_count) - VOTE_COUNT_CENTRE
        if movie.year is not None:
            extra[row, 2] = (movie.year - 1995) / 20.0
    return np.hstack([genre_matrix(movies), extra])


def anchor(
    scores: FloatArray, shown: FloatArray, *, weight: float, distance_range: float
) -> FloatArray:
    """Scores pulled towards the predicted ratings shown beside their movies: ``score +
    w(g) · g`` with ``g = shown − score`` and ``w(g) = w`` (``distance_range`` 0: the pull grows
    linearly with the gap) or ``w · exp(−|g| / distance_range)`` (a pull that fades for a shown
    value far from the persona's own opinion). ``shown`` is NaN for a movie shown with no
    prediction; with ``weight`` 0 (every set unless calibrated) nothing moves."""
    if weight == 0:
        return scores
    gap = shown - scores
    pull = np.full_like(gap, weight)
    if distance_range > 0:
        pull = weight * np.exp(-np.abs(np.nan_to_num(gap)) / distance_range)
    moved: FloatArray = np.where(np.isnan(shown), scores, scores + pull * np.nan_to_num(gap))
    return moved


def round_rating(score: float) -> float:
    """The nearest 0.5 step in 0.5–5.0."""
    return float(min(5.0, max(0.5, np.floor(score * 2.0 + 0.5) / 2.0)))


class EmbeddedPersonaModel:
    """Scores movies for a persona; one instance serves every request (it holds no persona)."""

    def __init__(self, params: ModelParams, encoder: ContentEncoder | None = None) -> None:
        self.params = params
        self.encoder = encoder or ContentEncoder()

    def _prior(self, movie: MovieFacts | None) -> float | None:
        """``p_m`` from TMDB's votes, or None for a movie TMDB has no votes of."""
        if movie is None or not movie.vote_average or not movie.vote_count:
            return None
        p = self.params
        return (
            p.prior_intercept
            + p.vote_prior_slope * (movie.vote_average - VOTE_CENTRE)
            + p.prior_count_slope * (math.log1p(movie.vote_count) - VOTE_COUNT_CENTRE)
        )

    def _quality(
        self,
        tmdb_ids: list[int],
        facts: Mapping[int, MovieFacts],
        stats: CollaborativeStats | None,
        user_id: int | None,
    ) -> FloatArray:
        found = [self._prior(facts.get(t)) for t in tmdb_ids]
        priors = np.array([0.0 if v is None else v for v in found])
        if stats is None:
            return priors
        item = stats.item_statistics(stats.columns(tmdb_ids), exclude_user=user_id)
        # an informative prior earns more weight than the bare "no better than average"
        shrink = np.array(
            [self.params.item_shrink if v is None else self.params.prior_shrink for v in found]
        )
        quality: FloatArray = (item.centred_sum + shrink * priors) / (item.count + shrink)
        return quality

    def evolve(
        self,
        experiences: Sequence[tuple[int, float]],
        facts: Mapping[int, MovieFacts],
        reference_rating: float,
    ) -> PreferenceState:
        """The persona's genre offsets after its experiences (see ``dynamics``)."""
        return evolve(
            genre_matrix([facts.get(t) for t, _ in experiences]),
            np.array([rating for _, rating in experiences], dtype=np.float64),
            reference_rating=reference_rating,
            params=self.params.dynamics,
        )

    def static_scores(
        self,
        *,
        user_id: int | None,
        history: Sequence[tuple[int, float]],
        items: Sequence[int],
        facts: Mapping[int, MovieFacts],
        stats: CollaborativeStats | None,
    ) -> StaticScores:
        """The parts of the scores of ``items`` that experiences and noise do not touch:
        ``b_u + k · (b_m + taste(m) + neighbours(m))`` (CPU only; call it off the event
        loop)."""
        p = self.params
        rated = dict(history)  # a movie listed twice counts once, with its last rating
        history_ids = list(rated)
        history_ratings = np.array([rated[t] for t in history_ids], dtype=np.float64)
        item_ids = list(dict.fromkeys(items))
        n_items, n_history = len(item_ids), len(history_ids)
        item_movies = [facts.get(t) for t in item_ids]
        history_movies = [facts.get(t) for t in history_ids]

        quality = self._quality(history_ids + item_ids, facts, stats, user_id)
        history_quality, item_quality = quality[:n_history], quality[n_history:]
        if n_history:
            level = float(np.mean(history_ratings - history_quality))
            residuals = history_ratings - level - history_quality
            reference = float(history_ratings.mean())
        else:
            level, residuals, reference = p.default_rating, np.zeros(0), p.default_rating

        # taste: ridge regression of the residuals on movie features
        item_features = feature_matrix(item_movies)
        taste_parts = np.zeros_like(item_features)
        if n_history >= 2:
            history_features = feature_matrix(history_movies)
            centre = history_features.mean(axis=0)
            design = history_features - centre
            gram = design.T @ design + p.ridge_lambda * np.eye(design.shape[1])
            coefficients = np.linalg.solve(gram, design.T @ residuals)
            taste_parts = p.taste_weight * (item_features - centre) * coefficients
        taste = taste_parts.sum(axis=1)

        # neighbours: collaborative and content similarity to the history
        contributions = np.zeros((n_items, n_history))
        if n_history:
            if stats is not None:
                similarity = stats.similarity(
                    stats.columns(item_ids), stats.columns(history_ids), exclude_user=user_id
                )
                positive = np.clip(similarity, 0.0, None)
                denominator = positive.sum(axis=1, keepdims=True) + p.neighbour_damping
                contributions += p.neighbour_weight * positive * residuals / denominator
            rows = [i for i, movie in enumerate(item_movies) if movie is not None]
            cols = [j for j, movie in enumerate(history_movies) if movie is not None]
            if rows and cols:
                overview = np.zeros((n_items, n_history))
                overview[np.ix_(rows, cols)] = self.encoder.similarity(
                    [facts[item_ids[i]] for i in rows], [facts[history_ids[j]] for j in cols]
                )
                denominator = overview.sum(axis=1, keepdims=True) + p.content_damping
                contributions += p.content_weight * overview * residuals / denominator
        neighbours = contributions.sum(axis=1)
        return StaticScores(
            item_ids=item_ids,
            scores=level + p.spread * (item_quality + taste + neighbours),
            genres=item_features[:, :N_GENRES],
            reference=reference,
            level=level,
            quality=item_quality,
            taste=taste,
            taste_parts=taste_parts,
            contributions=contributions,
            neighbour_names=[
                (m.label if m is not None else f"TMDB {t}", rated[t])
                for t, m in zip(history_ids, history_movies, strict=True)
            ],
        )

    def predict(
        self,
        *,
        user_id: int | None,
        history: Sequence[tuple[int, float]],
        experiences: Sequence[tuple[int, float]],
        items: Sequence[int],
        facts: Mapping[int, MovieFacts],
        stats: CollaborativeStats | None,
        seed: int,
        occasion: int | None = None,
        shown: Mapping[int, float] | None = None,
    ) -> list[Prediction]:
        """Score and rate ``items`` for the persona (CPU only; call it off the event loop);
        ``shown``: the predicted rating shown beside some of them (see :func:`anchor`)."""
        p = self.params
        static = self.static_scores(
            user_id=user_id, history=history, items=items, facts=facts, stats=stats
        )
        state = self.evolve(experiences, facts, static.reference)
        per_genre_shift = static.genres * state.genre_shifts()
        shifts = per_genre_shift.sum(axis=1)
        noise = response_noise(
            user_id=user_id,
            movies=static.item_ids,
            seed=seed,
            occasion=occasion,
            lasting=p.lasting_noise,
            per_occasion=p.occasion_noise,
            drift=p.drift_noise,
        )
        scores = static.scores + shifts + noise
        if shown:
            scores = anchor(
                scores,
                np.array([shown.get(t, np.nan) for t in static.item_ids], dtype=np.float64),
                weight=p.anchoring_weight,
                distance_range=p.anchoring_range,
            )

        reasons = self._reasons(
            level=static.level,
            quality=static.quality,
            taste=static.taste,
            taste_parts=static.taste_parts[:, :N_GENRES] * (static.genres > 0),
            contributions=static.contributions,
            neighbour_names=static.neighbour_names,
            item_genres=static.genres,
            per_genre_shift=per_genre_shift,
            shifts=shifts,
            state=state,
        )
        return [
            Prediction(
                tmdb_id=tmdb_id,
                score=float(scores[i]),
                rating=round_rating(float(scores[i])),
                reasons=reasons[i],
            )
            for i, tmdb_id in enumerate(static.item_ids)
        ]

    @staticmethod
    def _reasons(
        *,
        level: float,
        quality: FloatArray,
        taste: FloatArray,
        taste_parts: FloatArray,
        contributions: FloatArray,
        neighbour_names: list[tuple[str, float]],
        item_genres: FloatArray,
        per_genre_shift: FloatArray,
        shifts: FloatArray,
        state: PreferenceState,
    ) -> list[Reasons]:
        n_items = len(quality)
        rows = np.arange(n_items)
        best_genre = np.argmax(np.abs(taste_parts), axis=1)
        totals = contributions.sum(axis=1)
        if contributions.shape[1]:
            aligned = contributions * np.sign(totals)[:, None]
            best_neighbour = np.argmax(aligned, axis=1)
            neighbour_ok = (np.abs(totals) > 1e-9) & (aligned[rows, best_neighbour] > 0)
        else:
            best_neighbour = np.zeros(n_items, dtype=np.int64)
            neighbour_ok = np.zeros(n_items, dtype=bool)
        best_shift = np.argmax(np.abs(per_genre_shift), axis=1)
        has_genres = item_genres.sum(axis=1) > 0
        satiation = (
            item_genres[rows, best_shift] * state.satiation_rate * state.satiation[best_shift]
        )
        result: list[Reasons] = []
        for i in range(n_items):
            neighbour = None
            if neighbour_ok[i]:
                title, rating = neighbour_names[int(best_neighbour[i])]
                neighbour = Neighbour(
                    title=title,
                    rating=rating,
                    effect=float(contributions[i, best_neighbour[i]]),
                )
            shifted = bool(has_genres[i] and abs(shifts[i]) > 1e-9)
            result.append(
                Reasons(
                    level=level,
                    quality=float(quality[i]),
                    taste=float(taste[i]),
                    genre=TMDB_GENRE_NAMES[int(best_genre[i])] if has_genres[i] else None,
                    genre_effect=float(taste_parts[i, best_genre[i]]) if has_genres[i] else 0.0,
                    neighbour=neighbour,
                    neighbour_effect=float(totals[i]),
                    shift=float(shifts[i]),
                    shift_genre=TMDB_GENRE_NAMES[int(best_shift[i])] if shifted else None,
                    satiation=float(satiation[i]) if shifted else 0.0,
                )
            )
        return result
