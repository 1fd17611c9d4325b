"""Response noise of the embedded persona, as a person re-rating a movie shows it.

Three independent parts per rated movie ``m`` of a persona ``u`` on occasion ``p``::

    noise(m) = σ_L · ε_L(u, m) + σ_O · ε_O(seed, u, m, p) + σ_D · Σ_{k=1..p} η(u, m, k)

- ``ε_L`` is **lasting**: drawn from ``(user, movie)`` alone, so the persona holds the same
  idiosyncratic opinion of a movie on every page and in every arm;
- ``ε_O`` is **per occasion**: drawn from the request's seed, the user, the movie and the
  rating occasion (the protocol's page), so re-rating a movie on another page can differ,
  while the same request with the same seed always gets the same answer (replay is exact);
- the **drift** ``Σ η`` is a random walk over occasions (0 at the baseline, one standard normal
  step per page after it), drawn from ``(user, movie, k)`` so that it is one path through the
  pages, shared by every arm: a re-rating wanders further from the first rating the more
  pages lie between them, without a direction — as the seed study's GPT-5 personas' re-ratings
  do (mean |Δ| from the baseline 0.16 after one page, 0.21 after four, mean shift ≈ 0).

Draws are a counter-based hash (SplitMix64's finaliser over the key), turned into a normal by
the inverse CDF: vectorised, no generator state, identical on every platform.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

FloatArray = npt.NDArray[np.float64]
UInt64Array = npt.NDArray[np.uint64]

_MASK = 0xFFFF_FFFF_FFFF_FFFF
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
#: Domain tags, so that the lasting and per-occasion draws never share a key.
LASTING = 0x4C415354
OCCASION = 0x4F434341
DRIFT = 0x44524654
#: The occasion of a request that names none.
NO_OCCASION = 0xFFFF_FFFF


def _mix(state: UInt64Array) -> UInt64Array:
    """SplitMix64's output function: a bijection of 64-bit words with full avalanche."""
    z = state + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MUL1
    z = (z ^ (z >> np.uint64(27))) * _MUL2
    return z ^ (z >> np.uint64(31))


def _mix_int(state: int) -> int:
    """:func:`_mix` of one word, in Python integers (the keys of a request)."""
    z = (state + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def keyed_normals(keys: tuple[int, ...], movies: npt.ArrayLike) -> FloatArray:
    """One standard normal per movie, a pure function of ``keys`` and the movie's id."""
    state = 0
    for key in keys:
        state = _mix_int(state ^ (key & _MASK))
    with np.errstate(over="ignore"):
        words = _mix(np.uint64(state) ^ np.asarray(movies, dtype=np.uint64))
    uniforms = ((words >> np.uint64(11)).astype(np.float64) + 0.5) / float(2**53)
    return np.asarray(ndtri(uniforms), dtype=np.float64)


def response_noise(
    *,
    user_id: int | None,
    movies: npt.ArrayLike,
    seed: int,
    occasion: int | None,
    lasting: float,
    per_occasion: float,
    drift: float = 0.0,
) -> FloatArray:
    """``σ_L · ε_L + σ_O · ε_O + σ_D · Σ η`` for each movie (zeros when every σ is 0)."""
    ids = np.asarray(movies, dtype=np.int64)
    noise = np.zeros(len(ids))
    user = user_id or 0
    if lasting > 0:
        noise += lasting * keyed_normals((LASTING, user), ids)
    if per_occasion > 0:
        when = NO_OCCASION if occasion is None else occasion
        noise += per_occasion * keyed_normals((OCCASION, seed, user, when), ids)
    if drift > 0 and occasion:
        noise += drift * drift_walk(user, ids, occasion)
    return noise


def drift_walk(user: int, movies: npt.ArrayLike, occasion: int, *, salt: int = 0) -> FloatArray:
    """``Σ_{k=1..occasion} η(user, movie, k)``: the drift's position on an occasion (``salt``
    other than 0: an independent path, for synthetic studies)."""
    ids = np.asarray(movies, dtype=np.int64)
    key = (DRIFT, user) if salt == 0 else (DRIFT, salt, user)
    walk = np.zeros(len(ids))
    for step in range(1, occasion + 1):
        walk += keyed_normals((*key, step), ids)
    return walk
