"""Plans: the per-stack choices of a denoiser, applied block by block, give the one-call result."""

from __future__ import annotations

import json

import numpy as np
import pytest

from infocus._errors import InfocusInputError
from infocus.classical import DenoisePlan, get_denoiser, list_denoisers, plan_denoising
from infocus.noise import NoiseParams


@pytest.fixture
def two_channels(make_camera_image):
    """A TCYX stack whose channels differ in brightness and noise (Poisson-Gaussian, Gaussian)."""
    frames = [make_camera_image((40, 40), seed=s, photons=20.0)[0] for s in range(3)]
    shot = np.stack(frames)
    rng = np.random.default_rng(5)
    flat = rng.normal(500.0, 12.0, shot.shape).astype(np.float32)
    return np.stack([shot, flat], axis=1)  # T C Y X


@pytest.mark.parametrize("name", list_denoisers())
def test_blocks_with_the_stack_plan_equal_one_call(name, two_channels, reproducible_block_matching):
    # BM3D and BM4D run as deterministic stand-ins: the compiled packages are not reproducible
    # call to call, and what is tested here is infocus's plan, not their block matching.
    options = {"max_shift": 1} if name == "wavelet" else {}
    plan = plan_denoising(name, two_channels, axes="TCYX", **options)
    whole = get_denoiser(name)(two_channels, axes="TCYX", **options)
    for t in (0, 2):
        for c in (0, 1):
            block = plan.channel(c).denoise(two_channels[t, c], axes="YX")
            np.testing.assert_array_equal(block, whole[t, c])


def test_a_plan_holds_each_channels_own_choices(two_channels):
    plan = plan_denoising("gaussian", two_channels, axes="TCYX")
    shot, flat = plan.channels
    assert plan.method == "gaussian" and plan.options == {}
    assert shot.domain.vst and shot.domain.sigma == 1.0
    assert not flat.domain.vst and flat.domain.sigma == pytest.approx(12.0, rel=0.15)
    assert all(c.params["sigma"] > 0 for c in plan.channels)


def test_a_plan_survives_json(two_channels):
    plan = plan_denoising("tv", two_channels, axes="TCYX", max_num_iter=50)
    again = DenoisePlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan
    np.testing.assert_array_equal(again.denoise(two_channels, axes="TCYX"),
                                  plan.denoise(two_channels, axes="TCYX"))


def test_explicit_values_are_kept_and_noise_given_is_used(two_channels):
    noise = NoiseParams.gaussian(10.0)
    plan = plan_denoising("nl_means", two_channels[:, 1], axes="TYX", noise=noise, h=3.0,
                          vst=False)
    (only,) = plan.channels
    assert only.domain.noise == noise and only.params == {"h": 3.0}


def test_plan_and_noise_together_is_one_sentence(two_channels):
    plan = plan_denoising("gaussian", two_channels[:, 1], axes="TYX", sigma=1.0)
    with pytest.raises(InfocusInputError, match="pass noise and vst when making the plan"):
        get_denoiser("gaussian")(two_channels[0, 1], plan=plan, noise=NoiseParams.gaussian(2.0))


def test_a_plan_for_other_channels_is_refused(two_channels):
    plan = plan_denoising("gaussian", two_channels, axes="TCYX", sigma=1.0)
    with pytest.raises(InfocusInputError, match=r"2 channel\(s\) but the image has 1"):
        plan.denoise(two_channels[0, 0], axes="YX")


def test_unknown_option_is_one_sentence(two_channels):
    with pytest.raises(InfocusInputError, match="has no option 'strength'"):
        plan_denoising("gaussian", two_channels, axes="TCYX", strength=2)


def test_the_documented_example_holds():
    import doctest

    from infocus.classical import _domain

    result = doctest.testmod(_domain)
    assert result.attempted > 0 and result.failed == 0
