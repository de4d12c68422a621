r"""Measure the spatial correlation of the noise from the noisy image alone.

Blind-spot training (Noise2Void and its relatives) assumes the noise of neighbouring pixels is
independent. Many cameras break that assumption: interpolation or binning in the camera, a
demosaicing step, or sCMOS row noise make the noise at a pixel predictable from its neighbours,
and a network with a one-pixel blind spot then learns to *reproduce* that part of the noise
instead of removing it. This module measures the correlation so the blind spot can be widened to
cover it (see :meth:`NoiseCorrelation.blind_pattern`).

Method
------
The YX planes are cut into blocks of :math:`B \times B` pixels (:math:`B = 16`). In each block a
quadratic surface is fitted by least squares and removed, which takes away the smooth part of
the signal; on the residual :math:`r = P^\perp x` the normalised lag product

.. math:: \hat c_\delta = \frac{N}{N_\delta}\,
          \frac{\sum_i r_i\, r_{i+\delta}}{\sum_i r_i^2}

is computed for every offset :math:`\delta` up to ``max_lag`` (:math:`N_\delta` pixel pairs
of the :math:`N = B^2`). For white noise the projection alone makes :math:`\hat c_\delta`
slightly negative; its exact expectation :math:`\beta_\delta = (N / N_\delta) \sum_i
P^\perp_{i, i+\delta} / \mathrm{tr} P^\perp` is subtracted, :math:`\hat\rho_\delta =
(\hat c_\delta - \beta_\delta) / (1 - \beta_\delta)`. Being a ratio, :math:`\hat\rho` is not
affected by signal-dependent (Poisson) variance.

Structure left in a block (edges, filaments) raises its lag products. So only the quarter of
the blocks whose residual variance is lowest *relative to the Poisson–Gaussian noise model at
their brightness* (:func:`~infocus.noise.estimate_noise`) is kept, and the median over those is
reported.

Accuracy, measured against the true noise (raw capture minus the 50-frame average) of the 12
FMD configurations: confocal and two-photon data (true neighbour correlation 0.05–0.18) read
0.02–0.15, widefield data (true 0.58–0.65) read 0.52–0.55; white Poisson–Gaussian noise on
fluorescence images reads 0.00 and σ = 25 on BSD68's natural images at most 0.07. Strong
correlation is underestimated (the fit absorbs part of it): a 3×3 kernel (true 0.66) reads
0.43–0.61. It is a detector for when a one-pixel blind spot will fail, not a calibration.

3-D data are measured plane by plane (correlation along Z is not measured); channels are
measured separately and the largest value per offset is kept.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from infocus._errors import InfocusInputError
from infocus._validate import check_image
from infocus.axes import check_axes, yx_planes
from infocus.noise._params import NoiseParams

__all__ = [
    "NoiseCorrelation",
    "describe_pattern",
    "estimate_noise_correlation",
    "estimate_pixel_noise",
    "share_correlated",
]

#: Edge of the blocks in which the smooth signal is removed.
_BLOCK = 16
#: Share of the blocks, the flattest relative to the noise model, that is measured.
_FLAT_SHARE = 0.25
#: At most this many blocks are analysed (evenly spread); ~1 M pixels are plenty.
_MAX_BLOCKS = 4096
#: Offsets whose correlation reaches this are hidden around a blind spot: a single neighbour
#: with correlation rho predicts a share rho**2 of the noise variance at the centre, so 0.3
#: leaves under 10 % to leak per neighbour.
DEFAULT_THRESHOLD = 0.3


def _half_plane(max_lag: int) -> list[tuple[int, int]]:
    """Offsets (dy, dx) with |dy|, |dx| <= max_lag, one of each pair ±δ (dy > 0, or dy = 0 < dx)."""
    return [
        (dy, dx)
        for dy in range(max_lag + 1)
        for dx in range(-max_lag, max_lag + 1)
        if dy > 0 or dx > 0
    ]


@functools.lru_cache(maxsize=4)
def _projection(block: int) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis ``Q`` (B², 6) of quadratic surfaces on a block, and its outer product."""
    v, u = np.mgrid[0:block, 0:block] / (block - 1) * 2.0 - 1.0
    design = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=-1).reshape(-1, 6)
    basis, _ = np.linalg.qr(design)
    return basis, basis @ basis.T


