r"""Give back the information a blind spot throws away: fuse the prediction with the noisy pixel.

A blind-spot network (Noise2Void, N2V2, Noise2Self) is trained to predict each pixel from its
neighbours only, :math:`\mu_p \approx \mathrm{E}[s_p \mid x_{\text{neighbours}}]`; the noisy
value :math:`x_p = s_p + n_p` itself, an unbiased measurement with known variance, is never used.
The two estimates have independent errors when the noise is independent between pixels, and
their best linear combination is

.. math:: \hat s_p = \mu_p + \alpha\,(x_p - \mu_p), \qquad
          \alpha = \frac{\sigma_\mu^2}{\sigma_\mu^2 + \sigma_n^2},

with :math:`\sigma_\mu^2 = \mathrm{E}[(\mu - s)^2]` the network's error and :math:`\sigma_n^2`
the noise variance. Neither needs ground truth: the noise model
(:func:`~infocus.noise.estimate_noise`) gives :math:`\sigma_n^2(\mu) = a\mu + b` per pixel, and
since the residual :math:`r = x - \mu` has :math:`\mathrm{E}[r^2] = \sigma_\mu^2 + \sigma_n^2`,

.. math:: \alpha = \max\!\left(0,\ 1 - \frac{\overline{\sigma_n^2(\mu)}}{\overline{r^2}}\right)

over the image. This is the linear special case of the Bayesian posterior that Laine et al.
(2019) and Krull et al. (2020, PN2V) use to recover the centre pixel; it is also what Stein's
unbiased risk estimate selects for a blind-spot estimator. One weight per image (not per pixel):
a per-pixel weight from the heteroscedastic noise model did worse on FMD, because the network's
error grows with brightness too.

Caveats, measured rather than assumed: at prediction the network sees the real centre pixel
(only training masks it), so :math:`\mu_p` depends slightly on :math:`x_p`; that makes
:math:`\overline{r^2}` smaller and :math:`\alpha` conservative. Spatially correlated noise
breaks both the independence and the noise estimate (it reads such noise far too low), so the
fusion is only applied when the model was trained with a one-pixel blind spot on noise measured
as white. On FMD's Confocal_BPAE_B (four captures, shipped N2V) it raised PSNR from 37.07 to
37.76 dB; the estimated :math:`\alpha` was 0.16–0.18 against an oracle optimum near 0.2.

References
----------
S. Laine, T. Karras, J. Lehtinen, T. Aila, "High-quality self-supervised deep image denoising",
NeurIPS 2019.

A. Krull, T. Vičar, M. Prakash, M. Lalit, F. Jug, "Probabilistic Noise2Void: unsupervised
content-aware denoising", Frontiers in Computer Science 2, 5 (2020).
"""

from __future__ import annotations

import numpy as np

from infocus._errors import InfocusInputError
from infocus.noise._params import NoiseParams

__all__ = [
    "NOISE_AGREEMENT",
    "estimate_noise_or_none",
    "fuse_with_noisy",
    "fusion_weight",
    "noise_agreement",
]

#: Largest relative disagreement (see :func:`noise_agreement`) at which a known noise model
#: (the one measured on the training images) stands in for a new image's own estimate.
#: The single-image estimate of a 256² crop itself scatters by ±5 % (up to 10 %) around the
#: truth, so a model agreeing within 5 % is as good a description of the image's noise.
NOISE_AGREEMENT = 0.05
#: Fewest 4x4 supports for :func:`noise_agreement` (one 256² plane, or several smaller ones):
#: with fewer, the median's relative standard error (2.3 / sqrt(6 n), 1.5 % here) would exceed
#: a third of :data:`NOISE_AGREEMENT`.
_AGREEMENT_SUPPORTS = 4096
#: Median of the chi-square distribution with one degree of freedom.
_CHI2_MEDIAN = 0.454936423119572
#: Most YX planes that :func:`noise_agreement` reads (evenly spaced).
_AGREEMENT_PLANES = 16


def fusion_weight(
    noisy: np.ndarray, prediction: np.ndarray, axes: str, noise: NoiseParams | None = None
) -> float:
    """The weight :math:`\\alpha` of the noisy image (0 when it cannot be estimated).

    Parameters
    ----------
    noisy, prediction : ndarray
        One channel's noisy image and the blind-spot network's prediction, camera units, same
        shape.
    axes : str
        Axes of both (``"YX"``, ``"ZYX"``, ``"TYX"``): every YX plane feeds the noise estimate.
    noise : NoiseParams, optional
        The noise model, if known (e.g. estimated once for a whole stack); else estimated from
        ``noisy``.
    """
    if noise is None:
        noise = estimate_noise_or_none(noisy, axes)
    if noise is None:
        return 0.0  # too small or flat to estimate the noise: keep the network's prediction
    noise_variance = np.maximum(noise.gain * prediction + noise.variance_intercept, 0.0)
    residual = noisy.astype(np.float64) - prediction
    energy = float(np.mean(residual * residual))
    if not energy > 0:
        return 0.0
    return float(np.clip(1.0 - float(np.mean(noise_variance)) / energy, 0.0, 1.0))


