"""The shared pipeline: noise-domain choice, channels, blocks and progress reports."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infocus._errors import InfocusInputError
from infocus.classical import choose_domain, gaussian, wavelet
from infocus.classical._domain import check_odd_size, check_positive, middle_block, run_denoiser
from infocus.noise import (
    NoiseParams,
    generalized_anscombe,
    inverse_generalized_anscombe,
    simulate_poisson_gaussian,
)


@pytest.fixture
def poisson_image(rng, make_blobs):
    clean = make_blobs((96, 96), rng)
    noisy, noise = simulate_poisson_gaussian(
        clean, photons=30, gain=2.0, offset=100.0, read_noise=3.0, rng=rng
    )
    return noisy, noise


@pytest.fixture
def gaussian_image(rng, make_blobs):
    clean = 100.0 * make_blobs((96, 96), rng) + 50.0
    return (clean + rng.normal(0.0, 5.0, clean.shape)).astype(np.float32)


def test_poisson_gaussian_data_use_the_vst(poisson_image):
    noisy, _ = poisson_image
    domain = choose_domain(noisy)  # noise estimated from the image
    assert domain.vst is True
    assert domain.sigma == 1.0
    assert domain.noise.gain > 0


def test_gaussian_data_do_not_use_the_vst(gaussian_image):
    domain = choose_domain(gaussian_image)
    assert domain.vst is False
    assert domain.sigma == pytest.approx(5.0, rel=0.15)


def test_known_gaussian_noise_sets_sigma_exactly(gaussian_image):
    domain = choose_domain(gaussian_image, noise=NoiseParams.gaussian(2.5))
    assert domain.vst is False and domain.sigma == 2.5
    np.testing.assert_array_equal(domain.forward(gaussian_image), gaussian_image)


def test_vst_can_be_forced_either_way(poisson_image, gaussian_image):
    noisy, noise = poisson_image
    forced_off = choose_domain(noisy, noise=noise, vst=False)
    level = float(np.median(noisy))
    assert forced_off.vst is False
    assert forced_off.sigma == pytest.approx(
        math.sqrt(noise.gain * level + noise.variance_intercept)
    )
    forced_on = choose_domain(gaussian_image, noise=NoiseParams.gaussian(5.0), vst=True)
    assert forced_on.vst is True and forced_on.sigma == 1.0


def test_vst_forward_and_inverse_are_the_noise_module_transforms(poisson_image):
    noisy, noise = poisson_image
    domain = choose_domain(noisy, noise=noise)
    np.testing.assert_array_equal(domain.forward(noisy), generalized_anscombe(noisy, noise))
    smooth = np.linspace(5.0, 40.0, 256, dtype=np.float32).reshape(16, 16)
    np.testing.assert_array_equal(
        domain.inverse(smooth), inverse_generalized_anscombe(smooth, noise)
    )
    assert domain.inverse(smooth).dtype == np.float32


def test_automatic_domain_is_what_the_denoiser_uses(poisson_image, gaussian_image):
    noisy, _ = poisson_image
    auto = wavelet(noisy)
    np.testing.assert_array_equal(auto, wavelet(noisy, vst=True))
    assert not np.allclose(auto, wavelet(noisy, vst=False), atol=1e-2)
    np.testing.assert_array_equal(wavelet(gaussian_image), wavelet(gaussian_image, vst=False))


def test_zero_variance_cannot_be_stabilised():
    with pytest.raises(InfocusInputError, match="vst=False"):
        choose_domain(
            np.ones((16, 16)), noise=NoiseParams(gain=0.0, variance_intercept=0.0), vst=True
        )


def test_noise_free_data_get_a_tiny_positive_sigma():
    domain = choose_domain(np.arange(256.0).reshape(16, 16), noise=NoiseParams(0.0, 0.0))
    assert 0 < domain.sigma < 1e-3


@pytest.mark.parametrize("bad", ["yes", 1, 0.5])
def test_vst_must_be_a_bool(bad):
    with pytest.raises(InfocusInputError, match="vst"):
        choose_domain(np.ones((16, 16)), noise=NoiseParams.gaussian(1.0), vst=bad)


def test_progress_counts_every_block():
    calls: list[tuple[int, int]] = []
    image = np.random.default_rng(0).normal(10, 1, (2, 3, 4, 16, 16)).astype(np.float32)
    gaussian(
        image,
        axes="TCZYX",
        noise=NoiseParams.gaussian(1.0),
        sigma=1.0,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(i, 6) for i in range(1, 7)]  # 2 times x 3 channels, Z inside the block


def test_progress_counts_slices_for_slice_by_slice_methods():
    calls: list[tuple[int, int]] = []
    image = np.zeros((4, 16, 16), np.float32)
    run_denoiser(
        image,
        axes="ZYX",
        noise=NoiseParams.gaussian(1.0),
        vst=None,
        max_spatial_ndim=2,
        denoise_block=lambda b, s, p: b,
        choose_params=lambda sample, s: {},
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_parameters_are_chosen_once_per_channel_from_its_middle_block():
    seen: list[tuple[tuple[int, ...], float]] = []
    image = np.stack([np.full((5, 16, 16), t, np.float32) for t in range(3)])  # TZYX, frame t == t

    def choose(sample: np.ndarray, sigma: float) -> dict:
        seen.append((sample.shape, float(sample.mean())))
        return {}

    out = run_denoiser(
        image,
        axes="TZYX",
        noise=NoiseParams.gaussian(1.0),
        vst=False,
        max_spatial_ndim=2,
        denoise_block=lambda b, s, p: b + s,
        choose_params=choose,
    )
    assert seen == [((16, 16), 1.0)]  # middle time point (1), middle slice
    np.testing.assert_allclose(out, image + 1.0)


@settings(max_examples=25, deadline=None)
@given(
    axes=st.permutations("TZYX").map("".join),
    sizes=st.tuples(*[st.integers(1, 4)] * 4),
)
def test_middle_block_is_zyx_ordered(axes, sizes):
    shape = tuple(s + (8 if a in "YX" else 0) for a, s in zip(axes, sizes, strict=True))
    image = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    block = middle_block(image, axes)
    assert block.shape == tuple(shape[axes.index(a)] for a in "ZYX")
    index = [slice(None)] * 4
    index[axes.index("T")] = shape[axes.index("T")] // 2
    expected = np.transpose(image[tuple(index)], [axes.replace("T", "").index(a) for a in "ZYX"])
    np.testing.assert_array_equal(block, expected)


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, "x"])
def test_check_positive_rejects(bad):
    with pytest.raises(InfocusInputError, match="positive"):
        check_positive("weight", bad)


@pytest.mark.parametrize("bad", [0, 2, 4, 2.5, True, -3])
def test_check_odd_size_rejects(bad):
    with pytest.raises(InfocusInputError, match="odd"):
        check_odd_size("size", bad)


def test_correlated_noise_sets_the_per_pixel_sigma(rng, make_blobs):
    """Noise correlated between pixels (σ = 5 through a 2×2 kernel): the estimated σ is the
    per-pixel one (the white-noise estimate reads about half of it), and the wavelet
    denoiser then removes far more of the noise."""
    from infocus.noise import add_correlated_noise, estimate_noise

    clean = 100.0 + 50.0 * make_blobs((256, 256), rng)
    noisy = add_correlated_noise(clean, sigma=5.0, kernel=np.ones((2, 2)), rng=rng)
    assert math.sqrt(estimate_noise(noisy).variance_intercept) < 3.5
    domain = choose_domain(noisy, axes="YX")
    assert not domain.vst and 4.0 < domain.sigma < 6.0
    white = wavelet(noisy, axes="YX", noise=estimate_noise(noisy))
    per_pixel = wavelet(noisy, axes="YX")
    assert np.mean((per_pixel - clean) ** 2) < 0.8 * np.mean((white - clean) ** 2)
