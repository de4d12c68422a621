"""Intensities in and out of a network, numpy only: normalisation, photometric calibration and
fusion with the noisy measurement.

These pieces sit below both training and prediction (and below the methods that choose them),
so that a saved model can be applied without importing the training code.
"""

from __future__ import annotations

from infocus.intensity.calibration import (
    IntensityFit,
    calibrate_intensity,
    photometric_relation,
    restore_large_scales,
)
from infocus.intensity.fusion import (
    estimate_noise_or_none,
    fuse_with_noisy,
    fusion_weight,
    noise_agreement,
)
from infocus.intensity.normalize import Normalizer

__all__ = [
    "IntensityFit",
    "Normalizer",
    "calibrate_intensity",
    "estimate_noise_or_none",
    "fuse_with_noisy",
    "fusion_weight",
    "noise_agreement",
    "photometric_relation",
    "restore_large_scales",
]
