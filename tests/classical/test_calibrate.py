"""J-invariant (Noise2Self) calibration of parameters without a noise-level formula."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from infocus.classical._calibrate import (
    _interpolate,
    _phases,
    calibrate,
    central_crop,
    j_invariant_loss,
)


def _psnr(estimate: np.ndarray, clean: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(estimate, np.float64) - clean) ** 2))
    return 10 * np.log10(float(clean.max() - clean.min()) ** 2 / mse)


def _blur(image: np.ndarray, s: float) -> np.ndarray:
    return ndi.gaussian_filter(image, s, mode="reflect")


@pytest.mark.parametrize("noise_sigma", [0.03, 0.1, 0.3])
def test_calibrated_gaussian_width_is_near_the_oracle(rng, noise_sigma, make_blobs):
    clean = make_blobs((128, 128), rng)
    noisy = (clean + rng.normal(0, noise_sigma, clean.shape)).astype(np.float32)
    candidates = [0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0]
    chosen = calibrate(noisy, _blur, candidates)
    best = max(_psnr(_blur(noisy, s), clean) for s in candidates)
    # The self-supervised choice costs less than 0.5 dB against the ground-truth choice.
    assert _psnr(_blur(noisy, chosen), clean) > best - 0.5


def test_loss_tracks_the_true_error_plus_the_noise_variance(rng, make_blobs):
    # E||f_J(x) - x||^2 = E||f_J(x) - y||^2 + sigma^2 for J-invariant f and independent noise.
    clean = make_blobs((192, 192), rng)
    sigma = 0.2
    noisy = (clean + rng.normal(0, sigma, clean.shape)).astype(np.float32)
    loss = j_invariant_loss(noisy, lambda b: _blur(b, 1.5), n_masks=16)
    interp = _interpolate(noisy.astype(np.float64))
    true_error = []
    for mask in _phases(2, 4, 16):
        masked = noisy.astype(np.float64).copy()
        masked[mask] = interp[mask]
        true_error.append(np.mean((_blur(masked, 1.5)[mask] - clean[mask]) ** 2))
    assert loss == pytest.approx(float(np.mean(true_error)) + sigma**2, rel=0.05)


def test_identity_loss_is_the_interpolation_error(rng):
    image = rng.normal(size=(32, 32)).astype(np.float32)
    interp = _interpolate(image.astype(np.float64))
    (mask,) = _phases(2, 4, 1)
    expected = float(np.mean((interp[mask] - image[mask]) ** 2))
    assert j_invariant_loss(image, lambda b: b, n_masks=1) == pytest.approx(expected, rel=1e-5)


def test_ties_go_to_the_first_candidate(rng):
    image = rng.normal(size=(32, 32)).astype(np.float32)
    assert calibrate(image, lambda b, p: b, ["first", "second"]) == "first"


def test_calibrate_needs_candidates(rng):
    with pytest.raises(ValueError, match="candidate"):
        calibrate(rng.normal(size=(16, 16)), lambda b, p: b, [])


def test_phases_are_spread_over_the_grid():
    assert _phases(2, 4, 4) == [
        (slice(0, None, 4), slice(0, None, 4)),
        (slice(1, None, 4), slice(1, None, 4)),
        (slice(2, None, 4), slice(2, None, 4)),
        (slice(3, None, 4), slice(3, None, 4)),
    ]
    assert len(_phases(3, 4, 4)) == 4 and len(_phases(2, 2, 10)) == 4


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(8, 600), min_size=2, max_size=3).map(tuple))
def test_central_crop_is_small_and_centred(shape):
    image = np.zeros(shape, np.uint8)
    crop = central_crop(image, max_pixels=65536)
    assert crop.ndim == image.ndim
    assert all(k <= n for k, n in zip(crop.shape, shape, strict=True))
    assert crop.size <= 65536 or crop.shape == shape
    if len(shape) == 3:
        assert crop.shape[0] == min(shape[0], 16)
    # Centred: it is the same view as slicing from (n - k) // 2.
    assert np.shares_memory(crop, image)
    start = [(n - k) // 2 for n, k in zip(shape, crop.shape, strict=True)]
    flat_offset = crop.__array_interface__["data"][0] - image.__array_interface__["data"][0]
    assert flat_offset == int(np.ravel_multi_index(start, shape))
