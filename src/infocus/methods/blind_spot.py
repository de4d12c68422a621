r"""Noise2Void, N2V2 and structN2V: blind-spot masking as pure tensor functions.

A blind-spot network is trained on noisy images alone. A few pixels :math:`p` per patch are
*masked*: their value in the network input is replaced by something that carries no information
about the noise at :math:`p`, and the loss compares the prediction at :math:`p` with the original
noisy value :math:`x_p`. If the noise is zero-mean and independent between pixels, the best
prediction of :math:`x_p` from the other pixels is the clean signal :math:`s_p`, so the network
learns to denoise (Krull et al. 2019).

The three schemes differ in what replaces the masked pixel:

* **N2V** (``replacement="uniform"``): the value of a random pixel of the
  :math:`(2r+1)^d` neighbourhood, the centre excluded (the original N2V included the centre with
  probability :math:`1/(2r+1)^d`, which leaks the very value being predicted; N2V2 and CAREamics
  exclude it, and so do we).
* **N2V2** (``replacement="median"``): the median of the neighbourhood without the centre, which
  avoids the checkerboard artefacts of uniform replacement (Höck et al. 2022). For the even number
  of values this is the lower median, so the replacement is always one of the neighbours.
* **structN2V** (``struct=...``): for noise correlated along a structure, e.g. the horizontal
  stripes of a scanning or sCMOS camera, the pixels of a *structuring pattern* around each masked
  pixel (a line of :math:`k` pixels along X by default) are also hidden: they get random values
  drawn uniformly between the minimum and maximum of the untouched pixels of the same sample and
  channel (or from a Gaussian with their mean and standard deviation). The centre is replaced as
  in N2V, from a neighbour *outside* the pattern (Broaddus et al. 2020).
* **Wider blind spots for N2V and N2V2** (``blind_spot=[(dy, dx), ...]``): the same hiding, with
  a pattern measured from the data. :func:`infocus.train` estimates the noise correlation
  (:func:`~infocus.noise.estimate_noise_correlation`) and hides the offsets where it is high plus
  one ring, e.g. a 5×5 block for a camera whose noise is correlated with the next pixel; the
  hidden pixels get Gaussian values (mean and spread of the untouched pixels). On FMD's widefield
  images (neighbour correlation ≈ 0.6) a 3×3 block raised N2V from 26.2 to 30.1 dB and a 5×5
  block by 1.6–3.2 dB more per configuration.

What guarantees the blind spot
------------------------------
The network input at a masked pixel, at a pattern pixel and everywhere else is a function of the
*unmasked, non-pattern* pixels and the random generator only, so changing the noisy values at the
masked and pattern pixels leaves the network input bit-identical. Three details make this exact:

1. :func:`stratified_mask` places masked pixels so far apart (any two differ by at least
   ``radius + 1 + e`` along some axis, with ``e`` the pattern's reach along that axis) that no
   replacement value is read from another masked pixel or its pattern; the replacement functions
   check this and refuse masks that break it.
2. Near the border, an offset that leaves the patch is mirrored through the centre (:math:`p - o`
   instead of :math:`p + o`), so the source is never the centre itself (clamping would be).
3. The structN2V fill statistics are computed over the untouched pixels only.

Masks are chosen independently per channel by default (``channels="independent"``, as in N2V);
this assumes the noise is independent across channels. For noise correlated across channels use
``channels="joint"``: one mask (and, for uniform replacement, one neighbour offset) per sample,
shared by all channels.

References
----------
A. Krull, T.-O. Buchholz, F. Jug, "Noise2Void — learning denoising from single noisy images",
CVPR 2019.

E. Höck, T.-O. Buchholz, A. Brachmann, F. Jug, A. Freytag, "N2V2 — fixing Noise2Void checkerboard
artifacts with modified sampling strategies and a tweaked network architecture", ECCV Workshops
(BIC) 2022.

C. Broaddus, A. Krull, M. Weigert, U. Schmidt, G. Myers, "Removing structured noise with
self-supervised blind-spot networks", ISBI 2020.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from infocus._errors import InfocusInputError
from infocus.methods._base import (
    SCHEMES,
    Batch,
    ChannelMode,
    FitData,
    Fitted,
    PredictionContext,
    TrainingScheme,
    check_batch_tensor,
    masked_loss,
)
from infocus.noise._params import NoiseParams

__all__ = [
    "Noise2Void",
    "fuse_blind_spot_prediction",
    "fusion_noise",
    "measure_noise_correlation",
    "StructFill",
    "StructPattern",
    "apply_struct_mask",
    "max_fraction",
    "radius_for_pattern",
    "replace_median",
    "replace_uniform",
    "stratified_mask",
]

#: How structN2V fills the pattern pixels: uniform over the untouched pixels' [min, max] or a
#: Gaussian with their mean and standard deviation (per sample and channel).
StructFill = Literal["uniform", "gaussian"]

_AXIS_REACH = {"X": 1, "Y": 2, "Z": 3}


@dataclass(frozen=True)
class StructPattern:
    """The structuring pattern of structN2V: pixel offsets around each masked pixel.

    Offsets are aligned to the *last* axes (``(..., Y, X)``) and padded with leading zeros to the
    data's number of spatial axes, so ``StructPattern.line(5, "X")`` works for 2-D and 3-D data.
    The centre offset is dropped (the centre is handled by the N2V replacement). The pattern must
    be symmetric under flipping each axis (a centred line is), so that mirroring an offset at the
    border never lands on a pattern pixel.

    Parameters
    ----------
    offsets : tuple of tuple of int
        Offsets of the pattern pixels relative to the masked pixel.

    Examples
    --------
    >>> StructPattern.line(5, "X").offsets
    ((-2,), (-1,), (1,), (2,))
    >>> StructPattern.line(3, "Y").for_ndim(3)
    ((0, -1, 0), (0, 1, 0))
    """

    offsets: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        try:
            offsets = {tuple(int(v) for v in offset) for offset in self.offsets}
        except (TypeError, ValueError):
            raise InfocusInputError(
                "A struct pattern must be a sequence of integer offset tuples, e.g. "
                "((0, -1), (0, 1)); use StructPattern.line(length, axis) for a line."
            ) from None
        lengths = {len(offset) for offset in offsets}
        if len(lengths) != 1 or 0 in lengths:
            raise InfocusInputError(
                f"The struct pattern offsets {sorted(offsets)} need the same, non-zero number of "
                "axes each; write every offset as a (..., y, x) tuple of one length."
            )
        ndim = lengths.pop()
        offsets.discard((0,) * ndim)
        if not offsets:
            raise InfocusInputError(
                "The struct pattern holds no pixel besides the centre; give it at least one "
                "non-zero offset, or use plain 'n2v'."
            )
        for axis in range(ndim):
            flipped = {o[:axis] + (-o[axis],) + o[axis + 1 :] for o in offsets}
            if flipped != offsets:
                raise InfocusInputError(
                    f"The struct pattern {sorted(offsets)} is not symmetric along axis {axis}; "
                    "use a pattern centred on the masked pixel, e.g. StructPattern.line(5, 'X')."
                )
        object.__setattr__(self, "offsets", tuple(sorted(offsets)))

    @classmethod
    def line(cls, length: int = 5, axis: str = "X") -> StructPattern:
        """A centred line of ``length`` pixels (odd, >= 3) along ``axis`` ("X", "Y" or "Z")."""
        axis_name = str(axis).upper()
        if axis_name not in _AXIS_REACH:
            raise InfocusInputError(f"Unknown struct axis {axis!r}; choose 'X', 'Y' or 'Z'.")
        if isinstance(length, bool) or not isinstance(length, int) or length < 3 or length % 2 == 0:
            raise InfocusInputError(
                f"The struct line length must be an odd integer >= 3 (got {length!r}) so the "
                "line is centred on the masked pixel; use e.g. 3, 5 or 7."
            )
        ndim = _AXIS_REACH[axis_name]
        half = length // 2
        zeros = (0,) * (ndim - 1)
        return cls(tuple((t, *zeros) for t in range(-half, half + 1) if t != 0))

    @property
    def ndim(self) -> int:
        """Number of trailing axes the offsets are written for."""
        return len(self.offsets[0])

    def for_ndim(self, ndim: int) -> tuple[tuple[int, ...], ...]:
        """The offsets padded with leading zeros to ``ndim`` spatial axes."""
        if ndim < self.ndim:
            raise InfocusInputError(
                f"The struct pattern spans {self.ndim} axes but the data has {ndim} spatial axes; "
                "use a pattern along X or Y for 2-D data (Z needs 3-D data)."
            )
        pad = (0,) * (ndim - self.ndim)
        return tuple(pad + offset for offset in self.offsets)

    def reach(self, ndim: int) -> tuple[int, ...]:
        """How far the pattern extends from the centre along each of ``ndim`` axes."""
        offsets = self.for_ndim(ndim)
        return tuple(max(abs(o[axis]) for o in offsets) for axis in range(ndim))


# --------------------------------------------------------------------------------------------
# small checks and index helpers
# --------------------------------------------------------------------------------------------


def _check_radius(radius: object) -> int:
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
        raise InfocusInputError(
            f"The neighbourhood radius must be an integer >= 1 (got {radius!r}); the default 2 "
            "gives a 5x5 (5x5x5) neighbourhood."
        )
    return radius


def _check_fraction(fraction: object) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise InfocusInputError(
            f"The masked fraction must be a number in (0, 1) (got {fraction!r}); N2V uses 0.002."
        )
    value = float(fraction)
    if not 0.0 < value < 1.0:
        raise InfocusInputError(
            f"The masked fraction must lie in (0, 1) (got {value}); N2V uses 0.002 (0.2 %)."
        )
    return value


def _check_channels(channels: object) -> ChannelMode:
    if channels not in ("independent", "joint"):
        raise InfocusInputError(
            f"Unknown channel mode {channels!r}; choose 'independent' (one mask per channel) or "
            "'joint' (one mask shared by all channels)."
        )
    return channels  # type: ignore[return-value]


def _check_struct(struct: object) -> StructPattern | None:
    if struct is not None and not isinstance(struct, StructPattern):
        raise InfocusInputError(
            f"struct must be a StructPattern or None (got {type(struct).__name__}); build one "
            "with StructPattern.line(5, 'X')."
        )
    return struct


def _check_mask(mask: object, x: Tensor) -> Tensor:
    if not isinstance(mask, Tensor) or mask.shape != x.shape:
        shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise InfocusInputError(
            f"The mask must be a tensor of the batch's shape {tuple(x.shape)} (got {shape}); "
            "build it with stratified_mask(..., batch_shape=(B, C))."
        )
    return mask.to(device=x.device, dtype=torch.bool)


def _check_patch_size(spatial: Sequence[int], radius: int) -> None:
    if min(spatial) < 2 * radius + 1:
        raise InfocusInputError(
            f"Patches of spatial shape {tuple(spatial)} are too small for a neighbourhood of "
            f"radius {radius}; every spatial size must be at least {2 * radius + 1} (use larger "
            "patches or a smaller radius)."
        )


def _neighbour_offsets(
    ndim: int, radius: int, struct: StructPattern | None, device: torch.device
) -> Tensor:
    """Offsets ``(K, ndim)`` of the (2r+1)^ndim neighbourhood minus the centre and the pattern."""
    excluded = {(0,) * ndim}
    if struct is not None:
        excluded |= set(struct.for_ndim(ndim))
    kept = [
        o for o in itertools.product(range(-radius, radius + 1), repeat=ndim) if o not in excluded
    ]
    if not kept:
        raise InfocusInputError(
            f"The struct pattern covers the whole radius-{radius} neighbourhood, leaving nothing "
            "to replace the masked pixel with; increase the radius."
        )
    return torch.tensor(kept, dtype=torch.long, device=device)


def _mirror_sources(centres: Tensor, offsets: Tensor, spatial: Tensor) -> Tensor:
    """``centre + offset``, mirrored through the centre (``centre - offset``) where it leaves the
    patch. Never returns the centre for a non-zero offset; needs every size > 2 * |offset|."""
    sources = centres + offsets
    outside = (sources < 0) | (sources >= spatial)
    return torch.where(outside, centres - offsets, sources)


def _linear_index(index: Sequence[Tensor], shape: Sequence[int]) -> Tensor:
    """Row-major position in a contiguous tensor of ``shape`` of broadcastable index tensors.

    One flat gather is several times faster on CPU than advanced indexing with one tensor per axis.
    """
    linear = index[0]
    for axis_index, size in zip(index[1:], shape[1:], strict=True):
        linear = linear * size + axis_index
    return linear


def _neighbourhood_index(
    shape: Sequence[int], coords: Tensor, radius: int, offsets: Tensor
) -> Tensor:
    """Linear indices ``(N, K)`` of ``coords`` ``(N, 2 + d)`` plus each of ``offsets`` ``(K, d)``
    (all within ``radius``), mirrored through the centre where they leave the patch.

    Mirroring is separable, so the sources are built axis by axis on the whole ``(2r+1)^d`` cube
    (``d`` broadcast additions) and the ``K`` wanted columns are picked afterwards.
    """
    spatial = [int(n) for n in shape[2:]]
    count, ndim = coords.shape[0], len(spatial)
    steps = torch.arange(-radius, radius + 1, device=coords.device)
    width = steps.numel()
    first = (coords[:, 0] * shape[1] + coords[:, 1]) * math.prod(spatial)
    linear = first.view(count, *[1] * ndim)
    for axis, size in enumerate(spatial):
        centre = coords[:, 2 + axis, None]
        source = centre + steps
        source = torch.where((source < 0) | (source >= size), centre - steps, source)
        view = [count] + [1] * ndim
        view[axis + 1] = width
        linear = linear + (source * math.prod(spatial[axis + 1 :])).view(view)
    weights = torch.tensor([width ** (ndim - 1 - a) for a in range(ndim)], device=offsets.device)
    columns = ((offsets + radius) * weights).sum(1)
    return linear.reshape(count, width**ndim)[:, columns]


def _gather(x: Tensor, index: Sequence[Tensor]) -> Tensor:
    """``x[index]`` for a full tuple of broadcastable index tensors (differentiable)."""
    return torch.take(x, _linear_index(index, x.shape))


def _scatter(x: Tensor, index: Sequence[Tensor], values: Tensor) -> Tensor:
    """A contiguous copy of ``x`` with ``values`` written at ``index`` (differentiable)."""
    out = x.clone(memory_format=torch.contiguous_format)
    out.view(-1)[_linear_index(index, x.shape)] = values
    return out


def _dilate(mask: Tensor, offsets: Sequence[Sequence[int]]) -> Tensor:
    """Pixels at ``offsets`` from a set pixel of ``mask`` (inside the patch), excluding ``mask``."""
    coords = mask.nonzero()
    shift = torch.tensor(offsets, dtype=torch.long, device=mask.device)
    spatial = torch.tensor(mask.shape[2:], device=mask.device)
    targets = coords[:, None, 2:] + shift[None]  # (N, K, d)
    inside = ((targets >= 0) & (targets < spatial)).all(-1)
    index = (coords[:, 0, None], coords[:, 1, None], *targets.unbind(-1))
    region = torch.zeros(mask.shape, dtype=torch.bool, device=mask.device)
    region.view(-1)[_linear_index(index, mask.shape)[inside]] = True
    return region & ~mask


def _check_sources_unmasked(forbidden: Tensor, index: Tensor | Sequence[Tensor]) -> None:
    """Refuse sources (a linear index or a tuple of index tensors) that fall on hidden pixels."""
    linear = index if isinstance(index, Tensor) else _linear_index(index, forbidden.shape)
    if bool(torch.take(forbidden, linear).any()):
        raise InfocusInputError(
            "Some masked pixels lie within the replacement neighbourhood of others, so the "
            "network could see a masked value; build the mask with stratified_mask using the "
            "same radius and struct pattern."
        )


def _random(shape: Sequence[int], generator: torch.Generator, dtype: torch.dtype) -> Tensor:
    """Uniform [0, 1) numbers drawn on the generator's device (moved by the caller)."""
    return torch.rand(tuple(shape), generator=generator, device=generator.device, dtype=dtype)


