"""The disagreement map: a trained model's output against a classical denoiser's."""

from __future__ import annotations

import numpy as np
import pytest

import infocus
from infocus._errors import InfocusInputError
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


# -- a reference on a sample of planes ---------------------------------------------------------
def test_a_reference_on_a_sample_keeps_an_odd_count_of_evenly_spaced_planes_with_the_middle(rng):
    from infocus.qc.disagreement import classical_reference

    stack = rng.poisson(20.0, (2, 5, 3, 32, 32)).astype(np.float32)  # T Z C Y X: 10 planes
    budget = 4 * 3 * 32 * 32  # four CYX planes fit: three are taken (odd)
    reference = classical_reference(stack, "gaussian", axes="TZCYX", max_pixels=budget)
    assert reference.shape == stack.shape and reference.dtype == np.float32
    done = np.isfinite(reference).all(axis=(2, 3, 4)).ravel()  # T, Z flattened in that order
    np.testing.assert_array_equal(np.flatnonzero(done), [1, 5, 8])
    assert np.isnan(reference.reshape(10, -1)[~done]).all()
    smoothed = reference[1, 0]  # T = 1, Z = 0 (plane 5, the middle): denoised, not noisy
    assert abs(smoothed.mean() - stack[1, 0].mean()) < 1 and smoothed.std() < stack[1, 0].std()
    whole = classical_reference(stack, "gaussian", axes="TZCYX", max_pixels=stack.size)
    assert np.isfinite(whole).all()


def test_planes_left_out_of_the_reference_are_not_compared(rng):
    model = 100 + rng.normal(0, 1, (6, 48, 48))
    classical = 100 + rng.normal(0, 1, (6, 48, 48))
    model[1, 20:24, 20:24] += 40  # flagged where compared
    model[4, 20:24, 20:24] += 40  # not compared: never flagged
    classical[[0, 2, 4, 5]] = np.nan
    result = check_disagreement(model, classical, np.full(model.shape, 4.0))
    alone = check_disagreement(model[[1, 3]], classical[[1, 3]], np.full((2, 48, 48), 4.0))
    assert result.tests == alone.tests and result.threshold == alone.threshold
    assert np.isnan(result.z[[0, 2, 4, 5]]).all() and not result.flags[[0, 2, 4, 5]].any()
    np.testing.assert_array_equal(result.flags[[1, 3]], alone.flags)
    assert result.flags[1, 22, 22]
    assert result.compared_fraction == pytest.approx(2 / 6)
    assert result.flagged_fraction == pytest.approx(alone.flagged_fraction)


def test_quality_check_runs_a_named_reference_on_a_sample_of_a_large_stack(monkeypatch):
    import infocus.qc.disagreement as disagreement

    stack = np.stack([spots((64, 64), photons=30, seed=s).noisy for s in range(5)])
    noise = spots((64, 64), photons=30, seed=0).noise
    output = infocus.denoise(stack, "gaussian", axes="ZYX", noise=noise, sigma=1.0)
    monkeypatch.setattr(disagreement, "REFERENCE_MAX_PIXELS", 3 * 64 * 64)
    report = quality_check(stack, output, axes="ZYX", noise=noise, reference="wavelet")
    check = next(c for c in report.to_dict()["checks"] if c["name"] == "disagreement")
    assert check["reference"] == "wavelet"
    assert (check["planes_compared"], check["planes"]) == (3, 5)
    assert check["compared_fraction"] == pytest.approx(3 / 5)
    assert "(wavelet, on 3 of 5 planes)" in check["summary"]
    assert check["summary"] in report.summary_line() or not check["passed"]
    compared = np.isfinite(report.disagreement.z).all(axis=(1, 2))
    np.testing.assert_array_equal(np.flatnonzero(compared), [0, 2, 4])


def test_a_reference_with_scattered_nans_is_refused(scene):
    reference = scene.noisy.copy()
    reference[3, 5] = np.nan
    with pytest.raises(InfocusInputError, match="NaN pixels outside planes"):
        quality_check(scene.noisy, good_output(scene), noise=scene.noise, reference=reference)
