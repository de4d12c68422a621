"""Sample data: the embedded image, clean and at simulated low light (as in ``infocus demo``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from infocus.demo import DEMO_CAMERA, load_sample
from infocus.noise import simulate_poisson_gaussian

__all__ = ["LOW_LIGHT_PHOTONS", "mitosis", "mitosis_low_light"]

#: Peak photons per pixel of the simulated acquisition (the demo's default).
LOW_LIGHT_PHOTONS = 20.0

LayerData = tuple[np.ndarray, dict[str, Any], str]


def mitosis() -> list[LayerData]:
    """The embedded sample: HT29 cells, DNA stain, 512×512 uint8 (CC0)."""
    return [(load_sample(), {"name": "human mitosis", "metadata": {"axes": "YX"}}, "image")]


def mitosis_low_light() -> list[LayerData]:
    """The sample imaged with :data:`LOW_LIGHT_PHOTONS` peak photons by the demo's camera
    (Poisson–Gaussian noise, seed 0), and the clean image in the same camera units."""
    sample = load_sample().astype(np.float32)
    noisy, _ = simulate_poisson_gaussian(sample, photons=LOW_LIGHT_PHOTONS, rng=0, **DEMO_CAMERA)
    clean = (sample / sample.max() * LOW_LIGHT_PHOTONS * DEMO_CAMERA["gain"]
             + DEMO_CAMERA["offset"]).astype(np.float32)
    limits = [float(clean.min()), float(clean.max())]
    return [
        (clean, {"name": "mitosis clean", "metadata": {"axes": "YX"}, "contrast_limits": limits,
                 "visible": False}, "image"),
        (np.asarray(noisy, dtype=np.float32),
         {"name": "mitosis low light", "metadata": {"axes": "YX"}, "contrast_limits": limits},
         "image"),
    ]
