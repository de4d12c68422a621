r"""Self-supervised parameter choice by J-invariant calibration (Noise2Self).

For a denoiser :math:`f` and a partition :math:`\mathcal{J}` of the pixels, the J-invariant
version :math:`f_{\mathcal{J}}` computes the output on each part :math:`J` from an input in
which the pixels of :math:`J` are replaced by the mean of their axis-neighbours, so the output at
a pixel never sees that pixel's own noise. If the noise is independent between pixels and has
zero mean, then

.. math::

    \mathbb{E}\,\lVert f_{\mathcal{J}}(x) - x \rVert^2
    = \mathbb{E}\,\lVert f_{\mathcal{J}}(x) - y \rVert^2 + \mathbb{E}\,\lVert x - y \rVert^2 ,

so the *self-supervised* loss on the left ranks parameters exactly as the unknown error against
the clean image :math:`y` would (J. Batson & L. Royer, "Noise2Self: Blind Denoising by
Self-Supervision", ICML 2019). As in :func:`skimage.restoration.calibrate_denoiser`, the
parameter that minimises the loss of :math:`f_{\mathcal{J}}` is then used with :math:`f` itself.

For speed the loss is computed on a central crop of about 65 000 pixels and on a few of the
:math:`s^d` grid phases (stride :math:`s = 4`), which is plenty to rank a handful of candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
from scipy import ndimage as ndi

__all__ = ["calibrate", "central_crop", "j_invariant_loss"]

P = TypeVar("P")

#: About how many pixels the calibration crop keeps.
CROP_PIXELS = 65536


def central_crop(image: np.ndarray, max_pixels: int = CROP_PIXELS) -> np.ndarray:
    """A central crop of a 2-D or 3-D block with at most about ``max_pixels`` pixels.

    In 3-D, ``Z`` keeps at most 16 planes and ``Y``/``X`` share the rest equally.
    """
    shape = list(image.shape)
    if image.ndim == 3:
        shape[0] = min(shape[0], 16)
    side = int(np.sqrt(max_pixels / (shape[0] if image.ndim == 3 else 1)))
    shape[-2] = min(shape[-2], side)
    shape[-1] = min(shape[-1], side)
    index = tuple(
        slice((n - k) // 2, (n - k) // 2 + k) for n, k in zip(image.shape, shape, strict=True)
    )
    return image[index]


def _interpolate(image: np.ndarray) -> np.ndarray:
    """Mean of each pixel's 2·d axis-neighbours (the pixel itself excluded), mirrored at edges."""
    kernel = ndi.generate_binary_structure(image.ndim, 1).astype(np.float64)
    kernel.ravel()[kernel.size // 2] = 0
    kernel /= kernel.sum()
    return ndi.convolve(image.astype(np.float64), kernel, mode="mirror")


def _phases(ndim: int, stride: int, n_masks: int) -> list[tuple[slice, ...]]:
    """``n_masks`` grid phases spread over the ``stride**ndim`` possible ones."""
    count = stride**ndim
    offsets = np.unique(np.linspace(0, count - 1, min(n_masks, count)).round().astype(int))
    return [
        tuple(slice(int(p), None, stride) for p in np.unravel_index(int(o), (stride,) * ndim))
        for o in offsets
    ]


def j_invariant_loss(
    image: np.ndarray,
    denoise: Callable[[np.ndarray], np.ndarray],
    *,
    stride: int = 4,
    n_masks: int = 4,
) -> float:
    r"""Mean squared self-supervised loss :math:`\lVert f_{\mathcal{J}}(x) - x\rVert^2` on masked pixels."""
    x = np.asarray(image, dtype=np.float64)
    interp = _interpolate(x)
    total = 0.0
    count = 0
    for mask in _phases(x.ndim, stride, n_masks):
        masked = x.copy()
        masked[mask] = interp[mask]
        out = np.asarray(denoise(masked.astype(np.float32)), dtype=np.float64)
        total += float(np.sum((out[mask] - x[mask]) ** 2))
        count += x[mask].size
    return total / max(count, 1)


def calibrate(
    image: np.ndarray,
    denoise: Callable[[np.ndarray, P], np.ndarray],
    candidates: Sequence[P],
    *,
    stride: int = 4,
    n_masks: int = 4,
    max_pixels: int = CROP_PIXELS,
) -> P:
    """The candidate parameter with the smallest J-invariant loss on a central crop of ``image``.

    Parameters
    ----------
    image : ndarray
        A 2-D or 3-D block in the working domain.
    denoise : callable
        ``denoise(block, parameter)``.
    candidates : sequence
        Parameter values to try; ties go to the earliest.
    stride, n_masks : int
        Grid spacing of the masks and how many of the grid phases to evaluate.
    max_pixels : int
        Size of the central crop the loss is computed on.
    """
    if len(candidates) == 0:
        raise ValueError("calibrate needs at least one candidate")
    crop = central_crop(np.asarray(image, dtype=np.float32), max_pixels)
    losses = [
        j_invariant_loss(crop, lambda b, p=p: denoise(b, p), stride=stride, n_masks=n_masks)
        for p in candidates
    ]
    return candidates[int(np.argmin(losses))]
