"""Photometric calibration: the fitted relation, the per-image fit, and CARE models using it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import blobs_image, passthrough_care_model
from infocus._errors import InfocusInputError
from infocus.intensity.calibration import (
    MAX_GAIN,
    calibrate_intensity,
    photometric_relation,
    restore_large_scales,
)
from infocus.methods.config import default_config


def _scene(rng: np.random.Generator, shape=(128, 128)) -> np.ndarray:
    return 200.0 * blobs_image(shape, rng) + 20.0


@settings(max_examples=20, deadline=None)
@given(gain=st.floats(0.6, 1.6), offset=st.floats(-30, 30), seed=st.integers(0, 2**16))
def test_calibration_undoes_a_gain_and_offset(gain, offset, seed):
    rng = np.random.default_rng(seed)
    clean = _scene(rng)
    noisy = clean + rng.normal(0, 10, clean.shape)
    calibrated, fit = calibrate_intensity(gain * clean + offset, noisy)
    assert fit.applied
    assert fit.gain == pytest.approx(1 / gain, rel=0.03)
    # Within a small fraction of the noise: two parameters fitted on 16k blurred pixels.
    assert np.abs(calibrated - clean).mean() < 1.0


def test_a_faithful_prediction_is_left_nearly_alone(rng):
    clean = _scene(rng)
    noisy = rng.poisson(clean).astype(np.float32)
    calibrated, fit = calibrate_intensity(clean, noisy)
    assert fit.gain == pytest.approx(1.0, abs=0.02)
    assert abs(fit.offset) < 2.0
    assert np.abs(calibrated - clean).max() < 3.0


def test_relation_maps_targets_to_inputs_without_dilution(rng):
    """Inputs are noisy, targets clean: the slope must not shrink towards zero."""
    clean = np.stack([_scene(rng) for _ in range(3)])
    noisy = rng.poisson(clean / 4).astype(np.float32) * 4 + 100  # gain 4 camera, offset 100
    alpha, beta = photometric_relation(noisy, clean)
    assert alpha == pytest.approx(1.0, abs=0.03)
    assert beta == pytest.approx(-100.0, abs=4.0)


def test_gain_beyond_the_limit_is_refused(rng):
    clean = _scene(rng)
    far_off = (MAX_GAIN * 2) * clean
    calibrated, fit = calibrate_intensity(far_off, clean)
    assert not fit.applied
    np.testing.assert_array_equal(calibrated, far_off.astype(np.float32))


def test_flat_prediction_gets_an_offset_only():
    measurement = np.full((64, 64), 50.0)
    calibrated, fit = calibrate_intensity(np.full((64, 64), 40.0), measurement)
    assert fit.gain == 1.0 and fit.offset == pytest.approx(10.0)
    np.testing.assert_allclose(calibrated, 50.0, rtol=1e-6)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="differ in shape"):
        calibrate_intensity(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError, match="differ in shape"):
        photometric_relation(np.zeros((1, 8, 8)), np.zeros((2, 8, 8)))


def test_care_prediction_is_calibrated_by_default(rng):
    clean = np.stack([_scene(rng, (96, 96)) for _ in range(2)]).astype(np.float32)
    noisy = rng.poisson(clean).astype(np.float32)
    model = passthrough_care_model({"alpha": 1.0, "beta": 0.0})
    plain = model.denoise(noisy, axes="SYX", calibrate=False)
    np.testing.assert_allclose(plain, 1.3 * noisy + 7, rtol=1e-4, atol=1e-2)
    assert model.last_notes == []
    calibrated = model.denoise(noisy, axes="SYX")
    assert len(model.last_notes) == 2
    for fit in model.last_notes:
        assert fit.applied and fit.gain == pytest.approx(1 / 1.3, rel=1e-3)
    np.testing.assert_allclose(calibrated, noisy, atol=0.05)
    # Targets in other units (say twice the inputs): the calibration keeps them.
    model = passthrough_care_model({"alpha": 2.0, "beta": -5.0})
    np.testing.assert_allclose(model.denoise(noisy, axes="SYX"), 2 * noisy - 5, atol=0.1)


def test_care_model_without_a_stored_relation_is_not_calibrated_by_default(rng):
    """Its targets may be in other units; forcing the inputs' scale on it would be wrong."""
    model = passthrough_care_model({"alpha": 1.0, "beta": 0.0})
    del model.state["photometric_relation"]
    noisy = rng.poisson(_scene(rng, (64, 64))).astype(np.float32)
    np.testing.assert_allclose(model.denoise(noisy), 1.3 * noisy + 7, rtol=1e-4, atol=1e-2)
    assert model.last_notes == []


