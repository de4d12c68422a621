"""Tests for single-image Poisson–Gaussian noise estimation.

Done-when criterion: on simulated images of known parameters the estimated gain is within 10 %
of the truth and the predicted variance a·y + b is within 10 % of the true variance at the 10th,
50th and 90th percentile of the expected image.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from infocus._errors import InfocusInputError
from infocus.noise._params import NoiseParams
from infocus.noise.estimate import NoiseLevelPoints, estimate_noise, noise_level_function
from infocus.noise.simulate import scale_to_photons, simulate_poisson_gaussian

OFFSET = 100.0
#: (gain, read noise) in camera units; read noise of 2, 2.5 and 2 electrons, as in sCMOS and
#: cooled CCD cameras.
CAMERAS = [(0.5, 1.0), (2.0, 5.0), (10.0, 20.0)]
PHOTONS = [100.0, 1000.0]


def blobs_image(shape: tuple[int, ...], rng: np.random.Generator, n_blobs: int = 30) -> np.ndarray:
    """Gaussian blobs on a dim background in [0, 1] (the same as ``blobs_image`` in conftest)."""
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    image = np.full(shape, 0.05)
    for _ in range(n_blobs):
        centre = [rng.uniform(0, n) for n in shape]
        width = rng.uniform(2.0, max(3.0, min(shape) / 10))
        r2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
        image += rng.uniform(0.3, 1.0) * np.exp(-r2 / (2 * width**2))
    return (image / image.max()).astype(np.float32)


def piecewise_image(shape: tuple[int, int], rng: np.random.Generator, n: int = 25) -> np.ndarray:
    """Discs, rectangles and diamonds of constant value on a dim background: sharp edges."""
    image = np.full(shape, 0.05)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(n):
        kind = rng.integers(3)
        value = rng.uniform(0.1, 1.0)
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        r = rng.uniform(8, shape[0] / 5)
        if kind == 0:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        elif kind == 1:
            inside = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < 0.6 * r)
        else:
            inside = np.abs(yy - cy) + np.abs(xx - cx) < r
        image[inside] = value
    return image / image.max()


def real_image(shared_data, name: str) -> np.ndarray:
    """A real fluorescence image as ground truth.

    The files carry their own noise (stardist: ~5 of 235 grey levels), which would add to the
    simulated variance at high photon counts; a Gaussian blur removes it while keeping the
    nuclei and their edges.
    """
    tifffile = pytest.importorskip("tifffile")
    paths = {
        "stardist": ("stardist_dsb2018_nuclei/img2d.tif", 2.0),
        "mitosis": ("human_mitosis/AS_09125_050116030001_D03f00d0.tif", 1.5),
    }
    path, sigma = paths[name]
    image = tifffile.imread(shared_data / path).astype(np.float64)
    return np.maximum(ndimage.gaussian_filter(image, sigma), 0.0)


def _errors(clean, photons, gain, read, seed) -> tuple[float, np.ndarray, NoiseParams]:
    noisy, true = simulate_poisson_gaussian(
        clean, photons=photons, gain=gain, offset=OFFSET, read_noise=read, rng=seed
    )
    expected = gain * scale_to_photons(clean, photons) + OFFSET
    estimate = estimate_noise(noisy)
    levels = np.percentile(expected, [10, 50, 90])
    variance_error = np.abs(estimate.variance(levels) / true.variance(levels) - 1.0)
    return estimate.gain / gain - 1.0, variance_error, estimate


SYNTHETIC = {
    "blobs-256": lambda: blobs_image((256, 256), np.random.default_rng(0)),
    "blobs-384": lambda: blobs_image((384, 384), np.random.default_rng(1)),
    "piecewise-256": lambda: piecewise_image((256, 256), np.random.default_rng(2)),
}


@pytest.mark.parametrize("photons", PHOTONS)
@pytest.mark.parametrize(("gain", "read"), CAMERAS)
@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_images_gain_and_variance_within_10_percent(name, gain, read, photons):
    gain_error, variance_error, _ = _errors(SYNTHETIC[name](), photons, gain, read, seed=11)
    assert abs(gain_error) < 0.10, gain_error
    assert np.all(variance_error < 0.10), variance_error


@pytest.mark.shared_data
@pytest.mark.parametrize("photons", PHOTONS)
@pytest.mark.parametrize(("gain", "read"), CAMERAS)
@pytest.mark.parametrize("name", ["stardist", "mitosis"])
def test_real_images_gain_and_variance_within_10_percent(shared_data, name, gain, read, photons):
    clean = real_image(shared_data, name)
    gain_error, variance_error, _ = _errors(clean, photons, gain, read, seed=12)
    assert abs(gain_error) < 0.10, gain_error
    assert np.all(variance_error < 0.10), variance_error


def test_low_photon_budget_still_measures_the_gain():
    """30 photons at the peak and 1 e- read noise: within 10 % as well."""
    clean = blobs_image((384, 384), np.random.default_rng(3))
    gain_error, variance_error, _ = _errors(clean, 30.0, 2.0, 2.0, seed=5)
    assert abs(gain_error) < 0.10
    assert np.all(variance_error < 0.10)


def test_read_noise_dominated_camera_still_predicts_the_variance():
    """40 e- read noise at 100 photons: the gain is unmeasurable, the variance is not."""
    clean = blobs_image((256, 256), np.random.default_rng(0))
    _, variance_error, estimate = _errors(clean, 100.0, 0.5, 20.0, seed=11)
    assert np.all(variance_error < 0.10)
    assert estimate.gain >= 0.0


def test_estimator_is_unbiased_on_a_ramp():
    """No structure leaks into the detail filters: the mean error over seeds is tiny."""
    ramp = np.tile(np.linspace(0.02, 1.0, 384), (384, 1))
    errors = [_errors(ramp, 300.0, 2.0, 3.0, seed)[0] for seed in range(6)]
    assert abs(float(np.mean(errors))) < 0.015, errors
    assert max(abs(e) for e in errors) < 0.06


@pytest.mark.parametrize("given_clip", [False, True])
def test_clipped_image(given_clip):
    clean = blobs_image((384, 384), np.random.default_rng(1))
    noisy, true = simulate_poisson_gaussian(
        clean, photons=1000.0, gain=2.0, offset=OFFSET, read_noise=5.0, rng=4
    )
    saturation = float(np.percentile(noisy, 95))
    clipped = np.minimum(noisy, saturation)
    kwargs = {"clip_high": saturation} if given_clip else {}
    estimate = estimate_noise(clipped, **kwargs)
    assert abs(estimate.gain / 2.0 - 1.0) < 0.10
    expected = 2.0 * scale_to_photons(clean, 1000.0) + OFFSET
    levels = np.percentile(expected, [10, 50, 90])
    assert np.all(np.abs(estimate.variance(levels) / true.variance(levels) - 1.0) < 0.10)
    # No level set comes within 4 noise standard deviations of the saturation value.
    points = noise_level_function(clipped, **kwargs)
    assert np.all(points.mean + 4 * np.sqrt(points.variance) < saturation)


def test_clipping_at_zero_is_detected():
    """Offset 0 and read noise: negative values clipped to 0 pile up at the minimum."""
    clean = blobs_image((384, 384), np.random.default_rng(1))
    noisy, _ = simulate_poisson_gaussian(clean, photons=100.0, gain=2.0, read_noise=5.0, rng=6)
    clipped = np.maximum(noisy, 0.0)
    assert np.mean(clipped == 0) > 0.005
    points = noise_level_function(clipped)
    assert np.all(points.mean - 4 * np.sqrt(points.variance) > 0)
    assert abs(estimate_noise(clipped).gain / 2.0 - 1.0) < 0.10


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_pure_gaussian_noise(name):
    clean = SYNTHETIC[name]() * 1000.0 + 50.0
    noisy = clean + np.random.default_rng(7).normal(0.0, 10.0, clean.shape)
    estimate = estimate_noise(noisy)
    assert abs(estimate.variance_intercept / 100.0 - 1.0) < 0.10
    y90 = float(np.percentile(clean, 90))
    assert abs(estimate.gain) * y90 < 0.1 * estimate.variance_intercept


def test_flat_image_gives_constant_variance():
    noisy, true = simulate_poisson_gaussian(
        np.ones((256, 256)), photons=100.0, gain=2.0, offset=OFFSET, read_noise=3.0, rng=0
    )
    estimate = estimate_noise(noisy)
    assert estimate.gain == 0.0  # no lever arm: a constant describes the noise
    assert float(estimate.variance(300.0)) == pytest.approx(float(true.variance(300.0)), rel=0.05)


def test_stack_pools_planes_and_ignores_axis_order():
    clean = blobs_image((6, 128, 128), np.random.default_rng(8))
    noisy, _ = simulate_poisson_gaussian(
        clean, photons=300.0, gain=2.0, offset=OFFSET, read_noise=3.0, rng=9
    )
    pooled = estimate_noise(noisy, axes="TYX")
    assert abs(pooled.gain / 2.0 - 1.0) < 0.10
    moved = estimate_noise(np.moveaxis(noisy, 0, -1), axes="YXT")
    assert moved.gain == pytest.approx(pooled.gain, rel=1e-9)
    assert moved.variance_intercept == pytest.approx(pooled.variance_intercept, rel=1e-9)


@pytest.mark.parametrize(("gain", "read", "photons"), [(2.0, 5.0, 100.0), (0.5, 5.0, 1000.0)])
def test_offset_gives_read_noise(gain, read, photons):
    clean = blobs_image((384, 384), np.random.default_rng(1))
    noisy, _ = simulate_poisson_gaussian(
        clean, photons=photons, gain=gain, offset=OFFSET, read_noise=read, rng=2
    )
    estimate = estimate_noise(noisy, offset=OFFSET)
    assert estimate.offset == OFFSET
    b, a = estimate.variance_intercept, estimate.gain
    assert estimate.read_noise == pytest.approx(math.sqrt(max(b + a * OFFSET, 0.0)))
    assert abs(estimate.read_noise / read - 1.0) < 0.15


def test_noise_level_function_points_follow_the_truth():
    ramp = np.tile(np.linspace(0.05, 1.0, 384), (384, 1))
    noisy, true = simulate_poisson_gaussian(
        ramp, photons=500.0, gain=2.0, offset=OFFSET, read_noise=3.0, rng=3
    )
    points = noise_level_function(noisy, min_count=500)
    assert isinstance(points, NoiseLevelPoints)
    assert points.mean.size >= 10
    assert np.all(np.diff(points.mean) > 0)
    assert np.all(points.count >= 500)
    assert np.all(np.abs(points.variance / true.variance(points.mean) - 1.0) < 0.25)
    # Pooled over all level sets the points agree to ~1 %.
    weighted = np.average(points.variance / true.variance(points.mean), weights=points.count)
    assert abs(weighted - 1.0) < 0.02


_BASE = simulate_poisson_gaussian(
    blobs_image((256, 256), np.random.default_rng(0)),
    photons=200.0,
    gain=2.0,
    offset=OFFSET,
    read_noise=3.0,
    rng=1,
)[0].astype(np.float64)
_BASE_ESTIMATE = estimate_noise(_BASE)


@settings(max_examples=8, deadline=None)
@given(scale=st.floats(0.01, 100.0), shift=st.floats(-1e3, 1e3))
def test_estimate_is_equivariant_to_affine_rescaling(scale, shift):
    """x' = c x + t has Var[x'|y'] = c a y' + c^2 b - c a t."""
    estimate = estimate_noise(_BASE * scale + shift)
    a, b = _BASE_ESTIMATE.gain, _BASE_ESTIMATE.variance_intercept
    assert estimate.gain == pytest.approx(scale * a, rel=2e-3)
    # Compare the variance where the data are (b itself is an extrapolation to y' = 0, which
    # magnifies rounding differences when the shift is large).
    for level in np.percentile(_BASE, [10, 50, 90]):
        expected = scale**2 * float(_BASE_ESTIMATE.variance(level))
        got = float(estimate.variance(scale * level + shift))
        assert got == pytest.approx(expected, rel=2e-3)
    assert estimate.variance_intercept == pytest.approx(
        scale**2 * b - scale * a * shift, rel=0.05, abs=1e-3 * scale**2 * abs(b)
    )


def test_bad_inputs_raise():
    with pytest.raises(InfocusInputError, match="axes"):
        estimate_noise(np.zeros((3, 64, 64)))
    with pytest.raises(InfocusInputError, match="channel"):
        estimate_noise(np.zeros((2, 64, 64)), axes="CYX")
    with pytest.raises(InfocusInputError, match="32x32"):
        estimate_noise(np.zeros((20, 64)))
    with pytest.raises(InfocusInputError, match="Too few usable pixels"):
        estimate_noise(np.random.default_rng(0).normal(size=(32, 32)))
    with pytest.raises(InfocusInputError, match="clip_low"):
        estimate_noise(np.random.default_rng(0).normal(size=(64, 64)), clip_low=1.0, clip_high=0.0)
    with pytest.raises(InfocusInputError, match="offset"):
        estimate_noise(np.random.default_rng(0).normal(size=(128, 128)), offset=math.nan)
    with pytest.raises(InfocusInputError):
        estimate_noise(np.full((64, 64), np.nan))


def test_separable_bank_is_the_valid_2d_correlation(rng):
    from scipy.signal import correlate2d

    from infocus.noise.estimate import _FILTERS, _separable_bank

    planes = rng.normal(size=(2, 23, 31))
    for (rows, cols), result in zip(_FILTERS, _separable_bank(planes, _FILTERS), strict=True):
        for plane, got in zip(planes, result, strict=True):
            expected = correlate2d(plane, np.outer(rows, cols), mode="valid")
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_the_parameters_error_matches_their_spread_over_noise_draws():
    """The covariance of (gain, intercept) from the fit predicts how far another noise draw of
    the scene moves them: standardised errors of the mean variance over draws have a spread
    near 1 (not far below: an interval from it would be too narrow)."""
    from infocus.noise import estimate_noise_with_error, simulate_poisson_gaussian

    rng = np.random.default_rng(0)
    clean = ndimage.gaussian_filter(rng.uniform(0, 1, (256, 256)), 6)
    clean = (clean - clean.min()) / np.ptp(clean)
    truth = 2.0 * (clean * 50 * 1.0) + 100.0
    scores = []
    for seed in range(12):
        noisy, noise = simulate_poisson_gaussian(clean, photons=50, gain=2.0, offset=100.0,
                                                 read_noise=3.0, rng=seed)
        params, covariance = estimate_noise_with_error(noisy)
        gradient = np.array([truth.mean(), 1.0])
        error = params.gain * truth.mean() + params.variance_intercept - noise.variance(
            truth).mean()
        scores.append(error / math.sqrt(gradient @ covariance @ gradient))
    assert 0.5 < float(np.std(scores)) < 2.0
    assert abs(float(np.mean(scores))) < 1.5


# ----------------------------------------------------------------------------- correlated noise


def _kernel_correlation(kernel: np.ndarray, max_lag: int = 3):
    """The exact correlation of white noise convolved with ``kernel``, as a NoiseCorrelation."""
    from infocus.noise import NoiseCorrelation
    from infocus.noise.correlation import _half_plane

    full = ndimage.correlate(np.pad(kernel, max_lag + 1), kernel, mode="constant")
    centre = np.array(full.shape) // 2
    offsets = tuple(_half_plane(max_lag))
    values = tuple(float(full[centre[0] + dy, centre[1] + dx] / full[tuple(centre)])
                   for dy, dx in offsets)
    return NoiseCorrelation(offsets, values, 1)


@given(st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4).filter(lambda w: sum(w) > 0.1))
@settings(max_examples=25, deadline=None)
def test_detail_share_is_the_filters_variance_on_correlated_noise(weights):
    """κ from the exact correlation equals the measured variance of the detail filters' output
    on a large field of such noise (relative to its marginal variance)."""
    from infocus.noise import add_correlated_noise, detail_share
    from infocus.noise.estimate import _FILTERS, _separable_bank

    kernel = np.asarray(weights).reshape(2, 2)
    noise = add_correlated_noise(np.zeros((512, 512)), sigma=1.0, kernel=kernel, rng=0)
    measured = np.mean([float(np.mean(c**2)) for c in
                        _separable_bank(noise.astype(np.float64)[None], _FILTERS)])
    assert detail_share(_kernel_correlation(kernel)) == pytest.approx(measured / noise.var(),
                                                                      rel=0.05)


def test_detail_share_of_white_noise_is_one():
    from infocus.noise import NoiseCorrelation, detail_share

    assert detail_share(NoiseCorrelation(((0, 1), (1, 0)), (0.0, 0.0), 10)) == pytest.approx(1.0)


@pytest.mark.parametrize(("kernel", "lowest"), [(np.ones((1, 2)), 0.8), (np.ones((2, 2)), 0.7),
                                               (np.ones((3, 3)), 0.6)])
def test_correcting_for_correlation_recovers_most_of_the_variance(kernel, lowest):
    """The white-noise estimate reads correlated noise's variance far too low (3×3: 12 %);
    corrected with the correlation measured from the same image it recovers most of it. The
    stronger the correlation, the more the measured one misses two and more pixels away, so
    the corrected variance is still somewhat low (3×3: about 0.7 of the truth)."""
    from infocus.noise import add_correlated_noise, correct_for_correlation
    from infocus.noise.correlation import estimate_noise_correlation

    noisy = add_correlated_noise(np.full((256, 256), 100.0), sigma=5.0, kernel=kernel, rng=3)
    white = estimate_noise(noisy)
    corrected, covariance = correct_for_correlation(
        white, estimate_noise_correlation(noisy), np.eye(2))
    assert white.variance_intercept < 0.6 * 25.0
    assert lowest * 25.0 < corrected.variance_intercept < 1.2 * 25.0
    assert covariance[1, 1] > 1.0


def test_correction_keeps_the_offset_and_scales_the_read_noise():
    from infocus.noise import NoiseCorrelation, correct_for_correlation, detail_share

    correlation = NoiseCorrelation(((0, 1), (1, 0)), (0.5, 0.5), 10)
    params = NoiseParams(gain=2.0, variance_intercept=-150.0, offset=100.0, read_noise=5.0)
    corrected, covariance = correct_for_correlation(params, correlation)
    share = detail_share(correlation)
    assert covariance is None
    assert corrected.offset == 100.0
    assert corrected.gain == pytest.approx(2.0 / share)
    assert corrected.read_noise == pytest.approx(5.0 / math.sqrt(share))


def test_a_weak_correlation_leaves_the_estimate_as_it_is():
    """Readings below the blind-spot rule are mostly the image's own structure: no correction."""
    from infocus.noise import NoiseCorrelation, correct_for_correlation

    params = NoiseParams(gain=2.0, variance_intercept=10.0)
    weak = NoiseCorrelation(((0, 1), (1, 0)), (0.15, 0.1), 10)
    assert correct_for_correlation(params, weak, np.eye(2))[0] is params
