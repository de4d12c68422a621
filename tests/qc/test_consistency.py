"""The residual test: silent on consistent outputs, loud where a defect was planted."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from infocus.qc import check_consistency
from planted import added_spot, good_output, spots


def _variance(scene, output):
    return np.maximum(scene.noise.gain * output + scene.noise.variance_intercept, 1.0)


def test_the_true_image_raises_no_flag_in_almost_all_cases():
    """Family-wise error 5 %: over 12 noise draws at most one may raise any flag."""
    flagged = 0
    for seed in range(12):
        scene = spots((128, 128), photons=20, seed=seed)
        result = check_consistency(scene.noisy, scene.expected,
                                   _variance(scene, scene.expected))
        flagged += bool(result.flags.any())
        assert 0.9 < result.variance_ratio < 1.1
        assert abs(result.residual_correlation) < 0.05
    assert flagged <= 1


def test_an_added_spot_is_flagged_where_it_was_added():
    scene = spots((128, 128), photons=30, seed=3)
    output = good_output(scene)
    spot = added_spot(output.shape, (40, 90), amplitude=0.6 * scene.expected.max() - 60)
    result = check_consistency(scene.noisy, output + spot, _variance(scene, output + spot))
    assert result.flags[spot > 0.1 * spot.max()].any()
    # Away from it (beyond half the largest window) nothing is flagged.
    far = np.ones_like(result.flags)
    far[40 - 30:40 + 30, 90 - 30:90 + 30] = False
    assert not result.flags[far].any()
    # The output is brighter than the data there: negative z.
    assert result.z[40, 90] < -result.threshold


def test_an_erased_object_is_flagged_with_positive_z():
    scene = spots((128, 128), photons=30, seed=5)
    brightest = int(np.argmax([o.max() for o in scene.objects]))
    erased = scene.objects[brightest]
    output = good_output(scene) - gaussian_filter(erased, 0.7)
    result = check_consistency(scene.noisy, output, _variance(scene, output))
    where = erased > 0.3 * erased.max()
    assert result.flags[where].any()
    assert result.z[where].max() > result.threshold


def test_the_noisy_image_itself_is_consistent_but_kept_all_noise():
    scene = spots((96, 96), photons=20, seed=1)
    result = check_consistency(scene.noisy, scene.noisy, _variance(scene, scene.noisy))
    assert not result.flags.any()
    assert result.variance_ratio == 0.0


@pytest.mark.parametrize("shape", [(2, 64, 64), (3, 2, 48, 40)])
def test_stacks_are_tested_plane_by_plane(shape):
    rng = np.random.default_rng(0)
    truth = np.full(shape, 50.0)
    noisy = truth + rng.normal(0, 2, shape)
    output = truth.copy()
    output[(0,) * (len(shape) - 2) + (slice(20, 30), slice(20, 30))] += 8.0
    result = check_consistency(noisy, output, np.full(shape, 4.0))
    assert result.z.shape == result.flags.shape == shape
    assert result.flags[(0,) * (len(shape) - 2)][20:30, 20:30].any()
    assert not result.flags.reshape(-1, *shape[-2:])[1:].any()


def test_skewed_few_photon_counts_do_not_raise_false_flags():
    """Pure Poisson at 0.3 photons per pixel: the Gaussian threshold alone would flag bright
    3x3 windows; the skewness correction keeps them silent."""
    rng = np.random.default_rng(2)
    truth = np.full((4, 128, 128), 0.3)
    noisy = rng.poisson(truth).astype(np.float64)
    plain = check_consistency(noisy, truth, truth)
    corrected = check_consistency(noisy, truth, truth, third_cumulant=truth)
    assert plain.flags.any()
    assert not corrected.flags.any()
