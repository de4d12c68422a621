r"""Estimate Poisson–Gaussian noise parameters from a single noisy image.

The method follows Foi, Trimeche, Katkovnik & Egiazarian (2008): compare a local *mean* image
with the local *noise energy* measured by high-pass (detail) filters, collect the pairs in level
sets of similar brightness, and fit the affine variance function
:math:`\mathrm{Var}[x \mid y] = a\,y + b` robustly. The details differ in ways that remove the
biases a single-image estimate is prone to (see :func:`noise_level_function`): the detail filters
cancel every cubic surface, the local mean is the exact partner of the detail energy, and
every selection (edges, texture, brightness, clipping) uses pixels *outside* the filter's support
so that it cannot bias the measured variance.

Reference
---------
A. Foi, M. Trimeche, V. Katkovnik, K. Egiazarian, "Practical Poissonian-Gaussian noise modeling
and fitting for single-image raw-data", IEEE Trans. Image Process. 17(10), 1737–1754 (2008).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from infocus._errors import InfocusInputError
from infocus._validate import check_image
from infocus.axes import check_axes, yx_planes
from infocus.noise._params import NoiseParams

if TYPE_CHECKING:
    from infocus.noise.correlation import NoiseCorrelation

__all__ = [
    "NoiseLevelPoints",
    "correct_for_correlation",
    "detail_share",
    "estimate_noise",
    "estimate_noise_with_error",
    "noise_level_function",
]

# Discrete Legendre polynomials of degree 1, 2, 3 on four points, normalised to unit energy.
_P1 = np.array([-3.0, -1.0, 1.0, 3.0]) / math.sqrt(20.0)
_P2 = np.array([1.0, -1.0, -1.0, 1.0]) / 2.0
_P3 = np.array([-1.0, 3.0, -3.0, 1.0]) / math.sqrt(20.0)
#: Separable detail filters P_i ⊗ P_j on a 4x4 support with i + j >= 4: orthonormal, and each
#: cancels every polynomial surface of degree <= 3 (indeed every u^p v^q with p < i or q < j), so
#: smooth signal leaks in only through fourth and higher derivatives. Six filters measure the
#: noise with about three times the effective samples of the single filter P3 ⊗ P3.
_FILTERS = [(_P3, _P3), (_P3, _P2), (_P2, _P3), (_P3, _P1), (_P1, _P3), (_P2, _P2)]
_SUPPORT = 4  # the coefficients at grid point (i, j) use x[i:i+4, j:j+4]
#: The surround of a support: the 8x8 block around it, less the support (48 pixels, 2 deep).
_BLOCK = _SUPPORT + 4
#: Monomials u^p v^q of the quadratic surface fitted to the surround.
_POWERS = [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]
#: Coefficients at Chebyshev distance 4..7 (supports disjoint from the centre's) judge texture.
_TEXTURE_INNER, _TEXTURE_OUTER = 4, 7
#: Var[mean of the pooled squared coefficients of n positions] = 2 σ⁴ κ / n for white Gaussian
#: noise; κ measured by simulation (overlapping supports make neighbours correlated).
_CORRELATION = 1.8
#: Truncation (in robust standard deviations) of the per-level-set mean of squares.
_TRIM = 4.0
#: A position is textured when the detail energy around it exceeds the fit by this fraction ...
_TEXTURE_EXCESS = 0.3
#: ... or when its surround departs from a quadratic surface by this much more than noise.
_SURROUND_EXCESS = 0.5
#: Smallest YX plane, and most pixels analysed (larger inputs are subsampled, see _as_planes).
_MIN_SIZE = 32
_MAX_PIXELS = 1 << 22


class NoiseLevelPoints(NamedTuple):
    r"""Per-level-set points of the noise-level function, for plotting against the fit.

    Attributes
    ----------
    mean : ndarray, float64
        Mean local value :math:`\hat y_i` of each level set (camera units), increasing.
    variance : ndarray, float64
        Robust noise variance :math:`\hat v_i` of each level set.
    count : ndarray, int64
        Number of filter positions in each level set (each gives six coefficients; neighbouring
        positions overlap, so the effective sample size is about ``count / 1.8`` squares).
    """

    mean: np.ndarray
    variance: np.ndarray
    count: np.ndarray


# ----------------------------------------------------------------------------- input handling


def _as_planes(image: np.ndarray, axes: str | None) -> np.ndarray:
    """The image as a float64 stack of YX planes, shape (P, H, W), at most ~4 M pixels.

    Larger inputs keep evenly spaced planes (and a central 2048x2048 crop of planes larger than
    that); four million pixels measure the noise far more precisely than needed.
    """
    if np.asarray(image).dtype == np.bool_:
        raise InfocusInputError(
            "The image is boolean (a mask?); noise can only be measured on intensities: pass "
            "the raw camera image."
        )
    array = check_image(image, axes)
    if axes is None:
        if array.ndim != 2:
            raise InfocusInputError(
                f"Image of shape {array.shape} needs an axes string to estimate noise, e.g. "
                "axes='TYX' or 'ZYX' (all YX planes are pooled)."
            )
        axes = "YX"
    axes = check_axes(axes, array.shape)
    if "C" in axes and array.shape[axes.index("C")] > 1:
        raise InfocusInputError(
            "Channels usually have different noise parameters; estimate each channel "
            "separately (in Python: estimate_noise(image[c], axes=...); the estimate-noise "
            "command does so for every channel)."
        )
    planes = yx_planes(array, axes)
    n_planes, height, width = planes.shape
    if min(height, width) < _MIN_SIZE:
        raise InfocusInputError(
            f"Noise estimation needs YX planes of at least {_MIN_SIZE}x{_MIN_SIZE} pixels (got "
            f"{height}x{width}); pass a larger image or the correct axes."
        )
    side = math.isqrt(_MAX_PIXELS)
    if height > side:
        top = (height - side) // 2
        planes, height = planes[:, top : top + side], side
    if width > side:
        left = (width - side) // 2
        planes, width = planes[:, :, left : left + side], side
    keep = max(1, _MAX_PIXELS // (height * width))
    if n_planes > keep:
        planes = planes[np.unique(np.linspace(0, n_planes - 1, keep).round().astype(int))]
    return planes.astype(np.float64)


def _clip_level(values: np.ndarray, side: str) -> float | None:
    """The saturation value if pixels pile up at the extreme ``side`` ("low"/"high").

    A pile-up is at least max(10, 1e-4 N) pixels at exactly the extreme value and more than twice
    as many as at the nearest other value (a noisy, unclipped image has few pixels at its
    extremes, and its histogram does not jump there).
    """
    flat = values.ravel()
    extreme = float(flat.max() if side == "high" else flat.min())
    n_extreme = int(np.count_nonzero(flat == extreme))
    if n_extreme < max(10, 1e-4 * flat.size):
        return None
    rest = flat[flat != extreme]
    if rest.size == 0:
        return None
    nearest = float(rest.max() if side == "high" else rest.min())
    n_nearest = int(np.count_nonzero(rest == nearest))
    return extreme if n_extreme > 2 * n_nearest else None


def _clipped_mask(
    planes: np.ndarray, clip_low: float | None, clip_high: float | None
) -> tuple[np.ndarray, float | None, float | None]:
    low = _clip_level(planes, "low") if clip_low is None else float(clip_low)
    high = _clip_level(planes, "high") if clip_high is None else float(clip_high)
    if low is not None and high is not None and low >= high:
        raise InfocusInputError(
            f"clip_low ({low}) must be below clip_high ({high}); pass the camera's saturation "
            "limits or leave them as None to detect them."
        )
    mask = np.zeros(planes.shape, dtype=bool)
    if low is not None:
        mask |= planes <= low
    if high is not None:
        mask |= planes >= high
    return mask, low, high


# ------------------------------------------------------------------------------ local maps


def _box_sum(x: np.ndarray, size: int) -> np.ndarray:
    """Sums over size x size windows of each plane; entry (i, j) covers x[i:i+size, j:j+size]."""
    c = np.cumsum(np.cumsum(x, axis=-2), axis=-1)
    c = np.pad(c, [(0, 0), (1, 0), (1, 0)])
    return c[:, size:, size:] - c[:, :-size, size:] - c[:, size:, :-size] + c[:, :-size, :-size]


def _separable_bank(
    x: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]]
) -> Iterator[np.ndarray]:
    """Correlate every plane with ``row_taps ⊗ col_taps`` for each pair in turn; entry (i, j)
    uses x[i:i+n, j:j+m]. Pairs with the same row taps share one row pass (the filters here
    need three row passes for six pairs)."""
    rows_of: dict[bytes, np.ndarray] = {}
    for row_taps, col_taps in pairs:
        rows = rows_of.get(row_taps.tobytes())
        if rows is None:
            rows = rows_of[row_taps.tobytes()] = _correlate_axis(x, row_taps, axis=1)
        yield _correlate_axis(rows, col_taps, axis=2)


def _correlate_axis(x: np.ndarray, taps: np.ndarray, axis: int) -> np.ndarray:
    """Valid correlation along one axis: ``sum_k taps[k] * x[..., k : n - len + 1 + k, ...]``,
    accumulated in place in the order of the taps."""
    length = x.shape[axis] - taps.size + 1

    def shifted(k: int) -> np.ndarray:
        index = [slice(None)] * x.ndim
        index[axis] = slice(k, k + length)
        return x[tuple(index)]

    total = taps[0] * shifted(0)
    term = np.empty_like(total)
    for k in range(1, taps.size):
        np.multiply(taps[k], shifted(k), out=term)
        total += term
    return total


def _surround_gram_inverse() -> np.ndarray:
    u = np.arange(_BLOCK) - (_BLOCK - 1) / 2
    uu, vv = np.meshgrid(u, u, indexing="ij")
    ring = np.ones((_BLOCK, _BLOCK), dtype=bool)
    ring[2:-2, 2:-2] = False
    design = np.stack([uu[ring] ** p * vv[ring] ** q for p, q in _POWERS], axis=1)
    return np.linalg.inv(design.T @ design)


_SURROUND_GRAM_INV = _surround_gram_inverse()
_SURROUND_SIZE = _BLOCK**2 - _SUPPORT**2
_SURROUND_DOF = _SURROUND_SIZE - len(_POWERS)


class _LocalMaps(NamedTuple):
    detail: np.ndarray  # (6, P, H', W') unit-energy detail coefficients of each support
    mean: np.ndarray  # ŷ = Σ w̄² x, whose expectation is the matching weighted local signal
    level: np.ndarray  # mean of the 48 surrounding pixels, independent of detail and ŷ
    surround_rss: np.ndarray  # residual energy of a quadratic surface fitted to the surround
    touches_clip: np.ndarray  # the 8x8 block holds a clipped pixel


def _local_maps(planes: np.ndarray, clipped: np.ndarray) -> _LocalMaps:
    r"""Detail, local mean and surround statistics on a common grid.

    Grid point (i, j) is the 4x4 support ``x[i:i+4, j:j+4]`` for i in 2..H-6, whose surround is
    the 8x8 block ``x[i-2:i+6, j-2:j+6]`` less the support. A quadratic surface
    :math:`\sum_{p+q \le 2} c_{pq} u^p v^q` is fitted to the 48 surround pixels by least squares;
    its residual energy (42 degrees of freedom) reveals edges and texture, using no pixel of the
    support.
    """
    # Subtracting a constant changes nothing below but keeps sums of squares well conditioned.
    median = float(np.median(planes))
    x = planes - median
    detail = np.stack([d[:, 2:-2, 2:-2] for d in _separable_bank(x, _FILTERS)])
    weights = [(r * r, c * c) for r, c in _FILTERS]
    mean = sum(m[:, 2:-2, 2:-2] for m in _separable_bank(planes, weights)) / len(weights)
    u8 = np.arange(_BLOCK) - (_BLOCK - 1) / 2
    u4 = np.arange(_SUPPORT) - (_SUPPORT - 1) / 2
    outers = _separable_bank(x, [(u8**p, u8**q) for p, q in _POWERS])
    inners = _separable_bank(x, [(u4**p, u4**q) for p, q in _POWERS])
    moments = [outer - inner[:, 2:-2, 2:-2] for outer, inner in zip(outers, inners, strict=True)]
    moment = np.stack(moments, axis=-1)
    energy = _box_sum(x * x, _BLOCK) - _box_sum(x * x, _SUPPORT)[:, 2:-2, 2:-2]
    fitted = np.einsum("...k,kl,...l->...", moment, _SURROUND_GRAM_INV, moment)
    rss = np.maximum(energy - fitted, 0.0)
    level = moments[0] / _SURROUND_SIZE + median
    touches = _box_sum(clipped.astype(np.float64), _BLOCK) > 0.5
    return _LocalMaps(detail, mean, level, rss, touches)


def _surround_excess(maps: _LocalMaps, gain: float, intercept: float) -> np.ndarray:
    """Relative excess of the surround's residual energy over the fitted noise variance."""
    predicted = np.maximum(gain * maps.level + intercept, 1e-300)
    return maps.surround_rss / (_SURROUND_DOF * predicted) - 1.0