# --------------------------------------------------------------------------------------------
# public masking functions
# --------------------------------------------------------------------------------------------


def stratified_mask(
    spatial_shape: Sequence[int],
    fraction: float,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    *,
    radius: int = 2,
    struct: StructPattern | None = None,
    batch_shape: Sequence[int] = (),
) -> Tensor:
    r"""Blind-spot positions by stratified sampling: one masked pixel per box of the patch.

    The patch is tiled by boxes of side :math:`g = \text{fraction}^{-1/d}` (rounded to whole
    pixels box by box, so box sides alternate between :math:`\lfloor g\rfloor` and
    :math:`\lceil g\rceil`), and one pixel is drawn in each box, as in N2V. Two refinements make
    the blind spot exact and the sampling unbiased:

    * within a box of side :math:`L` along an axis, the pixel is drawn among its first
      :math:`L - s + 1` positions, with :math:`s = r + 1 + e` (``radius`` plus the struct pattern's
      reach :math:`e` along that axis, plus one). Masked pixels are then at least :math:`s` apart
      along some axis, so no masked pixel (or pattern pixel) is in another one's neighbourhood;
    * the box grid is shifted by a random phase per mask, which makes every pixel equally likely
      to be masked, with probability exactly ``fraction``.

    Parameters
    ----------
    spatial_shape : sequence of int
        ``(Y, X)`` or ``(Z, Y, X)``.
    fraction : float
        Expected fraction of masked pixels, in (0, 1); N2V uses 0.002.
    generator : torch.Generator
        Source of randomness; the mask is a deterministic function of its state.
    device : torch.device or str, optional
        Device of the returned mask (default: the generator's).
    radius : int
        Neighbourhood radius of the replacement that will follow.
    struct : StructPattern, optional
        structN2V pattern that will be hidden around every masked pixel.
    batch_shape : sequence of int
        Leading shape; every leading index gets an independent mask (e.g. ``(B, C)``).

    Returns
    -------
    Tensor of bool, shape ``(*batch_shape, *spatial_shape)``

    Raises
    ------
    InfocusInputError
        When ``fraction`` is so high that the boxes are smaller than ``s`` pixels.

    Examples
    --------
    >>> import torch
    >>> mask = stratified_mask((64, 64), 0.01, torch.Generator().manual_seed(0), batch_shape=(8,))
    >>> mask.shape, mask.dtype
    (torch.Size([8, 64, 64]), torch.bool)
    >>> 0.005 < mask.float().mean().item() < 0.02
    True
    """
    fraction = _check_fraction(fraction)
    radius = _check_radius(radius)
    struct = _check_struct(struct)
    spatial = tuple(int(n) for n in spatial_shape)
    ndim = len(spatial)
    if ndim == 0 or min(spatial) < 1:
        raise InfocusInputError(
            f"The spatial shape {spatial} must list one or more positive sizes, e.g. (64, 64)."
        )
    reach = struct.reach(ndim) if struct is not None else (0,) * ndim
    separation = [radius + 1 + e for e in reach]
    box = fraction ** (-1.0 / ndim)
    need = max(separation)
    if box < need - 1e-9:
        raise InfocusInputError(
            f"A masked fraction of {fraction:g} puts masked pixels every {box:.2f} pixels, closer "
            f"than the {need} that radius {radius}"
            f"{' and the struct pattern' if struct is not None else ''} need; use a fraction of "
            f"at most {need**-ndim:.4g} or a smaller radius."
        )
    box = max(box, float(need))
    leading = tuple(int(n) for n in batch_shape)
    count = math.prod(leading)
    gen_device = generator.device
    n_boxes = [math.ceil(n / box) + 1 for n in spatial]
    phase = _random((count, ndim), generator, torch.float64) * box
    jitter = _random((ndim, count, *n_boxes), generator, torch.float64)

    valid = torch.ones((count, *n_boxes), dtype=torch.bool, device=gen_device)
    flat = torch.zeros((count, *n_boxes), dtype=torch.long, device=gen_device)
    stride = math.prod(spatial)
    for axis, (size, nb) in enumerate(zip(spatial, n_boxes, strict=True)):
        steps = torch.arange(-1, nb, device=gen_device, dtype=torch.float64) * box
        starts = torch.floor(phase[:, axis, None] + steps).long()  # (count, nb + 1)
        lengths = starts[:, 1:] - starts[:, :-1]
        room = (lengths - separation[axis]).clamp_min(0)  # last admissible offset in the box
        view = [count] + [1] * ndim
        view[axis + 1] = nb
        offset = torch.minimum(
            torch.floor(jitter[axis] * (room.view(view) + 1)).long(), room.view(view)
        )
        position = starts[:, :-1].view(view) + offset
        valid &= (position >= 0) & (position < size)
        stride //= size
        flat = flat + position * stride
    instance = torch.arange(count, device=gen_device).view([count] + [1] * ndim)
    flat = (flat + instance * math.prod(spatial))[valid]
    mask = torch.zeros(count * math.prod(spatial), dtype=torch.bool, device=gen_device)
    mask[flat] = True
    return mask.view(*leading, *spatial).to(device if device is not None else gen_device)


