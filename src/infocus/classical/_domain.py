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

Steps 3 and 4 look at the whole channel, step 5 at one block at a time. A :class:`DenoisePlan`
holds what steps 3 and 4 chose (:func:`plan_denoising` computes it without denoising), so that
blocks denoised apart, e.g. by the workers of a cluster, get exactly the values one call on the
whole stack would use.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infocus._errors import InfocusInputError
from infocus._validate import check_image
from infocus.axes import apply_blockwise, check_axes, spatial_axes
from infocus.noise import (
    NoiseParams,
    estimate_pixel_noise,
    generalized_anscombe,
    inverse_generalized_anscombe,
)

__all__ = [
    "ChannelPlan",
    "DenoisePlan",
    "NoiseDomain",
    "check_odd_size",
    "check_positive",
    "choose_domain",
    "middle_block",
    "plan_denoising",
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

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see :meth:`from_dict`)."""
        return {"noise": self.noise.to_dict(), "vst": self.vst, "sigma": self.sigma,
                "level": self.level}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseDomain:
        """The domain written by :meth:`to_dict`."""
        return cls(noise=NoiseParams(**data["noise"]), vst=bool(data["vst"]),
                   sigma=float(data["sigma"]), level=float(data["level"]))


@dataclass(frozen=True)
class ChannelPlan:
    """What the pipeline chose for one channel from all of it: the domain and the parameters.

    Attributes
    ----------
    domain : NoiseDomain
        Noise model, working domain and noise level of the channel.
    params : dict
        The method's parameters for the channel, automatic ones resolved (plain numbers).
    """

    domain: NoiseDomain
    params: Mapping[str, Any]


@dataclass(frozen=True)
class DenoisePlan:
    """The per-stack choices of a classical denoiser, made once and applied to any of its blocks.

    A denoiser estimates the noise and chooses its automatic parameters per channel over the
    whole stack; denoising is then block by block. Applying a plan made from the stack to each
    block (:meth:`denoise`) therefore gives the same result as denoising the stack in one call,
    wherever the blocks are denoised.

    Attributes
    ----------
    method : str
        Name of the denoiser in :data:`infocus.classical.DENOISERS`.
    options : dict
        The method's own options the plan was made with (``noise`` and ``vst`` excluded: the
        plan holds their outcome).
    channels : tuple of ChannelPlan
        One entry per channel (one for an image without ``C``).

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.random.default_rng(0).poisson(20.0, (4, 48, 48)).astype(np.float32)
    >>> plan = plan_denoising("nl_means", stack, axes="TYX")
    >>> frame = plan.denoise(stack[1], axes="YX")
    >>> bool(np.array_equal(frame, plan.denoise(stack, axes="TYX")[1]))
    True
    """

    method: str
    options: Mapping[str, Any] = field(default_factory=dict)
    channels: tuple[ChannelPlan, ...] = ()

    def channel(self, index: int) -> DenoisePlan:
        """The plan of channel ``index`` alone, for a block cut out of that channel."""
        return DenoisePlan(self.method, self.options, (self.channels[index],))

    def denoise(self, image: object, *, axes: str = "YX",
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Denoise ``image`` (the stack, or a block of it with the same channels) as planned."""
        from infocus.classical._registry import get_denoiser

        return get_denoiser(self.method)(image, axes=axes, plan=self, progress=progress,
                                         **self.options)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, e.g. to record beside a long job (see :meth:`from_dict`)."""
        return {"method": self.method, "options": _plain(dict(self.options)),
                "channels": [{"domain": c.domain.to_dict(), "params": _plain(dict(c.params))}
                             for c in self.channels]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DenoisePlan:
        """The plan written by :meth:`to_dict`."""
        return cls(method=str(data["method"]), options=dict(data["options"]),
                   channels=tuple(ChannelPlan(NoiseDomain.from_dict(c["domain"]),
                                              dict(c["params"])) for c in data["channels"]))


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """NumPy scalars as Python ones, so that a plan goes through JSON unchanged."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in values.items()}


class _PlanOnly:
    """Passed as ``plan`` by :func:`plan_denoising`: choose, then stop before denoising."""


class _Planned(Exception):  # noqa: N818 - a signal carrying a result, not an error
    """Raised by :func:`run_denoiser` with the channels' choices when asked for a plan only.

    The denoisers build their choosers and block functions inside their own bodies; running a
    denoiser up to the point where it has chosen, then unwinding, reuses that code unchanged.
    """

    def __init__(self, channels: tuple[ChannelPlan, ...]) -> None:
        super().__init__("planned")
        self.channels = channels