def _pair_slices(block: int, dy: int, dx: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices ``a, b`` of a (B, B) array so that ``a[k]`` and ``b[k]`` are ``(dy, dx)`` apart."""
    first = (slice(dy, block), slice(max(dx, 0), block + min(dx, 0)))
    second = (slice(0, block - dy), slice(max(-dx, 0), block - max(dx, 0)))
    return first, second


@functools.lru_cache(maxsize=16)
def _white_bias(block: int, max_lag: int) -> np.ndarray:
    """:math:`\\beta_\\delta` for every half-plane offset: the lag product of pure white noise."""
    _, outer = _projection(block)
    residual = np.eye(block * block) - outer  # P⊥, symmetric
    as_pixels = residual.reshape(block, block, block, block)
    trace = float(np.trace(residual))
    bias = []
    for dy, dx in _half_plane(max_lag):
        a, b = _pair_slices(block, dy, dx)
        ys, xs = np.mgrid[a[0], a[1]]
        pairs = as_pixels[ys, xs, ys - dy, xs - dx]
        bias.append(float(pairs.sum()) / trace * block * block / pairs.size)
    return np.array(bias)


@dataclass(frozen=True)
class NoiseCorrelation:
    """Spatial autocorrelation of the noise at small offsets in the YX plane.

    Attributes
    ----------
    offsets : tuple of (dy, dx)
        One offset of each ``±δ`` pair, ``|dy|, |dx| <= max_lag`` (``ρ(-δ) = ρ(δ)``).
    values : tuple of float
        The estimated correlation coefficient at each offset (0 for white noise).
    blocks : int
        Number of blocks measured (0 when the image had none with any variation).
    """

    offsets: tuple[tuple[int, int], ...]
    values: tuple[float, ...]
    blocks: int

    @classmethod
    def combine(cls, measured: Sequence[NoiseCorrelation]) -> NoiseCorrelation:
        """One estimate for several images (the planes of a training set): per offset, the
        median over the images that could be measured.

        The median follows the majority. A wider blind spot is what correlated noise needs but
        costs as much where the noise is white (on FMD: +3.3 dB on the widefield images, −2.9 dB
        on confocal and two-photon ones), so for a set that mixes cameras the majority decides;
        :func:`share_correlated` tells how many images disagree.

        Examples
        --------
        >>> white = NoiseCorrelation(((0, 1),), (0.0,), 64)
        >>> wide = NoiseCorrelation(((0, 1),), (0.6,), 64)
        >>> NoiseCorrelation.combine([white] * 3 + [wide] * 7).at(0, 1)
        0.6
        >>> NoiseCorrelation.combine([white] * 7 + [wide] * 3).at(0, 1)
        0.0
        """
        usable = [m for m in measured if m.blocks > 0]
        if not usable:
            offsets = measured[0].offsets if measured else ()
            return cls(offsets, (0.0,) * len(offsets), 0)
        if len({m.offsets for m in usable}) != 1:
            raise InfocusInputError("Only estimates made with the same max_lag can be combined.")
        values = np.median([m.values for m in usable], axis=0)
        return cls(usable[0].offsets, tuple(float(v) for v in values),
                   sum(m.blocks for m in usable))

    def at(self, dy: int, dx: int) -> float:
        """Correlation at offset ``(dy, dx)``; 1 at ``(0, 0)``, 0 beyond the measured lags."""
        if (dy, dx) == (0, 0):
            return 1.0
        key = (dy, dx) if dy > 0 or (dy == 0 and dx > 0) else (-dy, -dx)
        try:
            return self.values[self.offsets.index(key)]
        except ValueError:
            return 0.0

    @property
    def neighbour(self) -> float:
        """Mean correlation with the four nearest neighbours (along Y and X)."""
        return 0.5 * (self.at(0, 1) + self.at(1, 0))

    def blind_pattern(self, threshold: float = DEFAULT_THRESHOLD) -> tuple[tuple[int, int], ...]:
        """Offsets to hide around a blind spot, ``(dy, dx)``, the centre excluded.

        A centred box (or line) that reaches one pixel beyond the farthest offset whose
        correlation reaches ``threshold``, along each axis where any does. The extra ring is
        there because the estimate reads correlation two or more pixels away far too low (the
        block fit absorbs it): on FMD's widefield images it reads 0.04–0.08 at two pixels where
        the truth is 0.10–0.24, and N2V with a 5×5 hidden block beat a 3×3 one by 1.6–3.2 dB
        (7×7 was worse again). A box is symmetric under flipping either axis, as a blind pattern
        must be. Empty when the noise is (close to) white.

        Examples
        --------
        >>> c = NoiseCorrelation(((0, 1), (1, -1), (1, 0), (1, 1)), (0.6, 0.1, 0.5, 0.1), 10)
        >>> len(c.blind_pattern())  # a 5x5 box less its centre
        24
        >>> NoiseCorrelation(((0, 1), (1, 0)), (0.5, 0.0), 10).blind_pattern()
        ((0, -2), (0, -1), (0, 1), (0, 2))
        """
        correlated = [o for o, v in zip(self.offsets, self.values, strict=True) if v >= threshold]
        if not correlated:
            return ()
        reach_y = max(abs(dy) for dy, _ in correlated)
        reach_x = max(abs(dx) for _, dx in correlated)
        reach_y += reach_y > 0
        reach_x += reach_x > 0
        return tuple(
            (dy, dx)
            for dy in range(-reach_y, reach_y + 1)
            for dx in range(-reach_x, reach_x + 1)
            if (dy, dx) != (0, 0)
        )

    def describe(self) -> str:
        """One line for a log: the nearest-neighbour correlations along Y and X."""
        return (
            f"noise correlation with the next pixel: {self.at(0, 1):.2f} along X, "
            f"{self.at(1, 0):.2f} along Y, {self.at(1, 1):.2f} diagonally"
        )

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {
            "offsets": [list(o) for o in self.offsets],
            "values": list(self.values),
            "blocks": self.blocks,
        }


def _planes(image: np.ndarray, axes: str | None) -> list[np.ndarray]:
    """Channel-separated stacks of YX planes, shape (P, H, W) each."""
    array = check_image(image, axes)
    if axes is None:
        if array.ndim != 2:
            raise InfocusInputError(
                f"Image of shape {array.shape} needs an axes string to measure the noise "
                "correlation, e.g. axes='TYX' or 'ZYX' (all YX planes are pooled)."
            )
        axes = "YX"
    axes = check_axes(axes, array.shape)
    if "C" not in axes:
        return [yx_planes(array, axes)]
    channel = axes.index("C")
    rest = axes.replace("C", "")
    return [yx_planes(np.take(array, c, axis=channel), rest) for c in range(array.shape[channel])]


def _blocks(planes: np.ndarray, block: int) -> np.ndarray:
    """Up to ``_MAX_BLOCKS`` non-overlapping blocks, evenly spread over the planes, (K, B*B)."""
    n, height, width = planes.shape
    rows, cols = height // block, width // block
    total = n * rows * cols
    chosen = np.unique(np.linspace(0, total - 1, min(total, _MAX_BLOCKS)).round().astype(np.int64))
    plane, rest = np.divmod(chosen, rows * cols)
    row, col = np.divmod(rest, cols)
    out = np.empty((chosen.size, block * block), dtype=np.float64)
    for k, (p, r, c) in enumerate(zip(plane, row, col, strict=True)):
        out[k] = planes[p, r * block : (r + 1) * block, c * block : (c + 1) * block].reshape(-1)
    return out


def _per_block(blocks: np.ndarray, block: int, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected lag correlations (K, n_offsets) and residual variances (K,) of the blocks
    with any residual variation (others are dropped from both)."""
    basis, _ = _projection(block)
    residual = blocks - (blocks @ basis) @ basis.T
    energy = np.einsum("ij,ij->i", residual, residual)
    scale = np.einsum("ij,ij->i", blocks, blocks) / blocks.shape[1]
    varied = energy > 1e-10 * np.maximum(scale, 1e-300)
    residual = residual[varied].reshape(-1, block, block)
    energy = energy[varied]
    bias = _white_bias(block, max_lag)
    values = np.empty((residual.shape[0], len(bias)))
    for j, (dy, dx) in enumerate(_half_plane(max_lag)):
        a, b = _pair_slices(block, dy, dx)
        products = np.einsum("kij,kij->k", residual[:, a[0], a[1]], residual[:, b[0], b[1]])
        pairs = (block - dy) * (block - abs(dx))
        raw = products / energy * (block * block / pairs)
        values[:, j] = (raw - bias[j]) / (1.0 - bias[j])
    return values, energy / (block * block - basis.shape[1]), varied


def _flattest(blocks: np.ndarray, variance: np.ndarray, stack: np.ndarray,
              noise: NoiseParams | None = None) -> np.ndarray:
    """Indices of the blocks whose residual variance is lowest *relative to the noise model*
    (``noise``, estimated from ``stack`` when None).

    Structure adds variance to a block, so the blocks closest to the noise floor at their own
    brightness hold the least of it. The Poisson–Gaussian model only ranks blocks of different
    brightness; its scale does not matter (it is underestimated for correlated noise, by the
    same factor everywhere).
    """
    from infocus.noise.estimate import estimate_noise

    means = blocks.mean(axis=1)
    try:
        params = (noise if noise is not None
                  else estimate_noise(stack, axes="SYX" if stack.ndim == 3 else "YX"))
        expected = params.gain * means + params.variance_intercept
    except InfocusInputError:
        expected = np.ones_like(means)
    floor = max(float(np.max(expected)) * 1e-3, 1e-12)
    ratio = variance / np.maximum(expected, floor)
    keep = max(1, int(round(ratio.size * _FLAT_SHARE)))
    return np.argsort(ratio, kind="stable")[:keep]


def share_correlated(
    measured: Sequence[NoiseCorrelation], threshold: float = DEFAULT_THRESHOLD
) -> tuple[int, int]:
    """``(correlated, measured)``: how many of the measurable estimates would hide any pixel.

    Examples
    --------
    >>> white = NoiseCorrelation(((0, 1),), (0.0,), 64)
    >>> wide = NoiseCorrelation(((0, 1),), (0.6,), 64)
    >>> share_correlated([white, wide, wide, NoiseCorrelation(((0, 1),), (0.0,), 0)])
    (2, 3)
    """
    usable = [m for m in measured if m.blocks > 0]
    return sum(bool(m.blind_pattern(threshold)) for m in usable), len(usable)


def estimate_noise_correlation(
    image: np.ndarray, axes: str | None = None, *, max_lag: int = 3,
    noise: NoiseParams | Sequence[NoiseParams] | None = None,
) -> NoiseCorrelation:
    r"""Estimate the spatial correlation of the noise at offsets up to ``max_lag`` pixels.

    Parameters
    ----------
    image : ndarray
        Noisy image in camera units (no ground truth needed).
    axes : str, optional
        Axes of ``image`` (``"YX"`` by default for 2-D); every YX plane is used, channels are
        measured separately and the largest correlation per offset is reported.
    max_lag : int
        Largest offset along Y and X (1 to 4).
    noise : NoiseParams or sequence of them, optional
        The white-noise estimate (:func:`~infocus.noise.estimate_noise`) of the image, or one
        per channel, when the caller has it already: it ranks the blocks (its scale does not
        matter). Estimated here when None.

    Returns
    -------
    NoiseCorrelation
        With ``values`` near 0 for pixel-independent noise. Planes smaller than 16×16 pixels
        cannot be measured; then ``blocks`` is 0 and every value is 0.

    Notes
    -----
    See the module docstring for the method and its accuracy. Fine structure everywhere (no
    background at all) can still raise the estimate a little: on FMD's confocal actin images
    (true neighbour correlation 0.05) it reads 0.15.

    Examples
    --------
    >>> import numpy as np
    >>> from infocus.noise import add_correlated_noise
    >>> flat = np.full((256, 256), 100.0)
    >>> noisy = add_correlated_noise(flat, sigma=5.0, kernel=np.ones((1, 2)), rng=0)
    >>> c = estimate_noise_correlation(noisy)
    >>> round(c.at(0, 1), 1), abs(round(c.at(1, 0), 1))   # truth: 0.5 along X, 0 along Y
    (0.5, 0.0)
    >>> c.blind_pattern()   # hide two neighbours on either side along X
    ((0, -2), (0, -1), (0, 1), (0, 2))
    """
    if isinstance(max_lag, bool) or not isinstance(max_lag, int) or not 1 <= max_lag <= 4:
        raise InfocusInputError(f"max_lag must be an integer from 1 to 4 (got {max_lag!r}).")
    offsets = tuple(_half_plane(max_lag))
    best = np.full(len(offsets), -np.inf)
    total = 0
    stacks = _planes(image, axes)
    models = [noise] * len(stacks) if noise is None or isinstance(noise, NoiseParams) else list(noise)
    if len(models) != len(stacks):
        raise InfocusInputError(
            f"Give one noise model for all channels or one per channel ({len(stacks)}); got "
            f"{len(models)}."
        )
    for stack, model in zip(stacks, models, strict=True):
        if min(stack.shape[-2:]) < _BLOCK:
            continue
        stack = stack.astype(np.float64)
        blocks = _blocks(stack, _BLOCK)
        values, variance, varied = _per_block(blocks, _BLOCK, max_lag)
        if values.shape[0] == 0:
            continue
        flat = _flattest(blocks[varied], variance, stack, model)
        total += flat.size
        best = np.maximum(best, np.median(values[flat], axis=0))
    if total == 0:
        return NoiseCorrelation(offsets, (0.0,) * len(offsets), 0)
    return NoiseCorrelation(offsets, tuple(float(v) for v in best), total)


def estimate_pixel_noise(image: np.ndarray, axes: str | None = None) -> NoiseParams:
    """:func:`~infocus.noise.estimate_noise`, corrected to the per-pixel variance where the noise
    is correlated between pixels.

    The white-noise estimate sees only part of correlated noise (on FMD's widefield captures
    0.13–0.17 of its variance); where :func:`estimate_noise_correlation` finds correlation
    strong enough to widen a blind spot, :func:`~infocus.noise.correct_for_correlation`
    divides it by the share the estimator saw (0.68–0.90 of the truth there). Elsewhere it is
    :func:`~infocus.noise.estimate_noise` itself. This is the noise model infocus's
    classical denoisers and ``infocus qc`` estimate when none is given: on FMD's widefield
    captures it raised BM3D by 2.3–3.3 dB, non-local means by 5.3–6.5 dB and the wavelet
    denoiser by 2.5–3.2 dB (two captures of each of the three configurations, 512²).

    Parameters
    ----------
    image : ndarray
        The raw noisy image, one channel.
    axes : str, optional
        Its axes (``"YX"`` by default for 2-D).

    Returns
    -------
    NoiseParams

    Examples
    --------
    >>> import numpy as np
    >>> from infocus.noise import add_correlated_noise
    >>> noisy = add_correlated_noise(np.full((256, 256), 100.0), sigma=5.0,
    ...                              kernel=np.ones((2, 2)), rng=0)
    >>> bool(15 < estimate_pixel_noise(noisy).variance_intercept < 30)   # truth: 25
    True
    """
    from infocus.noise.estimate import correct_for_correlation, estimate_noise

    params = estimate_noise(image, axes=axes)
    return correct_for_correlation(params, estimate_noise_correlation(image, axes, noise=params))[0]


def _max_lag_reached(pattern: Sequence[Sequence[int]]) -> int:
    return max((max(abs(v) for v in o) for o in pattern), default=0)


def describe_pattern(pattern: Sequence[Sequence[int]]) -> str:
    """``'a 3×3 block'``, ``'a line of 5 along X'`` or ``'8 pixels'`` for a log message."""
    offsets = {tuple(o) for o in pattern}
    if not offsets:
        return "no pixel"
    reach = _max_lag_reached(offsets)
    square = set(itertools.product(range(-reach, reach + 1), repeat=2)) - {(0, 0)}
    if offsets == square:
        side = 2 * reach + 1
        return f"a {side}×{side} block"
    if all(o[0] == 0 for o in offsets) and offsets == {(0, d) for d in range(-reach, reach + 1) if d}:
        return f"a line of {2 * reach + 1} along X"
    if all(o[1] == 0 for o in offsets) and offsets == {(d, 0) for d in range(-reach, reach + 1) if d}:
        return f"a line of {2 * reach + 1} along Y"
    return f"{len(offsets)} pixels within {reach} of the centre"

