r"""Where does a trained model's output differ from a classical denoiser's beyond chance?

A network can reproduce structures it saw in training; a classical denoiser with automatic
parameters (BM3D, wavelet shrinkage) cannot invent them. Let :math:`f` be the model's output,
:math:`g` the classical one and :math:`v(f) = a f + b` the noise variance
(:class:`~infocus.noise.NoiseParams`). The difference in units of the noise,
:math:`u_i = (f_i - g_i) / \sqrt{v(f_i)}`, is averaged over :math:`s \times s` windows and divided
by the robust spread (1.4826 × median absolute deviation) of those window means over the image,
or by :math:`1/s` where that is larger:

.. math:: z_s(i) = \frac{\bar u_s(i) - \operatorname{med}_j \bar u_s(j)}
                        {\max\left(1.4826 \, \operatorname{MAD}_j \bar u_s(j),\; 1/s\right)}.

:math:`1/s` is the standard deviation of the measurement's own noise averaged over the window:
a smaller difference is one the data cannot decide between, however alike the two outputs are
elsewhere, so it is never flagged (this is what "beyond the noise level" means here).

Null hypothesis: both outputs are estimates of the same image whose errors, in noise units, are
alike everywhere (what remains of the noise in each, and their usual small biases). Then
:math:`z_s` is about :math:`\mathcal{N}(0, 1)` at every window; the median and MAD are taken over
the whole plane, so a disagreement covering less than half of it cannot inflate them; the
floor :math:`1/s` only makes the test more conservative. A
structure the model added or removed that the classical denoiser did not makes :math:`|z_s|`
large there (negative: the model is brighter).

Multiple testing as in :mod:`infocus.qc.consistency`: Bonferroni over
:math:`m = \text{WINDOW\_FACTOR} \sum_s N / s^2` tests at the family-wise error ``alpha``; the
difference of two smoothed images is correlated over a few pixels, so its windows are less
independent than white noise's and the correction is conservative. Each disagreement is outlined
at the finest scale that detects it.

A flag says that the two outputs *disagree* beyond what the noise lets two sound estimates
differ by; it does not say which is right. A classical denoiser blurs fine structure a good
network keeps, so a flag is a region to look at (with the raw data and the consistency map),
not proof that the model invented something; no flag does not prove the model right where both
are wrong alike.

A classical reference costs far more than a network's prediction (BM3D on one 1024 x 1024
plane takes minutes on a CPU, a small U-Net seconds): :func:`classical_reference` runs it on an
evenly spaced subset of a stack's planes when the stack is large, and the planes it left out
(NaN in the reference) are not compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from infocus.axes import check_axes
from infocus.noise import NoiseParams
from infocus.qc.consistency import ALPHA, SCALES, scan_scales

__all__ = ["REFERENCE_MAX_PIXELS", "Disagreement", "check_disagreement", "classical_reference"]

#: :func:`classical_reference` denoises whole stacks up to this many pixels (four 1024 x 1024
#: planes), and an evenly spaced subset of planes of this size beyond.
REFERENCE_MAX_PIXELS = 4 * 1024 * 1024


@dataclass(frozen=True)
class Disagreement:
    """The test of :func:`check_disagreement`.

    Attributes
    ----------
    z : ndarray
        Per pixel, the window z-score of largest magnitude over the scales (float32, the images'
        shape): negative where the model's output is brighter than the classical one; NaN on
        planes that were not compared.
    flags : ndarray
        Boolean, the images' shape: centres of windows whose ``|z|`` exceeds ``threshold``.
    threshold : float
        The z-score a window must exceed to be flagged.
    tests : int
        The number of tests the threshold is corrected for.
    rms_difference : float
        Root mean square of the difference in noise units: how far apart the outputs are overall.
    """

    z: np.ndarray
    flags: np.ndarray
    threshold: float
    tests: int
    rms_difference: float

    @property
    def compared_fraction(self) -> float:
        """The fraction of pixels compared (1 unless the reference skipped planes)."""
        return float(np.isfinite(self.z).mean()) if self.z.size else 0.0

    @property
    def flagged_fraction(self) -> float:
        """The fraction of the compared pixels that are flagged."""
        compared = int(np.isfinite(self.z).sum())
        return float(self.flags.sum()) / compared if compared else 0.0


def check_disagreement(
    model_output: np.ndarray,
    classical_output: np.ndarray,
    variance: np.ndarray,
    *,
    scales: tuple[int, ...] = SCALES,
    alpha: float = ALPHA,
) -> Disagreement:
    """Map where ``model_output`` and ``classical_output`` differ beyond chance.

    Parameters
    ----------
    model_output, classical_output : ndarray
        Two denoisers' outputs for the same measurement, same shape ``(..., Y, X)`` and units:
        every leading index is a separate YX plane. A plane of ``classical_output`` that is
        NaN throughout is not compared (see :func:`classical_reference`).
    variance : ndarray
        The noise variance of each pixel (broadcastable to the images' shape, positive).
    scales : tuple of int
        Window edges in pixels; those larger than a plane are skipped.
    alpha : float
        Family-wise error: the chance that two outputs agreeing up to their usual error raise
        any flag.

    Returns
    -------
    Disagreement
        The multiple-testing correction counts the compared planes only.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = 100 + rng.normal(0, 1, (64, 64))
    >>> b = 100 + rng.normal(0, 1, (64, 64))
    >>> b[30:34, 30:34] += 40
    >>> result = check_disagreement(b, a, np.full((64, 64), 4.0))
    >>> bool(result.flags[32, 32]), bool(result.flags[5, 5])
    (True, False)
    """
    f = np.asarray(model_output, np.float64)
    g = np.asarray(classical_output, np.float64)
    shape = f.shape
    planes_f = f.reshape((-1,) + shape[-2:])
    planes_g = g.reshape((-1,) + shape[-2:])
    compared = ~np.isnan(planes_g).all(axis=(1, 2))
    variance = np.broadcast_to(variance, shape).reshape(planes_f.shape)[compared]
    units = (planes_f[compared] - planes_g[compared]) / np.sqrt(variance)
    z = np.full(planes_f.shape, np.nan, np.float32)
    flags = np.zeros(planes_f.shape, bool)
    threshold, tests = math.inf, 0
    if units.size:
        strongest, found, threshold, tests = scan_scales(
            units, scales, alpha, lambda scale, _: _standardised_windows(units, scale))
        z[compared] = -strongest
        flags[compared] = found
    return Disagreement(z=z.reshape(shape), flags=flags.reshape(shape), threshold=threshold,
                        tests=int(tests),
                        rms_difference=float(np.sqrt(np.mean(units**2))) if units.size else 0.0)


def classical_reference(
    noisy: np.ndarray,
    method: str,
    *,
    axes: str,
    noise: NoiseParams | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """A classical denoiser's output for ``noisy`` (automatic parameters), on a sample of
    planes when the stack is large.

    Parameters
    ----------
    noisy : ndarray
        The raw measurement.
    method : str
        A classical denoiser (:func:`infocus.list_denoisers`), e.g. ``"wavelet"``.
    axes : str
        Axes of ``noisy`` over ``STCZYX``.
    noise : NoiseParams, optional
        The noise model; the denoiser estimates it when None.
    max_pixels : int, optional
        Up to this many pixels (default :data:`REFERENCE_MAX_PIXELS`) the whole image is
        denoised. Beyond, the (C)YX planes at the centres of ``k`` equal parts of the other
        axes (S, T and Z flattened in the image's order) are denoised, each on its own, with
        ``k`` the largest odd number whose planes fit (at least one): the middle plane is
        always among them.

    Returns
    -------
    ndarray
        float32, the shape of ``noisy``; NaN on the planes that were not denoised (which
        :func:`check_disagreement` then leaves out).

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.random.default_rng(0).poisson(20.0, (9, 32, 32)).astype(np.float32)
    >>> reference = classical_reference(stack, "gaussian", axes="ZYX", max_pixels=3 * 32 * 32)
    >>> [int(i) for i in np.flatnonzero(np.isfinite(reference).all(axis=(1, 2)))]
    [1, 4, 7]
    """
    from infocus._api import denoise

    axes = check_axes(axes, np.shape(noisy))
    options = {} if noise is None else {"noise": noise}
    if max_pixels is None:
        max_pixels = REFERENCE_MAX_PIXELS
    if np.size(noisy) <= max_pixels:
        return denoise(noisy, method, axes=axes, **options)
    # Stack the planes along S, channels and rows and columns last, in that order.
    plane_axes = "".join(a for a in "CYX" if a in axes)
    stacked = [a for a in axes if a not in plane_axes]
    moved = np.transpose(noisy, [axes.index(a) for a in stacked + list(plane_axes)])
    planes = moved.reshape((-1,) + moved.shape[len(stacked):])
    per_plane = int(np.prod(planes.shape[1:]))
    keep = max(1, min(len(planes), max_pixels // per_plane))
    keep -= 1 - keep % 2  # odd: the middle segment's centre is the middle plane
    chosen = (2 * np.arange(keep) + 1) * len(planes) // (2 * keep)
    sampled = denoise(planes[chosen], method, axes="S" + plane_axes, **options)
    reference = np.full(planes.shape, np.nan, np.float32)
    reference[chosen] = sampled
    restored = reference.reshape(moved.shape)
    return np.transpose(restored, np.argsort([axes.index(a) for a in stacked + list(plane_axes)]))


def _standardised_windows(planes: np.ndarray, scale: int) -> np.ndarray:
    """Window means of ``planes`` (P, Y, X) centred and scaled by their median and MAD over
    each plane; centres whose window leaves the plane score 0."""
    means = ndimage.uniform_filter(planes, size=(1, scale, scale), mode="reflect")
    half = scale // 2
    inside = np.zeros(planes.shape[1:], bool)
    inside[half:planes.shape[1] - (scale - 1 - half),
           half:planes.shape[2] - (scale - 1 - half)] = True
    z = np.zeros_like(means)
    for index, plane in enumerate(means):
        values = plane[inside]
        centre = float(np.median(values))
        spread = 1.4826 * float(np.median(np.abs(values - centre)))
        # A difference below the noise of the measurement's own window mean (1/s in noise
        # units) is one the data cannot decide: never flag it, however alike the outputs are
        # elsewhere.
        z[index][inside] = (values - centre) / max(spread, 1.0 / scale)
    return z
