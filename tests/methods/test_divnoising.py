"""DivNoising: the evidence lower bound, the sampler and the calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infocus._errors import InfocusInputError
from infocus.intensity import Normalizer
from infocus.methods import create_scheme
from infocus.methods.divnoising import _Sampler
from infocus.nets import create_network
from infocus.noise.models import PoissonGaussianNoiseModel


def _bound():
    state = {"noise_model": PoissonGaussianNoiseModel(0.0, 4.0, 0, 200).to_dict()}
    return create_scheme("divnoising").bind(state, Normalizer(mean=(100.0,), std=(10.0,)))


def test_loss_is_the_negative_elbo_per_pixel():
    scheme = _bound()
    x = torch.randn(2, 1, 8, 8)
    batch = scheme.prepare(x, None, torch.Generator())
    assert batch.input is x and batch.target is x and batch.mask is None
    mean, log_variance = torch.zeros(2, 3, 2, 2), torch.zeros(2, 3, 2, 2)
    terms = scheme.loss((x.clone(), mean, log_variance), batch)
    assert float(terms["kl"]) == 0.0  # q = N(0, 1) is the prior
    # Decoded signal = observation: -log N(0; 0, 2²) in camera units, + log(10) per pixel.
    expected = 0.5 * np.log(2 * np.pi * 4.0) - np.log(10.0)
    assert float(terms["nll"]) == pytest.approx(expected, rel=1e-5)
    shifted = scheme.loss((x.clone(), mean + 1.0, log_variance), batch)
    assert float(shifted["kl"]) == pytest.approx(0.5 * 2 * 3 * 4 / x.numel())
    assert float(shifted["loss"]) == pytest.approx(float(shifted["nll"] + shifted["kl"]))


def test_sampler_moments_equal_the_kept_samples_moments():
    torch.manual_seed(0)
    vae = create_network("divnoising_vae", base_filters=4, latent_channels=3).eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        kept = _Sampler(vae, 7, seed=3, keep=True)(x)
        moments = _Sampler(vae, 7, seed=3, keep=False)(x)
    assert kept.shape == (2, 7, 16, 16) and moments.shape == (2, 2, 16, 16)
    torch.testing.assert_close(moments[:, :1], kept.mean(1, keepdim=True), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(moments[:, 1:], kept.std(1, unbiased=False, keepdim=True),
                               rtol=1e-4, atol=1e-5)
    assert kept.std(1).mean() > 0  # the samples differ


@pytest.mark.parametrize("ndim", [2, 3])
def test_vae_shapes_and_size_checks(ndim):
    vae = create_network("divnoising_vae", ndim=ndim, base_filters=4, latent_channels=2)
    x = torch.randn(1, 1, *(8,) * ndim)
    signal, mean, log_variance = vae(x)
    assert signal.shape == x.shape and mean.shape == (1, 2, *(2,) * ndim)
    assert vae.size_multiple == 4 and vae.receptive_field > 8
    with pytest.raises(InfocusInputError, match="not a multiple of 4"):
        vae(torch.randn(1, 1, *(6,) * ndim))


def test_options_are_checked():
    with pytest.raises(InfocusInputError, match="kl_weight"):
        create_scheme("divnoising", kl_weight=-1)
    with pytest.raises(InfocusInputError, match="noise_model_kind"):
        create_scheme("divnoising", noise_model_kind="spline")


def test_divnoising_trains_and_samples_in_3d(rng):
    """A volume is denoised with its Z context: the VAE is 3-D when the data have Z."""
    import infocus
    from infocus.methods.config import default_config

    clean = rng.uniform(20, 60, (2, 16, 32, 32)).astype(np.float32)
    noisy = rng.poisson(clean).astype(np.float32)
    config = default_config("divnoising").with_updates(
        steps=2, steps_per_epoch=2, patch_size=16, batch_size=2, validation_patches=2,
        scheme_options={"noise_model": "parametric", "samples": 3})
    model = infocus.train(noisy, method="divnoising", axes="SZYX", config=config,
                          progress=False, log=lambda m: None)
    assert model.spatial == "ZYX" and model.network.config["ndim"] == 3
    result = model.predict(noisy[0], axes="ZYX", uncertainty=True)
    assert result.denoised.shape == result.uncertainty.shape == (16, 32, 32)
    assert model.sample(noisy[0], axes="ZYX", n=2).shape == (2, 16, 32, 32)
