"""How the embedded persona's preferences move with its experiences.

Three effects from the psychology of preference dynamics, as modelled by Curmei, Haupt,
Hadfield-Menell and Recht ("Towards Psychologically-Grounded Dynamic Preference Models",
RecSys 2022), applied to per-genre preference offsets.

Each experience ``t = 1..T`` (in the order the persona had them) is a movie with genre weights
``w_t`` (1/|genres| on each of its TMDB genres, 0 elsewhere) and the rating ``r_t`` the persona
gave it. ``r̄`` is the persona's mean rating of its history (its own scale). Starting from
``δ = 0`` (offsets) and ``s = 0`` (satiation), for every experience::

    s ← ρ · s + w_t                                              (satiation stock)
    δ ← clip(δ + α_E · w_t + α_R · (r_t − r̄) · w_t, −Δmax, Δmax)  (exposure + reinforcement)

and a movie with genre weights ``w_m`` is then rated ``w_m · (δ − α_S · s)`` higher than the
persona with no experiences would rate it:

- **mere exposure** (α_E, ``PREFSHIFT_SIMULATOR_EXPOSURE_RATE``, default 0.02): every movie
  seen makes its genres a little more liked, whatever the persona thought of it;
- **reinforcement** (α_R, ``PREFSHIFT_SIMULATOR_REINFORCEMENT_RATE``, default 0.04): a movie
  rated above the persona's own mean pulls its genres up, one rated below pushes them down —
  the operant-conditioning loop behind filter bubbles;
- **satiation / hedonic adaptation** (α_S, ``PREFSHIFT_SIMULATOR_SATIATION_RATE``, default 0.05;
  ρ, ``PREFSHIFT_SIMULATOR_SATIATION_DECAY``, default 0.9 per experience): a genre seen many
  times in a row is enjoyed less for a while; the effect fades geometrically as other genres
  are seen;
- ``Δmax`` (``PREFSHIFT_SIMULATOR_MAX_OFFSET``, default 1.5 stars) bounds the lasting offsets.

Example: 20 single-genre Documentary experiences rated 5.0 by a persona whose mean is 3.5,
with α_R = α_S = 0 and α_E = 0.05, give δ_Documentary = 20 · 0.05 = 1.0, so an unseen
Documentary is rated one star higher and a Documentary–Drama half a star higher; a persona
with no experiences does not move.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class DynamicsParams:
    """α_E, α_R, α_S, ρ and Δmax of the module docstring."""

    exposure_rate: float = 0.02
    reinforcement_rate: float = 0.04
    satiation_rate: float = 0.05
    satiation_decay: float = 0.9
    max_offset: float = 1.5


@dataclass(frozen=True, slots=True)
class PreferenceState:
    """Per-genre offsets after a sequence of experiences, with the parts that explain them."""

    offsets: FloatArray  # δ, lasting (exposure + reinforcement, clipped)
    satiation: FloatArray  # s, the satiation stock
    exposure: FloatArray  # Σ α_E · w_t (before clipping), for explanations
    reinforcement: FloatArray  # Σ α_R · (r_t − r̄) · w_t (before clipping)
    satiation_rate: float

    def shift(self, genre_weights: FloatArray) -> float:
        """How much higher a movie with these genre weights is rated than with no experiences."""
        return float(genre_weights @ (self.offsets - self.satiation_rate * self.satiation))

    def genre_shifts(self) -> FloatArray:
        """``δ − α_S · s`` per genre."""
        return self.offsets - self.satiation_rate * self.satiation


def evolve(
    weights: FloatArray,
    ratings: FloatArray,
    *,
    reference_rating: float,
    params: DynamicsParams,
) -> PreferenceState:
    """Apply the update rules of the module docstring to experiences given as a ``T × G``
    matrix of genre weights and their ``T`` ratings, in order."""
    n_experiences, n_genres = weights.shape
    if n_experiences == 0:
        zeros = np.zeros(n_genres)
        return PreferenceState(zeros, zeros, zeros, zeros, params.satiation_rate)
    exposure_steps = params.exposure_rate * weights
    reinforcement_steps = (params.reinforcement_rate * (ratings - reference_rating))[
        :, None
    ] * weights
    path = np.cumsum(exposure_steps + reinforcement_steps, axis=0)
    if np.all(np.abs(path) <= params.max_offset):
        offsets = path[-1]  # the bound never binds: the clipped recursion is the plain sum
    else:
        offsets = np.zeros(n_genres)
        for step in exposure_steps + reinforcement_steps:
            offsets = np.clip(offsets + step, -params.max_offset, params.max_offset)
    # s_T = Σ_t ρ^(T−t) · w_t
    decay = params.satiation_decay ** np.arange(n_experiences - 1, -1, -1, dtype=np.float64)
    return PreferenceState(
        offsets=np.asarray(offsets, dtype=np.float64),
        satiation=decay @ weights,
        exposure=exposure_steps.sum(axis=0),
        reinforcement=reinforcement_steps.sum(axis=0),
        satiation_rate=params.satiation_rate,
    )