def test_self_supervised_models_do_not_calibrate_by_default(rng):
    from infocus.training.loop import train

    config = default_config("n2v").with_updates(
        steps=1, steps_per_epoch=1, patch_size=32, batch_size=2, validation_patches=2,
        network_options={"depth": 1, "base_filters": 4})
    model = train(rng.poisson(30, (2, 64, 64)).astype(np.float32), method="n2v", axes="SYX",
                  config=config, progress=False)
    assert "calibrate" not in model.prediction_options
    assert "photometric_relation" not in model.state
    model.denoise(rng.poisson(30, (40, 40)).astype(np.float32), axes="YX")
    assert model.last_notes == []
    with pytest.raises(InfocusInputError, match="has no prediction option 'calibrate'"):
        model.denoise(rng.poisson(30, (40, 40)).astype(np.float32), calibrate=True)


def test_care_training_stores_the_relation_and_it_survives_saving(tmp_path, rng):
    from infocus.predict.model import load_model
    from infocus.training.loop import train

    clean = np.stack([_scene(rng, (64, 64)) for _ in range(2)]).astype(np.float32)
    noisy = (rng.poisson(clean) + 100).astype(np.float32)  # camera offset 100
    config = default_config("care").with_updates(
        steps=2, steps_per_epoch=2, patch_size=32, batch_size=2, validation_patches=2,
        network_options={"depth": 1, "base_filters": 4})
    model = train(noisy, targets=clean, method="care", axes="SYX", config=config,
                  progress=False, output=tmp_path / "care")
    (relation,) = model.state["photometric_relation"]
    assert relation["alpha"] == pytest.approx(1.0, abs=0.05)
    assert relation["beta"] == pytest.approx(-100, abs=6)
    assert load_model(tmp_path / "care").state["photometric_relation"] == [relation]


def _two_objects(shape=(96, 96)) -> tuple[np.ndarray, np.ndarray]:
    """A clean image of two round objects on a background, and regions (radius 20) that hold
    them with a margin of more than two blur widths."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    masks = [np.hypot(yy - 30, xx - 30) < 20, np.hypot(yy - 66, xx - 66) < 20]
    blobs = [np.exp(-((yy - c) ** 2 + (xx - c) ** 2) / (2 * 6.0**2)) for c in (30, 66)]
    return 20.0 + 200.0 * blobs[0] + 120.0 * blobs[1], np.stack(masks)


def test_restored_large_scales_give_back_the_measured_object_sums(rng):
    clean, masks = _two_objects()
    noisy = clean + rng.normal(0, 10, clean.shape)
    # A prediction that dimmed the first object by 15 %, as a network mixing channels does.
    first_half = np.add.outer(np.arange(96), np.arange(96)) < 96
    shrunk = np.where(first_half, 20.0 + 0.85 * (clean - 20.0), clean)
    restored = restore_large_scales(shrunk, noisy)
    for mask in masks:
        measured = (noisy - 20.0)[mask].sum()
        assert (restored - 20.0)[mask].sum() == pytest.approx(measured, rel=0.01)
    first = (noisy - 20.0)[masks[0]].sum()
    assert (shrunk - 20.0)[masks[0]].sum() < 0.9 * first


def test_restoring_a_faithful_prediction_adds_only_blurred_noise(rng):
    clean, _ = _two_objects()
    noisy = clean + rng.normal(0, 10, clean.shape)
    change = restore_large_scales(clean, noisy) - clean
    # White noise blurred by sigma = 4 keeps 1/(4 pi 16) of its variance: std 10 / 14.
    assert np.std(change) < 10 / 10
    assert restore_large_scales(clean, noisy).dtype == np.float32
    with pytest.raises(ValueError, match="differ in shape"):
        restore_large_scales(clean, noisy[:-1])