def replace_uniform(
    x: Tensor,
    mask: Tensor,
    radius: int,
    generator: torch.Generator,
    *,
    struct: StructPattern | None = None,
    channels: ChannelMode = "independent",
) -> Tensor:
    r"""N2V replacement: each masked pixel takes the value of a random neighbour.

    .. math::

        \tilde x_p = x_{p + o_p}, \qquad o_p \sim \mathcal{U}\left(\{-r, \dots, r\}^d
        \setminus (\{0\} \cup S)\right),

    where :math:`S` is the struct pattern (empty for N2V). An offset that leaves the patch is
    mirrored (:math:`p - o_p`).

    Parameters
    ----------
    x : Tensor, shape (B, C, [Z,] Y, X)
        Noisy batch (not modified).
    mask : Tensor of bool, same shape
        Pixels to replace, at least ``radius + 1`` apart (see :func:`stratified_mask`).
    radius : int
        Neighbourhood radius :math:`r`.
    generator : torch.Generator
        Draws the offsets.
    struct : StructPattern, optional
        Offsets excluded from the neighbourhood (structN2V).
    channels : {"independent", "joint"}
        ``"joint"``: one offset per sample and position, used for every channel (the mask must then
        be the same in every channel); ``"independent"``: one offset per masked pixel.

    Returns
    -------
    Tensor
        A copy of ``x`` with the masked pixels replaced.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(25.0).view(1, 1, 5, 5)
    >>> mask = torch.zeros(1, 1, 5, 5, dtype=torch.bool)
    >>> mask[0, 0, 2, 2] = True
    >>> out = replace_uniform(x, mask, 1, torch.Generator().manual_seed(0))
    >>> out[0, 0, 2, 2].item() in {6.0, 7.0, 8.0, 11.0, 13.0, 16.0, 17.0, 18.0}
    True
    """
    x = check_batch_tensor(x)
    mask = _check_mask(mask, x)
    radius = _check_radius(radius)
    struct = _check_struct(struct)
    channels = _check_channels(channels)
    ndim = x.ndim - 2
    _check_patch_size(x.shape[2:], radius)
    offsets = _neighbour_offsets(ndim, radius, struct, x.device)
    forbidden = mask if struct is None else mask | _dilate(mask, struct.for_ndim(ndim))
    spatial = torch.tensor(x.shape[2:], device=x.device)
    if channels == "joint":
        if not bool((mask == mask[:, :1]).all()):
            raise InfocusInputError(
                "Joint channel replacement needs the same mask in every channel; build it with "
                "batch_shape=(B, 1) and expand it, or use channels='independent'."
            )
        coords = mask[:, 0].nonzero()  # (N, 1 + d): sample, position
        samples = coords[:, 0, None]
        every_channel = torch.arange(x.shape[1], device=x.device)[None]
        lead: tuple[Tensor, Tensor] = (samples, every_channel)  # (N, C) pixels per position
        first_channel = (samples, torch.zeros_like(samples))
        centres = coords[:, 1:]
    else:
        coords = mask.nonzero()  # (N, 2 + d): sample, channel, position
        lead = first_channel = (coords[:, 0, None], coords[:, 1, None])
        centres = coords[:, 2:]
    choice = torch.randint(
        offsets.shape[0], (centres.shape[0],), generator=generator, device=generator.device
    ).to(x.device)
    sources = _mirror_sources(centres, offsets[choice], spatial)
    _check_sources_unmasked(forbidden, (*first_channel, *sources[:, :, None].unbind(1)))
    values = _gather(x, (*lead, *sources[:, :, None].unbind(1)))
    return _scatter(x, (*lead, *centres[:, :, None].unbind(1)), values)


