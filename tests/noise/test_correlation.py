"""Ground-truth-free estimate of the noise's spatial correlation (infocus.noise.correlation)."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import blobs_image
from infocus._errors import InfocusInputError
from infocus.noise import add_correlated_noise, simulate_poisson_gaussian
from infocus.noise.correlation import (
    NoiseCorrelation,
    describe_pattern,
    estimate_noise_correlation,
)


def _scene(rng: np.random.Generator, shape=(256, 256)) -> np.ndarray:
    """Fluorescence-like signal, 0..200 camera units above an offset of 100."""
    return 100.0 + 200.0 * blobs_image(shape, rng, n_blobs=40).astype(np.float64)


def _true_correlation(noise: np.ndarray, dy: int, dx: int) -> float:
    n = noise - noise.mean()
    h, w = n.shape
    a = n[dy:, max(dx, 0) : w + min(dx, 0)]
    b = n[: h - dy, max(-dx, 0) : w - max(dx, 0)]
    return float((a * b).mean() / (n * n).mean())


def test_white_poisson_gaussian_noise_reads_uncorrelated(rng):
    clean = _scene(rng)
    for photons in (3, 30, 300):
        noisy, _ = simulate_poisson_gaussian(clean - 100, photons=photons, gain=2.0, offset=100,
                                             read_noise=3.0, rng=rng)
        correlation = estimate_noise_correlation(noisy)
        assert max(abs(v) for v in correlation.values) < 0.1, photons
        assert correlation.blind_pattern() == ()


@pytest.mark.parametrize(
    ("kernel", "pattern"),
    [
        (np.ones((1, 2)), "a line of 5 along X"),  # reach 1, plus one pixel
        (np.ones((2, 1)), "a line of 5 along Y"),
        (np.ones((3, 3)), "a 5×5 block"),
    ],
)
def test_correlated_noise_is_detected_with_its_shape(rng, kernel, pattern):
    clean = _scene(rng)
    noisy = add_correlated_noise(clean, sigma=8.0, kernel=kernel, rng=rng)
    correlation = estimate_noise_correlation(noisy)
    noise = noisy - clean
    for dy, dx in [(0, 1), (1, 0)]:
        truth = _true_correlation(noise, dy, dx)
        # A detector: it may read strong correlation low (the block fit absorbs some), never high.
        assert truth - 0.2 < correlation.at(dy, dx) < truth + 0.08, (dy, dx)
    assert describe_pattern(correlation.blind_pattern()) == pattern


def test_symmetric_lookup_and_description():
    correlation = NoiseCorrelation(((0, 1), (1, -1), (1, 0), (1, 1)), (0.6, 0.1, 0.2, 0.0), 5)
    assert correlation.at(0, -1) == correlation.at(0, 1) == 0.6
    assert correlation.at(-1, 1) == correlation.at(1, -1) == 0.1
    assert correlation.at(0, 0) == 1.0
    assert correlation.at(3, 3) == 0.0  # beyond the measured lags
    assert correlation.neighbour == pytest.approx(0.4)
    assert correlation.blind_pattern() == ((0, -2), (0, -1), (0, 1), (0, 2))
    assert correlation.blind_pattern(threshold=0.15) == tuple(
        (dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if (dy, dx) != (0, 0)
    )
    assert "0.60 along X" in correlation.describe()
    assert correlation.to_dict()["blocks"] == 5


@settings(max_examples=15, deadline=None)
@given(
    scale=st.floats(0.05, 50.0),
    shift=st.floats(-1000.0, 1000.0),
    seed=st.integers(0, 2**16),
)
def test_estimate_ignores_the_intensity_scale_and_offset(scale, shift, seed):
    rng = np.random.default_rng(seed)
    clean = _scene(rng, (128, 128))
    noisy = add_correlated_noise(clean, sigma=6.0, kernel=np.ones((1, 2)), rng=rng)
    base = estimate_noise_correlation(noisy)
    moved = estimate_noise_correlation(noisy * scale + shift)
    assert np.allclose(base.values, moved.values, atol=1e-4)  # float32 input: rounding only


def test_transposing_swaps_the_axes(rng):
    clean = _scene(rng)
    noisy = add_correlated_noise(clean, sigma=8.0, kernel=np.ones((1, 3)), rng=rng)
    along_x = estimate_noise_correlation(noisy)
    along_y = estimate_noise_correlation(noisy.T.copy())
    assert along_x.at(0, 1) == pytest.approx(along_y.at(1, 0), abs=1e-9)
    assert along_x.at(1, 0) == pytest.approx(along_y.at(0, 1), abs=1e-9)


def test_stacks_and_channels(rng):
    clean = np.stack([_scene(rng, (96, 96)) for _ in range(3)])
    white = clean + rng.normal(0, 8.0, clean.shape)
    striped = add_correlated_noise(clean, sigma=8.0, kernel=np.ones((1, 3)), rng=rng)
    stack = estimate_noise_correlation(white, "ZYX")
    assert abs(stack.at(0, 1)) < 0.1
    # Channels are measured separately and the strongest correlation is reported.
    both = np.stack([white, striped], axis=1)  # Z C Y X
    assert estimate_noise_correlation(both, "ZCYX").at(0, 1) > 0.4


def test_unmeasurable_images_report_zero_blocks():
    assert estimate_noise_correlation(np.zeros((8, 8)) + np.arange(8)).blocks == 0
    flat = estimate_noise_correlation(np.full((64, 64), 7.0))
    assert flat.blocks == 0 and flat.blind_pattern() == ()


@pytest.mark.parametrize(
    ("image", "kwargs", "match"),
    [
        (np.full((64, 64), np.nan), {}, "NaN"),
        (np.zeros((4, 64, 64)), {}, "axes"),
        (np.zeros((64, 64)), {"max_lag": 0}, "max_lag"),
        (np.zeros((64, 64)), {"max_lag": 9}, "max_lag"),
    ],
)
def test_bad_input_is_one_clear_error(image, kwargs, match):
    with pytest.raises(InfocusInputError, match=match):
        estimate_noise_correlation(image, **kwargs)


def test_describe_pattern_names_common_shapes():
    assert describe_pattern(()) == "no pixel"
    assert describe_pattern([(0, -2), (0, -1), (0, 1), (0, 2)]) == "a line of 5 along X"
    assert describe_pattern([(-1, 0), (1, 0), (0, 1), (0, -1)]) == "4 pixels within 1 of the centre"


def test_docstring_examples_run():
    module = importlib.import_module("infocus.noise.correlation")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.shared_data
def test_fmd_widefield_noise_is_correlated_and_confocal_is_not(shared_data):
    import imageio.v3 as iio

    def read(config: str) -> np.ndarray:
        paths = sorted((shared_data / "fmd_test_mix" / "raw").glob(f"{config}_*.png"))
        return np.stack([iio.imread(p) for p in paths]).astype(np.float64)

    for config in ("WideField_BPAE_B", "WideField_BPAE_G", "WideField_BPAE_R"):
        correlation = estimate_noise_correlation(read(config), "SYX")
        assert correlation.neighbour > 0.45, config  # truth (raw − 50-frame mean): 0.58–0.65
        assert describe_pattern(correlation.blind_pattern()) == "a 5×5 block"
    for config in ("Confocal_BPAE_B", "Confocal_BPAE_G", "Confocal_MICE", "TwoPhoton_MICE"):
        correlation = estimate_noise_correlation(read(config), "SYX")
        assert correlation.neighbour < 0.2, config  # truth 0.05–0.14
        assert correlation.blind_pattern() == ()


def test_a_given_noise_model_ranks_the_blocks_as_the_estimated_one_would():
    """Passing the white-noise estimate the caller already has changes nothing but the work."""
    from scipy import ndimage

    from infocus.noise import estimate_noise

    rng = np.random.default_rng(2)
    clean = 100.0 + 40.0 * ndimage.gaussian_filter(rng.uniform(0, 1, (2, 128, 128)), (0, 4, 4))
    noisy = add_correlated_noise(clean, sigma=4.0, kernel=np.ones((1, 2)), rng=3)
    stacks = [noisy[0], np.stack([noisy[0], noisy[1]], axis=0)]
    for image, axes in zip(stacks, ("YX", "CYX"), strict=True):
        models = (estimate_noise(image, axes=axes) if axes == "YX" else
                  [estimate_noise(image[c]) for c in range(2)])
        assert (estimate_noise_correlation(image, axes, noise=models)
                == estimate_noise_correlation(image, axes))
    with pytest.raises(InfocusInputError, match="one per channel"):
        estimate_noise_correlation(stacks[1], "CYX", noise=[models[0]] * 3)