def noise_agreement(noisy: np.ndarray, noise: NoiseParams, axes: str) -> float | None:
    r"""How well a known noise model describes ``noisy``: 1 when it does, ``k`` when the image's
    noise variance is ``k`` times the model's (None when too few pixels to tell).

    The image is cut into non-overlapping 4x4 supports, and each gets the six detail
    coefficients of :func:`~infocus.noise.estimate_noise` (orthonormal filters
    :math:`w_f` that cancel every cubic surface) and their matching local means
    :math:`\hat y_f = \sum_k w_{fk}^2 x_k`. Where the model is right,
    :math:`z_f = d_f / \sqrt{a \hat y_f + b}` is standard normal on smooth signal, and
    independent between supports and filters for white noise; the result is
    :math:`\operatorname{median}(z^2) / 0.4549` (the median of :math:`\chi^2_1`), whose
    relative standard error is :math:`2.3/\sqrt{N}` for :math:`N` coefficients (1.5 % on a
    256² plane). Edges and texture leak signal into some coefficients and can only raise it, and
    clipped pixels lower it: either way a disagreement sends the caller to a full estimate.
    Costs about 1 ms per 256² plane, against ~80 ms for :func:`~infocus.noise.estimate_noise`.

    Parameters
    ----------
    noisy : ndarray
        One channel's raw image, camera units.
    noise : NoiseParams
        The model to check, :math:`\mathrm{Var}[x \mid y] = a y + b`.
    axes : str
        Axes of ``noisy`` (``"YX"``, ``"ZYX"``, ...); up to 16 evenly spaced YX planes are read.
    """
    from infocus.axes import yx_planes
    from infocus.noise.estimate import _FILTERS

    planes = yx_planes(np.asarray(noisy), axes)
    if planes.shape[0] > _AGREEMENT_PLANES:
        keep = np.linspace(0, planes.shape[0] - 1, _AGREEMENT_PLANES).round().astype(int)
        planes = planes[np.unique(keep)]
    n, height, width = planes.shape
    height, width = height - height % 4, width - width % 4
    supports = (n * height * width) // 16
    if supports < _AGREEMENT_SUPPORTS:
        return None
    blocks = (
        planes[:, :height, :width]
        .astype(np.float64)
        .reshape(n, height // 4, 4, width // 4, 4)
        .transpose(0, 1, 3, 2, 4)
        .reshape(-1, 16)
    )
    weights = np.stack([np.outer(rows, cols).ravel() for rows, cols in _FILTERS])
    # Subtracting a constant leaves the detail coefficients unchanged (the filters sum to zero)
    # and keeps them precise on a large offset.
    detail = (blocks - float(np.median(blocks))) @ weights.T
    variance = noise.gain * (blocks @ (weights * weights).T) + noise.variance_intercept
    positive = variance > 0
    if np.count_nonzero(positive) < _AGREEMENT_SUPPORTS:
        return None
    z2 = detail[positive] ** 2 / variance[positive]
    return float(np.median(z2)) / _CHI2_MEDIAN


def estimate_noise_or_none(
    noisy: np.ndarray, axes: str, known: NoiseParams | None = None
) -> NoiseParams | None:
    """:func:`~infocus.noise.estimate_noise`, or None where the image is too small or flat.

    A ``known`` model (e.g. the one measured on the training images) is returned instead, with
    no estimate, when :func:`noise_agreement` finds it within :data:`NOISE_AGREEMENT` of the
    image's noise.
    """
    from infocus.noise import estimate_noise

    if known is not None:
        agreement = noise_agreement(noisy, known, axes)
        if agreement is not None and abs(agreement - 1.0) <= NOISE_AGREEMENT:
            return known
    try:
        return estimate_noise(noisy, axes=axes)
    except InfocusInputError:
        return None


def fuse_with_noisy(
    noisy: np.ndarray, prediction: np.ndarray, axes: str, noise: NoiseParams | None = None
) -> tuple[np.ndarray, float]:
    """``prediction + α (noisy − prediction)`` with :func:`fusion_weight`'s α, and α.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clean = np.full((64, 64), 100.0)
    >>> noisy = clean + rng.normal(0, 5, clean.shape)
    >>> blurred = clean + rng.normal(0, 5, clean.shape)  # a poor estimate: error var = noise var
    >>> fused, alpha = fuse_with_noisy(noisy, blurred, "YX")
    >>> round(alpha, 1)                        # equal error variances: weigh them equally
    0.5
    """
    alpha = fusion_weight(noisy, prediction, axes, noise)
    fused = prediction + alpha * (noisy.astype(np.float64) - prediction)
    return fused.astype(np.float32), alpha