def replace_median(
    x: Tensor, mask: Tensor, radius: int, *, struct: StructPattern | None = None
) -> Tensor:
    r"""N2V2 replacement: each masked pixel takes the median of its neighbourhood, centre excluded.

    .. math::

        \tilde x_p = \operatorname{median}\left\{ x_{p+o} : o \in \{-r, \dots, r\}^d
        \setminus (\{0\} \cup S) \right\},

    the lower median for an even count (so the value is one of the neighbours), with offsets that
    leave the patch mirrored (:math:`p - o`) and :math:`S` the struct pattern (empty for N2V2).
    Each channel uses its own neighbours.

    Parameters
    ----------
    x : Tensor, shape (B, C, [Z,] Y, X)
        Noisy batch (not modified).
    mask : Tensor of bool, same shape
        Pixels to replace, at least ``radius + 1`` apart (see :func:`stratified_mask`).
    radius : int
        Neighbourhood radius :math:`r`.
    struct : StructPattern, optional
        Offsets excluded from the neighbourhood (structN2V with median replacement).

    Returns
    -------
    Tensor
        A copy of ``x`` with the masked pixels replaced.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(25.0).view(1, 1, 5, 5)
    >>> mask = torch.zeros(1, 1, 5, 5, dtype=torch.bool)
    >>> mask[0, 0, 2, 2] = True
    >>> replace_median(x, mask, 1)[0, 0, 2, 2].item()  # median of 6, 7, 8, 11, 13, 16, 17, 18
    11.0
    """
    x = check_batch_tensor(x)
    mask = _check_mask(mask, x)
    radius = _check_radius(radius)
    struct = _check_struct(struct)
    ndim = x.ndim - 2
    _check_patch_size(x.shape[2:], radius)
    offsets = _neighbour_offsets(ndim, radius, struct, x.device)
    forbidden = mask if struct is None else mask | _dilate(mask, struct.for_ndim(ndim))
    coords = mask.nonzero()
    sources = _neighbourhood_index(x.shape, coords, radius, offsets)  # (N, K) linear indices
    _check_sources_unmasked(forbidden, sources)
    return _scatter(x, tuple(coords.T), torch.take(x, sources).median(dim=1).values)


