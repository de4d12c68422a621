r"""The fully convolutional variational auto-encoder of DivNoising.

Architecture for ``depth = 2``, ``base_filters = f``, ``latent_channels = z`` (every conv 3x3,
ReLU after all but the last of each path)::

    x ─ conv(c→f) conv(f→f) pool ─ conv(f→2f) conv(2f→2f) pool ─┬─ conv(2f→z)  → μ
                                                                 └─ conv(2f→z)  → log σ²
    z ~ N(μ, σ²) ─ conv(z→2f) conv(2f→2f) up ─ conv(2f→f) conv(f→f) up ─ conv(f→c) → s

The latent image has a ``z``-vector per ``2**depth`` pixels, so the model is translation
equivariant (by multiples of ``2**depth``) and works on images of any size that is a multiple
of it. Upsampling is linear interpolation followed by convolutions, not DivNoising's transposed
convolutions, for the reason given in :mod:`infocus.nets.blocks` (no checkerboard). There is no
batch normalisation: samples of one image would otherwise depend on the rest of the batch.

``forward`` returns ``(s, μ, log σ²)`` with one latent sample drawn (the training pass);
:meth:`DivNoisingVAE.encode` and :meth:`DivNoisingVAE.decode` serve sampling at prediction.

References
----------
M. Prakash, A. Krull, F. Jug, "Fully unsupervised diversity denoising with convolutional
variational autoencoders", ICLR 2021.

D. P. Kingma, M. Welling, "Auto-encoding variational Bayes", ICLR 2014.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from infocus.nets._registry import NETWORKS
from infocus.nets.blocks import (
    activation,
    check_input_tensor,
    check_ndim,
    conv,
    max_pool,
    positive_int,
    upsample,
)

__all__ = ["DivNoisingVAE"]


def _two_convs(ndim: int, in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(conv(ndim, in_channels, out_channels), activation(),
                         conv(ndim, out_channels, out_channels), activation())


@NETWORKS.register("divnoising_vae")
class DivNoisingVAE(nn.Module):
    """DivNoising's VAE in 2-D or 3-D (module docstring).

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensionality.
    in_channels, out_channels : int
        Channels of the image and of the decoded signal (equal for denoising).
    depth : int
        Downsampling steps between the image and the latent image.
    base_filters : int
        Filters of the first level (doubled at each level).
    latent_channels : int
        Latent variables per latent pixel.

    Attributes
    ----------
    config : dict
        The constructor arguments (stored with a model, to rebuild it).
    size_multiple : int
        Spatial sizes must be multiples of ``2**depth``.
    receptive_field : int
        Widest input window (pixels, one axis) an output pixel depends on, through the encoder
        and the decoder; an upper bound, used for tiling.
    receptive_radius : int
        Half of it: the window is centred.
    """

    #: A variational auto-encoder (``encode``/``decode``), not an image-to-image network
    #: (see :func:`infocus.nets.network_kind`).
    kind: ClassVar[str] = "vae"

    def __init__(
        self,
        ndim: int = 2,
        in_channels: int = 1,
        out_channels: int = 1,
        depth: int = 2,
        base_filters: int = 32,
        latent_channels: int = 64,
    ) -> None:
        super().__init__()
        ndim = check_ndim(ndim)
        in_channels = positive_int("in_channels", in_channels)
        out_channels = positive_int("out_channels", out_channels)
        depth = positive_int("depth", depth)
        base_filters = positive_int("base_filters", base_filters)
        latent_channels = positive_int("latent_channels", latent_channels)
        self.config: dict[str, Any] = {
            "ndim": ndim, "in_channels": in_channels, "out_channels": out_channels,
            "depth": depth, "base_filters": base_filters, "latent_channels": latent_channels,
        }
        self.in_channels = in_channels
        widths = [base_filters * 2**level for level in range(depth)]
        encoder: list[nn.Module] = []
        previous = in_channels
        for width in widths:
            encoder += [_two_convs(ndim, previous, width), max_pool(ndim)]
            previous = width
        self.encoder = nn.Sequential(*encoder)
        self.to_mean = conv(ndim, previous, latent_channels)
        self.to_log_variance = conv(ndim, previous, latent_channels)
        decoder: list[nn.Module] = []
        previous = latent_channels
        for width in reversed(widths):
            decoder += [_two_convs(ndim, previous, width), upsample(ndim)]
            previous = width
        decoder.append(conv(ndim, previous, out_channels))
        self.decoder = nn.Sequential(*decoder)
        self._multiple = 2**depth
        # Radius of the window (module docstring): per level two 3x3 convolutions and a 2x
        # pool (encoder) or upsampling (decoder), at that level's scale, plus the latent and
        # output convolutions.
        radius = 9 * (2**depth - 1) + 2**depth + 1
        self._receptive_field = 2 * radius + 1
        self._receptive_radius = radius

    @property
    def size_multiple(self) -> int:
        return self._multiple

    @property
    def receptive_field(self) -> int:
        return self._receptive_field

    @property
    def receptive_radius(self) -> int:
        return self._receptive_radius

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(μ, log σ²)`` of the approximate posterior :math:`q(z \\mid x)`."""
        self._check(x)
        features = self.encoder(x)
        return self.to_mean(features), self.to_log_variance(features)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The signal decoded from a latent image ``z``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass with a latent sample drawn by reparameterisation: ``(s, μ, log σ²)``."""
        mean, log_variance = self.encode(x)
        z = mean + torch.randn_like(mean) * (0.5 * log_variance).exp()
        return self.decode(z), mean, log_variance

    def _check(self, x: torch.Tensor) -> None:
        check_input_tensor(x, "DivNoisingVAE", self.config["ndim"], self.in_channels,
                           self._multiple)
