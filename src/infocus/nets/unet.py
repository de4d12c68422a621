"""The U-Net of CARE, Noise2Noise and Noise2Void, and its N2V2 variant.

Architecture for ``depth = 2``, ``base_filters = f`` and ``c`` input channels (``ConvBlock(a→b→c)``:
two 3x3 conv + norm + ReLU stages with the channel counts shown)::

    input ─ ConvBlock(c→f→f) ──────────────────────────── skip ─┐ (absent if skip_top=False)
              pool                                               cat ─ ConvBlock(2f→f→f) ─ 1x1 ─ (+ input)
              ConvBlock(f→2f→2f) ─────────────── skip ─┐         up
                pool                                    cat ─ ConvBlock(4f→2f→f)
                ConvBlock(2f→4f→2f)  (bottleneck) ─ up ─┘

Level ``n`` of the encoder has ``f 2**n`` filters, the bottleneck ``f 2**depth``; the decoder
block of level ``n`` maps the concatenation to ``f 2**n`` and then to the channel count of the
level above (``f 2**(n-1)``, or ``f`` at the top). This is the layout of CARE's Keras U-Net
(CSBDeep's ``unet_block``; Weigert et al. 2018) and of CAREamics' ``UNet``, so with CAREamics'
defaults (``depth=2``, 32 filters, batch norm) both have 333,729 parameters in 2-D.

References
----------
Ronneberger, Fischer & Brox (2015), "U-Net: convolutional networks for biomedical image
segmentation", MICCAI. Weigert et al. (2018), "Content-aware image restoration: pushing the
limits of fluorescence microscopy", Nature Methods 15. Höck et al. (2022), "N2V2 - fixing
Noise2Void checkerboard artifacts with modified sampling strategies and a tweaked network
architecture", ECCV Workshops (BIC). Zhang (2019), "Making convolutional networks
shift-invariant again", ICML.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from infocus._errors import InfocusInputError
from infocus.nets._registry import NETWORKS
from infocus.nets.blocks import (
    ConvBlock,
    MaxBlurPool,
    check_input_tensor,
    check_ndim,
    conv,
    max_pool,
    positive_int,
    upsample,
)

__all__ = ["UNet", "unet_n2v2"]


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise InfocusInputError(f"{name} must be True or False, got {value!r}.")
    return bool(value)


class UNet(nn.Module):
    r"""U-Net for image-to-image regression in 2-D or 3-D (CARE; N2V2 with two switches).

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensionality: inputs are ``(B, C, H, W)`` or ``(B, C, D, H, W)``.
    in_channels, out_channels : int
        Channels of the input and of the output.
    depth : int
        Number of 2x downsamplings; every spatial size must be a multiple of ``2**depth``.
    base_filters : int
        Filters of the full-resolution level; they double at every level down.
    residual : bool
        Add the input to the output, so the network learns the correction
        :math:`\hat y = x + f_\theta(x)` (CARE's ``residual``); needs
        ``in_channels == out_channels``.
    blur_pool : bool
        Downsample with anti-aliased max-blur-pooling (:class:`~infocus.nets.blocks.MaxBlurPool`,
        Zhang 2019) instead of 2x max-pooling, as N2V2 does.
    skip_top : bool
        Keep the skip connection at full resolution. N2V2 drops it (``False``): the top skip
        lets a blind-spot network pass high-frequency noise of the neighbours straight to the
        output, one source of N2V's checkerboard artefacts (Höck et al. 2022).
    batch_norm : bool
        Batch normalisation after every 3x3 convolution.

    Attributes
    ----------
    size_multiple : int
        ``2**depth``; spatial sizes must be multiples of it.
    receptive_field : int
        Input pixels along one axis that can influence one output pixel (see below).
    receptive_radius : int
        Farthest distance, along one axis, of an input pixel that can influence an output
        pixel; at least ``receptive_field // 2`` (the window need not be centred).
    config : dict
        The constructor arguments; ``UNet(**model.config)`` rebuilds the architecture.

    Notes
    -----
    *Output alignment and tiling.* All convolutions are 'same'-padded, so the output has the
    input's spatial shape. Away from the image border (farther than the receptive field), the
    network commutes with translations by multiples of ``size_multiple``; tiles whose origins
    are multiples of ``size_multiple`` and that overlap by at least the receptive field can
    therefore be stitched without seams.

    *Receptive field.* Computed exactly, without weights, by following dependencies along one
    axis through the layer graph: each pixel of every feature map carries the interval of input
    positions it depends on; a 3x3 convolution takes the union over its three taps, a pooling
    over its window (2 samples; 4 consecutive ones for max-blur-pooling, whose dense max and
    three-tap blur overlap), linear upsampling over its two source pixels, a concatenation over
    both inputs. Intervals of a 2**depth-periodic run of interior output pixels are measured and
    the widest is reported (the width varies with the output pixel's phase, because
    upsampling reads the coarse grid asymmetrically). For ``depth=2`` it is 52 pixels with
    max-pooling and 58 with max-blur-pooling (``depth=3``: 116 and 130); the skip connections
    never widen it, since the deepest path dominates. Each axis is the same; in 3-D the
    field is a cube of that side.
    """

    #: What the network computes: an image of the input's spatial shape (see
    #: :func:`infocus.nets.network_kind`).
    kind: ClassVar[str] = "image-to-image"

    def __init__(
        self,
        ndim: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        depth: int = 2,
        base_filters: int = 32,
        residual: bool = False,
        blur_pool: bool = False,
        skip_top: bool = True,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        ndim = check_ndim(ndim)
        in_channels = positive_int("in_channels", in_channels)
        out_channels = positive_int("out_channels", out_channels)
        depth = positive_int("depth", depth)
        base_filters = positive_int("base_filters", base_filters)
        residual = _flag("residual", residual)
        blur_pool = _flag("blur_pool", blur_pool)
        skip_top = _flag("skip_top", skip_top)
        batch_norm = _flag("batch_norm", batch_norm)
        if residual and in_channels != out_channels:
            raise InfocusInputError(
                f"A residual UNet adds its input to its output, so in_channels ({in_channels}) "
                f"must equal out_channels ({out_channels}); set residual=False or make them equal."
            )
        self._config: dict[str, Any] = {
            "ndim": ndim,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "depth": depth,
            "base_filters": base_filters,
            "residual": residual,
            "blur_pool": blur_pool,
            "skip_top": skip_top,
            "batch_norm": batch_norm,
        }
        self.ndim = ndim
        self.depth = depth
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.residual = residual
        self.skip_top = skip_top
        norm_kind = "batch" if batch_norm else "none"

        def filters(level: int) -> int:
            return base_filters * 2**level

        self.encoder = nn.ModuleList()
        self.pools = nn.ModuleList()
        channels = in_channels
        for level in range(depth):
            self.encoder.append(
                ConvBlock(ndim, channels, filters(level), filters(level), norm_kind=norm_kind)
            )
            self.pools.append(
                MaxBlurPool(ndim, channels=filters(level)) if blur_pool else max_pool(ndim)
            )
            channels = filters(level)
        self.bottleneck = ConvBlock(
            ndim, channels, filters(depth), filters(depth - 1), norm_kind=norm_kind
        )
        self.upsample = upsample(ndim)
        # decoder[level] is used on the way up; its input is the upsampled map (f 2**level
        # channels) concatenated with the encoder output of the same level (f 2**level).
        self.decoder = nn.ModuleList()
        for level in range(depth):
            skip = level > 0 or skip_top
            self.decoder.append(
                ConvBlock(
                    ndim,
                    filters(level) * (2 if skip else 1),
                    filters(level),
                    filters(max(level - 1, 0)),
                    norm_kind=norm_kind,
                )
            )
        self.head = conv(ndim, base_filters, out_channels, kernel_size=1)
        self._receptive_field, self._receptive_radius = _receptive_window(
            depth, blur_pool=blur_pool, skip_top=skip_top)

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments (a copy): ``UNet(**config)`` rebuilds this architecture."""
        return dict(self._config)

    @property
    def size_multiple(self) -> int:
        """Every spatial size of the input must be a multiple of this (``2**depth``)."""
        return 2**self.depth

    @property
    def receptive_field(self) -> int:
        """Width in pixels, along each axis, of the input window one output pixel depends on."""
        return self._receptive_field

    @property
    def receptive_radius(self) -> int:
        """Farthest input pixel, along each axis and on either side, one output pixel depends
        on: a tile prediction is exact farther than this from the tile's inner edges."""
        return self._receptive_radius

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a batch: ``(B, C_in, *spatial) -> (B, C_out, *spatial)``."""
        self._check_input(x)
        skips: list[torch.Tensor | None] = []
        h = x
        for level, (block, pool) in enumerate(zip(self.encoder, self.pools, strict=True)):
            h = block(h)
            skips.append(h if level > 0 or self.skip_top else None)
            h = pool(h)
        h = self.bottleneck(h)
        for level in reversed(range(self.depth)):
            h = self.upsample(h)
            skip = skips[level]
            if skip is not None:
                h = torch.cat([h, skip], dim=1)
            h = self.decoder[level](h)
        out = self.head(h)
        if self.residual:
            out = out + x
        return out

    def _check_input(self, x: torch.Tensor) -> None:
        check_input_tensor(x, "UNet", self.ndim, self.in_channels, self.size_multiple)


@NETWORKS.register("unet_n2v2")
def unet_n2v2(
    ndim: int = 2,
    in_channels: int = 1,
    out_channels: int = 1,
    depth: int = 2,
    base_filters: int = 32,
    residual: bool = False,
    blur_pool: bool = True,
    skip_top: bool = False,
    batch_norm: bool = True,
) -> UNet:
    """The N2V2 U-Net (Höck et al. 2022): :class:`UNet` with N2V2's defaults.

    Max-blur-pooling replaces max-pooling (``blur_pool=True``), the full-resolution skip
    connection is removed (``skip_top=False``) and the output is not residual. Every argument
    can still be overridden; the arguments are those of :class:`UNet`.
    """
    return UNet(
        ndim=ndim,
        in_channels=in_channels,
        out_channels=out_channels,
        depth=depth,
        base_filters=base_filters,
        residual=residual,
        blur_pool=blur_pool,
        skip_top=skip_top,
        batch_norm=batch_norm,
    )


NETWORKS.register("unet")(UNet)


# --- receptive field ------------------------------------------------------------------------


def _receptive_window(depth: int, *, blur_pool: bool, skip_top: bool) -> tuple[int, int]:
    """Widest input window (pixels, one axis) an interior output pixel of the UNet depends on,
    and the farthest input pixel on either side of it (the window is not always centred).

    Follows the layer graph of :meth:`UNet.forward` along one axis on a line long enough that
    borders do not reach the measured interior; ``lo``/``hi`` hold, per pixel of a feature map,
    the first/last input position it depends on.
    """
    period = 2**depth
    n = period * 128

    def neighbours(lo: np.ndarray, hi: np.ndarray, taps: range) -> tuple[np.ndarray, np.ndarray]:
        # union over x[i + t], t in taps, clipped at the ends (only the interior is used)
        idx = np.arange(lo.size)
        new_lo, new_hi = lo.copy(), hi.copy()
        for t in taps:
            j = np.clip(idx + t, 0, lo.size - 1)
            new_lo, new_hi = np.minimum(new_lo, lo[j]), np.maximum(new_hi, hi[j])
        return new_lo, new_hi

    def conv_block(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        for _ in range(2):
            lo, hi = neighbours(lo, hi, range(-1, 2))
        return lo, hi

    def pool(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # max-pool: output i <- 2i, 2i+1; max-blur-pool: dense max m[k] <- k, k+1, then the
        # blur reads m[2i-1..2i+1], i.e. inputs 2i-1 .. 2i+2
        taps = range(-1, 3) if blur_pool else range(2)
        lo, hi = neighbours(lo, hi, taps)
        return lo[::2], hi[::2]

    def up(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # linear 2x upsampling, half-pixel centres: fine p <- coarse (p-1)//2 and (p-1)//2 + 1
        fine = np.arange(2 * lo.size)
        a = np.clip((fine - 1) // 2, 0, lo.size - 1)
        b = np.clip((fine - 1) // 2 + 1, 0, lo.size - 1)
        return np.minimum(lo[a], lo[b]), np.maximum(hi[a], hi[b])

    lo = hi = np.arange(n)
    skips = []
    for _ in range(depth):
        lo, hi = conv_block(lo, hi)
        skips.append((lo, hi))
        lo, hi = pool(lo, hi)
    lo, hi = conv_block(lo, hi)
    for level in reversed(range(depth)):
        lo, hi = up(lo, hi)
        if level > 0 or skip_top:
            lo, hi = np.minimum(lo, skips[level][0]), np.maximum(hi, skips[level][1])
        lo, hi = conv_block(lo, hi)
    interior = slice(n // 2, n // 2 + period)
    position = np.arange(n)[interior]
    width = int(np.max(hi[interior] - lo[interior] + 1))
    radius = int(max(np.max(position - lo[interior]), np.max(hi[interior] - position)))
    return width, radius
