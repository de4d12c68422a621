r"""Does the denoised image keep the measured intensities? Sums over objects and the whole image.

A denoiser that preserves intensities keeps the integrated intensity of every object: for a
region :math:`R`, :math:`\sum_{i \in R} f_i` should equal :math:`\sum_{i \in R} y_i` up to the
noise of the measured sum, whose variance is :math:`\sum_{i \in R} v_i` (independent pixels,
:math:`v_i = a f_i + b`). So

.. math:: z_R = \frac{\sum_R f_i - \sum_R y_i}{\sqrt{\sum_R v_i}} \sim \mathcal{N}(0, 1)

for an output that preserves intensity. Objects come from a simple segmentation of the denoised
image (Otsu's threshold of a lightly smoothed plane, connected components), each grown by a halo
of :data:`HALO` pixels so that light a denoiser moved just across an object's edge is still
counted. An object is flagged when :math:`|z_R|` exceeds the Bonferroni threshold for the
number of objects at family-wise error ``alpha`` *and* its integrated signal (above the
background, the median of the output outside objects) changed by more than
:data:`RELATIVE_TOLERANCE`: with millions of photons a 0.5 % change is significant but does not
matter to a measurement. The whole image is tested the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.stats import norm
from skimage.filters import threshold_otsu
from skimage.segmentation import expand_labels

__all__ = ["HALO", "RELATIVE_TOLERANCE", "IntensityCheck", "check_intensity"]

#: Pixels by which each object is grown before its intensity is summed.
HALO = 3
#: Changes of an object's integrated signal below this fraction are never flagged.
RELATIVE_TOLERANCE = 0.05
#: Objects smaller than this (pixels, before the halo) are ignored.
MIN_OBJECT_SIZE = 16


@dataclass(frozen=True)
class ObjectIntensity:
    """One object's integrated intensity in the measurement and in the output."""

    label: int
    plane: int
    pixels: int
    measured: float
    denoised: float
    standard_error: float
    relative_change: float
    z: float
    flagged: bool


@dataclass(frozen=True)
class IntensityCheck:
    """The result of :func:`check_intensity`.

    Attributes
    ----------
    objects : list of ObjectIntensity
        Every object, in label order per plane.
    labels : ndarray
        The objects (grown by the halo) as a label image, the input's shape; 0 is background.
    flags : ndarray
        Boolean, the input's shape: pixels of flagged objects.
    threshold : float
        The :math:`|z|` an object must exceed to be flagged.
    total : ObjectIntensity
        The whole image as one region.
    """

    objects: list[ObjectIntensity]
    labels: np.ndarray
    flags: np.ndarray
    threshold: float
    total: ObjectIntensity

    @property
    def flagged_objects(self) -> list[ObjectIntensity]:
        return [o for o in self.objects if o.flagged]


def segment_objects(denoised: np.ndarray, *, min_size: int = MIN_OBJECT_SIZE,
                    halo: int = HALO) -> np.ndarray:
    """Label bright objects of each YX plane of ``denoised`` (..., Y, X): Otsu's threshold of the
    plane smoothed with a Gaussian of one pixel, components of at least ``min_size`` pixels,
    grown by ``halo`` pixels. Labels are unique over the whole array."""
    planes = np.asarray(denoised, np.float64).reshape((-1,) + denoised.shape[-2:])
    labels = np.zeros(planes.shape, np.int32)
    offset = 0
    for index, plane in enumerate(planes):
        smooth = ndimage.gaussian_filter(plane, 1.0)
        if np.ptp(smooth) == 0:
            continue
        components, count = ndimage.label(smooth > threshold_otsu(smooth))
        sizes = np.bincount(components.ravel(), minlength=count + 1)
        keep = sizes >= min_size
        keep[0] = False
        renumber = np.zeros(count + 1, np.int32)
        renumber[keep] = np.arange(1, int(keep.sum()) + 1) + offset
        grown = expand_labels(renumber[components], distance=halo)
        labels[index] = grown
        offset += int(keep.sum())
    return labels.reshape(denoised.shape)


def check_intensity(
    noisy: np.ndarray,
    denoised: np.ndarray,
    variance: np.ndarray,
    *,
    alpha: float = 0.05,
    labels: np.ndarray | None = None,
    relative_tolerance: float = RELATIVE_TOLERANCE,
) -> IntensityCheck:
    """Compare integrated intensities of objects (and of the whole image) before and after.

    Parameters
    ----------
    noisy, denoised : ndarray
        Measurement and output, same shape ``(..., Y, X)``, same units.
    variance : ndarray
        Noise variance per pixel, :math:`a f + b`.
    alpha : float
        Family-wise error over the objects.
    labels : ndarray, optional
        Objects to test (integer labels, 0 background); default :func:`segment_objects`.
    relative_tolerance : float
        Smallest change of an object's integrated signal that is flagged.

    Returns
    -------
    IntensityCheck
    """
    noisy = np.asarray(noisy, np.float64)
    denoised = np.asarray(denoised, np.float64)
    if labels is None:
        labels = segment_objects(denoised)
    planes = labels.reshape((-1,) + labels.shape[-2:])
    background = float(np.median(denoised[labels == 0])) if (labels == 0).any() else 0.0
    count = int(labels.max())
    threshold = float(norm.isf(alpha / (2 * max(count + 1, 1))))
    index = np.arange(1, count + 1)
    sums = {name: ndimage.sum_labels(values, labels, index)
            for name, values in (("measured", noisy), ("denoised", denoised),
                                 ("variance", variance), ("pixels", np.ones_like(noisy)))}
    plane_of = ndimage.maximum(np.broadcast_to(
        np.arange(planes.shape[0])[:, None, None], planes.shape).reshape(labels.shape),
        labels, index) if count else []
    objects = [
        _region(label, int(plane), sums["pixels"][k], sums["measured"][k], sums["denoised"][k],
                sums["variance"][k], background, threshold, relative_tolerance)
        for k, (label, plane) in enumerate(zip(index, plane_of, strict=True))
    ]
    total = _region(0, -1, noisy.size, float(noisy.sum()), float(denoised.sum()),
                    float(np.sum(variance)), background, threshold, relative_tolerance)
    flagged = np.zeros(count + 1, bool)
    flagged[[o.label for o in objects if o.flagged]] = True
    return IntensityCheck(objects=objects, labels=labels, flags=flagged[labels],
                          threshold=threshold, total=total)


def _region(label: int, plane: int, pixels: float, measured: float, denoised: float,
            variance: float, background: float, threshold: float, tolerance: float
            ) -> ObjectIntensity:
    standard_error = float(np.sqrt(max(variance, 1e-300)))
    change = denoised - measured
    signal = measured - background * pixels
    relative = change / signal if signal > 0 else float("inf") if change else 0.0
    z = change / standard_error
    return ObjectIntensity(
        label=int(label), plane=plane, pixels=int(pixels), measured=float(measured),
        denoised=float(denoised), standard_error=standard_error,
        relative_change=float(relative), z=float(z),
        flagged=bool(abs(z) > threshold and abs(relative) > tolerance),
    )
