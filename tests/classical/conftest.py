"""Fixtures for the classical denoisers: synthetic images and simulated camera data."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage as ndi

from infocus.noise import NoiseParams, scale_to_photons, simulate_poisson_gaussian

#: Camera of the simulated data: gain 2, offset 100, read noise 3 (camera units).
CAMERA = {"gain": 2.0, "offset": 100.0, "read_noise": 3.0}


def blobs_image(shape: tuple[int, ...], rng: np.random.Generator, n_blobs: int = 30) -> np.ndarray:
    """Gaussian blobs on a dim background in [0, 1] (same recipe as ``tests/conftest.py``, which
    cannot be imported under ``--import-mode=importlib``)."""
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    image = np.full(shape, 0.05)
    for _ in range(n_blobs):
        centre = [rng.uniform(0, n) for n in shape]
        width = rng.uniform(2.0, max(3.0, min(shape) / 10))
        r2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
        image += rng.uniform(0.3, 1.0) * np.exp(-r2 / (2 * width**2))
    return (image / image.max()).astype(np.float32)


def camera_image(
    shape: tuple[int, ...], seed: int, photons: float = 30.0
) -> tuple[np.ndarray, NoiseParams, np.ndarray]:
    """Blobs seen by the :data:`CAMERA`: (noisy, true noise parameters, expected image)."""
    generator = np.random.default_rng(seed)
    clean = blobs_image(shape, generator)
    noisy, noise = simulate_poisson_gaussian(clean, photons=photons, rng=generator, **CAMERA)
    expected = CAMERA["gain"] * scale_to_photons(clean, photons) + CAMERA["offset"]
    return noisy, noise, expected


@pytest.fixture
def make_blobs() -> Callable[..., np.ndarray]:
    """``make_blobs(shape, rng, n_blobs=30)``: a smooth fluorescence-like image in [0, 1]."""
    return blobs_image


@pytest.fixture
def make_camera_image() -> Callable[..., tuple[np.ndarray, NoiseParams, np.ndarray]]:
    """``make_camera_image(shape, seed, photons=30)``: simulated Poisson–Gaussian blobs."""
    return camera_image


@pytest.fixture
def camera() -> dict[str, float]:
    """The simulated camera's gain, offset and read noise."""
    return dict(CAMERA)


class ReproducibleBlockMatching(SimpleNamespace):
    """Deterministic stand-ins for the compiled ``bm3d`` and ``bm4d`` packages.

    Their real code is not reproducible call to call (block-matching ties resolve differently:
    two runs on one input differ by up to ~3 % of the noise level at a few pixels), so tests of
    how infocus calls them (σ, profile, axis order, per-stack plans) use these instead. Each
    output depends on every argument (the filter width is ``sigma_psd`` times a factor per profile,
    and the 3-D filter is anisotropic), so a wrong σ, profile or axis order changes the result.
    """

    def bm3d(self, image: np.ndarray, sigma_psd: float, profile: str = "np") -> np.ndarray:
        self.calls.append(("bm3d", float(sigma_psd), profile, np.shape(image)))
        width = sigma_psd * (1.0 + 0.25 * ("np", "high", "vn").index(profile))
        return ndi.gaussian_filter(np.asarray(image, np.float64), width)

    def bm4d(self, volume: np.ndarray, sigma_psd: float, profile: str = "np") -> np.ndarray:
        self.calls.append(("bm4d", float(sigma_psd), profile, np.shape(volume)))
        factors = (1.0, 0.5, 2.0) if profile == "np" else (0.5, 1.0, 0.0)
        return ndi.gaussian_filter(np.asarray(volume, np.float64), [sigma_psd * f for f in factors])


@pytest.fixture
def reproducible_block_matching(monkeypatch) -> ReproducibleBlockMatching:
    """Replace the ``bm3d``/``bm4d`` packages by :class:`ReproducibleBlockMatching`."""
    # ``infocus.classical.bm3d`` is also the name of the function the package exports.
    module = importlib.import_module("infocus.classical.bm3d")
    stand_in = ReproducibleBlockMatching(calls=[])
    monkeypatch.setattr(module, "_require", lambda _package: stand_in)
    return stand_in
