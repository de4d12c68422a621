r"""Wavelet shrinkage with BayesShrink thresholds and cycle spinning."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pywt
from skimage.restoration import denoise_wavelet

from infocus._errors import InfocusInputError
from infocus.classical._domain import DenoisePlan, check_positive, run_denoiser
from infocus.classical._registry import DENOISERS, ParameterRange, tunable
from infocus.noise import NoiseParams

__all__ = ["wavelet"]


def _shrink(
    block: np.ndarray, sigma: float, name: str, mode: str, levels: int | None, method: str
) -> np.ndarray:
    deepest = pywt.dwtn_max_level(block.shape, name)
    level = max(deepest, 1) if levels is None else min(levels, max(deepest, 1))
    with warnings.catch_warnings():
        if deepest < 1:  # tiny block: one level is still useful despite boundary effects
            warnings.filterwarnings("ignore", message="Level value of", category=UserWarning)
        return denoise_wavelet(
            block,
            sigma=sigma,
            wavelet=name,
            mode=mode,
            wavelet_levels=level,
            method=method,
            rescale_sigma=True,
            channel_axis=None,
        )


def _cycle_spin(
    block: np.ndarray, denoise: Callable[[np.ndarray], np.ndarray], max_shift: int
) -> np.ndarray:
    """Average of ``denoise`` over shifts ``0..max_shift`` of the wavelet grid along every axis.

    Shifts are taken on a mirror-padded copy (a window of the padded block that covers the
    whole block), so no wrap-around seam is created inside the image as ``np.roll`` would.
    """
    padded = np.pad(block, max_shift, mode="symmetric")
    total = np.zeros(block.shape, dtype=np.float64)
    shifts = list(itertools.product(range(max_shift + 1), repeat=block.ndim))
    for shift in shifts:
        window = tuple(slice(s, s + n + max_shift) for s, n in zip(shift, block.shape, strict=True))
        inner = tuple(
            slice(max_shift - s, max_shift - s + n) for s, n in zip(shift, block.shape, strict=True)
        )
        total += np.asarray(denoise(padded[window]))[inner]
    return total / len(shifts)


@DENOISERS.register("wavelet")
@tunable(sigma=ParameterRange(0.25, 4.0, noise_units=True), mode=("soft", "hard"),
         method=("BayesShrink", "VisuShrink"), max_shift=ParameterRange(0, 6, step=1))
def wavelet(
    image: np.ndarray,
    *,
    axes: str = "YX",
    noise: NoiseParams | None = None,
    sigma: float | None = None,
    wavelet: str = "sym4",
    mode: str = "soft",
    levels: int | None = None,
    method: str = "BayesShrink",
    max_shift: int | None = None,
    vst: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    plan: DenoisePlan | None = None,
) -> np.ndarray:
    r"""Wavelet-coefficient shrinkage with BayesShrink thresholds, averaged over shifts.

    Each detail subband :math:`j` of the orthogonal wavelet transform is soft-thresholded at the
    BayesShrink threshold

    .. math:: T_j = \frac{\sigma^2}{\hat{\sigma}_{x,j}}, \qquad
              \hat{\sigma}_{x,j} = \sqrt{\max(\hat{\sigma}_{w,j}^2 - \sigma^2,\ 0)},

    where :math:`\hat{\sigma}_{w,j}^2` is the subband's mean square and :math:`\sigma` the noise
    level in the working domain (S. G. Chang, B. Yu, M. Vetterli, "Adaptive wavelet thresholding
    for image denoising and compression", IEEE TIP 9(9), 2000); runs
    :func:`skimage.restoration.denoise_wavelet`. The decimated transform is not shift-invariant,
    so the result is averaged over shifts of the block ("cycle spinning", R. R. Coifman &
    D. L. Donoho, "Translation-invariant de-noising", 1995; shifts of a mirror-padded block, so
    no wrap-around seam), which removes blocky artefacts and gains about 0.5–3 dB.

    Parameters
    ----------
    image : array_like
        Noisy image, any real dtype.
    axes : str
        Axes over ``STCZYX``; ``S``, ``T`` and ``C`` are denoised independently, ``ZYX`` blocks with
        a 3-D transform.
    noise : NoiseParams, optional
        Noise model (per channel estimate if omitted); gives σ and the working domain.
    sigma : float, optional
        Noise level to threshold against, in the working domain's units; default σ from ``noise``
        (1 after the variance-stabilising transform).
    wavelet : str
        Orthogonal PyWavelets name (default ``"sym4"``).
    mode : {"soft", "hard"}
        Thresholding rule.
    levels : int, optional
        Decomposition levels; default (and at most) the deepest level the block size allows.
    method : {"BayesShrink", "VisuShrink"}
        Threshold rule (VisuShrink uses the universal threshold :math:`\sigma\sqrt{2\ln N}`).
    max_shift : int, optional
        Cycle spinning over shifts ``0..max_shift`` along every spatial axis; default 3 in 2-D
        (16 transforms) and 1 in 3-D (8 transforms); 0 turns it off.
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
    sigma = check_positive("sigma", sigma)
    if wavelet not in pywt.wavelist(kind="discrete") or not pywt.Wavelet(wavelet).orthogonal:
        raise InfocusInputError(
            f"wavelet {wavelet!r} is not an orthogonal discrete wavelet; use e.g. 'sym4', 'db2' or 'haar'."
        )
    if mode not in ("soft", "hard"):
        raise InfocusInputError(f"mode must be 'soft' or 'hard' (got {mode!r}).")
    if method not in ("BayesShrink", "VisuShrink"):
        raise InfocusInputError(f"method must be 'BayesShrink' or 'VisuShrink' (got {method!r}).")
    for name, value in (("levels", levels), ("max_shift", max_shift)):
        minimum = 1 if name == "levels" else 0
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum
        ):
            raise InfocusInputError(f"{name} must be an integer >= {minimum} (got {value!r}).")

    def choose(_sample: np.ndarray, noise_sigma: float) -> Mapping[str, Any]:
        return {"sigma": sigma if sigma is not None else noise_sigma}

    def block(b: np.ndarray, _noise_sigma: float, p: Mapping[str, Any]) -> np.ndarray:
        shift = max_shift if max_shift is not None else (3 if b.ndim == 2 else 1)

        def shrink(x: np.ndarray) -> np.ndarray:
            return _shrink(x, p["sigma"], wavelet, mode, levels, method)

        return _cycle_spin(b, shrink, int(shift)) if shift > 0 else shrink(b)

    return run_denoiser(
        image,
        axes=axes,
        noise=noise,
        vst=vst,
        max_spatial_ndim=3,
        denoise_block=block,
        choose_params=choose,
        progress=progress,
        plan=plan,
    )
