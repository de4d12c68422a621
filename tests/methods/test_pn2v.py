"""Probabilistic Noise2Void: the Bayes step, the loss, the blind spot and the calibration."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from infocus._errors import InfocusInputError
from infocus.intensity import Normalizer
from infocus.methods import create_scheme
from infocus.methods._base import Batch
from infocus.methods._likelihood import NormalizedLikelihood
from infocus.methods.pn2v import PRIOR_SCALES, posterior_moments
from infocus.noise.models import PoissonGaussianNoiseModel

NOISE_STD = 3.0


def _gaussian_likelihood(mean: float = 100.0, std: float = 20.0) -> NormalizedLikelihood:
    model = PoissonGaussianNoiseModel(gain=0.0, variance_intercept=NOISE_STD**2, low=0, high=200)
    return NormalizedLikelihood(model, [mean], [std])


def test_posterior_of_a_gaussian_prior_is_the_conjugate_one():
    """Prior N(μ0, σ0²) as K quantile samples, Gaussian noise: the posterior mean and std are
    the textbook ones (in camera units after denormalising)."""
    likelihood = _gaussian_likelihood()
    k = 4001
    prior_mean, prior_std, observed = 110.0, 2.0, 115.0
    quantiles = stats.norm.ppf((np.arange(k) + 0.5) / k)
    samples = torch.tensor((prior_mean + prior_std * quantiles - 100) / 20).view(1, 1, k, 1, 1)
    noisy = torch.tensor([[[[(observed - 100) / 20]]]], dtype=torch.float64)
    mean, std = posterior_moments(noisy, samples, likelihood, prior_scale=1.0)
    weight = prior_std**2 / (prior_std**2 + NOISE_STD**2)
    assert float(mean) * 20 + 100 == pytest.approx(prior_mean + weight * (observed - prior_mean),
                                                   abs=1e-3)
    assert float(std) * 20 == pytest.approx(np.sqrt(weight) * NOISE_STD, rel=1e-3)
    # A prior scale of 0 keeps the prior mean; the prior's own moments without the pixel.
    mean0, std0 = posterior_moments(noisy, samples, likelihood, prior_scale=0.0)
    assert float(mean0) * 20 + 100 == pytest.approx(prior_mean, abs=1e-6) and float(std0) < 1e-9
    prior, spread = posterior_moments(noisy, samples, likelihood, prior_scale=1.0,
                                      posterior=False)
    assert float(spread) * 20 == pytest.approx(prior_std, rel=1e-3)


def test_loss_is_the_negative_log_mean_likelihood_at_blind_spot_pixels():
    scheme = create_scheme("pn2v", samples=3, noise_model="parametric").bind(
        {"noise_model": PoissonGaussianNoiseModel(0.0, 9.0, 0, 200).to_dict()},
        Normalizer(mean=(100.0,), std=(20.0,)))
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, 1, 2] = 0.5
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[0, 0, 1, 2] = True
    prediction = torch.zeros(1, 3, 4, 4, requires_grad=True)
    with torch.no_grad():
        prediction[0, :, 1, 2] = torch.tensor([0.4, 0.5, 0.7])
    loss = scheme.loss(prediction, Batch(input=target, target=target, mask=mask))
    densities = stats.norm.pdf(110.0, loc=np.array([108.0, 110.0, 114.0]), scale=3.0) * 20
    assert float(loss.detach()) == pytest.approx(-np.log(densities.mean()), rel=1e-5)
    loss.backward()
    assert prediction.grad[0, :, 1, 2].abs().sum() > 0
    assert prediction.grad[0, :, 0, 0].abs().sum() == 0  # only blind-spot pixels count


def test_pn2v_masks_like_noise2void_and_needs_its_noise_model():
    noisy = torch.rand(2, 1, 32, 32)
    pn2v = create_scheme("pn2v", fraction=0.01).prepare(noisy, None,
                                                       torch.Generator().manual_seed(0))
    n2v = create_scheme("n2v", fraction=0.01).prepare(noisy, None,
                                                     torch.Generator().manual_seed(0))
    assert torch.equal(pn2v.input, n2v.input) and torch.equal(pn2v.mask, n2v.mask)
    with pytest.raises(InfocusInputError, match="needs its noise model"):
        create_scheme("pn2v").loss(torch.zeros(2, 64, 32, 32), pn2v)
    with pytest.raises(InfocusInputError, match="samples must be an integer >= 2"):
        create_scheme("pn2v", samples=1)


def test_training_calibrates_the_prior_width_and_the_uncertainty(rng):
    import infocus
    from conftest import blobs_image
    from infocus.methods.config import default_config

    clean = np.stack([blobs_image((64, 64), rng, n_blobs=15) for _ in range(3)]) * 60 + 100
    noisy = (rng.poisson(clean - 100) + 100).astype(np.float32)
    config = default_config("pn2v").with_updates(
        steps=6, steps_per_epoch=3, patch_size=32, batch_size=4, validation_patches=8,
        scheme_options={"noise_model": "parametric", "samples": 8})
    model = infocus.train(noisy, method="pn2v", axes="SYX", config=config, progress=False,
                          log=lambda m: None)
    assert model.state["prior_scale"] in PRIOR_SCALES
    assert model.state["uncertainty_scale"] > 0
    assert model.state["noise_model"]["kind"] == "poisson_gaussian"
    plain = model.predict(noisy[0], uncertainty=True)
    model.state["uncertainty_scale"] *= 2
    doubled = model.predict(noisy[0], uncertainty=True)
    np.testing.assert_allclose(doubled.uncertainty, 2 * plain.uncertainty, rtol=1e-5)
    np.testing.assert_array_equal(doubled.denoised, plain.denoised)
