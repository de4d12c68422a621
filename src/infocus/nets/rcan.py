r"""The residual channel attention network of 3D-RCAN (Chen et al. 2021), in 2-D and 3-D.

Architecture (``G`` residual groups of ``B`` residual channel-attention blocks, ``F`` feature
channels, no pooling and no upsampling: every layer works at full resolution)::

    input ─ conv ─┬─ group 1 ─ ... ─ group G ─ conv ─(+)─ conv ─ output
                  └──────────────── long skip ────────┘
    group:  ─┬─ block 1 ─ ... ─ block B ─ conv ─(+)─        (the group conv and skip only
             └────────────── group skip ────────┘            when G > 1, as in 3D-RCAN)
    block:  ─┬─ conv ─ ReLU ─ conv ─ attention ─(+)─
             └─────────── block skip ───────────┘

Every conv is 3x3 (3x3x3) with 'same' zero padding. The channel attention (Hu et al. 2018,
"Squeeze-and-excitation networks"; Zhang et al. 2018, RCAN) rescales each feature channel of
``x`` by a gate computed from the channels' averages:

.. math::

    \operatorname{CA}(x)_c(p) = x_c(p)\,
        \sigma\!\Big(W_2\, \operatorname{ReLU}\big(W_1\, \bar x(p) + b_1\big) + b_2\Big)_c,

with :math:`W_1` reducing ``F`` channels to ``F / r`` (``channel_reduction`` r = 8) and
:math:`W_2` expanding them back (1x1 convolutions).

Local instead of global attention
---------------------------------
In the paper the average :math:`\bar x` is global: one value per channel for the whole input.
Then every output pixel depends on the whole tile, so a large image predicted in tiles (as
any microscope volume must be) gives results that depend on where the tiles fall; 3D-RCAN's
own ``apply.py`` tiles with a 1/8 overlap and lives with it. It also makes training and
prediction disagree: trained on 64-pixel patches, the gate averages 64 pixels; applied to a
2048-pixel image, it averages 2048, a statistic the network never saw.

Here :math:`\bar x(p)` is the mean over the box of side ``W`` (``attention_window``, odd)
centred on ``p``, cut at the image border (only pixels inside the image count):

.. math::

    \bar x(p) = \frac{1}{|N_W(p)|} \sum_{q \in N_W(p)} x(q), \qquad
    N_W(p) = \{q \text{ in the image} : \|q - p\|_\infty \le \lfloor W/2 \rfloor\}.

The gate then sees the same neighbourhood in training and at prediction, the receptive field
is finite, and tiled prediction equals untiled prediction to float rounding, as for every
other infocus network. A window about the size of the training patch makes the gate on a
patch close to the paper's global one. The trade-off is the receptive radius: each block
adds ``W // 2`` to it, so the tiles' overlap (and their size) grows with ``W`` and the
number of blocks (see :attr:`RCAN.receptive_radius`): 108 pixels with the defaults, 263 with
the paper's sizes. Since :math:`W_1` is linear and every window weighs its pixels equally,
the average is taken after :math:`W_1` (the same value, in exact arithmetic), on ``F / r``
channels instead of ``F``, and separably along each axis.

Sizes
-----
The paper's network has ``residual_groups=5``, ``residual_blocks=3``, ``num_channels=32``,
``channel_reduction=8``. The defaults here (3 groups of 2 blocks, 32 channels: 16 of the
paper's 36 full-width 3x3 convolutions) take less than half its computation, for training on a
few CPU cores; pass the paper's sizes as network options for the full model, and
``num_channels=16`` for a quarter of the default's cost per pixel. The paper's fixed input
map ``2x - 1`` (and its inverse at the output) is left out: infocus normalises the data before
the network.

Measured with ``python -m benchmarks.rcan_vs_unet`` (:data:`MEASURED`): CARE trained for 300
steps of 16 patches of 64x64 on three 256x256 quadrants of the embedded human-mitosis sample
(simulated at 30 peak photons, gain 2, offset 100, read noise 3; noisy PSNR 20.2 dB), scored
on the fourth quadrant, on a shared 2-core CPU (raw runs in
``benchmarks/results/2026-12-02-rcan-vs-unet.json``; load average 6.5, 5.2 and 2.4 in the
table's order, so compare the speeds only roughly):

============================ ========== ========= ========= ===================
network                      parameters PSNR (dB) steps / s predict 256x256 (s)
============================ ========== ========= ========= ===================
U-Net (CARE default, f=16)   83,921     32.44     1.33      0.22
RCAN, 16 channels            37,917     31.68     0.49      0.98
RCAN (default, 32 channels)  150,329    32.18     0.38      0.55
============================ ========== ========= ========= ===================

One seed cannot rank the two: over training seeds 0, 1 and 2 (same protocol, the benchmark
harness's part ``rcan`` of the ``context`` suite; docs/benchmarks.md, "Context: 3D-RCAN
against CARE's U-Net") the default RCAN scored 32.18, 32.19 and 32.48 dB, the U-Net 32.43,
32.38 and 32.19 dB: RCAN's mean is 0.05 dB below the U-Net's, inside the U-Net's seed
standard deviation (0.13 dB). It costs more on a CPU: timed in alternation with the U-Net on
the shared 2-core machine (load about 7), one training step of 16 patches of 64x64 takes 5.1x
the U-Net's time and one forward pass on 256x256 8.6x (the whole training call, validation
included, ran at 0.12-0.15x the U-Net's steps per second). RCAN works at full resolution
throughout, so a pixel costs more than in a U-Net of its size. In 3-D (part ``rcan3d``: 400
steps of one 16x64x64 patch on simulated volumes at 8 peak photons, seeds 0 and 1, training in
bfloat16 on a CPU with AMX) RCAN scored 31.65 and 31.64 dB against the 3-D U-Net's 31.35 and
31.28 dB, 0.33 dB above it, at 0.09-0.12x its training steps per second and 9.5x its
prediction time; at 100 steps it had been 2.7 dB below (27.8 against 30.5 dB, an earlier run):
RCAN needs the longer training. RCAN is the choice for volumes whose detail a U-Net's pooling
loses (its use in the paper), given the time to train it.

References
----------
J. Chen et al., "Three-dimensional residual channel attention networks denoise and sharpen
fluorescence microscopy image volumes", Nature Methods 18, 678-687 (2021),
doi:10.1038/s41592-021-01155-x. Y. Zhang et al., "Image super-resolution using very deep
residual channel attention networks", ECCV 2018. J. Hu, L. Shen & G. Sun,
"Squeeze-and-excitation networks", CVPR 2018.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from infocus._errors import InfocusInputError
from infocus.nets._registry import NETWORKS
from infocus.nets.blocks import check_input_tensor, check_ndim, conv, positive_int

__all__ = ["MEASURED", "RCAN", "LocalChannelAttention", "local_mean"]

#: CARE with this network against CARE with the default U-Net on the same budget (module
#: docstring), from ``python -m benchmarks.rcan_vs_unet`` on a shared 2-core CPU.
MEASURED: dict[str, dict[str, float]] = {
    "unet, base_filters=16": {"psnr_db": 32.44, "steps_per_second": 1.33, "parameters": 83921},
    "rcan, num_channels=16": {"psnr_db": 31.68, "steps_per_second": 0.49, "parameters": 37917},
    "rcan (defaults)": {"psnr_db": 32.18, "steps_per_second": 0.38, "parameters": 150329},
}


def local_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean of every ``window``-wide box (odd ``window``) centred on each pixel of
    ``(B, C, *spatial)`` ``x``, over the pixels inside the image; the shape is kept.

    Box averages are separable (the box cut at the border is a product of intervals, and each
    pixel counts once), so it runs as one 1-D average pooling per axis: the zero-padded sum
    divided by the number of pixels inside the image. The padding is explicit because
    PyTorch's 3-D pooling refuses a kernel longer than the unpadded axis.

    Examples
    --------
    >>> import torch
    >>> local_mean(torch.tensor([[[0.0, 3.0, 6.0, 9.0]]]).unsqueeze(-1), 3)[0, 0, :, 0]
    tensor([1.5000, 3.0000, 6.0000, 7.5000])
    """
    ndim = x.ndim - 2
    pool = F.avg_pool2d if ndim == 2 else F.avg_pool3d
    half = window // 2
    inside = torch.ones_like(x[:1, :1])
    for axis in range(ndim):
        kernel = [1] * ndim
        kernel[axis] = window
        padding = [0] * (2 * ndim)  # F.pad lists the last axis first
        padding[2 * (ndim - 1 - axis)] = padding[2 * (ndim - 1 - axis) + 1] = half
        share_inside = pool(F.pad(inside, padding), kernel_size=kernel, stride=1)
        x = pool(F.pad(x, padding), kernel_size=kernel, stride=1) / share_inside
    return x