def _texture_excess(maps: _LocalMaps, gain: float, intercept: float) -> np.ndarray:
    """Relative excess of detail energy around each position over the fitted noise variance.

    Uses only coefficients at Chebyshev distance 4..7, whose supports do not overlap the
    position's own, so the selection is independent of the position's noise. Positions too close
    to the border to have the full neighbourhood get +inf (excluded).
    """
    big = 2 * _TEXTURE_OUTER + 1
    small = 2 * _TEXTURE_INNER - 1
    shift = _TEXTURE_OUTER - _TEXTURE_INNER + 1
    energy = np.sum(maps.detail**2, axis=0)
    predicted = len(_FILTERS) * np.maximum(gain * maps.mean + intercept, 1e-12)

    def annulus(x: np.ndarray) -> np.ndarray:
        return _box_sum(x, big) - _box_sum(x, small)[:, shift:-shift, shift:-shift]

    out = np.full(maps.mean.shape, np.inf)
    if min(out.shape[1:]) > 2 * _TEXTURE_OUTER:
        ratio = annulus(energy) / np.maximum(annulus(predicted), 1e-300) - 1.0
        out[:, _TEXTURE_OUTER:-_TEXTURE_OUTER, _TEXTURE_OUTER:-_TEXTURE_OUTER] = ratio
    return out