def apply_struct_mask(
    x: Tensor,
    mask: Tensor,
    struct: StructPattern,
    generator: torch.Generator,
    *,
    fill: StructFill = "uniform",
) -> Tensor:
    r"""structN2V: hide the pattern pixels around each masked pixel behind random values.

    Every pixel :math:`p + o`, :math:`o \in S`, of a masked pixel :math:`p` (inside the patch and
    not itself masked) gets an independent random value

    * ``fill="uniform"``: :math:`\mathcal{U}[\min U, \max U]`, or
    * ``fill="gaussian"``: :math:`\mathcal{N}(\operatorname{mean} U, \operatorname{std} U^2)`,

    where :math:`U` are the *untouched* pixels (neither masked nor pattern) of the same sample and
    channel, so the fill carries no information about the hidden values. The masked pixels
    themselves are left as they are (replace them first with :func:`replace_uniform` or
    :func:`replace_median` with the same ``struct``).

    Parameters
    ----------
    x : Tensor, shape (B, C, [Z,] Y, X)
        Batch whose masked pixels were already replaced (not modified).
    mask : Tensor of bool, same shape
        The masked pixels.
    struct : StructPattern
        The pattern, e.g. ``StructPattern.line(5, "X")`` for horizontally correlated noise.
    generator : torch.Generator
        Draws the fill values.
    fill : {"uniform", "gaussian"}
        Distribution of the fill values.

    Returns
    -------
    Tensor
        A copy of ``x`` with the pattern pixels filled.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(1, 1, 8, 8)
    >>> mask = torch.zeros(1, 1, 8, 8, dtype=torch.bool)
    >>> mask[0, 0, 4, 4] = True
    >>> out = apply_struct_mask(x, mask, StructPattern.line(3, "X"), torch.Generator().manual_seed(0))
    >>> changed = (out != x)[0, 0].nonzero().tolist()
    >>> changed == [[4, 3], [4, 5]]
    True
    """
    x = check_batch_tensor(x)
    mask = _check_mask(mask, x)
    if not isinstance(struct, StructPattern):
        _check_struct(struct)
        raise InfocusInputError(
            "apply_struct_mask needs a StructPattern, e.g. StructPattern.line(5)."
        )
    if fill not in ("uniform", "gaussian"):
        raise InfocusInputError(f"Unknown struct fill {fill!r}; choose 'uniform' or 'gaussian'.")
    pattern = _dilate(mask, struct.for_ndim(x.ndim - 2))
    untouched = ~(mask | pattern)
    dims = tuple(range(2, x.ndim))
    count = untouched.sum(dim=dims)
    empty = count == 0
    coords = pattern.nonzero()
    lead = (coords[:, 0], coords[:, 1])
    if fill == "uniform":
        low = torch.where(untouched, x, torch.inf).amin(dim=dims)
        high = torch.where(untouched, x, -torch.inf).amax(dim=dims)
        low = torch.where(empty, 0.0, low)
        high = torch.where(empty, 0.0, high)
        draw = _random((coords.shape[0],), generator, x.dtype).to(x.device)
        values = _gather(low, lead) + draw * _gather(high - low, lead)
    else:
        n = count.clamp_min(1).to(x.dtype)
        mean = torch.where(untouched, x, 0.0).sum(dim=dims) / n
        centred = torch.where(untouched, x - mean[(...,) + (None,) * len(dims)], 0.0)
        std = (centred.square().sum(dim=dims) / n).sqrt()
        draw = torch.randn(
            (coords.shape[0],), generator=generator, device=generator.device, dtype=x.dtype
        ).to(x.device)
        values = _gather(mean, lead) + draw * _gather(std, lead)
    return _scatter(x, tuple(coords.T), values)


