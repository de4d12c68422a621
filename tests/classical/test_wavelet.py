"""BayesShrink wavelet denoising with cycle spinning."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.restoration import denoise_wavelet

from infocus._errors import InfocusInputError
from infocus.classical import wavelet
from infocus.noise import NoiseParams

NOISE = NoiseParams.gaussian(0.1)


def _psnr(estimate: np.ndarray, clean: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(estimate, np.float64) - clean) ** 2))
    return 10 * np.log10(float(clean.max() - clean.min()) ** 2 / mse)


@pytest.fixture
def blobs(rng, make_blobs):
    clean = make_blobs((128, 128), rng)
    return clean, (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)


def test_without_shifts_it_is_skimage_bayes_shrink(blobs):
    _, noisy = blobs
    out = wavelet(noisy, noise=NOISE, max_shift=0, wavelet="db2", levels=3)
    expected = denoise_wavelet(
        noisy,
        sigma=0.1,
        wavelet="db2",
        wavelet_levels=3,
        method="BayesShrink",
        mode="soft",
        rescale_sigma=True,
    )
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_cycle_spinning_helps(blobs):
    clean, noisy = blobs
    assert (
        _psnr(wavelet(noisy, noise=NOISE), clean)
        > _psnr(wavelet(noisy, noise=NOISE, max_shift=0), clean) + 0.3
    )


def test_sigma_defaults_to_the_noise_level(blobs):
    _, noisy = blobs
    np.testing.assert_array_equal(
        wavelet(noisy, noise=NOISE), wavelet(noisy, noise=NOISE, sigma=0.1)
    )
    assert not np.array_equal(wavelet(noisy, noise=NOISE), wavelet(noisy, noise=NOISE, sigma=0.3))


def test_tiny_images_work_without_warnings(rng):
    out = wavelet(rng.normal(size=(8, 8)).astype(np.float32), noise=NoiseParams.gaussian(1.0))
    assert out.shape == (8, 8) and np.isfinite(out).all()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("wavelet", "bior1.3"),
        ("wavelet", "nope"),
        ("mode", "medium"),
        ("method", "Sure"),
        ("levels", 0),
        ("max_shift", -1),
        ("sigma", 0.0),
    ],
)
def test_bad_parameters(option, value):
    with pytest.raises(InfocusInputError, match=option):
        wavelet(np.ones((16, 16)), noise=NOISE, **{option: value})