# ----------------------------------------------------------------------------- level sets


def _trimmed_variance(d: np.ndarray, scale: np.ndarray | None = None) -> float:
    r"""Robust variance: mean of squares within ±4 σ̂_p, over its Gaussian consistency factor.

    The detail filters sum to zero, so :math:`E[d] = 0` for smooth signal and the mean of squares
    about zero (not the sample variance about the bin mean, which would need an n/(n-1)
    correction and absorb nothing useful) is the unbiased estimate. Each coefficient is trimmed
    at :math:`k \hat\sigma_p = k\, t\, \text{scale}_p`, where ``scale`` is its predicted relative
    noise std (from the surround level; 1 when unknown) and :math:`t` starts from the MAD and is
    iterated to the fixed point of the truncated estimator. Trimming in standardised units keeps
    a level set whose members have different variances unbiased: every member loses the same
    fraction of its variance, restored by :math:`c(k) = 1 - 2k\varphi(k)/(2\Phi(k) - 1)`.
    """
    z = d if scale is None else d / scale
    z2 = z * z
    k = _TRIM
    p_in = math.erf(k / math.sqrt(2.0))
    consistency = 1.0 - 2.0 * k * math.exp(-0.5 * k * k) / math.sqrt(2.0 * math.pi) / p_in
    t2 = (1.4826 * float(np.median(np.abs(z)))) ** 2
    if t2 <= 0:
        t2 = float(np.mean(z2))
    kept = np.ones(d.shape, dtype=bool)
    for _ in range(4):
        kept = z2 <= k * k * t2
        if not kept.any():
            return float(np.mean(d * d))
        t2 = float(np.mean(z2[kept])) / consistency
    return float(np.mean((d * d)[kept])) / consistency


