"""Building blocks of the denoising networks, for 2-D (``ndim=2``) and 3-D (``ndim=3``) images.

Every factory takes the spatial dimensionality ``ndim`` first, so one architecture file serves
both ``(B, C, H, W)`` and ``(B, C, D, H, W)`` tensors.

Design choices
--------------
* Convolutions are 3x3 (3x3x3) with zero padding 1: the spatial size is kept, as in CARE
  (Weigert et al. 2018) and CAREamics, so the network output aligns pixel by pixel with its input.
* Downsampling is a 2x max-pool, or for N2V2 the anti-aliased :class:`MaxBlurPool`
  (max-pool evaluated densely, then :class:`BlurPool`), after Zhang (2019).
* Upsampling is :func:`upsample`: fixed (bi/tri)linear interpolation by 2, followed, in the
  decoder, by the 3x3 convolutions of the next :class:`ConvBlock`. A stride-2 transposed
  convolution would be the other choice; its kernel overlaps unevenly and paints checkerboard
  patterns into the output (Odena, Dumoulin & Olah 2016, "Deconvolution and checkerboard
  artifacts"), which is exactly the artefact N2V2 sets out to remove. Linear interpolation is a
  low-pass (anti-imaging) filter, has no weights, and is what CAREamics uses, so parameter counts
  stay comparable.
"""

from __future__ import annotations

import numbers
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from infocus._errors import InfocusInputError

__all__ = [
    "BlurPool",
    "ConvBlock",
    "MaxBlurPool",
    "activation",
    "check_input_tensor",
    "check_ndim",
    "conv",
    "dense_max",
    "max_pool",
    "norm",
    "positive_int",
    "upsample",
]

NormKind = Literal["batch", "none"]
PaddingMode = Literal["reflect", "replicate"]


def check_ndim(ndim: object) -> int:
    """Return ``ndim`` if it is 2 or 3, else raise :class:`InfocusInputError`."""
    if isinstance(ndim, bool) or ndim not in (2, 3):
        raise InfocusInputError(
            f"ndim must be 2 (images) or 3 (volumes), got {ndim!r}; pass ndim=2 or ndim=3."
        )
    return int(ndim)  # type: ignore[call-overload]


def conv(
    ndim: int, in_channels: int, out_channels: int, *, kernel_size: int = 3
) -> nn.Conv2d | nn.Conv3d:
    """A ``kernel_size``-wide convolution with 'same' zero padding (3x3 or 3x3x3 by default).

    The padding is ``kernel_size // 2``, so an odd kernel keeps the spatial size; ``kernel_size=1``
    gives the pixel-wise linear map used as the network head.
    """
    cls = nn.Conv2d if check_ndim(ndim) == 2 else nn.Conv3d
    return cls(in_channels, out_channels, kernel_size=kernel_size, padding=kernel_size // 2)


def norm(ndim: int, channels: int, kind: NormKind = "batch") -> nn.Module:
    """Batch normalisation over ``channels`` (Ioffe & Szegedy 2015), or ``nn.Identity`` for ``"none"``."""
    if kind == "none":
        return nn.Identity()
    if kind != "batch":
        raise InfocusInputError(f"Unknown normalisation {kind!r}; use 'batch' or 'none'.")
    return nn.BatchNorm2d(channels) if check_ndim(ndim) == 2 else nn.BatchNorm3d(channels)


def activation() -> nn.Module:
    """The non-linearity of every block: ReLU (in place, which is safe after a convolution/norm)."""
    return nn.ReLU(inplace=True)


def max_pool(ndim: int) -> nn.Module:
    """2x (2x2x2) max-pooling with stride 2: halves every spatial axis."""
    return nn.MaxPool2d(2) if check_ndim(ndim) == 2 else nn.MaxPool3d(2)


def upsample(ndim: int) -> nn.Module:
    """2x (bi/tri)linear upsampling with ``align_corners=False`` (half-pixel centres).

    With half-pixel centres an output pixel at fine position ``p`` reads the coarse positions
    ``floor((p - 1) / 2)`` and ``floor((p - 1) / 2) + 1``, the nearer one with weight 3/4, so the
    map commutes with coarse integer shifts: the property seamless tiled prediction needs.
    """
    mode = "bilinear" if check_ndim(ndim) == 2 else "trilinear"
    return nn.Upsample(scale_factor=2, mode=mode, align_corners=False)


def _binomial_kernel(ndim: int) -> torch.Tensor:
    """The normalised separable [1, 2, 1] filter as a ``(1, 1, 3, ...)`` tensor summing to 1."""
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float32) / 4.0
    kernel = taps
    for _ in range(ndim - 1):
        kernel = kernel[..., None] * taps
    return kernel[None, None]