def plan_denoising(
    method: str,
    image: object,
    *,
    axes: str = "YX",
    noise: NoiseParams | None = None,
    vst: bool | None = None,
    **options: Any,
) -> DenoisePlan:
    """What the denoiser ``method`` would choose for ``image`` per channel, without denoising.

    Parameters
    ----------
    method : str
        A name from :func:`infocus.classical.list_denoisers`.
    image : array_like
        The whole stack (or the part the choices should be made from).
    axes : str
        Its axes over ``STCZYX``.
    noise : NoiseParams, optional
        Noise model of every channel; estimated per channel if omitted.
    vst : bool, optional
        Force or forbid the variance-stabilising transform (default: automatic).
    **options
        The method's own options (None = automatic, resolved in the plan).

    Returns
    -------
    DenoisePlan
        Apply it with :meth:`DenoisePlan.denoise` to the stack or to any block of it.
    """
    from infocus.classical._registry import get_denoiser

    function = get_denoiser(method)
    accepted = [name for name, p in inspect.signature(function).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY
                and name not in ("axes", "noise", "vst", "progress", "plan")]
    unknown = [name for name in options if name not in accepted]
    if unknown:
        raise InfocusInputError(
            f"Method {method!r} has no option {unknown[0]!r}; its options are: "
            f"{', '.join(accepted) or 'none'}."
        )
    try:
        function(image, axes=axes, noise=noise, vst=vst, plan=_PlanOnly(), **options)
    except _Planned as planned:
        return DenoisePlan(method.lower(), dict(options), planned.channels)
    raise RuntimeError(f"{method} does not run through run_denoiser, so it cannot be planned.")


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
        The noise model; estimated from ``image`` with :func:`infocus.noise.estimate_pixel_noise`
        (corrected where the noise is correlated between pixels) if omitted.
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
        noise = estimate_pixel_noise(x, axes=axes)
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
    plan: DenoisePlan | _PlanOnly | None = None,
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
    plan : DenoisePlan, optional
        The domain and parameters of every channel, chosen beforehand (:func:`plan_denoising`);
        then ``noise`` and ``vst`` must be None and nothing is estimated from ``image``.

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
    if isinstance(plan, DenoisePlan):
        chosen = _checked_plan(plan, len(channels), noise, vst)
    else:
        chosen = tuple(
            _choose(channel, channel_axes, noise, vst, max_spatial_ndim, choose_params)
            for _, channel in channels
        )
        if isinstance(plan, _PlanOnly):
            raise _Planned(chosen)
    block = spatial_axes(channel_axes, max_ndim=max_spatial_ndim)
    per_channel = int(
        np.prod(
            [n for n, a in zip(channels[0][1].shape, channel_axes, strict=True) if a not in block]
        )
    )
    total = per_channel * len(channels)
    out = np.empty(x.shape, dtype=np.float32)
    for c, channel in channels:
        domain, params = chosen[c].domain, chosen[c].params
        z = domain.forward(channel)

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


def _choose(channel: np.ndarray, axes: str, noise: NoiseParams | None, vst: bool | None,
            max_spatial_ndim: int, choose_params: ParamChooser) -> ChannelPlan:
    """Steps 3 and 4 of the pipeline for one channel: the whole of it is looked at."""
    domain = choose_domain(channel, axes=axes, noise=noise, vst=vst)
    # The transform is pixel by pixel, so transforming the middle block alone gives the same
    # sample as cutting it out of the transformed channel.
    sample = domain.forward(middle_block(channel, axes, max_spatial_ndim=max_spatial_ndim))
    return ChannelPlan(domain, dict(choose_params(sample, domain.sigma)))


def _checked_plan(plan: DenoisePlan, channels: int, noise: NoiseParams | None,
                  vst: bool | None) -> tuple[ChannelPlan, ...]:
    if noise is not None or vst is not None:
        raise InfocusInputError(
            "A plan already fixes the noise model and the variance-stabilising transform; "
            "pass noise and vst when making the plan, not with it."
        )
    if len(plan.channels) != channels:
        raise InfocusInputError(
            f"The plan was made for {len(plan.channels)} channel(s) but the image has "
            f"{channels}; make it from this image, or pass plan.channel(c) for channel c alone."
        )
    return plan.channels


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