# --------------------------------------------------------------------------------------------
# the scheme
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Noise2Void(TrainingScheme):
    """Noise2Void-family training scheme: stratified blind spots + masked MSE.

    ``prepare`` draws a :func:`stratified_mask`, replaces the masked pixels
    (:func:`replace_uniform` for N2V, :func:`replace_median` for N2V2), hides the struct pattern
    (:func:`apply_struct_mask`, structN2V) and returns ``Batch(input=masked, target=noisy,
    mask=mask)``; ``loss`` is the MSE over the masked pixels only. Self-supervised: a ``target``
    passed to ``prepare`` is ignored.

    Parameters
    ----------
    fraction : float
        Expected fraction of masked pixels per patch (N2V: 0.002).
    radius : int
        The replacement neighbourhood is ``(2 * radius + 1) ** d`` pixels (N2V: 5x5).
    replacement : {"uniform", "median"}
        Random neighbour (N2V) or neighbourhood median (N2V2).
    struct : StructPattern, optional
        structN2V pattern hidden around each masked pixel.
    struct_fill : {"uniform", "gaussian"}
        Distribution of the values hiding the pattern (see :func:`apply_struct_mask`).
    channels : {"independent", "joint"}
        One mask per channel (default, as N2V; assumes noise independent across channels) or one
        mask shared by all channels.
    name : str
        Registry name.
    measures_correlation : bool
        Whether :meth:`fit` measures the noise's spatial correlation and widens the blind spot
        to cover it (N2V and N2V2 with ``blind_spot="auto"``).

    Examples
    --------
    >>> import torch
    >>> scheme = Noise2Void(fraction=0.01)
    >>> noisy = torch.rand(4, 1, 32, 32)
    >>> batch = scheme.prepare(noisy, None, torch.Generator().manual_seed(0))
    >>> bool(((batch.input != noisy) <= batch.mask).all())  # only masked pixels change
    True
    >>> float(scheme.loss(noisy, batch))  # the identity has zero loss on the original values
    0.0
    """

    fraction: float = 0.002
    radius: int = 2
    replacement: Literal["uniform", "median"] = "uniform"
    struct: StructPattern | None = None
    struct_fill: StructFill = "uniform"
    channels: ChannelMode = "independent"
    name: str = "n2v"
    measures_correlation: bool = False

    needs_target: ClassVar[bool] = False
    blind_spot: ClassVar[bool] = True
    prediction_options: ClassVar[tuple[str, ...]] = ("pixel_fusion", "large_scales")

    @property
    def summary(self) -> str:  # type: ignore[override]
        return _SUMMARY.get(self.name, "")

    @property
    def citation(self) -> dict[str, str]:  # type: ignore[override]
        return _CITATION.get(self.name, {})

    @property
    def default_network(self) -> str:  # type: ignore[override]
        """N2V2 pairs its median replacement with the blur-pool U-Net without a top skip."""
        return "unet_n2v2" if self.name == "n2v2" else "unet"

    def __post_init__(self) -> None:
        _check_radius(self.radius)
        _check_channels(self.channels)
        struct = _check_struct(self.struct)
        if self.replacement not in ("uniform", "median"):
            raise InfocusInputError(
                f"Unknown replacement {self.replacement!r}; choose 'uniform' (N2V) or "
                "'median' (N2V2)."
            )
        if self.struct_fill not in ("uniform", "gaussian"):
            raise InfocusInputError(
                f"Unknown struct fill {self.struct_fill!r}; choose 'uniform' or 'gaussian'."
            )
        # Fail now, not at the first batch, when the fraction is too high even for 2-D patches.
        ndim = max(2, struct.ndim if struct is not None else 2)
        probe = torch.Generator().manual_seed(0)
        stratified_mask((1,) * ndim, self.fraction, probe, radius=self.radius, struct=struct)

    @property
    def rotation_invariant(self) -> bool:
        """Whether a 90° turn of the Y/X plane maps the hidden pattern onto itself.

        When it does not (a line along X for row noise), training must not rotate patches: a
        turned patch carries its correlated noise along Y, where nothing is hidden.
        """
        if self.struct is None:
            return True
        offsets = set(self.struct.for_ndim(max(2, self.struct.ndim)))
        return {o[:-2] + (o[-1], o[-2]) for o in offsets} == offsets

    def prepare(self, noisy: Tensor, target: Tensor | None, generator: torch.Generator) -> Batch:
        """Mask ``noisy`` ``(B, C, [Z,] Y, X)``; ``target`` is ignored (self-supervised)."""
        noisy = check_batch_tensor(noisy)
        b, c, *spatial = noisy.shape
        _check_patch_size(spatial, self.radius)
        per_mask = (b, 1) if self.channels == "joint" else (b, c)
        mask = stratified_mask(
            spatial,
            self.fraction,
            generator,
            noisy.device,
            radius=self.radius,
            struct=self.struct,
            batch_shape=per_mask,
        ).expand_as(noisy)
        if self.replacement == "median":
            masked = replace_median(noisy, mask, self.radius, struct=self.struct)
        else:
            masked = replace_uniform(
                noisy, mask, self.radius, generator, struct=self.struct, channels=self.channels
            )
        if self.struct is not None:
            masked = apply_struct_mask(masked, mask, self.struct, generator, fill=self.struct_fill)
        return Batch(input=masked, target=noisy, mask=mask.contiguous())

    def loss(self, prediction: Tensor, batch: Batch) -> Tensor:
        """MSE over the masked pixels only."""
        return masked_loss(prediction, batch.target, batch.mask)

    def defaults_for(self, ndim: int) -> dict[str, Any]:
        """The masked fraction for 2-D or 3-D data (:data:`MASKED_FRACTION`)."""
        # Methods built on N2V's blind spot (DecoNoising, DenoiSeg) take N2V's fractions.
        fractions = MASKED_FRACTION.get(self.name, MASKED_FRACTION["n2v"])
        return {"fraction": fractions[ndim]}

    def fit(self, data: FitData) -> Fitted:
        """N2V/N2V2 with ``blind_spot="auto"`` (the default): measure the noise correlation and
        hide every neighbour it reaches; ``"pixel"``: the classic one-pixel blind spot.

        The correlation is measured on up to 8 planes (1024² crops) of the training images and
        combined by :meth:`~infocus.noise.NoiseCorrelation.combine` (the majority decides, with
        a warning when the images disagree). The offsets go into the options, so the saved model
        and a resumed run use the same ones; what was measured goes into the model's state.
        """
        state: dict[str, Any] = {}
        channels = int(data.inputs[0].shape[0]) if len(data.inputs) else 1
        if channels > 1:
            # The network sees the channels together: prediction restores the measured large
            # scales per channel by default (finish), so objects keep their channel ratios.
            state["channels_together"] = channels
        if not self.measures_correlation:
            _store_fusion_noise(state, data, self._fuses_by_default(None))
            return Fitted(state=state)
        options: dict[str, Any] = {}
        choice = data.options.get("blind_spot", "auto")
        if choice == "pixel":
            options["blind_spot"] = []
        elif choice == "auto":
            options["blind_spot"], state["noise_correlation"] = _measured_pattern(data)
        pattern = options.get("blind_spot", choice)
        if pattern and "fraction" not in data.options:
            # The default fraction packs blind spots as densely as a one-pixel blind spot
            # allows; a hidden pattern needs them further apart.
            struct = StructPattern(tuple(tuple(o) for o in pattern))
            radius = radius_for_pattern(int(data.options.get("radius", 2)), struct)
            default = self.defaults_for(data.ndim).get("fraction", 1.0)
            options["fraction"] = min(default, max_fraction(radius, struct, data.ndim))
        _store_fusion_noise(state, data, self._fuses_by_default(pattern))
        return Fitted(options=options, state=state)

    def _fuses_by_default(self, pattern: object) -> bool:
        """Whether prediction fuses with the noisy pixel unless told otherwise (:meth:`finish`;
        methods built on N2V that predict otherwise offer no ``pixel_fusion``)."""
        return "pixel_fusion" in self.prediction_options and self.struct is None and not pattern

    def finish(
        self, outputs: np.ndarray, noisy: np.ndarray, context: PredictionContext
    ) -> dict[str, np.ndarray]:
        """Denormalise, then fuse with the noisy pixel the network never saw
        (:func:`fuse_blind_spot_prediction`); by default only for a one-pixel blind spot on
        noise measured as white. Then, for a network that sees several channels together
        (option ``large_scales``, on by default for those), give every channel the
        measurement's large scales (:func:`~infocus.intensity.restore_large_scales`): such a
        network predicts each channel partly from the others, which moves objects' channel
        ratios beyond the noise (docs/benchmarks.md, "Context: channel ratios")."""
        from infocus.intensity import restore_large_scales

        predicted = context.target_norm.denormalize(outputs, channel_axis=0)
        fuse = context.request.options.get("pixel_fusion")
        if fuse is None:
            fuse = self.struct is None and not _measured_correlated(context.state)
        if fuse:
            fuse_blind_spot_prediction(predicted, noisy, context.spatial,
                                       fusion_noise(context.state))
        restore = context.request.options.get("large_scales")
        if restore is None:
            restore = _channels_together(context.state)
        if restore:  # each YX plane of each channel on its own
            predicted = restore_large_scales(predicted, noisy)
        return {"denoised": predicted}

    def export_limits(self, state: dict[str, Any]) -> list[str]:
        """Pixel fusion and the restored large scales, where the prediction would use them by
        default."""
        limits = [FUSION_LOST] if self.struct is None and not _measured_correlated(state) else []
        return limits + ([LARGE_SCALES_LOST] if _channels_together(state) else [])


