r"""How far a denoised image is from the unknown clean one, estimated without ground truth.

For a measurement :math:`y` with :math:`\mathrm{E}[y] = \theta` and the Poisson–Gaussian
variance :math:`v(\theta) = a\theta + b` (:class:`~infocus.noise.NoiseParams`), and a denoiser
:math:`f`, the mean squared error :math:`\frac1N\lVert f(y) - \theta\rVert^2` has the unbiased
(to first order in the Poisson part) estimate

.. math::
    \widehat{\mathrm{MSE}} = \frac1N\Big(\lVert f(y) - y\rVert^2 - \sum_i v(y_i)
        + 2\sum_i v(y_i)\,\frac{\partial f_i}{\partial y_i}(y)\Big),

Stein's unbiased risk estimate (SURE) extended to signal-dependent noise: exact for Gaussian
noise (Stein 1981), and for the Poisson part it is PG-URE's first-order form (Luisier, Blu &
Unser 2011, "Image denoising in mixed Poisson–Gaussian noise", IEEE TIP 20(3)), using
:math:`\mathrm{E}[y_i \, g(y)] \approx \theta_i \mathrm{E}[g] + v(\theta_i)\,\mathrm{E}[\partial_i g]`.

The weighted divergence :math:`\sum_i v_i \partial_i f_i` needs the denoiser again: it is
measured by Monte-Carlo (Ramani, Blu & Unser 2008, "Monte-Carlo SURE"): for a random
:math:`\pm1` probe :math:`n`, :math:`\sum_i v_i \partial_i f_i \approx \frac1\varepsilon
\sum_i v_i n_i \big(f_i(y + \varepsilon n) - f_i(y)\big)`. Without a way to run the denoiser
again, the divergence of a denoiser that averages a pixel with its neighbours lies in
:math:`[0, 1]` per pixel, which bounds the MSE; :func:`estimate_mse` then reports that interval.

A second capture :math:`y'` of the same scene, with independent noise, gives an estimate that
needs neither the denoiser nor its divergence (the Noise2Noise identity, Lehtinen et al. 2018):
:math:`\mathrm{E}\lVert f(y) - y'\rVert^2 = N\,\mathrm{MSE} + \sum_i v(\theta_i)`, so
:math:`\widehat{\mathrm{MSE}} = \frac1N\big(\lVert f(y) - y'\rVert^2 - \sum_i v(y'_i)\big)`.

The interval of an estimate comes from its spatial spread: the per-pixel terms are averaged
over blocks (large enough that the denoiser's dependence between blocks is small), and the
standard error of the block means gives a 95 % interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from infocus._errors import InfocusInputError
from infocus._validate import check_image
from infocus.noise import NoiseParams

__all__ = ["RiskEstimate", "estimate_mse", "estimated_psnr"]

#: Edge of the blocks whose means give the interval (pixels).
BLOCK = 16
#: Two-sided 95 % normal quantile.
Z95 = 1.96


@dataclass(frozen=True)
class RiskEstimate:
    """A ground-truth-free estimate of the MSE of a denoised image.

    Attributes
    ----------
    mse : float
        The estimate (camera units squared).
    low, high : float
        A 95 % interval (for ``method="bounds"``: the bounds themselves).
    method : str
        ``"sure"`` (the denoiser was run again for the divergence), ``"second capture"``
        (another capture of the scene was given) or ``"bounds"`` (neither: the divergence is
        only known to lie in [0, 1] per pixel).
    """

    mse: float
    low: float
    high: float
    method: str


def estimate_mse(
    noisy: np.ndarray,
    denoised: np.ndarray,
    noise: NoiseParams,
    *,
    denoiser: Callable[[np.ndarray], np.ndarray] | None = None,
    capture: np.ndarray | None = None,
    probes: int = 2,
    seed: int = 0,
) -> RiskEstimate:
    r"""Estimate :math:`\frac1N\lVert f(y) - \theta\rVert^2` without the clean image.

    Parameters
    ----------
    noisy, denoised : ndarray
        The measurement :math:`y` and the denoiser's output :math:`f(y)`, same shape, camera
        units (the output must not be rescaled or normalised).
    noise : NoiseParams
        The noise model of ``noisy`` (e.g. :func:`~infocus.noise.estimate_noise`).
    denoiser : callable, optional
        ``denoiser(noisy) -> denoised``, deterministic; lets the divergence be measured
        (``method="sure"``). Without it the estimate is an interval (``method="bounds"``).
    capture : ndarray, optional
        A second capture of the same scene with independent noise (not denoised):
        ``method="second capture"``, which needs no denoiser.
    probes : int
        Monte-Carlo probes for the divergence (each runs the denoiser once more).
    seed : int
        Seeds the probes.

    Returns
    -------
    RiskEstimate

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> from infocus.noise import NoiseParams
    >>> rng = np.random.default_rng(0)
    >>> clean = gaussian_filter(rng.uniform(50, 150, (128, 128)), 4)
    >>> noisy = clean + rng.normal(0, 5, clean.shape)
    >>> smooth = lambda x: gaussian_filter(x, 1.5)
    >>> estimate = estimate_mse(noisy, smooth(noisy), NoiseParams.gaussian(5), denoiser=smooth)
    >>> true = float(np.mean((smooth(noisy) - clean) ** 2))
    >>> abs(estimate.mse - true) / true < 0.1
    True
    """
    y = check_image(noisy, name="noisy image", dtype=np.float64)
    f = check_image(denoised, name="denoised image", dtype=np.float64)
    if y.shape != f.shape:
        raise InfocusInputError(
            f"The denoised image has shape {f.shape} but the noisy one {y.shape}; pass the "
            "denoiser's output for this very image."
        )
    if not isinstance(noise, NoiseParams):
        raise InfocusInputError(
            f"noise must be a NoiseParams (got {type(noise).__name__}); estimate it with "
            "infocus.noise.estimate_noise(noisy)."
        )
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise InfocusInputError(f"probes must be a positive integer, got {probes!r}.")
    if capture is not None:
        return _from_second_capture(f, check_image(capture, name="second capture",
                                                   dtype=np.float64), noise)
    variance = np.maximum(noise.gain * y + noise.variance_intercept, 0.0)
    base = (f - y) ** 2 - variance
    if denoiser is None:
        return RiskEstimate(mse=float(np.mean(base + variance)),
                            low=float(np.mean(base)), high=float(np.mean(base + 2 * variance)),
                            method="bounds")
    divergence = _weighted_divergence(y, f, variance, denoiser, probes, seed)
    terms = base + 2.0 * divergence
    mse = float(np.mean(terms))
    spread = _block_standard_error(terms)
    return RiskEstimate(mse=mse, low=mse - Z95 * spread, high=mse + Z95 * spread, method="sure")


def _from_second_capture(f: np.ndarray, capture: np.ndarray, noise: NoiseParams
                         ) -> RiskEstimate:
    if capture.shape != f.shape:
        raise InfocusInputError(
            f"The second capture has shape {capture.shape} but the denoised image {f.shape}; "
            "pass another capture of the same field of view."
        )
    variance = np.maximum(noise.gain * capture + noise.variance_intercept, 0.0)
    terms = (f - capture) ** 2 - variance
    mse = float(np.mean(terms))
    spread = _block_standard_error(terms)
    return RiskEstimate(mse=mse, low=mse - Z95 * spread, high=mse + Z95 * spread,
                        method="second capture")


def estimated_psnr(estimate: RiskEstimate, data_range: float) -> tuple[float, float, float]:
    """``(psnr, low, high)`` in dB for ``estimate`` and the peak ``data_range``; an MSE at or
    below zero (possible for an estimate) gives an infinite bound."""
    def to_db(value: float) -> float:
        return math.inf if value <= 0 else 10.0 * math.log10(data_range**2 / value)

    return to_db(estimate.mse), to_db(estimate.high), to_db(estimate.low)


def _weighted_divergence(y: np.ndarray, f: np.ndarray, variance: np.ndarray,
                         denoiser: Callable[[np.ndarray], np.ndarray], probes: int,
                         seed: int) -> np.ndarray:
    r"""Per-pixel :math:`v_i\,\partial f_i/\partial y_i`, averaged over ``probes`` ±1 probes.

    The step :math:`\varepsilon` is 1 % of the typical noise standard deviation: small against
    the noise (so the finite difference is local) yet far above float32 rounding of the
    denoiser's arithmetic.
    """
    rng = np.random.default_rng(seed)
    epsilon = 0.01 * math.sqrt(max(float(np.mean(variance)), 1e-12))
    total = np.zeros_like(y)
    for _ in range(probes):
        probe = rng.choice(np.array([-1.0, 1.0]), size=y.shape)
        shifted = np.asarray(denoiser(y + epsilon * probe), np.float64)
        if shifted.shape != y.shape:
            raise InfocusInputError(
                f"The denoiser returned shape {shifted.shape} for an image of shape {y.shape}; "
                "it must return an image of the same shape."
            )
        total += probe * (shifted - f) / epsilon
    return variance * total / probes


def _block_standard_error(terms: np.ndarray) -> float:
    """Standard error of the mean of ``terms`` from the means of ``BLOCK``-pixel YX blocks."""
    planes = terms.reshape((-1,) + terms.shape[-2:])
    height, width = (n // BLOCK * BLOCK for n in planes.shape[1:])
    if height == 0 or width == 0:
        return float(np.std(terms) / math.sqrt(terms.size))
    blocks = planes[:, :height, :width].reshape(
        planes.shape[0], height // BLOCK, BLOCK, width // BLOCK, BLOCK).mean(axis=(2, 4))
    if blocks.size < 2:
        return float(np.std(terms) / math.sqrt(terms.size))
    return float(np.std(blocks, ddof=1) / math.sqrt(blocks.size))
