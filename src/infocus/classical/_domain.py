r"""Machinery shared by the classical denoisers: noise domain, channels, blocks and parameters.

Every classical denoiser runs the same pipeline (:func:`run_denoiser`):

1. **Check** the image and axes (:func:`infocus._validate.check_image`).
2. **Split channels.** Each channel (``C``) is treated as its own image: its noise is estimated
   and its automatic parameters are chosen from it alone, since channels differ in brightness,
   fluorophore and often camera settings.
3. **Choose the noise domain** (:func:`choose_domain`). With Poisson–Gaussian noise of
   variance :math:`\operatorname{Var}[x \mid y] = a y + b` (gain :math:`a`, intercept :math:`b`),
   the noise is signal-dependent when shot noise is a sizeable part of the variance at the
   median level (:meth:`~infocus.noise.NoiseParams.is_signal_dependent`). Then the denoiser works
   on the generalized Anscombe transform :math:`z = \mathrm{GAT}(x)`, whose noise is close to
   Gaussian with unit variance, and the result is mapped back with the exact unbiased inverse
   (Mäkitalo & Foi, IEEE TIP 22(1), 2013). Otherwise it works on :math:`x` itself with the noise
   standard deviation :math:`\sigma = \sqrt{a\,\tilde{x} + b}` at the median :math:`\tilde{x}`
   (:math:`= \sqrt{b}` for purely Gaussian noise).
4. **Choose parameters** once per channel, from a central crop of its middle block, in the working
   domain (a noise-level formula, or J-invariant calibration; see :mod:`._calibrate`).
5. **Denoise block by block** with :func:`infocus.axes.apply_blockwise`: samples (``S``) and time
   points (``T``) are processed independently, ``Z`` is part of the block for 3-D methods.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from infocus._errors import InfocusInputError
from infocus._validate import check_image
from infocus.axes import apply_blockwise, check_axes, spatial_axes
from infocus.noise import (
    NoiseParams,
    estimate_noise,
    generalized_anscombe,
    inverse_generalized_anscombe,
)

__all__ = [
    "NoiseDomain",
    "check_odd_size",
    "check_positive",
    "choose_domain",
    "middle_block",
    "run_denoiser",
]

#: ``denoise_block(block, sigma, params) -> block``: one (Z)YX block in the working domain.
BlockDenoiser = Callable[[np.ndarray, float, Mapping[str, Any]], np.ndarray]
#: ``choose_params(sample, sigma) -> params``: fills in the automatic parameters.
ParamChooser = Callable[[np.ndarray, float], Mapping[str, Any]]


@dataclass(frozen=True)
class NoiseDomain:
    """Where a denoiser works and how noisy the data are there.

    Attributes
    ----------
    noise : NoiseParams
        The noise model of the pixels (given or estimated).
    vst : bool
        Whether the denoiser works after the generalized Anscombe transform.
    sigma : float
        Noise standard deviation in the working domain (1 after the transform).
    level : float
        The typical (median) pixel value used to decide ``vst``.
    """

    noise: NoiseParams
    vst: bool
    sigma: float
    level: float

    def forward(self, image: np.ndarray) -> np.ndarray:
        """Pixels -> working domain (float32)."""
        if self.vst:
            return np.asarray(generalized_anscombe(image, self.noise), dtype=np.float32)
        return np.asarray(image, dtype=np.float32)

    def inverse(self, transformed: np.ndarray) -> np.ndarray:
        """Working domain -> pixels (float32), the exact unbiased inverse after the transform."""
        if self.vst:
            return np.asarray(
                inverse_generalized_anscombe(transformed, self.noise), dtype=np.float32
            )
        return np.asarray(transformed, dtype=np.float32)


def choose_domain(
    image: np.ndarray,
    *,
    axes: str = "YX",
    noise: NoiseParams | None = None,
    vst: bool | None = None,
) -> NoiseDomain:
    r"""Decide whether to denoise after a variance-stabilising transform, and the noise level there.

    Parameters
    ----------
    image : ndarray
        One channel: noise is estimated per channel, so pass ``image[c]`` for multi-channel data
        (:func:`run_denoiser` does this).
    axes : str
        Axes of ``image``.
    noise : NoiseParams, optional
        The noise model; estimated from ``image`` with :func:`infocus.noise.estimate_noise` if omitted.
    vst : bool, optional
        Force (``True``) or forbid (``False``) the generalized Anscombe transform; by default it is
        used when the noise is signal-dependent at the median level :math:`\tilde{x}`.

    Returns
    -------
    NoiseDomain
        ``sigma`` is 1 after the transform, else :math:`\sqrt{\max(a\tilde{x} + b, 0)}`, floored
        at :math:`10^{-6}` of the image's dynamic range so that noise-free data do not divide by 0.
    """
    x = check_image(image, axes)
    if noise is None:
        noise = estimate_noise(x, axes=axes)
    elif not isinstance(noise, NoiseParams):
        raise InfocusInputError(
            f"noise must be a NoiseParams (got {type(noise).__name__}); build one with "
            "NoiseParams.gaussian(sigma) or NoiseParams.from_camera(...)."
        )
    if vst is not None and not isinstance(vst, bool | np.bool_):
        raise InfocusInputError(f"vst must be True, False or None (got {vst!r}).")
    level = float(np.median(x))
    use_vst = noise.is_signal_dependent(level) if vst is None else bool(vst)
    if use_vst:
        if noise.gain <= 0 and noise.variance_intercept <= 0:
            raise InfocusInputError(
                "The noise model has zero variance, so the variance-stabilising transform is "
                "undefined; pass vst=False or a noise model with positive variance."
            )
        sigma = 1.0
    else:
        sigma = math.sqrt(float(noise.variance(level)))
        spread = float(np.max(x) - np.min(x))
        sigma = max(sigma, 1e-6 * (spread if spread > 0 else 1.0))
    return NoiseDomain(noise=noise, vst=use_vst, sigma=sigma, level=level)


def _block_order(axes: str, block: str) -> list[int]:
    loop = [a for a in axes if a not in block]
    return [axes.index(a) for a in loop] + [axes.index(a) for a in block]


def middle_block(image: np.ndarray, axes: str, *, max_spatial_ndim: int = 3) -> np.ndarray:
    """The middle (Z)YX block of ``image`` (middle sample, time point, ...), in (Z)YX order."""
    axes = check_axes(axes, image.shape)
    block = spatial_axes(axes, max_ndim=max_spatial_ndim)
    moved = np.transpose(image, _block_order(axes, block))
    outer = moved.shape[: moved.ndim - len(block)]
    return moved[tuple(n // 2 for n in outer)]


def run_denoiser(
    image: object,
    *,
    axes: str,
    noise: NoiseParams | None,
    vst: bool | None,
    max_spatial_ndim: int,
    denoise_block: BlockDenoiser,
    choose_params: ParamChooser,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Run a block denoiser through the shared pipeline (see the module docstring).

    Parameters
    ----------
    image : array_like
        The noisy image.
    axes : str
        Its axes over ``STCZYX``.
    noise : NoiseParams, optional
        Noise model of every channel; estimated per channel if omitted.
    vst : bool, optional
        Force or forbid the variance-stabilising transform (default: automatic).
    max_spatial_ndim : int
        3 to treat ``Z`` as part of the block, 2 to work slice by slice.
    denoise_block : callable
        ``denoise_block(block, sigma, params)`` for one (Z)YX block in the working domain.
    choose_params : callable
        ``choose_params(sample, sigma)``: the parameters for a channel, given its middle block.
    progress : callable, optional
        ``progress(done, total)`` after each block.

    Returns
    -------
    ndarray
        float32, same shape as ``image``.
    """
    axes = check_axes(axes)
    x = check_image(image, axes)
    if "C" in axes:
        c_dim = axes.index("C")
        channel_axes = axes.replace("C", "")
        channels = [(c, np.take(x, c, axis=c_dim)) for c in range(x.shape[c_dim])]
    else:
        c_dim = None
        channel_axes = axes
        channels = [(0, x)]
    block = spatial_axes(channel_axes, max_ndim=max_spatial_ndim)
    per_channel = int(
        np.prod(
            [n for n, a in zip(channels[0][1].shape, channel_axes, strict=True) if a not in block]
        )
    )
    total = per_channel * len(channels)
    out = np.empty(x.shape, dtype=np.float32)
    for c, channel in channels:
        domain = choose_domain(channel, axes=channel_axes, noise=noise, vst=vst)
        z = domain.forward(channel)
        params = choose_params(
            middle_block(z, channel_axes, max_spatial_ndim=max_spatial_ndim), domain.sigma
        )

        def report(done: int, _total: int, offset: int = c * per_channel) -> None:
            if progress is not None:
                progress(offset + done, total)

        def denoise(
            b: np.ndarray, sigma: float = domain.sigma, p: Mapping[str, Any] = params
        ) -> np.ndarray:
            return np.asarray(denoise_block(np.ascontiguousarray(b, dtype=np.float32), sigma, p))

        result = domain.inverse(
            apply_blockwise(
                denoise, z, channel_axes, max_spatial_ndim=max_spatial_ndim, progress=report
            )
        )
        if c_dim is None:
            out[...] = result
        else:
            index: list[Any] = [slice(None)] * x.ndim
            index[c_dim] = c
            out[tuple(index)] = result
    return out


def check_positive(name: str, value: float | None) -> float | None:
    """``value`` as a float, or ``None``; raise if it is not a finite positive number."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise InfocusInputError(f"{name} must be a finite positive number (got {value!r}).")
    return number


def check_odd_size(name: str, value: int | None) -> int | None:
    """``value`` as an int, or ``None``; raise unless it is an odd integer >= 1."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < 1
        or value % 2 == 0
    ):
        raise InfocusInputError(f"{name} must be an odd integer >= 1, e.g. 3 or 5 (got {value!r}).")
    return int(value)
