"""Metrics against hand-computed values and independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infocus._errors import InfocusInputError
from infocus.metrics import affine_fit, evaluate, mse, psnr, si_psnr, ssim


def test_mse_hand_computed():
    target = np.zeros((8, 8))
    prediction = np.zeros((8, 8))
    prediction[0, :4] = [1.0, 2.0, 3.0, 4.0]  # squared errors sum to 30 over 64 pixels
    assert mse(prediction, target) == pytest.approx(30 / 64)


def test_psnr_uses_range_of_ground_truth():
    # Ground truth spans [-2, 6] (range 8); error 1 everywhere -> 10 log10(64) dB.
    target = np.zeros((8, 8))
    target[0, 0], target[7, 7] = -2.0, 6.0
    assert psnr(target + 1.0, target) == pytest.approx(10 * math.log10(64.0))
    # Box 1 of Laine et al.: range of the clean image, not of the prediction.
    assert psnr(target * 0 + 100.0, target) != pytest.approx(psnr(target + 1.0, target))


def test_psnr_fixed_peak_hand_computed():
    target = np.full((10, 10), 100.0)
    prediction = target.copy()
    prediction[:5] += 5.0  # MSE = 12.5
    assert psnr(prediction, target, data_range=255) == pytest.approx(
        10 * math.log10(255**2 / 12.5)
    )


def test_psnr_identical_is_infinite(blobs_2d):
    assert psnr(blobs_2d, blobs_2d) == math.inf


def test_psnr_constant_ground_truth_needs_range():
    with pytest.raises(InfocusInputError, match="data_range"):
        psnr(np.ones((8, 8)), np.ones((8, 8)))


def test_shape_mismatch_is_clear():
    with pytest.raises(InfocusInputError, match="differs from ground-truth shape"):
        mse(np.zeros((8, 8)), np.zeros((8, 9)))


def test_nan_rejected():
    bad = np.zeros((8, 8))
    bad[1, 1] = np.nan
    with pytest.raises(InfocusInputError, match="NaN"):
        psnr(bad, np.arange(64.0).reshape(8, 8))


def _ssim_reference(x: np.ndarray, y: np.ndarray, peak: float, win: int = 7) -> float:
    """Direct loop over every 7x7 window, sample covariances (skimage's convention)."""
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    n = win * win
    values = []
    for i in range(x.shape[0] - win + 1):
        for j in range(x.shape[1] - win + 1):
            a = x[i : i + win, j : j + win].ravel()
            b = y[i : i + win, j : j + win].ravel()
            ma, mb = a.mean(), b.mean()
            va = a.var() * n / (n - 1)
            vb = b.var() * n / (n - 1)
            cov = ((a - ma) * (b - mb)).sum() / (n - 1)
            values.append(
                (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return float(np.mean(values))


def test_ssim_against_direct_window_loop(rng):
    clean = rng.uniform(0, 200, (16, 16))
    noisy = clean + rng.normal(0, 20, clean.shape)
    peak = float(clean.max() - clean.min())
    # skimage averages over windows whose centre is at least 3 px from the border.
    assert ssim(noisy, clean) == pytest.approx(_ssim_reference(noisy, clean, peak), rel=1e-6)


def test_ssim_identical_is_one(blobs_2d):
    assert ssim(blobs_2d, blobs_2d) == pytest.approx(1.0)


def test_affine_fit_recovers_scaling(blobs_2d):
    fitted = affine_fit(3.0 * blobs_2d - 7.0, blobs_2d)
    np.testing.assert_allclose(fitted, blobs_2d, atol=1e-5)


def test_si_psnr_forgives_brightness_but_psnr_does_not(blobs_2d, rng):
    noisy = blobs_2d + rng.normal(0, 0.05, blobs_2d.shape)
    rescaled = 2.0 * noisy + 0.3
    assert si_psnr(rescaled, blobs_2d) == pytest.approx(si_psnr(noisy, blobs_2d), abs=1e-6)
    assert psnr(rescaled, blobs_2d) < psnr(noisy, blobs_2d) - 10
    assert si_psnr(noisy, blobs_2d) >= psnr(noisy, blobs_2d)


@settings(max_examples=30, deadline=None)
@given(
    scale=st.floats(0.1, 100.0),
    offset=st.floats(-1000.0, 1000.0),
    seed=st.integers(0, 2**16),
)
def test_metrics_invariant_to_joint_rescaling(scale, offset, seed):
    """PSNR depends only on errors relative to the range; SSIM's luminance term is not
    shift-invariant (it compares means), but both are invariant to a joint scaling."""
    rng = np.random.default_rng(seed)
    clean = rng.uniform(0, 1, (16, 16))
    noisy = clean + rng.normal(0, 0.1, clean.shape)
    assert psnr(noisy * scale + offset, clean * scale + offset) == pytest.approx(
        psnr(noisy, clean), abs=1e-6
    )
    assert ssim(noisy * scale, clean * scale) == pytest.approx(ssim(noisy, clean), abs=1e-6)


def test_evaluate_stack_per_image_and_mean(blobs_2d, rng):
    clean = np.stack([blobs_2d, blobs_2d * 0.5])
    noisy = clean + rng.normal(0, 0.05, clean.shape)
    result = evaluate(noisy, clean, axes="TYX")
    assert result["n_images"] == 2
    first = result["per_image"][0]
    assert first["psnr"] == pytest.approx(psnr(noisy[0], clean[0]))
    assert first["index"] == [0]
    assert result["mean"]["psnr"] == pytest.approx(
        (psnr(noisy[0], clean[0]) + psnr(noisy[1], clean[1])) / 2
    )


def test_evaluate_volume_is_one_image(rng):
    clean = rng.uniform(0, 1, (8, 16, 16))
    noisy = clean + 0.1
    result = evaluate(noisy, clean, axes="ZYX")
    assert result["n_images"] == 1
    assert result["mean"]["mse"] == pytest.approx(0.01)
