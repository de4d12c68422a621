"""Integrated intensities of objects: kept by a faithful output, flagged when changed."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from infocus.qc import check_intensity, segment_objects
from planted import good_output, spots


def _variance(scene, output):
    return np.maximum(scene.noise.gain * output + scene.noise.variance_intercept, 1.0)


def test_segmentation_finds_the_bright_objects_with_unique_labels_across_planes():
    scene = spots((96, 96), photons=50, seed=0)
    stack = np.stack([scene.expected, scene.expected])
    labels = segment_objects(stack)
    assert labels.shape == stack.shape
    first, second = set(np.unique(labels[0])) - {0}, set(np.unique(labels[1])) - {0}
    assert first and second and not first & second
    assert labels[0][scene.expected > np.percentile(scene.expected, 99)].all()


def test_a_blur_keeps_every_object_and_the_total():
    scene = spots((128, 128), photons=30, seed=1)
    output = good_output(scene, blur=1.0)
    result = check_intensity(scene.noisy, output, _variance(scene, output))
    assert len(result.objects) >= 5
    assert not result.flagged_objects and not result.total.flagged
    assert not result.flags.any()


def test_an_object_made_brighter_is_flagged_on_that_object_only():
    scene = spots((128, 128), photons=30, seed=2)
    brightest = int(np.argmax([o.sum() for o in scene.objects]))
    output = good_output(scene) + 0.3 * gaussian_filter(scene.objects[brightest], 0.7)
    result = check_intensity(scene.noisy, output, _variance(scene, output))
    centre = np.unravel_index(np.argmax(scene.objects[brightest]), output.shape)
    assert result.flags[centre]
    hit = result.labels[centre]
    flagged = [o for o in result.flagged_objects]
    assert [o.label for o in flagged] == [hit]
    assert flagged[0].relative_change > 0.05 and flagged[0].z > result.threshold


def test_a_change_below_the_tolerance_is_not_flagged_however_significant():
    """A 2 % gain over a bright image is far beyond the noise but below the 5 % tolerance."""
    scene = spots((128, 128), photons=1000, seed=3)
    output = scene.expected * 1.02
    result = check_intensity(scene.noisy, output, _variance(scene, output))
    assert abs(result.total.z) > result.threshold
    assert not result.total.flagged and not result.flagged_objects
