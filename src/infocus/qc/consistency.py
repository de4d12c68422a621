r"""Is the denoised image consistent with the measurement? A residual test at several scales.

If a denoiser's output :math:`f` were the clean image :math:`\theta`, the residual
:math:`r = y - f` would be pure noise: zero mean everywhere, variance
:math:`v(\theta) = a\theta + b` (:class:`~infocus.noise.NoiseParams`). The standardised
residual :math:`u_i = r_i / \sqrt{v(f_i)}` averaged over an :math:`s \times s` window then has
standard deviation :math:`1/s`, so

.. math:: z_s(i) = s \cdot \frac{1}{s^2} \sum_{j \in W_s(i)} u_j \;\sim\; \mathcal{N}(0, 1)

under that hypothesis (white noise). A structure the output adds (a spot that is not in the
data) makes :math:`z_s` strongly negative over it; a real structure the output removes, or an
object whose brightness it changed, makes it depart from zero there too. Windows of several
edges (:data:`SCALES`) catch defects of several sizes: a small window sees a small spot, a large
one a faint but extended change.

A real denoiser's output keeps a little of the noise, :math:`f = \theta + K n`, so its residual
:math:`(I - K) n` has *less* power at low spatial frequencies than white noise and the test is
conservative. Spatially correlated camera noise would make it liberal; the z-scores of each
scale are therefore divided by their robust spread (1.4826 × median absolute deviation) where
that exceeds one, which defects covering less than half of the image cannot inflate.

Multiple testing: at scale :math:`s` an image of :math:`N` pixels holds about :math:`N/s^2`
independent windows. The family-wise error over all scales is held at ``alpha`` by Bonferroni's
correction over :math:`m = \sum_s N/s^2` tests, times :data:`WINDOW_FACTOR` for the extra
maxima that sliding (overlapping) windows contain (its value was measured on pure noise:
with the oracle output :math:`f = \theta`, fewer than ``alpha`` of images raise any flag). A
window whose :math:`|z_s|` exceeds :math:`\Phi^{-1}(1 - \alpha / 2m)` flags its centre pixel,
unless the window already contains a pixel flagged at a finer scale: each defect is outlined at
the finest scale that detects it.

The idea of testing whether a restoration's residual is noise under the known noise model is old
(the discrepancy principle, Morozov 1966); the windowed form at several scales follows the
multiscale residual tests of Frick, Marnitz & Munk (2012), "Statistical multiresolution
Dantzig estimation in imaging", Electron. J. Statist. 6.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.stats import norm

__all__ = ["ALPHA", "SCALES", "Consistency", "check_consistency"]

#: Window edges (pixels) of the residual test.
SCALES = (3, 7, 15, 31)
#: Family-wise error of the whole map: the chance that a consistent output raises any flag.
ALPHA = 0.05
#: Effective tests per independent window, for sliding windows (see the module notes).
WINDOW_FACTOR = 12.0


@dataclass(frozen=True)
class Consistency:
    """The residual test of :func:`check_consistency`.

    Attributes
    ----------
    z : ndarray
        Per pixel, the window z-score of largest magnitude over the scales (float32, the image's
        shape): negative where the output is brighter than the measurement supports, positive
        where it is darker.
    flags : ndarray
        Boolean, the image's shape: centres of windows whose z-score exceeds ``threshold``.
    threshold : float
        The z-score a window must exceed to be flagged.
    tests : int
        The number of tests the threshold is corrected for.
    variance_ratio : float
        Mean of :math:`r^2 / v(f)`: about 1 when the residual is the noise; well below 1 when
        the output kept much of the noise, above 1 when it also removed signal.
    residual_correlation : float
        Correlation of neighbouring residuals (rows and columns averaged): about 0 for white
        noise, negative for a smoothing denoiser, positive when the residual holds structure.
    """

    z: np.ndarray
    flags: np.ndarray
    threshold: float
    tests: int
    variance_ratio: float
    residual_correlation: float

    @property
    def flagged_fraction(self) -> float:
        return float(self.flags.mean()) if self.flags.size else 0.0


def check_consistency(
    noisy: np.ndarray,
    denoised: np.ndarray,
    variance: np.ndarray,
    third_cumulant: np.ndarray | None = None,
    *,
    scales: tuple[int, ...] = SCALES,
    alpha: float = ALPHA,
) -> Consistency:
    r"""Test the residual ``noisy − denoised`` against the noise at several window sizes.

    Parameters
    ----------
    noisy, denoised : ndarray
        The measurement and the output, same shape ``(..., Y, X)``: every leading index is a
        separate YX plane.
    variance : ndarray
        The noise variance of each pixel, :math:`a f + b` (same shape, positive).
    third_cumulant : ndarray, optional
        The noise's third cumulant per pixel (:math:`a^2 (f - \mu)` for Poisson–Gaussian
        data); corrects the thresholds for the skewness of few-photon counts. None: Gaussian.
    scales : tuple of int
        Window edges in pixels; those larger than a plane are skipped.
    alpha : float
        Family-wise error: the chance that an output consistent with the data is flagged
        anywhere.

    Returns
    -------
    Consistency
    """
    noisy = np.asarray(noisy, np.float64)
    denoised = np.asarray(denoised, np.float64)
    residual = noisy - denoised
    standardised = residual / np.sqrt(variance)
    planes = standardised.reshape((-1,) + standardised.shape[-2:])
    skew = None if third_cumulant is None else (
        np.asarray(third_cumulant, np.float64) / variance**1.5).reshape(planes.shape)

    def score(scale: int, threshold: float) -> np.ndarray:
        z = _window_z(planes, scale)
        if skew is None:
            return z
        # Only the upper tail of skewed counts is heavier than the Gaussian one.
        return np.where(z > 0, np.maximum(z - _skew_shift(skew, scale, threshold), 0.0), z)

    strongest, flags, threshold, tests = scan_scales(planes, scales, alpha, score)
    return Consistency(
        z=strongest.reshape(standardised.shape).astype(np.float32),
        flags=flags.reshape(standardised.shape),
        threshold=threshold,
        tests=int(tests),
        variance_ratio=float(np.mean(standardised**2)),
        residual_correlation=_neighbour_correlation(planes),
    )


def scan_scales(
    planes: np.ndarray, scales: tuple[int, ...], alpha: float,
    score: Callable[[int, float], np.ndarray],
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Flag window scores ``score(scale, threshold)`` of ``planes`` (P, Y, X) beyond the
    Bonferroni threshold for about ``WINDOW_FACTOR · Σ_s P·Y·X / s²`` tests at family-wise
    error ``alpha``; returns the strongest score per pixel, the flags, the threshold and the
    number of tests."""
    usable = [s for s in scales if s <= min(planes.shape[1:])]
    tests = max(1, round(WINDOW_FACTOR * sum(planes.size / s**2 for s in usable)))
    threshold = float(norm.isf(alpha / (2 * tests)))
    strongest = np.zeros(planes.shape)
    flags = np.zeros(planes.shape, bool)
    for scale in usable:
        z = score(scale, threshold)
        exceeds = np.abs(z) > threshold
        if flags.any():
            # Show each defect at the finest scale that detects it: a coarser window that
            # contains a finer flag adds no new evidence, only a blurred outline.
            exceeds &= ~ndimage.maximum_filter(flags, size=(1, scale, scale))
        flags |= exceeds
        stronger = np.abs(z) > np.abs(strongest)
        strongest[stronger] = z[stronger]
    return strongest, flags, threshold, int(tests)


