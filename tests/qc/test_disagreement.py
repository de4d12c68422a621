"""The disagreement map: a trained model's output against a classical denoiser's."""

from __future__ import annotations

import numpy as np
import pytest

import infocus
from infocus.qc import check_disagreement, quality_check
from infocus.qc.quality import DISAGREEMENT_BIT
from planted import added_spot, good_output, spots


def _variance(scene, image):
    return np.maximum(scene.noise.gain * image + scene.noise.variance_intercept, 1.0)


@pytest.fixture(scope="module")
def scene():
    return spots((128, 128), photons=30, seed=3)


@pytest.fixture(scope="module")
def bm3d_output(scene):
    pytest.importorskip("bm3d")
    return infocus.denoise(scene.noisy, "bm3d", axes="YX", noise=scene.noise)


def test_two_good_classical_denoisers_do_not_disagree(scene, bm3d_output):
    # Measured on spots() seeds 0-3, 128 x 128, 30 photons: no flag for NL-means, wavelet or
    # the blurred truth against BM3D; the largest |z| was 3.8 against a threshold of 4.9.
    for name in ("nl_means", "wavelet"):
        other = infocus.denoise(scene.noisy, name, axes="YX", noise=scene.noise)
        result = check_disagreement(other, bm3d_output, _variance(scene, bm3d_output))
        assert not result.flags.any(), name
        assert np.abs(result.z).max() < result.threshold


def test_a_planted_spot_is_flagged_where_it_was_planted(scene, bm3d_output):
    planted = good_output(scene) + added_spot(scene.noisy.shape, (40, 90), 20.0)
    result = check_disagreement(planted, bm3d_output, _variance(scene, bm3d_output))
    rows, columns = np.nonzero(result.flags)
    assert rows.size > 0
    assert np.all(np.abs(rows - 40) <= 6) and np.all(np.abs(columns - 90) <= 6)
    assert result.z[40, 90] < -result.threshold  # the model's output is the brighter one


def test_identical_outputs_raise_nothing():
    image = np.full((64, 64), 100.0)
    result = check_disagreement(image, image, np.full((64, 64), 9.0))
    assert not result.flags.any() and result.rms_difference == 0.0


def test_quality_check_adds_the_check_its_bit_and_its_share_of_alpha(scene, bm3d_output):
    planted = good_output(scene) + added_spot(scene.noisy.shape, (40, 90), 20.0)
    report = quality_check(scene.noisy, planted, noise=scene.noise, reference=bm3d_output)
    check = next(c for c in report.to_dict()["checks"] if c["name"] == "disagreement")
    assert not check["passed"] and check["max_abs_z"] > check["threshold"]
    assert report.flagged
    assert report.flags[40, 90] & DISAGREEMENT_BIT
    without = quality_check(scene.noisy, planted, noise=scene.noise)
    assert report.consistency.threshold > without.consistency.threshold  # alpha split in 3
    assert without.disagreement is None
    assert "disagreement" not in [c.name for c in without.checks]
