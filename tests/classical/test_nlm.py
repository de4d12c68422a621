"""Non-local means."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.restoration import denoise_nl_means

from infocus._errors import InfocusInputError
from infocus.classical import nl_means
from infocus.classical.nlm import NLM_H_FACTOR
from infocus.noise import NoiseParams


@pytest.fixture
def noisy(rng, make_blobs):
    clean = 50.0 * make_blobs((64, 64), rng)
    return (clean + rng.normal(0, 4.0, clean.shape)).astype(np.float32)


def test_default_strength_follows_the_noise_level(noisy):
    noise = NoiseParams.gaussian(4.0)
    np.testing.assert_array_equal(
        nl_means(noisy, noise=noise), nl_means(noisy, noise=noise, h=NLM_H_FACTOR * 4.0)
    )
    assert NLM_H_FACTOR == 0.8


def test_explicit_parameters_reach_skimage(noisy):
    out = nl_means(
        noisy,
        noise=NoiseParams.gaussian(4.0),
        h=3.0,
        patch_size=3,
        patch_distance=4,
        fast_mode=False,
    )
    expected = denoise_nl_means(
        noisy,
        patch_size=3,
        patch_distance=4,
        h=3.0,
        fast_mode=False,
        sigma=4.0,
        preserve_range=True,
    )
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-5)


def test_larger_h_smooths_more(noisy):
    noise = NoiseParams.gaussian(4.0)
    gentle = nl_means(noisy, noise=noise, h=1.0)
    strong = nl_means(noisy, noise=noise, h=10.0)
    roughness = [float(np.abs(np.diff(x, axis=1)).mean()) for x in (noisy, gentle, strong)]
    assert roughness[0] > roughness[1] > roughness[2]


@pytest.mark.parametrize(
    ("option", "value"),
    [("h", 0.0), ("patch_size", 4), ("patch_distance", 0), ("patch_distance", 2.5)],
)
def test_bad_parameters(option, value):
    with pytest.raises(InfocusInputError, match=option):
        nl_means(np.ones((16, 16)), noise=NoiseParams.gaussian(1.0), **{option: value})