def _channels_together(state: dict[str, Any]) -> bool:
    """Whether the network was trained on several channels at once (``channels="joint"``)."""
    return int(state.get("channels_together", 1)) > 1


def _measured_pattern(data: FitData) -> tuple[list[list[int]], dict[str, Any]]:
    """The offsets to hide for the measured noise correlation (said to the user), and what was
    measured."""
    from infocus.noise.correlation import describe_pattern, share_correlated

    correlation, measured, summary = measure_noise_correlation(data)
    pattern = correlation.blind_pattern()
    correlated, usable = share_correlated(measured)
    if usable == 0:
        data.say("Noise correlation not measurable (images too small or flat); one-pixel "
                 "blind spot.")
    elif pattern:
        data.say(f"Measured {correlation.describe()}: hiding {describe_pattern(pattern)} "
                 "around every blind spot (pass blind_spot='pixel' for the classic one-pixel "
                 "blind spot).")
    else:
        data.say(f"Measured {correlation.describe()}: one-pixel blind spot.")
    if usable and 0 < correlated < usable:
        data.say(f"Warning: the noise is spatially correlated in {correlated} of {usable} "
                 "sampled images but not in the others (several cameras?); the blind spot "
                 "suits the majority. Train the two kinds of images separately for the best "
                 "result.")
    return [list(o) for o in pattern], summary


def _measured_correlated(state: dict[str, Any]) -> bool:
    return bool((state.get("noise_correlation") or {}).get("correlated", False))


def measure_noise_correlation(data: FitData) -> tuple[Any, list[Any], dict[str, Any]]:
    """The noise correlation of the training images: combined, per plane, and as stored.

    Plane by plane, because a training set may mix cameras and the majority decides. Large
    crops: the estimator keeps the flattest quarter of its 16² blocks, and on a densely
    structured frame (Convallaria) a 256² crop has too few flat blocks, so structure read as
    correlation (0.33/0.35 there, 0.18/0.23 on the whole 1024² frame).
    """
    from infocus.noise.correlation import NoiseCorrelation, estimate_noise_correlation

    planes = data.planes("inputs", size=1024, max_planes=8)
    measured = [estimate_noise_correlation(plane) for channel in planes for plane in channel]
    combined = NoiseCorrelation.combine(measured)
    summary = {**combined.to_dict(), "correlated": bool(combined.blind_pattern())}
    return combined, measured, summary


#: Edge of the central crop whose noise model the pixel fusion uses. 256² measures the mean
#: noise variance (what the fusion weight needs) as well as 512² within the estimator's own
#: spread: on human_mitosis and stardist nuclei at 30, 100 and 1000 photons (three noise
#: draws each) the two crops differed by a median 1.5 % (at most 9 %), while draws of the
#: same crop differed by up to 10 %; and it costs a quarter of the time, which on a 1024²
#: image was a third of the whole prediction.
FUSION_CROP = 256


def fuse_blind_spot_prediction(
    predicted: np.ndarray,
    noisy: np.ndarray,
    spatial: str,
    trained: Sequence[NoiseParams | None] | None = None,
) -> None:
    """Fuse each channel of ``predicted`` (in place) with its noisy pixels
    (:func:`~infocus.intensity.fuse_with_noisy`).

    Each image gets its own noise model (so a frame of a stack comes out as it would alone),
    from a central crop of :data:`FUSION_CROP`² pixels per plane: the channel's ``trained``
    noise model (measured on the training images, :func:`fusion_noise`) where
    :func:`~infocus.intensity.noise_agreement` finds it within
    :data:`~infocus.intensity.fusion.NOISE_AGREEMENT` of the crop's noise (about 1 ms), else
    the crop's own estimate (:func:`~infocus.noise.estimate_noise`, ~80 ms per 256² plane,
    which was half the prediction time of a 256² image).
    """
    from infocus.intensity import estimate_noise_or_none, fuse_with_noisy

    for c in range(predicted.shape[0]):
        known = trained[c] if trained is not None and c < len(trained) else None
        noise = estimate_noise_or_none(_central_crop(noisy[c], FUSION_CROP), spatial, known)
        if noise is not None:
            predicted[c], _ = fuse_with_noisy(noisy[c], predicted[c], spatial, noise)


#: Most training planes (``FUSION_CROP``² crops) pooled for the stored fusion noise model.
FUSION_TRAINING_PLANES = 4


def _store_fusion_noise(state: dict[str, Any], data: FitData, fused: bool) -> None:
    """Keep the noise model of the training images per channel (``state["fusion_noise"]``,
    ``[gain, intercept]`` or None) for the pixel fusion, when it would fuse by default.

    Pooled over up to :data:`FUSION_TRAINING_PLANES` central crops of :data:`FUSION_CROP`²,
    it is more precise than a single image's estimate; prediction uses it for images whose
    noise agrees with it (:func:`fuse_blind_spot_prediction`).
    """
    from infocus.intensity import estimate_noise_or_none

    if not fused or not len(data.inputs):
        return
    planes = data.planes("inputs", size=FUSION_CROP, max_planes=FUSION_TRAINING_PLANES)
    models = [estimate_noise_or_none(channel, "SYX") for channel in planes]
    if all(m is None for m in models):
        return  # too small or flat: each image's own estimate decides, as before
    state["fusion_noise"] = [
        None if m is None else [float(m.gain), float(m.variance_intercept)] for m in models
    ]


