"""Gaussian and median filters."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from infocus._errors import InfocusInputError
from infocus.classical import gaussian, median
from infocus.noise import NoiseParams

SIGMA_NOISE = NoiseParams.gaussian(0.1)


def _psnr(estimate: np.ndarray, clean: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(estimate, np.float64) - clean) ** 2))
    return 10 * np.log10(float(clean.max() - clean.min()) ** 2 / mse)


@pytest.fixture
def noisy_blobs(rng, make_blobs):
    clean = make_blobs((128, 128), rng)
    return clean, (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)


def test_explicit_gaussian_sigma_is_used(noisy_blobs):
    _, noisy = noisy_blobs
    out = gaussian(noisy, noise=SIGMA_NOISE, sigma=1.7)
    np.testing.assert_allclose(out, ndi.gaussian_filter(noisy, 1.7, mode="reflect"), atol=1e-6)


def test_gaussian_filters_zyx_in_3d(rng):
    volume = rng.normal(size=(6, 24, 24)).astype(np.float32)
    out = gaussian(volume, axes="ZYX", noise=NoiseParams.gaussian(1.0), sigma=1.2)
    np.testing.assert_allclose(out, ndi.gaussian_filter(volume, 1.2, mode="reflect"), atol=1e-6)


def test_automatic_gaussian_is_near_the_best_width(noisy_blobs):
    clean, noisy = noisy_blobs
    best = max(_psnr(ndi.gaussian_filter(noisy, s), clean) for s in np.geomspace(0.5, 4, 15))
    assert _psnr(gaussian(noisy), clean) > best - 0.5


def test_explicit_median_size_is_used(noisy_blobs):
    _, noisy = noisy_blobs
    out = median(noisy, noise=SIGMA_NOISE, size=5)
    np.testing.assert_array_equal(out, ndi.median_filter(noisy, size=5, mode="reflect"))


def test_automatic_median_is_the_best_size(noisy_blobs):
    clean, noisy = noisy_blobs
    scores = {s: _psnr(median(noisy, noise=SIGMA_NOISE, size=s), clean) for s in (3, 5, 7)}
    auto = _psnr(median(noisy, noise=SIGMA_NOISE), clean)
    assert auto == max(scores.values())


def test_median_removes_hot_pixels(rng):
    image = np.full((32, 32), 10.0, np.float32)
    image[rng.integers(0, 32, 20), rng.integers(0, 32, 20)] = 4000.0
    out = median(image, noise=NoiseParams.gaussian(1.0), size=3)
    assert float(np.abs(out - 10.0).max()) < 1e-4


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_gaussian_sigma(bad):
    with pytest.raises(InfocusInputError, match="sigma"):
        gaussian(np.ones((16, 16)), noise=SIGMA_NOISE, sigma=bad)


@pytest.mark.parametrize("bad", [0, 4, 2.5, True])
def test_bad_median_size(bad):
    with pytest.raises(InfocusInputError, match="size"):
        median(np.ones((16, 16)), noise=SIGMA_NOISE, size=bad)