class BlurPool(nn.Module):
    r"""Anti-aliased 2x downsampling: a fixed binomial low-pass, then stride-2 subsampling.

    Each channel is filtered separately (depthwise) with

    .. math::

        k = \tfrac{1}{4}[1, 2, 1] \otimes \tfrac{1}{4}[1, 2, 1] \;(\otimes \tfrac{1}{4}[1, 2, 1]),
        \qquad \sum k = 1,

    and every second sample is kept:
    :math:`y[i] = \sum_{t=-1}^{1} k[t]\, x[2i + t]`. The low-pass removes most of the
    frequencies above the new Nyquist limit before they alias, so the result depends far less on
    the input's sub-sampling phase than plain strided pooling (Zhang 2019, "Making convolutional
    networks shift-invariant again", ICML). The kernel is a buffer: fixed, never trained, moved
    with the module, and not stored in the state dict (it is a constant of the architecture).

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensionality.
    padding_mode : {"reflect", "replicate"}
        How the one-pixel border is extended before filtering; Zhang (2019) uses "reflect". Along
        an axis of length 1, where reflection is undefined, "replicate" is used.
    channels : int, optional
        Number of channels, when known: the per-channel kernel is then built once, which also
        lets the module be exported to ONNX (a kernel shaped from the input at run time cannot).

    Notes
    -----
    An axis of even length ``n`` becomes ``n / 2``; odd ``n`` becomes ``(n + 1) / 2``.
    """

    kernel: torch.Tensor

    def __init__(
        self, ndim: int, *, padding_mode: PaddingMode = "reflect", channels: int | None = None
    ) -> None:
        super().__init__()
        self.ndim = check_ndim(ndim)
        if padding_mode not in ("reflect", "replicate"):
            raise InfocusInputError(
                f"Unknown BlurPool padding {padding_mode!r}; use 'reflect' or 'replicate'."
            )
        self.padding_mode: PaddingMode = padding_mode
        self.channels = channels
        kernel = _binomial_kernel(self.ndim)
        if channels is not None:
            kernel = kernel.expand(channels, *kernel.shape[1:]).contiguous()
        self.register_buffer("kernel", kernel, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        mode = self.padding_mode
        if mode == "reflect" and min(x.shape[2:]) < 2:
            mode = "replicate"
        x = F.pad(x, (1, 1) * self.ndim, mode=mode)
        if self.channels is not None and channels == self.channels:
            weight = self.kernel.to(dtype=x.dtype)
        else:
            weight = self.kernel[:1].to(dtype=x.dtype).expand(channels, *self.kernel.shape[1:])
        convolve = F.conv2d if self.ndim == 2 else F.conv3d
        return convolve(x, weight, stride=2, groups=channels)

    def extra_repr(self) -> str:
        return f"ndim={self.ndim}, padding_mode={self.padding_mode!r}"


def dense_max(x: torch.Tensor) -> torch.Tensor:
    """2x (2x2x2) max over every window, stride 1: each spatial axis loses one sample.

    Equals ``MaxPool(kernel_size=2, stride=1)`` exactly, computed as one elementwise maximum of
    neighbours per axis (the max is separable), which on the CPU is several times faster than
    PyTorch's stride-1 max-pooling kernel.
    """
    for axis in range(2, x.ndim):
        n = x.shape[axis] - 1
        x = torch.maximum(x.narrow(axis, 0, n), x.narrow(axis, 1, n))
    return x


class MaxBlurPool(nn.Module):
    """Anti-aliased max-pooling (Zhang 2019): dense 2x max (stride 1), then :class:`BlurPool`.

    ``MaxPool(kernel 2, stride 2)`` is ``Subsample(Max(kernel 2, stride 1))``; Zhang inserts the
    low-pass between the two, keeping the max's non-linearity while removing its aliasing. This
    is the pooling of N2V2 (Höck et al. 2022) and of CAREamics' ``n2v2`` UNet. An axis of even
    length ``n`` becomes ``n / 2``, exactly like ``MaxPool``, and the pooled samples stay centred
    on the same half-pixel positions (``2i + 1/2``).
    """

    def __init__(
        self, ndim: int, *, padding_mode: PaddingMode = "reflect", channels: int | None = None
    ) -> None:
        super().__init__()
        self.ndim = check_ndim(ndim)
        self.blur = BlurPool(self.ndim, padding_mode=padding_mode, channels=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(dense_max(x))


class ConvBlock(nn.Module):
    """Two ``conv 3x3 -> norm -> ReLU`` stages: ``in_channels -> mid_channels -> out_channels``.

    The convolutions keep their bias even before batch norm (where it is redundant), as CARE's
    Keras U-Net and CAREamics do, so parameter counts match those implementations.
    """

    def __init__(
        self,
        ndim: int,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        *,
        norm_kind: NormKind = "batch",
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.conv1 = conv(ndim, in_channels, mid_channels)
        self.norm1 = norm(ndim, mid_channels, norm_kind)
        self.act1 = activation()
        self.conv2 = conv(ndim, mid_channels, out_channels)
        self.norm2 = norm(ndim, out_channels, norm_kind)
        self.act2 = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.norm1(self.conv1(x)))
        return self.act2(self.norm2(self.conv2(x)))


_TENSOR_AXES = {2: "(B, C, H, W)", 3: "(B, C, D, H, W)"}


def check_input_tensor(x: torch.Tensor, network: str, ndim: int, in_channels: int,
                       size_multiple: int) -> None:
    """Refuse, in one sentence, a tensor a network of ``ndim`` spatial axes cannot take.

    The batch and channel axes must be present, the channels must match, and every spatial size
    must be a positive multiple of ``size_multiple`` (``2**depth`` for the pooling levels).
    """
    if x.ndim != ndim + 2:
        raise InfocusInputError(
            f"This {ndim}-D {network} expects a {_TENSOR_AXES[ndim]} tensor but got shape "
            f"{tuple(x.shape)}; add the batch and channel axes, or build the network with "
            f"the ndim that matches the data."
        )
    if x.shape[1] != in_channels:
        raise InfocusInputError(
            f"The {network} expects {in_channels} input channel(s) but got {x.shape[1]} "
            f"(shape {tuple(x.shape)}); pass the channels on axis 1 or set in_channels."
        )
    spatial = tuple(x.shape[2:])
    if any(n == 0 or n % size_multiple for n in spatial):
        raise InfocusInputError(
            f"Spatial size {spatial} is not a multiple of {size_multiple} (2**depth); pad "
            f"the image to a multiple of {size_multiple} or use tiled prediction with tiles "
            f"of such sizes."
        )


def positive_int(name: str, value: object) -> int:
    """``value`` as an int, or one sentence saying that the option ``name`` must be one."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InfocusInputError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)