class LocalChannelAttention(nn.Module):
    """Channel attention gated by the mean over a ``window``-wide box around each pixel.

    ``x * sigmoid(W2 relu(mean_W(W1 x + b1)) + b2)``, which equals the squeeze-and-excitation
    gate on the box mean, ``W1 mean_W(x) + b1``, because a box mean commutes with the 1x1
    convolution ``W1`` (see the module docstring).
    """

    def __init__(self, ndim: int, channels: int, reduction: int, window: int) -> None:
        super().__init__()
        reduced = max(1, channels // reduction)
        self.window = window
        self.reduce = conv(ndim, channels, reduced, kernel_size=1)
        self.expand = conv(ndim, reduced, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.relu(local_mean(self.reduce(x), self.window))
        return x * torch.sigmoid(self.expand(gate))

    def extra_repr(self) -> str:
        return f"window={self.window}"


class _AttentionBlock(nn.Module):
    """conv -> ReLU -> conv -> channel attention, scaled, plus the input."""

    def __init__(self, ndim: int, channels: int, reduction: int, window: int,
                 scaling: float) -> None:
        super().__init__()
        self.conv1 = conv(ndim, channels, channels)
        self.conv2 = conv(ndim, channels, channels)
        self.attention = LocalChannelAttention(ndim, channels, reduction, window)
        self.scaling = scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.attention(self.conv2(torch.relu(self.conv1(x))))
        if self.scaling != 1.0:
            residual = residual * self.scaling
        return x + residual


class _ResidualGroup(nn.Module):
    """``blocks`` attention blocks, then (when ``closing``) a conv and the group skip."""

    def __init__(self, ndim: int, channels: int, blocks: int, reduction: int, window: int,
                 scaling: float, closing: bool) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(
            _AttentionBlock(ndim, channels, reduction, window, scaling) for _ in range(blocks)))
        self.conv = conv(ndim, channels, channels) if closing else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x)
        return h if self.conv is None else x + self.conv(h)


