r"""Noise2Self: J-invariant training with a regular grid of blind spots.

A function :math:`f` is :math:`\mathcal{J}`-invariant when, for every subset :math:`J` of a
partition of the pixels, :math:`f(x)_J` does not depend on :math:`x_J`. For noise independent
between pixels, the self-supervised loss :math:`\|f(x) - x\|^2` of such a function equals the
supervised loss :math:`\|f(x) - s\|^2` plus the (constant) noise variance, so minimising it on
noisy data alone trains a denoiser (Batson & Royer 2019).

The partition used here is the regular grid: :math:`J_\varphi = \{p : p \equiv \varphi
\pmod{g}\}` for a phase :math:`\varphi \in \{0, \dots, g-1\}^d`, so one pixel in :math:`g^d` is
masked. Each batch element draws its own random phase; the masked pixels are replaced by the mean
of their direct neighbours (``"cross"``: 4 in 2-D, 6 in 3-D) or of the whole :math:`3^d` block
without the centre (``"donut"``: 8 in 2-D, 26 in 3-D), and the loss counts the masked pixels only.
For :math:`g \ge 2` no neighbour of a masked pixel is masked, so the network input never contains
a masked value. At the patch border, a neighbour outside the patch is replaced by its mirror image
through the centre.

By default the phase is shared by the channels of a sample (``channels="joint"``), which keeps the
scheme J-invariant for noise correlated across channels; ``"independent"`` draws one phase per
channel.

References
----------
J. Batson, L. Royer, "Noise2Self: Blind denoising by self-supervision", ICML 2019.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
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
from infocus.methods.blind_spot import (
    FUSION_LOST,
    _check_channels,
    _check_mask,
    _check_patch_size,
    _check_sources_unmasked,
    _measured_correlated,
    _neighbourhood_index,
    _scatter,
    fuse_blind_spot_prediction,
    measure_noise_correlation,
)

__all__ = ["Noise2Self", "NeighbourMean", "grid_mask", "replace_neighbour_mean"]

#: Which neighbours are averaged: the 2d direct ones ("cross") or the 3^d - 1 of the block ("donut").
NeighbourMean = Literal["donut", "cross"]


def _check_grid(grid: object) -> int:
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
        raise InfocusInputError(
            f"The Noise2Self grid spacing must be an integer >= 2 (got {grid!r}); the default 4 "
            "masks one pixel in 16 (2-D) or 64 (3-D)."
        )
    return grid


def grid_mask(
    spatial_shape: Sequence[int],
    grid: int,
    generator: torch.Generator,
    device: torch.device | str | None = None,
    *,
    batch_shape: Sequence[int] = (),
) -> Tensor:
    r"""A J-invariant grid mask: pixels whose coordinates are all :math:`\equiv \varphi \pmod g`.

    Parameters
    ----------
    spatial_shape : sequence of int
        ``(Y, X)`` or ``(Z, Y, X)``.
    grid : int
        Grid spacing :math:`g \ge 2`; a fraction :math:`g^{-d}` of the pixels is masked.
    generator : torch.Generator
        Draws one phase :math:`\varphi \in \{0, \dots, g-1\}^d` per mask.
    device : torch.device or str, optional
        Device of the returned mask (default: the generator's).
    batch_shape : sequence of int
        Leading shape; each leading index gets its own phase.

    Returns
    -------
    Tensor of bool, shape ``(*batch_shape, *spatial_shape)``

    Examples
    --------
    >>> import torch
    >>> mask = grid_mask((8, 8), 4, torch.Generator().manual_seed(0))
    >>> int(mask.sum())
    4
    """
    grid = _check_grid(grid)
    spatial = tuple(int(n) for n in spatial_shape)
    leading = tuple(int(n) for n in batch_shape)
    count = math.prod(leading)
    ndim = len(spatial)
    phase = torch.randint(grid, (count, ndim), generator=generator, device=generator.device)
    mask = torch.ones((count, *spatial), dtype=torch.bool, device=generator.device)
    for axis, size in enumerate(spatial):
        hit = (torch.arange(size, device=generator.device) % grid)[None] == phase[:, axis, None]
        view = [count] + [1] * ndim
        view[axis + 1] = size
        mask &= hit.view(view)
    return mask.view(*leading, *spatial).to(device if device is not None else generator.device)


def replace_neighbour_mean(
    x: Tensor, mask: Tensor, *, neighbours: NeighbourMean = "donut"
) -> Tensor:
    r"""Replace each masked pixel by the mean of its neighbours (the centre excluded).

    .. math::

        \tilde x_p = \frac{1}{|N|} \sum_{o \in N} x_{p+o}, \qquad
        N = \{o \in \{-1, 0, 1\}^d : o \neq 0\} \ (\text{donut}) \text{ or }
        \{\pm e_a\} \ (\text{cross}),

    with neighbours outside the patch mirrored through the centre (:math:`p - o`).

    Parameters
    ----------
    x : Tensor, shape (B, C, [Z,] Y, X)
        Noisy batch (not modified).
    mask : Tensor of bool, same shape
        Pixels to replace; no two may be neighbours (true for :func:`grid_mask`).
    neighbours : {"donut", "cross"}
        The :math:`3^d - 1` pixels around the centre, or its :math:`2d` direct neighbours.

    Returns
    -------
    Tensor
        A copy of ``x`` with the masked pixels replaced.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(9.0).view(1, 1, 3, 3)
    >>> mask = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    >>> mask[0, 0, 1, 1] = True
    >>> replace_neighbour_mean(x, mask, neighbours="cross")[0, 0, 1, 1].item()  # (1+3+5+7)/4
    4.0
    """
    x = check_batch_tensor(x)
    mask = _check_mask(mask, x)
    if neighbours not in ("donut", "cross"):
        raise InfocusInputError(
            f"Unknown neighbourhood {neighbours!r}; choose 'donut' (3^d - 1 pixels) or 'cross' "
            "(the 2d direct neighbours)."
        )
    ndim = x.ndim - 2
    _check_patch_size(x.shape[2:], 1)
    block = [o for o in itertools.product((-1, 0, 1), repeat=ndim) if any(o)]
    if neighbours == "cross":
        block = [o for o in block if sum(map(abs, o)) == 1]
    offsets = torch.tensor(block, dtype=torch.long, device=x.device)
    coords = mask.nonzero()
    sources = _neighbourhood_index(x.shape, coords, 1, offsets)  # (N, K) linear indices
    _check_sources_unmasked(mask, sources)
    return _scatter(x, tuple(coords.T), torch.take(x, sources).mean(dim=1))


@dataclass(frozen=True)
class Noise2Self(TrainingScheme):
    """Noise2Self training scheme: grid blind spots with a random phase + masked MSE.

    Parameters
    ----------
    grid : int
        Grid spacing; one pixel in ``grid ** d`` is masked per batch element.
    replacement : {"donut", "cross"}
        Mean of the :math:`3^d - 1` surrounding pixels or of the :math:`2d` direct neighbours.
    channels : {"joint", "independent"}
        One phase per sample shared by its channels (default) or one per channel.

    Examples
    --------
    >>> import torch
    >>> scheme = Noise2Self(grid=4)
    >>> batch = scheme.prepare(torch.rand(2, 1, 16, 16), None, torch.Generator().manual_seed(0))
    >>> int(batch.mask.sum())  # 16 masked pixels per 16x16 patch
    32
    """

    grid: int = 4
    replacement: NeighbourMean = "donut"
    channels: ChannelMode = "joint"

    name: ClassVar[str] = "n2s"  # type: ignore[misc]
    summary: ClassVar[str] = "Noise2Self: J-invariant grid masking (Batson & Royer 2019)."
    citation: ClassVar[dict[str, str]] = {
        "text": "Batson, Royer. Noise2Self: blind denoising by self-supervision. ICML 2019.",
        "doi": "10.48550/arXiv.1901.11365"}
    needs_target: ClassVar[bool] = False
    blind_spot: ClassVar[bool] = True
    prediction_options: ClassVar[tuple[str, ...]] = ("pixel_fusion",)

    def __post_init__(self) -> None:
        _check_grid(self.grid)
        _check_channels(self.channels)
        if self.replacement not in ("donut", "cross"):
            raise InfocusInputError(
                f"Unknown replacement {self.replacement!r}; choose 'donut' or 'cross'."
            )

    def prepare(self, noisy: Tensor, target: Tensor | None, generator: torch.Generator) -> Batch:
        """Mask ``noisy`` ``(B, C, [Z,] Y, X)``; ``target`` is ignored (self-supervised)."""
        noisy = check_batch_tensor(noisy)
        b, c, *spatial = noisy.shape
        per_mask = (b, 1) if self.channels == "joint" else (b, c)
        mask = grid_mask(spatial, self.grid, generator, noisy.device, batch_shape=per_mask)
        mask = mask.expand_as(noisy).contiguous()
        masked = replace_neighbour_mean(noisy, mask, neighbours=self.replacement)
        return Batch(input=masked, target=noisy, mask=mask)

    def loss(self, prediction: Tensor, batch: Batch) -> Tensor:
        """MSE over the masked pixels only."""
        return masked_loss(prediction, batch.target, batch.mask)

    def fit(self, data: FitData) -> Fitted:
        """Measure the noise correlation; the blind spot stays one pixel, so correlated noise
        only brings a warning (N2V and N2V2 widen theirs)."""
        correlation, _, summary = measure_noise_correlation(data)
        if correlation.blind_pattern():
            data.say(f"Warning: measured {correlation.describe()}. {self.name} hides one pixel "
                     "per blind spot, so the network can learn part of this noise from the "
                     "neighbours; n2v and n2v2 widen their blind spot to cover it.")
        return Fitted(state={"noise_correlation": summary})

    def finish(
        self, outputs: np.ndarray, noisy: np.ndarray, context: PredictionContext
    ) -> dict[str, np.ndarray]:
        """Denormalise and, by default on noise measured as white, fuse with the noisy pixel."""
        predicted = context.target_norm.denormalize(outputs, channel_axis=0)
        fuse = context.request.options.get("pixel_fusion")
        if fuse is None:
            fuse = not _measured_correlated(context.state)
        if fuse:
            fuse_blind_spot_prediction(predicted, noisy, context.spatial)
        return {"denoised": predicted}

    def export_limits(self, state: dict[str, Any]) -> list[str]:
        """Pixel fusion, where the prediction would use it by default."""
        return [FUSION_LOST] if not _measured_correlated(state) else []


@SCHEMES.register("n2s")
def _n2s(
    *, grid: int = 4, replacement: NeighbourMean = "donut", channels: ChannelMode = "joint"
) -> Noise2Self:
    """Noise2Self: J-invariant grid masking."""
    return Noise2Self(grid, replacement, channels)
