"""Tests for the camera-noise simulators."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infocus._errors import InfocusInputError
from infocus.noise._params import NoiseParams
from infocus.noise.simulate import (
    add_correlated_noise,
    add_emccd_noise,
    add_stripe_noise,
    scale_to_photons,
    simulate_poisson_gaussian,
)


def test_scale_to_photons_sets_the_peak(blobs_2d):
    s = scale_to_photons(blobs_2d * 7.0, 250.0)
    assert s.max() == pytest.approx(250.0)
    np.testing.assert_allclose(s / 250.0, blobs_2d / blobs_2d.max(), rtol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((16, 16)), -np.ones((16, 16))])
def test_scale_to_photons_rejects_zero_or_negative(bad):
    with pytest.raises(InfocusInputError):
        scale_to_photons(bad, 100.0)


@pytest.mark.parametrize(
    ("gain", "offset", "read"), [(1.0, 0.0, 0.0), (2.0, 100.0, 3.0), (0.5, 50.0, 8.0)]
)
def test_poisson_gaussian_moments_match_the_parameters(gain, offset, read, rng):
    clean = np.ones((400, 500), dtype=np.float32)
    clean[:, 250:] = 0.2  # two levels: 100 and 20 photons
    noisy, noise = simulate_poisson_gaussian(
        clean, photons=100.0, gain=gain, offset=offset, read_noise=read, rng=rng
    )
    assert noisy.dtype == np.float32 and noisy.shape == clean.shape
    assert noise == NoiseParams.from_camera(gain=gain, offset=offset, read_noise=read)
    for part, photons in [(noisy[:, :250], 100.0), (noisy[:, 250:], 20.0)]:
        expected = gain * photons + offset
        assert float(part.mean()) == pytest.approx(expected, abs=0.02 * gain * photons)
        assert float(part.var()) == pytest.approx(float(noise.variance(expected)), rel=0.03)


def test_poisson_gaussian_is_reproducible_with_a_seed(blobs_2d):
    a, _ = simulate_poisson_gaussian(blobs_2d, photons=30, read_noise=1.0, rng=7)
    b, _ = simulate_poisson_gaussian(blobs_2d, photons=30, read_noise=1.0, rng=7)
    c, _ = simulate_poisson_gaussian(blobs_2d, photons=30, read_noise=1.0, rng=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("kwargs", [{"gain": 0.0}, {"read_noise": -1.0}, {"photons": 0.0}])
def test_poisson_gaussian_rejects_bad_parameters(kwargs, blobs_2d):
    options = {"photons": 10.0} | kwargs
    with pytest.raises(InfocusInputError):
        simulate_poisson_gaussian(blobs_2d, **options)


@pytest.mark.parametrize("em_gain", [50.0, 300.0])
def test_emccd_excess_noise_factor_is_two(em_gain, rng):
    s = 8.0
    signal = np.full((500, 400), s)
    gain, offset, read = 0.05, 100.0, 2.0
    noisy, noise = add_emccd_noise(
        signal, em_gain=em_gain, gain=gain, offset=offset, read_noise=read, rng=rng
    )
    mean = float(noisy.astype(np.float64).mean())
    var = float(noisy.astype(np.float64).var())
    assert mean == pytest.approx(gain * em_gain * s + offset, rel=0.01)
    excess = (var - read**2) / ((gain * em_gain) ** 2 * s)  # F^2 = Var[e] / (g^2 Var[n])
    assert excess == pytest.approx(2.0, abs=0.06)
    assert noise.gain == pytest.approx(2 * gain * em_gain)
    assert float(noise.variance(mean)) == pytest.approx(var, rel=0.03)


def test_emccd_output_is_skewed_unlike_poisson_gaussian(rng):
    """At ~1 photon the EM register gives an exponential-like tail (positive skewness > 1.5)."""
    noisy, _ = add_emccd_noise(np.full((300, 300), 1.0), em_gain=200.0, rng=rng)
    x = noisy.astype(np.float64)
    skew = float(np.mean((x - x.mean()) ** 3) / x.std() ** 3)
    assert skew > 1.5
    assert float((x == 0).mean()) == pytest.approx(np.exp(-1.0), abs=0.01)  # P(n = 0)


def test_emccd_rejects_negative_signal():
    with pytest.raises(InfocusInputError):
        add_emccd_noise(-np.ones((8, 8)), em_gain=10.0)


def test_stripe_noise_has_the_requested_row_and_column_spread(rng):
    image = np.zeros((3, 512, 512), dtype=np.float32)
    out = add_stripe_noise(image, row_sigma=2.0, column_sigma=0.5, rng=rng)
    assert out.dtype == np.float32 and out.shape == image.shape
    for plane in out.astype(np.float64):
        # x_ij = r_i + c_j: subtracting the first column leaves the column pattern in every row.
        np.testing.assert_allclose(
            plane - plane[:, :1], np.tile(plane[:1] - plane[0, 0], (512, 1)), atol=1e-4
        )
        assert float(np.std(plane[:, 0])) == pytest.approx(2.0, rel=0.12)  # r_i + c_0
        assert float(np.std(plane[0, :])) == pytest.approx(0.5, rel=0.12)  # r_0 + c_j
    # The planes get independent patterns.
    assert not np.allclose(out[0], out[1])


def test_stripe_noise_zero_sigma_is_identity(blobs_2d):
    np.testing.assert_array_equal(add_stripe_noise(blobs_2d, rng=0), blobs_2d)


def test_correlated_noise_std_and_correlation(rng):
    kernel = np.array([[0.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 0.0]])
    image = np.full((512, 512), 10.0, dtype=np.float32)
    out = add_correlated_noise(image, sigma=3.0, kernel=kernel, rng=rng).astype(np.float64)
    noise = out - 10.0
    assert float(noise.std()) == pytest.approx(3.0, rel=0.02)

    # rho(1, 0) = sum k_i k_{i+(1,0)} / sum k^2 = (1*2 + 2*1) / 8 = 0.5; rho(1, 1) = 2/8; rho(2, 0) = 1/8.
    def rho(dy: int, dx: int) -> float:
        shifted = np.roll(noise, (dy, dx), axis=(0, 1))
        return float(np.mean(noise * shifted) / np.mean(noise * noise))

    assert rho(1, 0) == pytest.approx(0.5, abs=0.02)
    assert rho(0, 1) == pytest.approx(0.5, abs=0.02)
    assert rho(1, 1) == pytest.approx(0.25, abs=0.02)
    assert rho(2, 0) == pytest.approx(0.125, abs=0.02)
    assert abs(rho(3, 0)) < 0.02


def test_correlated_noise_with_2d_kernel_on_a_stack(rng):
    image = np.zeros((4, 64, 64), dtype=np.float32)
    out = add_correlated_noise(image, sigma=1.0, kernel=np.ones((1, 2)), rng=rng).astype(np.float64)
    # Only neighbours along X are correlated (rho = 0.5), planes and rows are independent.
    assert float(np.mean(out * np.roll(out, 1, axis=-1))) == pytest.approx(0.5, abs=0.05)
    assert abs(float(np.mean(out * np.roll(out, 1, axis=-2)))) < 0.05
    assert abs(float(np.mean(out[0] * out[1]))) < 0.05


@pytest.mark.parametrize("kernel", [np.zeros((3, 3)), np.ones((2, 2, 2, 2))])
def test_correlated_noise_rejects_bad_kernels(kernel):
    with pytest.raises(InfocusInputError):
        add_correlated_noise(np.zeros((16, 16)), sigma=1.0, kernel=kernel)


@settings(max_examples=25, deadline=None)
@given(
    photons=st.floats(1.0, 1000.0),
    gain=st.floats(0.1, 20.0),
    offset=st.floats(-100.0, 1000.0),
    read=st.floats(0.0, 30.0),
)
def test_simulated_parameters_have_the_documented_intercept(photons, gain, offset, read):
    clean = np.linspace(0.0, 1.0, 256, dtype=np.float32).reshape(16, 16)
    noisy, noise = simulate_poisson_gaussian(
        clean, photons=photons, gain=gain, offset=offset, read_noise=read, rng=0
    )
    assert noise.variance_intercept == pytest.approx(read**2 - gain * offset)
    assert np.all(np.isfinite(noisy))
    # Without read noise every value is the offset plus a whole number of photons.
    if read == 0:
        counts = (noisy.astype(np.float64) - offset) / gain
        # float32 keeps ~7 digits, so allow its rounding error (still far below half a photon).
        atol = 4 * np.finfo(np.float32).eps * (float(np.abs(noisy).max()) + abs(offset)) / gain
        assert atol < 0.1
        np.testing.assert_allclose(counts, np.round(counts), atol=atol)
