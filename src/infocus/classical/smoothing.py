r"""Linear and rank smoothing: Gaussian and median filters, tuned by J-invariant calibration.

Neither filter has a formula linking its size to the noise level, so by default the size is
chosen per channel by minimising the self-supervised J-invariant loss (Batson & Royer,
"Noise2Self", ICML 2019; see :mod:`infocus.classical._calibrate`) in the working domain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from infocus.classical._calibrate import calibrate
from infocus.classical._domain import DenoisePlan, check_odd_size, check_positive, run_denoiser
from infocus.classical._registry import DENOISERS, ParameterRange, tunable
from infocus.noise import NoiseParams

__all__ = ["GAUSSIAN_SIGMAS", "MEDIAN_SIZES", "gaussian", "median"]

#: Candidate Gaussian widths (pixels) for calibration: 0.5 to 4, geometrically spaced.
GAUSSIAN_SIGMAS: tuple[float, ...] = tuple(
    float(s) for s in np.round(np.geomspace(0.5, 4.0, 10), 3)
)
#: Candidate median window sizes for calibration.
MEDIAN_SIZES: tuple[int, ...] = (3, 5, 7)


def _gaussian_block(block: np.ndarray, sigma: float) -> np.ndarray:
    return ndi.gaussian_filter(block, sigma, mode="reflect", truncate=4.0)


def _median_block(block: np.ndarray, size: int) -> np.ndarray:
    return ndi.median_filter(block, size=size, mode="reflect")


@DENOISERS.register("gaussian")
@tunable(sigma=ParameterRange(0.3, 6.0))
def gaussian(
    image: np.ndarray,
    *,
    axes: str = "YX",
    noise: NoiseParams | None = None,
    sigma: float | None = None,
    vst: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    plan: DenoisePlan | None = None,
) -> np.ndarray:
    r"""Gaussian low-pass filter, :math:`\hat{y} = G_s * z`, with an isotropic width :math:`s`.

    Parameters
    ----------
    image : array_like
        Noisy image, any real dtype.
    axes : str
        Axes over ``STCZYX``; ``S``, ``T`` and ``C`` are filtered independently, ``ZYX`` blocks are
        filtered in 3-D (with the same width along ``Z``).
    noise : NoiseParams, optional
        Noise model (per channel estimate if omitted); decides the working domain.
    sigma : float, optional
        Filter standard deviation :math:`s` in pixels. By default the value in
        :data:`GAUSSIAN_SIGMAS` (0.5 to 4) with the lowest J-invariant self-supervised loss
        :math:`\lVert f_{\mathcal{J}}(z) - z\rVert^2` on the channel's middle block
        (Batson & Royer, ICML 2019).
    vst : bool, optional
        Force or forbid the generalized Anscombe transform (default: when the noise is
        signal-dependent).
    progress : callable, optional
        ``progress(done, total)`` after each block.
    plan : DenoisePlan, optional
        Noise domain and parameters of every channel chosen beforehand, e.g. from the whole
        stack when ``image`` is one block of it (:func:`~infocus.classical.plan_denoising`);
        ``noise`` and ``vst`` are then left out.

    Returns
    -------
    ndarray
        float32, same shape as ``image``.
    """
    sigma = check_positive("sigma", sigma)

    def choose(sample: np.ndarray, _noise_sigma: float) -> Mapping[str, Any]:
        if sigma is not None:
            return {"sigma": sigma}
        return {"sigma": calibrate(sample, _gaussian_block, GAUSSIAN_SIGMAS)}

    return run_denoiser(
        image,
        axes=axes,
        noise=noise,
        vst=vst,
        max_spatial_ndim=3,
        denoise_block=lambda b, _s, p: _gaussian_block(b, p["sigma"]),
        choose_params=choose,
        progress=progress,
        plan=plan,
    )


@DENOISERS.register("median")
@tunable(size=ParameterRange(1, 11, step=2))
def median(
    image: np.ndarray,
    *,
    axes: str = "YX",
    noise: NoiseParams | None = None,
    size: int | None = None,
    vst: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    plan: DenoisePlan | None = None,
) -> np.ndarray:
    r"""Median filter over a ``size``-wide square (2-D) or cube (3-D) window.

    The median is robust to outliers (hot pixels, cosmic rays) but, unlike the mean, biased on
    skewed noise; in the variance-stabilised domain the noise is nearly symmetric, which keeps
    that bias small.

    Parameters
    ----------
    image : array_like
        Noisy image, any real dtype.
    axes : str
        Axes over ``STCZYX``; ``S``, ``T`` and ``C`` are filtered independently, ``ZYX`` blocks
        with a cubic window.
    noise : NoiseParams, optional
        Noise model (per channel estimate if omitted); decides the working domain.
    size : int, optional
        Odd window width. By default the one of :data:`MEDIAN_SIZES` (3, 5, 7) with the lowest
        J-invariant self-supervised loss (Batson & Royer, ICML 2019).
    vst : bool, optional
        Force or forbid the generalized Anscombe transform (default: automatic).
    progress : callable, optional
        ``progress(done, total)`` after each block.
    plan : DenoisePlan, optional
        Noise domain and parameters of every channel chosen beforehand, e.g. from the whole
        stack when ``image`` is one block of it (:func:`~infocus.classical.plan_denoising`);
        ``noise`` and ``vst`` are then left out.

    Returns
    -------
    ndarray
        float32, same shape as ``image``.
    """
    size = check_odd_size("size", size)

    def choose(sample: np.ndarray, _noise_sigma: float) -> Mapping[str, Any]:
        if size is not None:
            return {"size": size}
        return {"size": calibrate(sample, _median_block, MEDIAN_SIZES)}

    return run_denoiser(
        image,
        axes=axes,
        noise=noise,
        vst=vst,
        max_spatial_ndim=3,
        denoise_block=lambda b, _s, p: _median_block(b, p["size"]),
        choose_params=choose,
        progress=progress,
        plan=plan,
    )
