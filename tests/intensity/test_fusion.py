"""Fusing a blind-spot prediction with the noisy pixel (infocus.intensity.fusion)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import infocus.intensity.fusion as fusion
from conftest import blobs_image
from infocus._errors import InfocusInputError
from infocus.intensity.fusion import fuse_with_noisy, fusion_weight


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b) ** 2))


@settings(max_examples=20, deadline=None)
@given(noise_sd=st.floats(2.0, 20.0), error_sd=st.floats(1.0, 30.0), seed=st.integers(0, 999))
def test_weight_matches_the_error_variances_and_fusion_never_hurts(noise_sd, error_sd, seed):
    rng = np.random.default_rng(seed)
    clean = 200.0 + 100.0 * blobs_image((128, 128), rng)
    noisy = clean + rng.normal(0, noise_sd, clean.shape)
    prediction = clean + rng.normal(0, error_sd, clean.shape)  # errors independent of the noise
    fused, alpha = fuse_with_noisy(noisy, prediction, "YX")
    ideal = error_sd**2 / (error_sd**2 + noise_sd**2)
    assert alpha == pytest.approx(ideal, abs=0.08)
    # Never worse than the better input beyond what a weight off by ~0.045 costs (α² σ_n²).
    best = min(_mse(prediction, clean), _mse(noisy, clean))
    assert _mse(fused, clean) <= best + 0.002 * noise_sd**2


def test_poisson_gaussian_weight_is_close_to_the_oracle(rng):
    clean = 100.0 + 400.0 * blobs_image((256, 256), rng)
    noisy = 2.0 * rng.poisson((clean - 100.0) / 2.0) + 100.0 + rng.normal(0, 3, clean.shape)
    prediction = clean + rng.normal(0, 8.0, clean.shape)
    alpha = fusion_weight(noisy, prediction, "YX")
    grid = np.linspace(0, 1, 101)
    oracle = grid[np.argmin([_mse(prediction + a * (noisy - prediction), clean) for a in grid])]
    assert alpha == pytest.approx(oracle, abs=0.05)


def test_a_perfect_prediction_keeps_nearly_all_its_weight(rng):
    clean = 100.0 + 50.0 * blobs_image((128, 128), rng)
    noisy = clean + rng.normal(0, 5, clean.shape)
    assert fusion_weight(noisy, clean, "YX") < 0.05


def test_weight_is_zero_when_the_noise_cannot_be_estimated():
    tiny = np.ones((8, 8))
    fused, alpha = fuse_with_noisy(tiny + 1, tiny, "YX")
    assert alpha == 0.0 and np.array_equal(fused, tiny.astype(np.float32))
    assert fusion_weight(np.ones((64, 64)), np.ones((64, 64)), "YX") == 0.0


def test_docstring_examples_run():
    result = doctest.testmod(fusion)
    assert result.attempted > 0 and result.failed == 0


# --------------------------------------------------------------------------- in the model
def _n2v_model(**state):
    import torch

    from infocus.intensity.normalize import Normalizer
    from infocus.methods.config import default_config
    from infocus.nets import create_network
    from infocus.predict.model import TrainedModel

    torch.manual_seed(0)
    network = create_network("unet", ndim=2, depth=2, base_filters=8).eval()
    norm = Normalizer(mean=(100.0,), std=(20.0,))
    config = default_config("n2v").with_updates(scheme_options={"blind_spot": []})
    return TrainedModel(network=network, config=config, spatial="YX", input_norm=norm,
                        target_norm=norm, state=dict(state))


def test_models_fuse_by_default_only_where_it_is_sound(rng):
    image = (rng.poisson(30, (64, 64)) * 2 + 100).astype(np.float32)

    def fuses(model) -> bool:
        return not np.array_equal(model.denoise(image, backend="torch"),
                                  model.denoise(image, backend="torch", pixel_fusion=False))

    assert fuses(_n2v_model())
    assert not fuses(_n2v_model(noise_correlation={"correlated": True}))
    wide = _n2v_model()
    wide.config = wide.config.with_updates(
        scheme_options={"blind_spot": [[0, -1], [0, 1]], "fraction": 0.02})
    assert not fuses(wide)
    care = _n2v_model()
    care.config = care.config.with_updates(method="care", scheme_options={})
    assert not care.blind_spot
    with pytest.raises(InfocusInputError, match="has no prediction option 'pixel_fusion'"):
        care.denoise(np.full((64, 64), 100.0, np.float32), pixel_fusion=True)


def test_denoise_fuses_each_image_with_its_own_weight(rng):
    model = _n2v_model()
    image = (rng.poisson(30, (2, 64, 64)) * 2 + 100).astype(np.float32)
    plain = model.denoise(image, axes="SYX", pixel_fusion=False, backend="torch")
    fused = model.denoise(image, axes="SYX", backend="torch")
    weights = []
    for i in range(2):
        expected, alpha = fuse_with_noisy(image[i], plain[i], "YX")
        weights.append(alpha)
        np.testing.assert_allclose(fused[i], expected, rtol=1e-5, atol=1e-3)
    assert np.abs(fused - plain).max() > 0 and weights[0] != weights[1]


def test_fusion_measures_the_noise_on_the_central_crop(rng):
    from infocus.intensity import estimate_noise_or_none
    from infocus.methods.blind_spot import FUSION_CROP

    model = _n2v_model()
    size = FUSION_CROP + 40
    image = (rng.poisson(30, (size, size)) * 2 + 100).astype(np.float32)
    plain = model.denoise(image, backend="torch", pixel_fusion=False)
    fused = model.denoise(image, backend="torch")
    crop = image[20 : 20 + FUSION_CROP, 20 : 20 + FUSION_CROP]
    expected, _ = fuse_with_noisy(image, plain, "YX", estimate_noise_or_none(crop, "YX"))
    np.testing.assert_allclose(fused, expected, rtol=1e-5, atol=1e-3)
    whole, _ = fuse_with_noisy(image, plain, "YX")  # the noise of the whole image differs
    assert not np.array_equal(whole, expected)


# ------------------------------------------------------------- a known (training) noise model
def _camera_stack(seed: int, planes: int = 4, size: int = 256):
    from infocus.noise import simulate_poisson_gaussian

    rng = np.random.default_rng(seed)
    clean = np.stack([blobs_image((size, size), rng) for _ in range(planes)])
    noisy, true = simulate_poisson_gaussian(clean, photons=30, gain=2.0, offset=100.0,
                                            read_noise=3.0, rng=seed)
    reference = 2.0 * 30.0 * clean / clean.max() + 100.0
    return noisy, true, reference, rng


def test_noise_agreement_reads_the_ratio_of_noise_variances():
    from infocus.noise import NoiseParams

    noisy, true, _, _ = _camera_stack(0)
    assert fusion.noise_agreement(noisy[0], true, "YX") == pytest.approx(1.0, abs=0.03)
    for k in (0.5, 1.3, 2.0):
        scaled = NoiseParams(gain=k * true.gain, variance_intercept=k * true.variance_intercept)
        assert fusion.noise_agreement(noisy[0], scaled, "YX") == pytest.approx(1 / k, rel=0.04)
    # A stack reads its planes together; too few pixels to tell give None.
    assert fusion.noise_agreement(noisy[None, 0], true, "ZYX") == pytest.approx(
        fusion.noise_agreement(noisy[0], true, "YX"))
    assert fusion.noise_agreement(noisy[0, :128, :128], true, "YX") is None
    quarters = noisy[:, :128, :128]  # four 128² planes are enough together
    assert fusion.noise_agreement(quarters, true, "ZYX") == pytest.approx(1.0, abs=0.03)


def test_a_known_noise_model_stands_in_only_where_it_agrees():
    from infocus.noise import NoiseParams, estimate_noise

    noisy, true, _, _ = _camera_stack(1, planes=1)
    assert fusion.estimate_noise_or_none(noisy[0], "YX", true) is true
    other = NoiseParams(gain=1.5 * true.gain, variance_intercept=1.5 * true.variance_intercept)
    own = fusion.estimate_noise_or_none(noisy[0], "YX", other)
    assert own == estimate_noise(noisy[0], axes="YX")  # today's estimate, unchanged
    assert fusion.estimate_noise_or_none(noisy[0], "YX") == own


@pytest.mark.parametrize("seed", range(6))
def test_the_training_noise_model_keeps_the_weight_within_0_03(seed):
    """The weight with the noise model pooled over other images of the camera (as stored at
    training) stays within 0.03 of each image's own estimate, and is as close to the weight
    with the true parameters (observed: within 0.015 and 0.008 over 12 seeds)."""
    from infocus.noise import estimate_noise

    noisy, true, reference, rng = _camera_stack(seed)
    pooled = estimate_noise(noisy[1:], axes="SYX")
    prediction = reference[0] + rng.normal(0, 3.0, reference[0].shape)
    used = fusion.estimate_noise_or_none(noisy[0], "YX", pooled)
    assert used is pooled
    alpha = fusion_weight(noisy[0], prediction, "YX", used)
    assert alpha == pytest.approx(fusion_weight(noisy[0], prediction, "YX"), abs=0.03)
    assert alpha == pytest.approx(fusion_weight(noisy[0], prediction, "YX", true), abs=0.02)


def test_a_model_fuses_with_its_stored_noise_model_where_it_agrees(rng):
    from infocus.noise import NoiseParams, estimate_noise

    image = (rng.poisson(30, (2, 256, 256)) * 2 + 100).astype(np.float32)
    measured = estimate_noise(image, axes="SYX")
    # 3 % off: within the agreement, and far enough from each image's own estimate to tell.
    params = NoiseParams(gain=1.03 * measured.gain,
                         variance_intercept=1.03 * measured.variance_intercept)
    model = _n2v_model(fusion_noise=[[params.gain, params.variance_intercept]])
    plain = model.denoise(image, axes="SYX", pixel_fusion=False, backend="torch")
    fused = model.denoise(image, axes="SYX", backend="torch")
    for i in range(2):
        expected, _ = fuse_with_noisy(image[i], plain[i], "YX", params)
        np.testing.assert_allclose(fused[i], expected, rtol=1e-5, atol=1e-3)
        own, _ = fuse_with_noisy(image[i], plain[i], "YX")
        assert np.abs(fused[i] - own).max() > 0.01
    # A stored model that does not describe the image: each image's own estimate, as before.
    wrong = _n2v_model(fusion_noise=[[3 * params.gain, 3 * params.variance_intercept]])
    np.testing.assert_array_equal(wrong.denoise(image, axes="SYX", backend="torch"),
                                  _n2v_model().denoise(image, axes="SYX", backend="torch"))
