"""The moments a calibration matches, per user, so that users can be resampled.

Per arm and page (the re-rating after page p against the baseline, over the test movies both
have): the mean shift, the mean |Δ|, the share of ratings changed, Kendall's τ_b, and the
appraisal (mean rating of the page's recommendations). Of the baseline: its mean, its spread
(standard deviation over the user's test movies) and its RMSE against the real ratings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

PAGE_MOMENTS = ("shift", "abs_change", "changed", "kendall_tau", "appraisal")
BASELINE_MOMENTS = ("baseline_mean", "baseline_sd", "baseline_rmse")


@dataclass(frozen=True)
class MomentNames:
    """The moments' labels, in the order of a moment vector."""

    arms: list[str]
    pages: int

    @property
    def labels(self) -> list[tuple[str, int, str]]:
        """``(arm, page, moment)``; baseline moments have arm ``baseline`` and page 0."""
        per_page = [
            (arm, page + 1, name)
            for arm in self.arms
            for page in range(self.pages)
            for name in PAGE_MOMENTS
        ]
        return [*(("baseline", 0, name) for name in BASELINE_MOMENTS), *per_page]


def nanmean(values: FloatArray, axis: int) -> FloatArray:
    count = np.sum(~np.isnan(values), axis=axis)
    total = np.nansum(values, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _signs(values: FloatArray) -> npt.NDArray[np.int8]:
    """sign(x_i − x_j) of every pair of the last axis, 0 where either is NaN (ratings on the
    0.5 grid, so that half-stars count exactly in 8-bit integers)."""
    valid = ~np.isnan(values)
    steps = np.where(valid, np.rint(np.nan_to_num(values) * 2.0), 0.0).astype(np.int8)
    signs: npt.NDArray[np.int8] = np.sign(steps[..., :, None] - steps[..., None, :])
    signs *= valid[..., :, None] & valid[..., None, :]
    return signs


def _pairs_counted(signs: npt.NDArray[np.int8], valid: npt.NDArray[np.bool_]) -> FloatArray:
    """How many pairs with a non-zero sign have both ends valid: ``vᵀ |S| v``."""
    v = valid.astype(np.float32)
    untied = np.abs(signs).astype(np.float32)
    return np.asarray(np.sum(np.matmul(untied, v[..., None])[..., 0] * v, axis=-1), np.float64)


def kendall_tau_b(first: FloatArray, second: FloatArray) -> FloatArray:
    """τ_b of the last axis of two arrays (pairs with a NaN left out; NaN when undefined).
    ``first`` may be smaller and broadcast (the baseline against every page)."""
    sx, sy = _signs(first), _signs(second)
    numerator = np.sum(sx * sy, axis=(-1, -2), dtype=np.int32)
    untied_x = _pairs_counted(sx, ~np.isnan(second))
    untied_y = _pairs_counted(sy, ~np.isnan(first))
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = numerator / np.sqrt(untied_x * untied_y)
    return np.where((untied_x > 0) & (untied_y > 0), tau, np.nan)


def per_user_moments(
    baseline: FloatArray, test: FloatArray, shown: FloatArray, real: FloatArray
) -> FloatArray:
    """Moments of each user, ``(..., U, K)``: ``baseline`` ``(..., U, T)``, ``test``
    ``(..., U, A, P, T)``, ``shown`` ``(..., U, A, P, S)``, ``real`` ``(U, T)``."""
    first = np.broadcast_to(baseline[..., None, None, :], test.shape)
    both = ~(np.isnan(first) | np.isnan(test))
    delta = np.where(both, test - first, np.nan)
    shift = nanmean(delta, axis=-1)
    abs_change = nanmean(np.abs(delta), axis=-1)
    changed = nanmean(np.where(both, (delta != 0).astype(np.float64), np.nan), axis=-1)
    tau = kendall_tau_b(baseline[..., None, None, :], test)
    appraisal = nanmean(shown, axis=-1)
    pages = np.stack([shift, abs_change, changed, tau, appraisal], axis=-1)  # (..., U, A, P, 5)
    per_page = pages.reshape(*pages.shape[:-3], -1)
    error = np.where(np.isnan(real), np.nan, baseline - real)
    centred = baseline - nanmean(baseline, axis=-1)[..., None]
    sd = np.sqrt(nanmean(centred**2, axis=-1))
    base = np.stack([nanmean(baseline, axis=-1), sd, np.sqrt(nanmean(error**2, axis=-1))], axis=-1)
    return np.concatenate([base, per_page], axis=-1)


def aggregate(per_user: FloatArray, weights: FloatArray | None = None) -> FloatArray:
    """Mean over users (the second-to-last axis) of each moment, NaN users left out;
    ``weights``: how often each user counts (a bootstrap resample)."""
    w = np.ones(per_user.shape[-2]) if weights is None else weights
    present = ~np.isnan(per_user)
    total = np.sum(np.where(present, per_user, 0.0) * w[:, None], axis=-2)
    count = np.sum(present * w[:, None], axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1e-12), np.nan)
