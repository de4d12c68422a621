r"""Does the denoised image keep the ratio between channels? (Laine et al. 2021, §5)

Ratiometric measurements (FRET, calcium indicators, two labels of one structure) read the ratio
of two channels' intensities. Channels denoised one by one may each shift a little, and the
ratio shifts by both. For every object (segmented on the output's channels summed, grown by a
halo as in :mod:`infocus.qc.intensity`) and every channel :math:`c` beside the first, the ratio
of background-subtracted integrated intensities

.. math:: \rho = \frac{\sum_R (x_c - \beta_c)}{\sum_R (x_0 - \beta_0)}

is compared between output and measurement. Its standard error comes from the noise of both
sums (delta method): :math:`\rho\sqrt{V_c/S_c^2 + V_0/S_0^2}` with :math:`V = \sum_R v`. An
object is flagged when the change exceeds the Bonferroni threshold over objects and channel
pairs *and* :data:`~infocus.qc.intensity.RELATIVE_TOLERANCE` of the measured ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.stats import norm

from infocus.qc.intensity import RELATIVE_TOLERANCE, segment_objects

__all__ = ["RatioCheck", "check_ratios"]

#: Objects whose first-channel signal is below this many standard errors give no usable ratio.
MIN_SIGNAL_Z = 5.0


@dataclass(frozen=True)
class RatioCheck:
    """The result of :func:`check_ratios`.

    Attributes
    ----------
    changes : list of dict
        Per object and channel: ``label``, ``channel``, ``measured`` and ``denoised`` ratio,
        ``relative_change``, ``z``, ``flagged``.
    labels : ndarray
        The objects, ``(P, Y, X)``; 0 is background.
    flags : ndarray
        Boolean, ``(P, Y, X)``: pixels of objects whose ratio changed.
    threshold : float
    """

    changes: list[dict[str, float]]
    labels: np.ndarray
    flags: np.ndarray
    threshold: float

    @property
    def flagged(self) -> list[dict[str, float]]:
        return [c for c in self.changes if c["flagged"]]


def check_ratios(noisy: np.ndarray, denoised: np.ndarray, variance: np.ndarray, *,
                 alpha: float = 0.05) -> RatioCheck:
    """Compare channel ratios of objects in output and measurement.

    Parameters
    ----------
    noisy, denoised, variance : ndarray
        ``(C, P, Y, X)``: channels first, then YX planes; ``variance`` is the noise variance.
    alpha : float
        Family-wise error over objects and channels.
    """
    noisy = np.asarray(noisy, np.float64)
    denoised = np.asarray(denoised, np.float64)
    channels = noisy.shape[0]
    # Each channel scaled to its own range, so a bright channel does not decide the objects.
    spans = [max(float(np.ptp(c)), 1e-12) for c in denoised]
    labels = segment_objects(sum((c - c.min()) / s for c, s in zip(denoised, spans, strict=True)))
    count = int(labels.max())
    index = np.arange(1, count + 1)
    threshold = float(norm.isf(alpha / (2 * max(count * (channels - 1), 1))))
    background = labels == 0
    sums = []
    for c in range(channels):
        offsets = [float(np.median(a[c][background])) if background.any() else 0.0
                   for a in (noisy, denoised)]
        sums.append({
            "measured": ndimage.sum_labels(noisy[c] - offsets[0], labels, index),
            "denoised": ndimage.sum_labels(denoised[c] - offsets[1], labels, index),
            "variance": ndimage.sum_labels(variance[c], labels, index),
        })
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
            changes.append({"label": int(index[k]), "channel": c, "measured": float(measured),
                            "denoised": float(denoised_ratio),
                            "relative_change": float(relative), "z": float(z),
                            "flagged": bool(abs(z) > threshold
                                            and abs(relative) > RELATIVE_TOLERANCE)})
    flagged = np.zeros(count + 1, bool)
    flagged[[c["label"] for c in changes if c["flagged"]]] = True
    return RatioCheck(changes=changes, labels=labels, flags=flagged[labels], threshold=threshold)