def fusion_noise(state: dict[str, Any]) -> list[NoiseParams | None] | None:
    """The training images' noise model per channel stored by :meth:`Noise2Void.fit` (None for
    models saved before it was stored, or trained without pixel fusion)."""
    stored = state.get("fusion_noise")
    if not stored:
        return None
    return [
        None if m is None else NoiseParams(gain=float(m[0]), variance_intercept=float(m[1]))
        for m in stored
    ]


def _central_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size``² window of the last two axes (the whole image when smaller)."""
    h, w = image.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[..., top : top + size, left : left + size]


#: Share of pixels masked per patch by N2V, N2V2 and structN2V, by spatial dimensionality.
#: Noise2Void used 0.2 %; masking more pixels gives more loss terms per step and converged
#: faster per CPU-second in our measurements (docs/benchmarks.md, "Choosing the defaults"),
#: up to the density at which masked pixels would sit inside each other's neighbourhood.
MASKED_FRACTION = {
    "n2v": {2: 0.04, 3: 0.02},
    "n2v2": {2: 0.04, 3: 0.02},
    "structn2v": {2: 0.02, 3: 0.005},
}

_SUMMARY = {
    "n2v": "Noise2Void: blind-spot training on the noisy image (Krull et al. 2019).",
    "n2v2": "N2V2: median blind spot, blur-pool U-Net, no checkerboard (Höck et al. 2022).",
    "structn2v": "structN2V: blind line for stripe-correlated noise (Broaddus et al. 2020).",
}

_CITATION = {
    "n2v": {"text": "Krull, Buchholz, Jug. Noise2Void - learning denoising from single noisy "
                    "images. CVPR 2019.", "doi": "10.48550/arXiv.1811.10980"},
    "n2v2": {"text": "Höck et al. N2V2 - fixing Noise2Void checkerboard artifacts with modified "
                     "sampling strategies and a tweaked network architecture. ECCV Workshops "
                     "2022.", "doi": "10.48550/arXiv.2211.08512"},
    "structn2v": {"text": "Broaddus, Krull, Weigert, Schmidt, Myers. Removing structured noise "
                          "with self-supervised blind-spot networks. ISBI 2020.",
                  "doi": "10.1109/ISBI45749.2020.9098336"},
}

#: What an exported graph loses when the method would fuse with the noisy pixel.
FUSION_LOST = ("Pixel fusion is left out: the exported model gives the blind-spot network's "
               "prediction alone, without weighing in the noisy pixel it never saw (as infocus "
               "predict --no-pixel-fusion does).")


LARGE_SCALES_LOST = ("The restored large scales are left out: the exported model gives the "
                     "network's prediction of each channel, without the measurement's large "
                     "scales that keep objects' channel ratios (as infocus predict "
                     "--no-large-scales does).")


#: How the pixels of a measured blind-spot pattern are hidden. Gaussian values with the
#: untouched pixels' mean and spread disturb the network's input less than structN2V's uniform
#: [min, max] draws: on the FMD widefield images (3x3 pattern, 4 % masked, 1200 steps) N2V
#: reached 30.13 dB with it against 29.52 dB with uniform draws.
_MEASURED_FILL: StructFill = "gaussian"


def _pattern(blind_spot: Sequence[Sequence[int]] | str | None) -> StructPattern | None:
    """The hidden pattern of a wider blind spot (None for the classic one-pixel blind spot, and
    for ``"auto"``/``"pixel"`` until :meth:`Noise2Void.fit` resolves them)."""
    if isinstance(blind_spot, str):
        if blind_spot.lower() not in ("auto", "pixel"):
            raise InfocusInputError(
                f"Unknown blind_spot {blind_spot!r}; use 'auto' (measure the noise correlation), "
                "'pixel' (the classic one-pixel blind spot) or a list of (dy, dx) offsets to hide."
            )
        return None
    if blind_spot is None or len(blind_spot) == 0:
        return None
    return StructPattern(tuple(tuple(int(v) for v in o) for o in blind_spot))


def radius_for_pattern(radius: int, struct: StructPattern | None) -> int:
    """The replacement radius to use with ``struct``: it must reach beyond the hidden pattern."""
    if struct is None:
        return radius
    return max(radius, max(struct.reach(struct.ndim)) + 1)


def max_fraction(radius: int, struct: StructPattern | None, ndim: int) -> float:
    """Highest masked fraction :func:`stratified_mask` accepts for this radius and pattern."""
    reach = struct.reach(ndim) if struct is not None else (0,) * ndim
    return float(max(radius + 1 + e for e in reach)) ** -ndim


def _measured_blind_spot(name: str, replacement: Literal["uniform", "median"]
                         ) -> Callable[..., Noise2Void]:
    def factory(
        *,
        fraction: float = 0.002,
        radius: int = 2,
        channels: ChannelMode = "independent",
        blind_spot: Sequence[Sequence[int]] | str = "auto",
    ) -> Noise2Void:
        struct = _pattern(blind_spot)
        return Noise2Void(fraction, radius_for_pattern(radius, struct), replacement, struct,
                          _MEASURED_FILL, channels=channels, name=name,
                          measures_correlation=True)

    return factory


SCHEMES.register("n2v")(_measured_blind_spot("n2v", "uniform"))
SCHEMES.register("n2v2")(_measured_blind_spot("n2v2", "median"))
"""Noise2Void (random-neighbour replacement) and N2V2 (median replacement, centre excluded);
``blind_spot``: ``"auto"`` measures the noise correlation and hides the correlated neighbours,
``"pixel"`` keeps one pixel, or a list of ``(dy, dx)`` offsets to hide."""


@SCHEMES.register("structn2v")
def _structn2v(
    *,
    fraction: float = 0.002,
    radius: int = 2,
    struct_length: int = 5,
    struct_axis: str = "X",
    struct_fill: StructFill = "uniform",
    replacement: Literal["uniform", "median"] = "uniform",
    channels: ChannelMode = "independent",
) -> Noise2Void:
    """structN2V: N2V plus a hidden line of ``struct_length`` pixels along ``struct_axis``."""
    struct = StructPattern.line(struct_length, struct_axis)
    return Noise2Void(
        fraction, radius, replacement, struct, struct_fill, channels=channels, name="structn2v"
    )
