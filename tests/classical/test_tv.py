"""Total-variation (Chambolle) denoising."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.restoration import denoise_tv_chambolle

from infocus._errors import InfocusInputError
from infocus.classical import tv
from infocus.classical.tv import TV_WEIGHT_FACTORS
from infocus.noise import NoiseParams

NOISE = NoiseParams.gaussian(0.1)


@pytest.fixture
def noisy(rng, make_blobs):
    clean = make_blobs((64, 64), rng)
    return (clean + rng.normal(0, 0.1, clean.shape)).astype(np.float32)


def _total_variation(image: np.ndarray) -> float:
    return float(np.abs(np.diff(image, axis=0)).sum() + np.abs(np.diff(image, axis=1)).sum())


def test_explicit_weight_is_used(noisy):
    out = tv(noisy, noise=NOISE, weight=0.08)
    mean = float(noisy.mean())
    expected = denoise_tv_chambolle(noisy - mean, weight=0.08, eps=1e-5, max_num_iter=500) + mean
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_automatic_weight_is_one_of_the_grid(noisy):
    auto = tv(noisy, noise=NOISE)
    matches = [
        f for f in TV_WEIGHT_FACTORS if np.array_equal(auto, tv(noisy, noise=NOISE, weight=f * 0.1))
    ]
    assert len(matches) == 1


def test_larger_weight_flattens_more(noisy):
    variations = [_total_variation(tv(noisy, noise=NOISE, weight=w)) for w in (0.02, 0.1, 0.5)]
    assert variations[0] > variations[1] > variations[2]


def test_bright_offset_does_not_change_the_result(noisy):
    # Chambolle's stopping rule is relative to the energy; TV runs on the block minus its mean,
    # so a camera offset only shifts the output.
    low = tv(noisy, noise=NOISE, weight=0.1)
    high = tv(noisy + 1000.0, noise=NOISE, weight=0.1)
    np.testing.assert_allclose(high - 1000.0, low, atol=2e-3)


@pytest.mark.parametrize(
    ("option", "value"),
    [("weight", -1.0), ("eps", 0.0), ("max_num_iter", 0), ("max_num_iter", 2.5)],
)
def test_bad_parameters(option, value):
    with pytest.raises(InfocusInputError, match=option):
        tv(np.ones((16, 16)), noise=NOISE, **{option: value})