def _level_sets(
    level: np.ndarray,
    mean: np.ndarray,
    detail: np.ndarray,
    scale: np.ndarray | None,
    *,
    min_count: int,
    max_bins: int,
) -> NoiseLevelPoints:
    """Group positions by level into bins of at least ``min_count`` and summarise each bin."""
    if level.size < 2 * min_count:
        return NoiseLevelPoints(np.empty(0), np.empty(0), np.empty(0, dtype=np.int64))
    lo, hi = np.quantile(level, [0.0005, 0.9995])
    edges = np.linspace(lo, hi, 4 * max_bins + 1)
    edges[0], edges[-1] = -np.inf, np.inf
    index = np.clip(np.searchsorted(edges, level, side="right") - 1, 0, edges.size - 2)
    counts = np.bincount(index, minlength=edges.size - 1)
    # Merge neighbouring fine bins until each holds enough positions.
    target = max(min_count, level.size // max_bins)
    group = np.empty(counts.size, dtype=np.int64)
    current, filled = 0, 0
    for b, c in enumerate(counts):
        group[b] = current
        filled += c
        if filled >= target:
            current, filled = current + 1, 0
    if filled and current > 0:
        group[group == current] = current - 1  # a short remainder joins the last full group
    # Small integer labels make the stable sort a radix sort.
    labels = group[index].astype(np.int16 if group.size < 2**15 else np.int64)
    order = np.argsort(labels, kind="stable")
    bounds = [0, *(np.flatnonzero(np.diff(labels[order])) + 1), order.size]
    # One gather for all level sets; each is then a contiguous run of the sorted positions.
    detail, mean = detail[:, order], mean[order]
    scale = None if scale is None else scale[order]
    means, variances, sizes = [], [], []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        coefficients = detail[:, start:stop]
        chunk_scale = None
        if scale is not None:
            chunk_scale = np.broadcast_to(scale[start:stop], coefficients.shape).ravel()
        means.append(float(np.mean(mean[start:stop])))
        variances.append(_trimmed_variance(coefficients.ravel(), chunk_scale))
        sizes.append(stop - start)
    return NoiseLevelPoints(
        np.asarray(means), np.asarray(variances), np.asarray(sizes, dtype=np.int64)
    )


# ------------------------------------------------------------------------------------ fit


def _fit_line(points: NoiseLevelPoints) -> tuple[float, float]:
    r"""Weighted robust fit of :math:`v_i = a\,\hat y_i + b` with :math:`a \ge 0`.

    Each :math:`\hat v_i` has variance :math:`\approx 2 \kappa (a \hat y_i + b)^2 / n_i`, so the
    fit is iteratively reweighted with :math:`w_i = n_i / (a \hat y_i + b)^2` times Huber weights
    (threshold 2.5) of the standardised residuals. A negative slope, or level sets spanning less
    than one noise standard deviation (no lever arm to separate :math:`a` from :math:`b`), give
    constant variance :math:`a = 0`.
    """
    y, v, n = points.mean, points.variance, points.count.astype(np.float64)
    if y.size == 0:
        raise InfocusInputError(
            "Too few usable pixels to estimate the noise (the image is too small, too textured "
            "or mostly clipped); pass a larger image or a stack with axes='TYX'."
        )
    if y.size == 1 or np.ptp(y) < math.sqrt(max(float(np.median(v)), 0.0)):
        return 0.0, float(np.average(v, weights=n))
    design = np.stack([y, np.ones_like(y)], axis=1)
    floor = max(1e-9 * float(np.max(np.abs(v))), 1e-300)
    predicted = np.maximum(v, floor)
    robust = np.ones_like(v)
    a = b = math.nan
    for _ in range(50):
        w = robust * n / predicted**2
        sw = np.sqrt(w)
        (a_new, b_new), *_ = np.linalg.lstsq(design * sw[:, None], v * sw, rcond=None)
        if a_new < 0:  # variance not increasing: purely Gaussian noise
            a_new, b_new = 0.0, float(np.sum(w * v) / np.sum(w))
        predicted = np.maximum(a_new * y + b_new, floor)
        z = (v - predicted) / (predicted * np.sqrt(2.0 * _CORRELATION / n))
        spread = max(1.0, 1.4826 * float(np.median(np.abs(z))))
        robust = np.minimum(1.0, 2.5 * spread / np.maximum(np.abs(z), 1e-12))
        tolerance = 1e-8 * (abs(float(b_new)) + abs(float(a_new)) * float(np.max(np.abs(y))))
        converged = abs(a_new - a) * float(np.max(np.abs(y))) + abs(b_new - b) <= tolerance
        a, b = float(a_new), float(b_new)
        if converged:
            break
    return a, b


def _fit_covariance(points: NoiseLevelPoints, a: float, b: float) -> np.ndarray:
    r"""Covariance of the fitted :math:`(a, b)` from the level sets' own sampling error.

    The weighted least-squares fit of :func:`_fit_line` with the weights of its model,
    :math:`\mathrm{Var}[\hat v_i] = 2\kappa (a \hat y_i + b)^2 / n_i`, has the covariance
    :math:`(X^\top W X)^{-1}`, :math:`X = [\hat y, 1]`, :math:`W = \mathrm{diag}(1 /
    \mathrm{Var}[\hat v_i])`. It is inflated by the reduced :math:`\chi^2` of the residuals
    when that exceeds 1 (level sets that scatter more than noise explains: texture leaking in).
    With a constant variance (:math:`a = 0`) only :math:`b` is fitted and :math:`a` has no
    error. On simulated spot scenes of 256² at 5–100 photons the predicted standard error of
    the mean variance, 0.8–1.1 %, matched the spread of the estimates over 12 scenes
    (0.7–1.2 %).
    """
    y, v, n = points.mean, points.variance, points.count.astype(np.float64)
    if not np.any(v > 0) or a * float(np.max(y)) + b <= 0:
        # an image without measurable noise: no sampling error to speak of (users of the
        # estimate refuse such an image)
        return np.zeros((2, 2))
    predicted = np.maximum(a * y + b, 1e-12 * float(np.max(np.abs(v))))
    variance_of_points = 2.0 * _CORRELATION * predicted**2 / n
    z = (v - predicted) / np.sqrt(variance_of_points)
    if a == 0.0 or y.size < 3:
        reduced = float(np.sum(z**2) / max(y.size - 1, 1))
        error = float(1.0 / np.sum(1.0 / variance_of_points)) * max(reduced, 1.0)
        return np.array([[0.0, 0.0], [0.0, error]])
    design = np.stack([y, np.ones_like(y)], axis=1)
    information = design.T @ (design / variance_of_points[:, None])
    reduced = float(np.sum(z**2) / (y.size - 2))
    return np.linalg.inv(information) * max(reduced, 1.0)


# ---------------------------------------------------------------------------------- analysis


def _analyse(
    image: np.ndarray,
    axes: str | None,
    clip_low: float | None,
    clip_high: float | None,
    min_count: int,
    max_bins: int,
) -> tuple[NoiseLevelPoints, float, float]:
    if min_count < 10 or max_bins < 2:
        raise InfocusInputError(
            f"min_count must be >= 10 and max_bins >= 2 (got {min_count} and {max_bins}); "
            "the defaults (400 and 40) suit images of 256x256 pixels and more."
        )
    planes = _as_planes(image, axes)
    clipped, low, high = _clipped_mask(planes, clip_low, clip_high)
    maps = _local_maps(planes, clipped)
    usable = ~maps.touches_clip

    def points_for(keep: np.ndarray, fit: tuple[float, float] | None) -> NoiseLevelPoints:
        scale = None
        if fit is not None:
            predicted = fit[0] * maps.level[keep] + fit[1]
            scale = np.sqrt(np.maximum(predicted, 1e-6 * max(float(predicted.max()), 1e-300)))
        pts = _level_sets(
            maps.level[keep],
            maps.mean[keep],
            maps.detail[:, keep],
            scale,
            min_count=min_count,
            max_bins=max_bins,
        )
        if (low is not None or high is not None) and pts.mean.size:
            # Level sets within 4 noise std of a saturation value have truncated noise.
            reach = 4.0 * np.sqrt(np.maximum(pts.variance, 0.0))
            ok = np.ones(pts.mean.size, dtype=bool)
            if high is not None:
                ok &= pts.mean + reach < high
            if low is not None:
                ok &= pts.mean - reach > low
            pts = NoiseLevelPoints(pts.mean[ok], pts.variance[ok], pts.count[ok])
        return pts

    # Pass 1: every unclipped position; the robust fit shrugs off most edges.
    points = points_for(usable, None)
    a, b = _fit_line(points)
    # Passes 2-3: drop positions whose neighbourhood carries more energy than the noise.
    for _ in range(2):
        calm = (
            usable
            & (_texture_excess(maps, a, b) < _TEXTURE_EXCESS)
            & (_surround_excess(maps, a, b) < _SURROUND_EXCESS)
        )
        if np.count_nonzero(calm) < 4 * min_count:
            break
        calm_points = points_for(calm, (a, b))
        if calm_points.mean.size < 2:
            break
        points = calm_points
        a, b = _fit_line(points)
    return points, a, b


# ---------------------------------------------------------------------------------- public


def noise_level_function(
    image: np.ndarray,
    *,
    axes: str | None = None,
    clip_low: float | None = None,
    clip_high: float | None = None,
    min_count: int = 400,
    max_bins: int = 40,
) -> NoiseLevelPoints:
    r"""Measure noise variance against local mean, in level sets of one image (or a stack).

    For every 4x4 support, six orthonormal separable detail filters :math:`w_f = P_i \otimes P_j`
    (discrete Legendre polynomials with :math:`i + j \ge 4`, each cancelling every cubic
    surface) give coefficients :math:`d_f = \sum_k w_{fk} x_k` with

    .. math:: \mathrm{E}[d_f^2] = a \sum_k w_{fk}^2 y_k + b + \Big(\sum_k w_{fk} y_k\Big)^2 ,

    and the matching local mean :math:`\hat y = \frac16 \sum_f \sum_k w_{fk}^2 x_k` is an unbiased
    estimate of the average of :math:`\sum_k w_{fk}^2 y_k`. So every :math:`(\hat y, d_f^2)` is an
    unbiased sample of the line :math:`a y + b` wherever the leaked signal (last term) is
    negligible, even where the signal varies within the support. Positions are

    1. dropped if the 8x8 block around their support holds a clipped pixel;
    2. dropped if their *surround* (the 48 pixels of the 8x8 block outside the support) departs
       from a quadratic surface by more than 1.5 times the fitted noise variance, or if the
       detail energy at distance 4–7 (coefficients whose supports do not overlap) exceeds it by
       30 %: edges, texture and small spots, where signal would leak into the coefficients;
    3. grouped by the mean of their surround into level sets of at least ``min_count`` positions.

    Because every selection uses pixels outside the support, it does not bias the kept
    coefficients (selecting on a pixel's own detail or mean would: it truncates the noise).
    Each level set reports the mean of :math:`\hat y` and a robust variance of its coefficients:
    the mean of squares within ±4 robust standard deviations (per coefficient, scaled by its
    predicted noise level) divided by the Gaussian consistency factor; no mean is subtracted,
    since the filters sum to zero. Level sets within 4 noise standard deviations of a saturation
    value are removed. The selection thresholds use the line fitted in a first pass over all
    unclipped positions, and the analysis is repeated twice.

    Parameters
    ----------
    image : ndarray
        Raw camera values (not normalised, background-subtracted or denoised).
    axes : str, optional
        Axes string; needed for more than two dimensions. All YX planes (``T``, ``Z``, ``S``) are
        pooled; several channels are refused (estimate each channel separately). At most about
        four million pixels are analysed (evenly spaced planes; a central 2048x2048 crop).
    clip_low, clip_high : float, optional
        Known saturation values; values at or beyond them count as clipped. When None, a pile-up
        of pixels at the minimum or maximum value is detected and treated as clipping.
    min_count : int
        Fewest positions in a level set.
    max_bins : int
        Most level sets.

    Returns
    -------
    NoiseLevelPoints
        ``(mean, variance, count)`` arrays, one entry per level set, increasing in mean.

    Examples
    --------
    >>> import numpy as np
    >>> from infocus.noise import simulate_poisson_gaussian
    >>> ramp = np.tile(np.linspace(0.05, 1.0, 256), (256, 1))
    >>> noisy, true = simulate_poisson_gaussian(ramp, photons=200, gain=2.0, offset=100.0,
    ...                                         read_noise=3.0, rng=0)
    >>> points = noise_level_function(noisy)
    >>> bool(np.all(np.abs(points.variance / true.variance(points.mean) - 1) < 0.25))
    True
    """
    return _analyse(image, axes, clip_low, clip_high, int(min_count), int(max_bins))[0]


def estimate_noise(
    image: np.ndarray,
    *,
    axes: str | None = None,
    offset: float | None = None,
    clip_low: float | None = None,
    clip_high: float | None = None,
) -> NoiseParams:
    r"""Estimate the Poisson–Gaussian parameters of :math:`\mathrm{Var}[x \mid y] = a y + b`.

    Measures the noise-level function with :func:`noise_level_function` and fits the line by
    iteratively reweighted least squares: weights :math:`n_i / (a \hat y_i + b)^2` (the variance
    of a variance estimate grows with its square), Huber down-weighting of level sets that
    deviate by more than 2.5 robust standard deviations, and :math:`a \ge 0` (a negative slope is
    refit as constant, purely Gaussian noise). In the spirit of Foi et al. (2008).

    Parameters
    ----------
    image : ndarray
        One raw noisy image, or a stack (then pass ``axes``; all YX planes are pooled).
    axes : str, optional
        Axes string, e.g. ``"TYX"``; required for more than two dimensions.
    offset : float, optional
        The camera offset :math:`\mu` (dark level), when known: then ``offset`` and
        ``read_noise`` :math:`= \sqrt{\max(b + a\mu, 0)}` are reported too.
    clip_low, clip_high : float, optional
        Saturation values; detected from pile-ups at the extremes when None.

    Returns
    -------
    NoiseParams
        ``gain`` :math:`a` (camera units per photo-electron) and ``variance_intercept`` :math:`b`.

    Notes
    -----
    Accuracy, measured on simulated 256x256–512x512 images (smooth blobs, piecewise-constant
    shapes with sharp edges, two real fluorescence images smoothed to serve as ground truth;
    gains 0.5–10, offset 100, peaks of 30–1000 photons): where the read-noise variance
    :math:`\sigma^2` is at most a quarter of the shot-noise variance :math:`a^2 s_{max}` at the
    brightest pixels (read noise ≤ 2.5 e⁻ at 30 photons, ≤ 5 e⁻ at 100, ≤ 15 e⁻ at 1000),
    the gain was within 5 % and the variance :math:`a y + b` within 6 % at the 10th, 50th and
    90th percentile of the signal. The gain can only be measured where shot noise is a sizeable
    part of the variance: with :math:`\sigma^2 = a^2 s_{max}` its error reached ~11 %, and
    when read noise dominates (e.g. 40 e⁻ at 100 photons) the gain is unusable although the
    predicted variance stays within ~5 %. Clipping at a saturation value discards the bright
    level sets and shortens the lever arm; heavily textured images and small images
    (< ~40 000 pixels) give noisier estimates.

    The estimate assumes noise independent from pixel to pixel. Spatially correlated noise (an
    image resampled for registration, some sCMOS read-outs, widefield FMD data) is partly taken
    for signal and its variance is read low: a half-pixel shift of simulated data read 1.25
    where the truth was 4.67. Check :func:`~infocus.noise.estimate_noise_correlation` (or
    ``infocus estimate-noise``, which prints both) first, and correct the estimate with
    :func:`correct_for_correlation` where the noise is correlated.

    Raises
    ------
    InfocusInputError
        Bad input (see :func:`~infocus._validate.check_image`), several channels, planes smaller
        than 32x32, or too few usable pixels.
    """
    return estimate_noise_with_error(image, axes=axes, offset=offset, clip_low=clip_low,
                                     clip_high=clip_high)[0]


def estimate_noise_with_error(
    image: np.ndarray,
    *,
    axes: str | None = None,
    offset: float | None = None,
    clip_low: float | None = None,
    clip_high: float | None = None,
) -> tuple[NoiseParams, np.ndarray]:
    r""":func:`estimate_noise` and the covariance of its ``(gain, variance_intercept)``.

    The covariance comes from the fit's model of the level sets' sampling error, inflated when
    they scatter more than that (:func:`_fit_covariance`); it measures how far another noise
    draw of the same scene would move the estimate, not the bias of a scene whose structure
    reads as noise (texture, noise correlated between pixels).

    Returns
    -------
    params : NoiseParams
        As :func:`estimate_noise`.
    covariance : ndarray, shape (2, 2)
        Covariance of ``(gain, variance_intercept)``.

    Examples
    --------
    >>> import numpy as np
    >>> from infocus.noise import simulate_poisson_gaussian
    >>> ramp = np.tile(np.linspace(0.05, 1.0, 256), (256, 1))
    >>> noisy, _ = simulate_poisson_gaussian(ramp, photons=200, gain=2.0, offset=100.0,
    ...                                      read_noise=3.0, rng=0)
    >>> params, covariance = estimate_noise_with_error(noisy)
    >>> bool(abs(params.gain - 2.0) < 3 * np.sqrt(covariance[0, 0]))
    True
    """
    points, a, b = _analyse(image, axes, clip_low, clip_high, 400, 40)
    covariance = _fit_covariance(points, a, b)
    if offset is None:
        return NoiseParams(gain=a, variance_intercept=b), covariance
    offset = float(offset)
    if not math.isfinite(offset):
        raise InfocusInputError(
            f"offset must be finite (got {offset}); pass the camera dark level."
        )
    return NoiseParams(
        gain=a, variance_intercept=b, offset=offset, read_noise=math.sqrt(max(b + a * offset, 0.0))
    ), covariance


def detail_share(correlation: NoiseCorrelation) -> float:
    r"""The share :math:`\kappa` of a correlated noise's variance that the detail filters see.

    A detail filter :math:`w` of unit energy applied to noise of variance :math:`v` and
    correlation :math:`\rho` has output variance
    :math:`v \sum_{p,q} w_p w_q\,\rho(p - q) = \kappa_w v`: 1 for white noise, less for
    noise correlated between neighbours (it is smooth, and high-pass filters see less of it).
    :math:`\kappa` is the mean of :math:`\kappa_w` over the six filters, whose squared outputs
    are pooled with equal weight.

    Parameters
    ----------
    correlation : NoiseCorrelation
        The noise's correlation (:func:`~infocus.noise.estimate_noise_correlation`); offsets it
        does not hold count as uncorrelated.

    Returns
    -------
    float
        :math:`\kappa`, floored at 0.05 (an estimate of the correlation this strong is not
        trusted further).

    Examples
    --------
    >>> from infocus.noise import NoiseCorrelation
    >>> detail_share(NoiseCorrelation(((0, 1),), (0.0,), 64))
    1.0
    >>> round(detail_share(NoiseCorrelation(((0, 1),), (0.5,), 64)), 2)
    0.58
    """
    from scipy.signal import correlate2d

    lags = np.arange(-(_SUPPORT - 1), _SUPPORT)
    rho = np.array([[correlation.at(int(dy), int(dx)) for dx in lags] for dy in lags])
    # Σ_p Σ_q w_p w_q ρ(q − p): each filter's autocorrelation (lags −3..3) weighted by the
    # noise's; both are even functions of the lag.
    shares = [float(np.sum(correlate2d(w, w, mode="full") * rho))
              for w in (np.outer(a, b) for a, b in _FILTERS)]
    return max(float(np.mean(shares)), 0.05)


def correct_for_correlation(
    params: NoiseParams, correlation: NoiseCorrelation, covariance: np.ndarray | None = None
) -> tuple[NoiseParams, np.ndarray | None]:
    r"""The per-pixel noise variance from an estimate made as if the noise were white.

    :func:`estimate_noise` measures the variance through high-pass filters, which see only the
    share :math:`\kappa` (:func:`detail_share`) of a correlated noise; the variance of a pixel
    is the estimate divided by :math:`\kappa`: gain and intercept (and their covariance, by
    :math:`\kappa^2`) are scaled, the offset kept. Only where the correlation is strong enough
    to widen a blind spot (:meth:`~infocus.noise.NoiseCorrelation.blind_pattern`): weaker
    readings are mostly the image's own structure, and ``params`` and ``covariance`` are then
    returned as they are.

    Accuracy, measured on FMD's widefield captures (true variance from the four captures of
    each field of view, 256² crops): the white-noise estimate read 0.13–0.17 of the truth,
    :math:`\kappa` came out 0.19–0.20, the corrected variance 0.68–0.90 of the truth (the
    correlation estimate reads correlation two and more pixels away low). Confocal and
    two-photon captures (:math:`\kappa \approx 0.96`) are barely changed.

    Parameters
    ----------
    params : NoiseParams
        An estimate from :func:`estimate_noise` of the same image.
    correlation : NoiseCorrelation
        Its noise correlation (:func:`~infocus.noise.estimate_noise_correlation`).
    covariance : ndarray (2, 2), optional
        The covariance of ``(gain, variance_intercept)``
        (:func:`estimate_noise_with_error`), scaled along.

    Returns
    -------
    params : NoiseParams
    covariance : ndarray (2, 2) or None

    Examples
    --------
    >>> import numpy as np
    >>> from infocus.noise import add_correlated_noise, estimate_noise, estimate_noise_correlation
    >>> noisy = add_correlated_noise(np.full((256, 256), 100.0), sigma=5.0,
    ...                              kernel=np.ones((2, 2)), rng=0)
    >>> white = estimate_noise(noisy)
    >>> corrected, _ = correct_for_correlation(white, estimate_noise_correlation(noisy))
    >>> bool(white.variance_intercept < 15 < corrected.variance_intercept)   # truth: 25
    True
    """
    if not correlation.blind_pattern():
        return params, covariance
    share = detail_share(correlation)
    read_noise = None if params.read_noise is None else params.read_noise / math.sqrt(share)
    corrected = NoiseParams(gain=params.gain / share,
                            variance_intercept=params.variance_intercept / share,
                            offset=params.offset, read_noise=read_noise)
    return corrected, None if covariance is None else np.asarray(covariance) / share**2
