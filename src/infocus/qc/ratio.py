r"""Does the denoised image keep the ratio between channels? (Laine et al. 2021, §5)

Ratiometric measurements (FRET, calcium indicators, two labels of one structure) read the ratio
of two channels' intensities. Channels denoised one by one may each shift a little, and the
ratio shifts by both. For every object (segmented on the output's channels summed, grown by a
halo as in :mod:`infocus.qc.intensity`) and every channel :math:`c` beside the first, the ratio
of background-subtracted integrated intensities

.. math:: \rho = \frac{\sum_R (x_c - \beta_c)}{\sum_R (x_0 - \beta_0)}

is compared between output (:math:`\hat\rho`) and measurement (:math:`\rho_y`).

What the check can say without ground truth
-------------------------------------------
The measured ratio is itself noisy, and the noise model says by how much. Each sum
:math:`S = \sum_R (y - \beta)` has variance :math:`V = \sum_R v + |R|^2 \operatorname{Var}\beta`
(independent pixels, :math:`v = a f + b`; the background level :math:`\beta` is the median of
the :math:`n_\beta` pixels outside objects, :math:`\operatorname{Var}\beta \approx \frac{\pi}{2}
\bar v_\beta / n_\beta`), so by the delta method the measured ratio has the standard error

.. math:: \sigma_\rho = |\rho_y| \sqrt{V_c / S_c^2 + V_0 / S_0^2}.

With the true ratio :math:`\rho` within :math:`\rho_y \pm z\,\sigma_\rho` at coverage
:math:`1 - \gamma` (:math:`z` its two-sided normal quantile), the output's true error
:math:`\hat\rho - \rho` lies within the *reported change* :math:`d = \hat\rho - \rho_y`
:math:`\pm z\,\sigma_\rho` at the same coverage, whatever the denoiser did: the interval is
calibrated by the noise model alone. The change itself is not the error: a denoiser that keeps
the measured ratio reports :math:`d = 0` while its true error is the measurement's own,
:math:`\sigma_\rho` on average; and where :math:`d` does not depend on the noise, the expected
squared true error is :math:`d^2 + \sigma_\rho^2` (reported as ``expected_relative_error``).

An object is flagged when :math:`|d| / \sigma_\rho` exceeds the Bonferroni threshold over
objects and channel pairs *and* the change exceeds
:data:`~infocus.qc.intensity.RELATIVE_TOLERANCE` of the measured ratio: only changes beyond
the noise, and large enough to matter.

References
----------
R. F. Laine, G. Jacquemet, A. Krull, "Imaging in focus: an introduction to denoising bioimages in
the era of deep learning", Int. J. Biochem. Cell Biol. 140, 106077 (2021).

J. R. Taylor, *An Introduction to Error Analysis*, 2nd ed., University Science Books (1997),
ch. 3 (propagation of uncertainties in quotients).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.stats import norm

from infocus._errors import InfocusInputError
from infocus.qc.intensity import RELATIVE_TOLERANCE, segment_objects

__all__ = ["RatioCheck", "check_ratios"]

#: Objects whose first-channel signal is below this many standard errors give no usable ratio.
MIN_SIGNAL_Z = 5.0
#: Variance of a sample median over the variance of the mean, for Gaussian samples.
_MEDIAN_VARIANCE_FACTOR = np.pi / 2


@dataclass(frozen=True)
class RatioCheck:
    r"""The result of :func:`check_ratios`.

    Attributes
    ----------
    changes : list of dict
        Per object and channel: ``label``, ``channel``, ``measured`` and ``denoised`` ratio,
        ``relative_change`` (denoised against measured), ``z``, ``flagged``; and what the noise
        model says: ``standard_error`` of the measured ratio, ``relative_standard_error``,
        ``error_low`` and ``error_high`` (the interval, relative to the measured ratio, that
        holds the output's true relative ratio error at ``coverage``) and
        ``expected_relative_error`` (:math:`\sqrt{d^2 + \sigma_\rho^2}` relative).
    labels : ndarray
        The objects, ``(P, Y, X)``; 0 is background.
    flags : ndarray
        Boolean, ``(P, Y, X)``: pixels of objects whose ratio changed.
    threshold : float
        The ``|z|`` a change must exceed to be flagged.
    coverage : float
        Nominal coverage of ``error_low`` .. ``error_high``.
    """

    changes: list[dict[str, float]]
    labels: np.ndarray
    flags: np.ndarray
    threshold: float
    coverage: float = 0.95

    @property
    def flagged(self) -> list[dict[str, float]]:
        return [c for c in self.changes if c["flagged"]]


def check_ratios(noisy: np.ndarray, denoised: np.ndarray, variance: np.ndarray, *,
                 alpha: float = 0.05, coverage: float = 0.95) -> RatioCheck:
    """Compare channel ratios of objects in output and measurement, with the measured ratios'
    noise-model uncertainty.

    Parameters
    ----------
    noisy, denoised, variance : ndarray
        ``(C, P, Y, X)``: channels first, then YX planes; ``variance`` is the noise variance.
    alpha : float
        Family-wise error over objects and channels (the flags).
    coverage : float
        Coverage of each object's reported interval for the output's true ratio error.

    Returns
    -------
    RatioCheck
    """
    if not 0 < coverage < 1:
        raise InfocusInputError(f"coverage must be between 0 and 1 (got {coverage}); 0.95 is usual.")
    noisy = np.asarray(noisy, np.float64)
    denoised = np.asarray(denoised, np.float64)
    variance = np.asarray(variance, np.float64)
    channels = noisy.shape[0]
    # Each channel scaled to its own range, so a bright channel does not decide the objects.
    spans = [max(float(np.ptp(c)), 1e-12) for c in denoised]
    labels = segment_objects(sum((c - c.min()) / s for c, s in zip(denoised, spans, strict=True)))
    count = int(labels.max())
    index = np.arange(1, count + 1)
    threshold = float(norm.isf(alpha / (2 * max(count * (channels - 1), 1))))
    quantile = float(norm.isf((1 - coverage) / 2))
    background = labels == 0
    pixels = ndimage.sum_labels(np.ones(labels.shape), labels, index)
    sums = [_channel_sums(noisy[c], denoised[c], variance[c], labels, index, pixels, background)
            for c in range(channels)]
    changes = []
    first = sums[0]
    usable = first["measured"] > MIN_SIGNAL_Z * np.sqrt(np.maximum(first["variance"], 1e-300))
    for c in range(1, channels):
        for k in np.flatnonzero(usable):
            measured = sums[c]["measured"][k] / first["measured"][k]
            denoised_ratio = sums[c]["denoised"][k] / first["denoised"][k] \
                if first["denoised"][k] > 0 else np.inf
            relative_error = np.sqrt(sums[c]["variance"][k] / max(sums[c]["measured"][k] ** 2,
                                                                 1e-300)
                                     + first["variance"][k] / first["measured"][k] ** 2)
            error = abs(measured) * relative_error
            change = denoised_ratio - measured
            z = change / error if error > 0 else np.inf
            relative = change / measured if measured else np.inf
            relative_se = error / abs(measured) if measured else np.inf
            changes.append({"label": int(index[k]), "channel": c, "measured": float(measured),
                            "denoised": float(denoised_ratio),
                            "relative_change": float(relative), "z": float(z),
                            "flagged": bool(abs(z) > threshold
                                            and abs(relative) > RELATIVE_TOLERANCE),
                            "standard_error": float(error),
                            "relative_standard_error": float(relative_se),
                            "error_low": float(relative - quantile * relative_se),
                            "error_high": float(relative + quantile * relative_se),
                            "expected_relative_error": float(np.hypot(relative, relative_se))})
    flagged = np.zeros(count + 1, bool)
    flagged[[c["label"] for c in changes if c["flagged"]]] = True
    return RatioCheck(changes=changes, labels=labels, flags=flagged[labels], threshold=threshold,
                      coverage=coverage)


def _channel_sums(noisy: np.ndarray, denoised: np.ndarray, variance: np.ndarray,
                  labels: np.ndarray, index: np.ndarray, pixels: np.ndarray,
                  background: np.ndarray) -> dict[str, np.ndarray]:
    """One channel's background-subtracted sums per object, and the measured sums' variance
    (pixel noise plus the background level's, which every pixel of the object shares)."""
    if background.any():
        offsets = [float(np.median(a[background])) for a in (noisy, denoised)]
        level_variance = _MEDIAN_VARIANCE_FACTOR * float(np.mean(variance[background])) \
            / int(background.sum())
    else:
        offsets, level_variance = [0.0, 0.0], 0.0
    return {
        "measured": ndimage.sum_labels(noisy - offsets[0], labels, index),
        "denoised": ndimage.sum_labels(denoised - offsets[1], labels, index),
        "variance": ndimage.sum_labels(variance, labels, index) + pixels**2 * level_variance,
    }
