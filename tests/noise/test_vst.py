"""Tests for the generalized Anscombe transform and its exact unbiased inverse."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infocus._errors import InfocusInputError
from infocus.noise._params import NoiseParams
from infocus.noise.vst import generalized_anscombe, inverse_generalized_anscombe

#: (gain, offset, read_noise) in camera units: photon counting, sCMOS-like, CCD-like, high gain.
CAMERAS = [
    (1.0, 0.0, 0.0),
    (2.0, 100.0, 3.0),
    (0.5, 100.0, 1.0),
    (10.0, 100.0, 20.0),
    (1.0, 0.0, 2.0),
]


def _draw(rng: np.random.Generator, lam: float, gain: float, offset: float, read: float, n: int):
    x = gain * rng.poisson(lam, n).astype(np.float64) + offset
    if read > 0:
        x += rng.normal(0.0, read, n)
    return x


def _samples_for(lam: float, gain: float, read: float) -> int:
    """Enough samples that the Monte-Carlo error of the recovered mean is <= 0.2 % (1 sigma)."""
    s2 = (read / gain) ** 2
    # std of f is ~1.1 at worst; dm/dD = D/2 = sqrt(m + s^2 + 3/8) in photon units.
    n = (1.1 * math.sqrt(lam + s2 + 0.375) / (lam * 0.002)) ** 2
    return int(min(max(n, 200_000), 4_000_000))


@pytest.mark.parametrize(("gain", "offset", "read"), CAMERAS)
def test_forward_transform_stabilises_variance_to_one(gain, offset, read, rng):
    noise = NoiseParams.from_camera(gain=gain, offset=offset, read_noise=read)
    for lam, tol in [(5.0, 0.06), (10.0, 0.03), (50.0, 0.015), (200.0, 0.015)]:
        d = generalized_anscombe(_draw(rng, lam, gain, offset, read, 200_000), noise)
        assert d.dtype == np.float32
        var = float(np.var(d.astype(np.float64)))
        assert abs(var - 1.0) < tol, (lam, var)


@pytest.mark.parametrize(("gain", "offset", "read"), CAMERAS)
def test_exact_inverse_of_ideal_denoiser_is_unbiased(gain, offset, read, rng):
    """E[f(x)] (what a perfect denoiser returns) maps back to E[x] within 1 % of the signal."""
    noise = NoiseParams.from_camera(gain=gain, offset=offset, read_noise=read)
    for lam in [1.0, 2.0, 5.0, 10.0, 50.0, 200.0]:
        x = _draw(rng, lam, gain, offset, read, _samples_for(lam, gain, read))
        ideal = np.array([generalized_anscombe(x, noise).astype(np.float64).mean()])
        recovered = float(inverse_generalized_anscombe(ideal, noise)[0])
        rel = abs((recovered - offset) - gain * lam) / (gain * lam)
        assert rel < 0.01, (lam, recovered, rel)


def test_algebraic_inverse_is_visibly_biased_at_one_photon(rng):
    """The naive inverse fails the same check, so the unbiasedness test can fail."""
    gain, offset, read = 2.0, 100.0, 3.0
    noise = NoiseParams.from_camera(gain=gain, offset=offset, read_noise=read)
    x = _draw(rng, 1.0, gain, offset, read, 1_000_000)
    ideal = np.array([generalized_anscombe(x, noise).astype(np.float64).mean()])
    algebraic = float(inverse_generalized_anscombe(ideal, noise, method="algebraic")[0])
    exact = float(inverse_generalized_anscombe(ideal, noise)[0])
    assert (algebraic - offset) / gain - 1.0 < -0.10  # about -28 %
    assert abs((exact - offset) / gain - 1.0) < 0.01


def test_intercept_only_parameters_are_close_and_exact_from_five_photons(rng):
    """Without offset/read noise the model has s = 0; still within 5 % at 1 photon, 1 % from 5."""
    full = NoiseParams.from_camera(gain=2.0, offset=100.0, read_noise=3.0)
    partial = NoiseParams(gain=2.0, variance_intercept=full.variance_intercept)
    for lam, tol in [(1.0, 0.05), (5.0, 0.01), (50.0, 0.01)]:
        x = _draw(rng, lam, 2.0, 100.0, 3.0, 2_000_000)
        ideal = np.array([generalized_anscombe(x, partial).astype(np.float64).mean()])
        recovered = float(inverse_generalized_anscombe(ideal, partial)[0])
        assert abs((recovered - 100.0) / (2.0 * lam) - 1.0) < tol


def test_gaussian_only_round_trip_is_exact(rng):
    noise = NoiseParams.gaussian(7.5)
    x = rng.normal(40.0, 7.5, (64, 64)).astype(np.float32)
    d = generalized_anscombe(x, noise)
    assert abs(float(np.std(d)) - 1.0) < 0.03
    for method in ("exact_unbiased", "algebraic"):
        back = inverse_generalized_anscombe(d, noise, method=method)
        np.testing.assert_allclose(back, x, rtol=1e-5, atol=1e-4)


def test_exact_inverse_is_monotone_and_floors_at_zero_photons():
    noise = NoiseParams.from_camera(gain=2.0, offset=100.0, read_noise=3.0)
    d = np.linspace(-5.0, 80.0, 20001)
    m = inverse_generalized_anscombe(d, noise).astype(np.float64)
    assert np.all(np.diff(m) >= -1e-3)  # float32 output; no decreasing steps
    assert m.min() == pytest.approx(100.0, abs=1e-3)  # zero photons = offset
    # Far beyond the table: the asymptotic inverse m = D^2/4 - 1/8 - beta (times gain).
    beta = noise.variance_intercept / 4.0
    assert m[-1] == pytest.approx(2.0 * (80.0**2 / 4 - 0.125 - beta), rel=1e-6)


def test_inverse_keeps_shape_and_is_fast():
    noise = NoiseParams.from_camera(gain=1.7, offset=90.0, read_noise=2.2)
    d = np.random.default_rng(3).uniform(0.0, 60.0, (1024, 1024)).astype(np.float32)
    inverse_generalized_anscombe(d[:8, :8], noise)  # builds and caches the table
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        out = inverse_generalized_anscombe(d, noise)
        best = min(best, time.perf_counter() - start)
    assert out.shape == d.shape and out.dtype == np.float32
    assert best < 0.2


@settings(max_examples=60, deadline=None)
@given(
    gain=st.floats(0.05, 20.0),
    read=st.floats(0.0, 30.0),
    offset=st.floats(-50.0, 500.0),
    values=st.lists(st.floats(-1e3, 1e5), min_size=2, max_size=30),
)
def test_forward_is_monotone_and_algebraic_inverse_round_trips(gain, read, offset, values):
    noise = NoiseParams.from_camera(gain=gain, offset=offset, read_noise=read)
    x = np.sort(np.asarray(values, dtype=np.float64))
    d = generalized_anscombe(x, noise).astype(np.float64)
    assert np.all(np.diff(d) >= 0)
    # Where the square root's argument is positive, the algebraic inverse undoes f.
    valid = gain * x + 0.375 * gain**2 + noise.variance_intercept > 0
    back = inverse_generalized_anscombe(d[valid], noise, method="algebraic").astype(np.float64)
    scale = np.maximum(np.abs(x[valid]), abs(noise.variance_intercept) / gain + gain + 1.0)
    assert np.all(np.abs(back - x[valid]) <= 2e-5 * scale)


@settings(max_examples=30, deadline=None)
@given(gain=st.floats(0.1, 10.0), read=st.floats(0.0, 20.0), offset=st.floats(0.0, 300.0))
def test_exact_inverse_is_monotone_for_any_camera(gain, read, offset):
    noise = NoiseParams.from_camera(gain=gain, offset=offset, read_noise=read)
    d = np.linspace(0.0, 100.0, 4001)
    m = inverse_generalized_anscombe(d, noise).astype(np.float64)
    assert np.all(np.diff(m) >= -1e-5 * np.maximum(np.abs(m[1:]), 1.0))


def test_invalid_noise_parameters_raise():
    with pytest.raises(InfocusInputError, match="positive variance_intercept"):
        generalized_anscombe(np.ones((8, 8)), NoiseParams(gain=0.0, variance_intercept=0.0))


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"gain": -1.0, "variance_intercept": 1.0}, "gain must be zero or positive"),
        ({"gain": math.nan, "variance_intercept": 1.0}, "gain must be finite"),
        ({"gain": 1.0, "variance_intercept": math.inf}, "variance intercept must be finite"),
        ({"gain": 1.0, "variance_intercept": 0.0, "read_noise": -2.0}, "read noise must be zero"),
        ({"gain": "1", "variance_intercept": 0.0}, "gain must be a number"),
    ],
)
def test_noise_parameters_are_checked_where_they_are_made(fields, words):
    with pytest.raises(InfocusInputError, match=words):
        NoiseParams(**fields)


@pytest.mark.parametrize("sigma", [0.0, -3.0, math.nan, math.inf])
def test_gaussian_noise_needs_a_positive_finite_sigma(sigma):
    with pytest.raises(InfocusInputError, match="positive finite number"):
        NoiseParams.gaussian(sigma)


def test_unknown_method_and_wrong_type_raise():
    noise = NoiseParams(gain=1.0, variance_intercept=0.0)
    with pytest.raises(InfocusInputError, match="method"):
        inverse_generalized_anscombe(np.ones(3), noise, method="closed_form")  # type: ignore[arg-type]
    with pytest.raises(InfocusInputError, match="NoiseParams"):
        generalized_anscombe(np.ones(3), (1.0, 0.0))  # type: ignore[arg-type]