class RCAN(nn.Module):
    r"""Residual channel attention network (3D-RCAN, Chen et al. 2021) in 2-D or 3-D.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensionality: inputs are ``(B, C, H, W)`` or ``(B, C, D, H, W)``.
    in_channels, out_channels : int
        Channels of the input and of the output.
    num_channels : int
        Feature channels of every layer (the paper: 32).
    residual_groups : int
        Residual groups (the paper: 5).
    residual_blocks : int
        Residual channel-attention blocks per group (the paper: 3).
    channel_reduction : int
        The attention squeezes ``num_channels`` to ``num_channels // channel_reduction``
        (the paper: 8).
    attention_window : int
        Odd side, in pixels, of the box the channel attention averages over (module
        docstring: the paper averages globally, which makes tiled prediction inexact).
    residual_scaling : float
        Factor on every block's residual before it is added (the paper: 1).

    Attributes
    ----------
    config : dict
        The constructor arguments; ``RCAN(**model.config)`` rebuilds the architecture.
    size_multiple : int
        1: no pooling, any spatial size is accepted.
    receptive_radius : int
        Farthest input pixel, along each axis, that an output pixel depends on:
        ``3 + G (B (2 + W // 2) + 1)`` with a group conv (``G > 1``), else
        ``3 + B (2 + W // 2)``: each 3x3 conv adds 1, each attention ``W // 2``.
    receptive_field : int
        ``2 * receptive_radius + 1`` (the window is centred).

    Examples
    --------
    >>> import torch
    >>> net = RCAN(ndim=3, residual_groups=1, residual_blocks=1, attention_window=5)
    >>> net(torch.zeros(1, 1, 4, 12, 12)).shape
    torch.Size([1, 1, 4, 12, 12])
    >>> net.receptive_radius
    7
    """

    #: What the network computes: an image of the input's spatial shape (methods that need
    #: another kind of network refuse this one).
    kind: ClassVar[str] = "image-to-image"

    def __init__(
        self,
        ndim: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        num_channels: int = 32,
        residual_groups: int = 3,
        residual_blocks: int = 2,
        channel_reduction: int = 8,
        attention_window: int = 31,
        residual_scaling: float = 1.0,
    ) -> None:
        super().__init__()
        ndim = check_ndim(ndim)
        in_channels = positive_int("in_channels", in_channels)
        out_channels = positive_int("out_channels", out_channels)
        num_channels = positive_int("num_channels", num_channels)
        residual_groups = positive_int("residual_groups", residual_groups)
        residual_blocks = positive_int("residual_blocks", residual_blocks)
        channel_reduction = positive_int("channel_reduction", channel_reduction)
        attention_window = positive_int("attention_window", attention_window)
        if attention_window % 2 == 0:
            raise InfocusInputError(
                f"attention_window must be odd so that the box is centred on its pixel, got "
                f"{attention_window}; use {attention_window + 1} or {attention_window - 1}.")
        if (isinstance(residual_scaling, bool) or not isinstance(residual_scaling, int | float)
                or not residual_scaling > 0):
            raise InfocusInputError(
                f"residual_scaling must be a positive number, got {residual_scaling!r}.")
        self._config: dict[str, Any] = {
            "ndim": ndim, "in_channels": in_channels, "out_channels": out_channels,
            "num_channels": num_channels, "residual_groups": residual_groups,
            "residual_blocks": residual_blocks, "channel_reduction": channel_reduction,
            "attention_window": attention_window, "residual_scaling": float(residual_scaling),
        }
        self.ndim = ndim
        self.in_channels = in_channels
        self.out_channels = out_channels
        closing = residual_groups > 1  # 3D-RCAN has no group conv and skip for one group
        self.head = conv(ndim, in_channels, num_channels)
        self.groups = nn.Sequential(*(
            _ResidualGroup(ndim, num_channels, residual_blocks, channel_reduction,
                           attention_window, float(residual_scaling), closing)
            for _ in range(residual_groups)))
        self.body_end = conv(ndim, num_channels, num_channels)
        self.tail = conv(ndim, num_channels, out_channels)
        per_group = residual_blocks * (2 + attention_window // 2) + int(closing)
        self._receptive_radius = 3 + residual_groups * per_group

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments (a copy): ``RCAN(**config)`` rebuilds this architecture."""
        return dict(self._config)

    @property
    def size_multiple(self) -> int:
        """1: the network keeps full resolution, so any spatial size works."""
        return 1

    @property
    def receptive_radius(self) -> int:
        """Farthest input pixel, along each axis and on either side, one output pixel depends
        on: a tile prediction is exact farther than this from the tile's inner edges."""
        return self._receptive_radius

    @property
    def receptive_field(self) -> int:
        """Width in pixels, along each axis, of the input window one output pixel depends on."""
        return 2 * self._receptive_radius + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a batch: ``(B, C_in, *spatial) -> (B, C_out, *spatial)``."""
        check_input_tensor(x, "RCAN", self.ndim, self.in_channels, 1)
        features = self.head(x)
        deep = self.body_end(self.groups(features))
        return self.tail(features + deep)


NETWORKS.register("rcan")(RCAN)
