"""Simulated scenes with known objects, for planting defects in a denoised image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from infocus.noise import NoiseParams, simulate_poisson_gaussian

CAMERA = {"gain": 2.0, "offset": 100.0, "read_noise": 3.0}


@dataclass
class Scene:
    noisy: np.ndarray
    expected: np.ndarray  # the clean image in camera units
    objects: list[np.ndarray]  # each object's contribution, camera units
    noise: NoiseParams


def spots(shape: tuple[int, int], photons: float, seed: int, n: int = 30) -> Scene:
    """Gaussian spots of 1.5–10 px on a dim background, Poisson–Gaussian noise with
    ``photons`` at the brightest pixel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    objects = []
    for _ in range(n):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        width = rng.uniform(1.5, 10)
        objects.append(rng.uniform(0.3, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2)
                                                       / (2 * width**2)))
    clean = 0.05 + sum(objects)
    peak = clean.max()
    scale = photons * CAMERA["gain"] / peak
    noisy, noise = simulate_poisson_gaussian(clean / peak, photons=photons, rng=seed, **CAMERA)
    return Scene(noisy=noisy.astype(np.float64), expected=clean * scale + CAMERA["offset"],
                 objects=[o * scale for o in objects], noise=noise)


def good_output(scene: Scene, blur: float = 0.7) -> np.ndarray:
    """A mild blur of the truth: what a good denoiser approaches."""
    return gaussian_filter(scene.expected, blur)


def added_spot(shape: tuple[int, int], centre: tuple[float, float], amplitude: float,
               width: float = 2.0) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    return amplitude * np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * width**2))


def filaments(shape: tuple[int, int], photons: float, seed: int, n: int = 30) -> np.ndarray:
    """Thin lines (another kind of content than :func:`spots`) under the same camera."""
    rng = np.random.default_rng(seed)
    image = np.zeros(shape)
    for _ in range(n):
        y0, x0 = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        angle, length = rng.uniform(0, np.pi), rng.uniform(40, 200)
        t = np.linspace(-length / 2, length / 2, 400)
        ys = (y0 + t * np.sin(angle)).astype(int)
        xs = (x0 + t * np.cos(angle)).astype(int)
        inside = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
        image[ys[inside], xs[inside]] = rng.uniform(0.3, 1.0)
    image = gaussian_filter(image, 0.8) + 0.05
    noisy, _ = simulate_poisson_gaussian(image / image.max(), photons=photons, rng=seed,
                                         **CAMERA)
    return noisy.astype(np.float64)
