"""DecoNoising: the PSF after a blind-spot network; a denoised and a deconvolved image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

import infocus
from infocus._errors import InfocusInputError
from infocus.intensity.normalize import Normalizer
from infocus.methods import create_scheme
from infocus.methods.config import default_config
from infocus.methods.deconoising import blur
from infocus.metrics import psnr
from infocus.psf import simulate_psf

OPTICS = {"psf_model": "gaussian", "na": 1.0, "wavelength": 520.0, "pixel_size": 0.06}


def test_blur_is_the_convolution_with_the_psf():
    rng = np.random.default_rng(0)
    image = rng.random((2, 3, 20, 24)).astype(np.float32)
    psf = rng.random((5, 3)).astype(np.float32)
    psf /= psf.sum()
    got = blur(torch.from_numpy(image), torch.from_numpy(psf)).numpy()
    expected = np.stack([[ndimage.convolve(c, psf, mode="mirror") for c in b] for b in image])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    delta = torch.zeros(3, 3, 3)
    delta[1, 1, 1] = 1.0
    volume = torch.rand(1, 1, 6, 7, 8)
    torch.testing.assert_close(blur(volume, delta), volume)


def test_loss_scores_the_blurred_output_and_penalises_values_below_black():
    scheme = create_scheme("deconoising", **OPTICS)
    psf = simulate_psf("gaussian", ndim=2, na=1.0, wavelength=520, pixel_size=0.06)
    bound = scheme.bind({"psf": psf.tolist(), "black_level": 100.0},
                        Normalizer(mean=(110.0,), std=(10.0,)))
    clean = torch.rand(2, 1, 32, 32) + 0.5
    observed = blur(clean, torch.from_numpy(psf))
    batch = bound.prepare(observed, None, torch.Generator().manual_seed(0))
    exact = bound.loss(clean, batch)
    assert exact["data"].item() == pytest.approx(0.0, abs=1e-10)
    assert exact["below_black"].item() == 0.0  # all above (100 - 110) / 10 = -1
    assert bound.loss(clean - 3.0, batch)["below_black"].item() > 0


def _blurred_spots(rng, count=2, size=96):
    psf = simulate_psf(OPTICS["psf_model"], ndim=2, na=OPTICS["na"],
                       wavelength=OPTICS["wavelength"], pixel_size=OPTICS["pixel_size"])
    clean = np.zeros((count, size, size), np.float32)
    for image in clean:
        points = rng.integers(4, size - 4, (40, 2))
        image[points[:, 0], points[:, 1]] = rng.uniform(30, 60, 40)
        image[:] = ndimage.gaussian_filter(image, 0.7) * 6 + 2
    blurred = np.stack([ndimage.convolve(c, psf, mode="mirror") for c in clean])
    noisy = (rng.poisson(blurred * 3) / 3).astype(np.float32)
    return clean, blurred, noisy


def test_the_output_is_sharper_than_its_blurred_twin(rng):
    clean, blurred, noisy = _blurred_spots(rng)
    config = default_config("deconoising").with_updates(
        scheme_options=OPTICS, steps=150, steps_per_epoch=50, patch_size=48, batch_size=8,
        learning_rate=4e-3, network_options={"depth": 2, "base_filters": 8})
    model = infocus.train(noisy, axes="SYX", config=config, progress=False, log=lambda m: None)
    result = model.predict(noisy[0], also=("deconvolved",))
    deconvolved = result.extras["deconvolved"]
    assert psnr(result.denoised, blurred[0]) > psnr(noisy[0], blurred[0]) + 3
    assert psnr(deconvolved, clean[0]) > psnr(result.denoised, clean[0]) + 0.5
    # by default the prediction averages the 8 flips and rotations (prediction_tta)
    averaged = model.predict(noisy[0], also=("deconvolved",), tta=True).extras["deconvolved"]
    once = model.predict(noisy[0], also=("deconvolved",), tta=False).extras["deconvolved"]
    np.testing.assert_array_equal(deconvolved, averaged)
    assert np.abs(once - deconvolved).max() > 1e-3 * (deconvolved.max() - deconvolved.min())
    # Tiles cut anywhere give the same images: the PSF's reach is part of the field.
    tiled = model.predict(noisy[0], also=("deconvolved",), tile_size=8)
    for name, value in (("denoised", result.denoised), ("deconvolved", deconvolved)):
        got = tiled.denoised if name == "denoised" else tiled.extras[name]
        assert np.abs(got - value).max() <= 1e-5 * (value.max() - value.min()), name


def test_a_psf_larger_than_the_images_is_refused(rng):
    _, _, noisy = _blurred_spots(rng, size=24)
    config = default_config("deconoising").with_updates(
        scheme_options={**OPTICS, "pixel_size": 0.005}, steps=2, patch_size=16, batch_size=2)
    with pytest.raises(InfocusInputError, match="larger than the images"):
        infocus.train(noisy, axes="SYX", config=config, progress=False, log=lambda m: None)


def test_psf_image_and_model_together_are_refused():
    with pytest.raises(InfocusInputError, match="not both"):
        create_scheme("deconoising", psf="psf.tif", psf_model="gaussian")


def test_the_export_says_what_it_leaves_out():
    limits = create_scheme("deconoising", **OPTICS).export_limits({})
    assert any("deconvolved image is left out" in line for line in limits)
    assert any("predicts once, as infocus predict --no-tta does" in line for line in limits)