def _window_z(planes: np.ndarray, scale: int) -> np.ndarray:
    """z-scores of the ``scale``-pixel window means of ``planes`` (P, Y, X), each window's
    score at its centre; centres whose window leaves the plane score 0 (a reflected border
    would count its pixels twice)."""
    z = ndimage.uniform_filter(planes, size=(1, scale, scale), mode="reflect") * scale
    half = scale // 2
    inside = np.zeros(planes.shape[1:], bool)
    inside[half:planes.shape[1] - (scale - 1 - half), half:planes.shape[2] - (scale - 1 - half)] = True
    z[:, ~inside] = 0.0
    spread = _robust_spread(z[:, inside])
    return z / max(1.0, spread)


def _skew_shift(skew: np.ndarray, scale: int, threshold: float) -> np.ndarray:
    r"""Cornish–Fisher shift of a window's z-score at the threshold :math:`t`:
    :math:`\gamma_w (t^2 - 1) / 6`, where the window mean of :math:`n = s^2` standardised
    values of skewness :math:`\gamma_j` has skewness :math:`\gamma_w = \bar\gamma / s`.
    Subtracting it makes the upper tail of few-photon windows (Poisson counts are skewed to
    the right) as rare as the Gaussian one."""
    window_skew = ndimage.uniform_filter(skew, size=(1, scale, scale), mode="reflect") / scale
    return window_skew * (threshold**2 - 1) / 6


def _robust_spread(values: np.ndarray) -> float:
    if values.size < 2:
        return 1.0
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _neighbour_correlation(planes: np.ndarray) -> float:
    centred = planes - planes.mean(axis=(1, 2), keepdims=True)
    scale = float(np.mean(centred**2))
    if scale == 0 or not math.isfinite(scale):
        return 0.0
    rows = float(np.mean(centred[:, 1:, :] * centred[:, :-1, :]))
    columns = float(np.mean(centred[:, :, 1:] * centred[:, :, :-1]))
    return (rows + columns) / (2 * scale)
