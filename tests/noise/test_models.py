"""Noise models p(x|s): densities, fitting (calibration and EMCCD), files and clear errors."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import infocus.noise.models as models
from conftest import blobs_image
from infocus._errors import InfocusInputError
from infocus.noise import add_emccd_noise
from infocus.noise.models import (
    GaussianMixtureNoiseModel,
    HistogramNoiseModel,
    PoissonGaussianNoiseModel,
    calibration_pairs,
    fit_gaussian_mixture,
    fit_histogram,
    load_noise_model,
    noise_model_from_dict,
    save_noise_model,
)


def _emccd_pairs(rng, n=150_000):
    photons = rng.uniform(0, 5, n)
    observed, params = add_emccd_noise(photons, em_gain=100, gain=0.1, offset=400,
                                       read_noise=5, rng=rng)
    return 10 * photons + 400, observed.astype(np.float64), params


@pytest.fixture
def gmm():
    rng = np.random.default_rng(3)
    return GaussianMixtureNoiseModel(100.0, 300.0, rng.normal(0, 1, (3, 2)),
                                     rng.normal(0, 0.05, (3, 2)), rng.normal(-5, 1, (3, 2)))


def _models(gmm):
    table = np.random.default_rng(0).random((16, 16))
    return [PoissonGaussianNoiseModel(gain=2.0, variance_intercept=9.0, low=100, high=300),
            HistogramNoiseModel(0.0, 400.0, table / table.sum(1, keepdims=True)),
            gmm]


def test_every_model_is_a_density_in_x_and_agrees_between_numpy_and_torch(gmm):
    for model in _models(gmm):
        grid = np.linspace(-600, 1200, 20001)
        for s in (150.0, 220.0):
            density = model.likelihood(grid, np.full_like(grid, s))
            assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=2e-3), model.kind
        x, s = np.array([120.0, 230.0, 290.0]), np.array([130.0, 200.0, 280.0])
        in_torch = model.log_likelihood(torch.tensor(x), torch.tensor(s)).numpy()
        np.testing.assert_allclose(model.log_likelihood(x, s), in_torch, rtol=1e-10)


def test_every_model_has_a_gradient_with_respect_to_the_signal(gmm):
    for model in _models(gmm):
        s = torch.tensor([150.0, 210.0], dtype=torch.float64, requires_grad=True)
        model.log_likelihood(torch.tensor([160.0, 190.0], dtype=torch.float64), s).sum().backward()
        assert s.grad is not None and (s.grad != 0).all(), model.kind


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), signal=st.floats(50, 350))
def test_gaussian_mixture_has_zero_mean_noise(seed, signal):
    """E[x | s] = s for any coefficients: the mixture's means are shifted to centre on s."""
    rng = np.random.default_rng(seed)
    model = GaussianMixtureNoiseModel(100.0, 300.0, rng.normal(0, 2, (3, 2)),
                                      rng.normal(0, 0.3, (3, 2)), rng.normal(-4, 1, (3, 2)))
    mean, std = model.mean_and_std(np.array([signal]))
    assert mean[0] == pytest.approx(signal, rel=1e-9) and std[0] > 0


def test_gaussian_mixture_fit_recovers_poisson_gaussian_noise(rng):
    signal = rng.uniform(110, 300, 200_000)
    observed = signal + rng.normal(0, 1, signal.size) * np.sqrt(2 * (signal - 100) + 9)
    model = fit_gaussian_mixture(signal, observed, steps=400)
    grid = np.array([130.0, 200.0, 280.0])
    mean, std = model.mean_and_std(grid)
    np.testing.assert_allclose(mean, grid)
    np.testing.assert_allclose(std, np.sqrt(2 * (grid - 100) + 9), rtol=0.05)


def test_emccd_noise_is_modelled_better_by_the_mixture_than_by_a_gaussian(rng):
    """Gamma-amplified counts are skewed: the mixture and the histogram fit them alike, and
    both beat the variance-matched Gaussian on held-out pairs by > 0.05 nats per pixel."""
    signal, observed, params = _emccd_pairs(rng)
    train, test = slice(0, 100_000), slice(100_000, None)
    mixture = fit_gaussian_mixture(signal[train], observed[train], steps=400)
    histogram = fit_histogram(signal[train], observed[train], bins=96)
    gaussian = PoissonGaussianNoiseModel(gain=params.gain,
                                         variance_intercept=params.variance_intercept,
                                         low=400.0, high=450.0)
    scores = {name: float(np.mean(m.log_likelihood(observed[test], signal[test])))
              for name, m in [("gmm", mixture), ("histogram", histogram), ("gaussian", gaussian)]}
    assert scores["gmm"] > scores["gaussian"] + 0.05, scores
    assert scores["gmm"] == pytest.approx(scores["histogram"], abs=0.02), scores
    # The mixture's spread matches the EMCCD's (excess noise factor 2): Var = 2 a g s + σ².
    _, std = mixture.mean_and_std(np.array([420.0, 440.0]))
    np.testing.assert_allclose(std, np.sqrt(params.gain * np.array([420, 440.0])
                                            + params.variance_intercept), rtol=0.08)


def test_histogram_rows_are_distributions_and_empty_signal_bins_borrow_a_neighbour(rng):
    signal = np.concatenate([rng.uniform(10, 30, 50_000), rng.uniform(60, 90, 50_000)])
    model = fit_histogram(signal, rng.poisson(signal).astype(float), bins=32, low=0, high=120)
    np.testing.assert_allclose(model.probabilities.sum(axis=1), 1.0)
    # Signal 45 had no pairs: it borrows the nearest filled bin instead of a flat floor.
    assert model.likelihood(np.array(40.0), np.array(45.0)) > 1e-3


def test_calibration_pairs_from_a_static_stack(rng):
    clean = blobs_image((96, 96), rng) * 50 + 10
    stack = rng.poisson(np.broadcast_to(clean, (20, 96, 96))).astype(float)
    signal, observed = calibration_pairs(stack)
    assert signal.shape == observed.shape == (20 * 96 * 96,)
    np.testing.assert_allclose(np.sort(np.unique(signal)), np.sort(np.unique(stack.mean(0))))


@pytest.mark.parametrize("change", ["bleaching", "motion"])
def test_calibration_pairs_refuse_a_stack_that_is_not_static(rng, change):
    clean = blobs_image((96, 96), rng) * 50 + 10
    frames = []
    for k in range(20):
        frame = clean * (1 - 0.02 * k) if change == "bleaching" else np.roll(clean, k, axis=1)
        frames.append(rng.poisson(frame))
    with pytest.raises(InfocusInputError, match="not static"):
        calibration_pairs(np.stack(frames).astype(float))


def test_calibration_pairs_need_two_captures(rng):
    with pytest.raises(InfocusInputError, match="at least two captures"):
        calibration_pairs(rng.random((1, 32, 32)))


def test_fitting_refuses_too_few_or_flat_pairs(rng):
    with pytest.raises(InfocusInputError, match="at least 1000"):
        fit_histogram(rng.random(100), rng.random(100))
    with pytest.raises(InfocusInputError, match="All signal values are equal"):
        fit_gaussian_mixture(np.ones(5000), rng.random(5000))
    with pytest.raises(InfocusInputError, match="pair every"):
        fit_histogram(rng.random(5000), rng.random(4000))


def test_a_model_refuses_an_image_outside_its_signal_range(gmm, rng):
    inside = rng.uniform(120, 280, (64, 64))
    gmm.check_covers(inside)
    with pytest.raises(InfocusInputError, match="covers signals 100–300 but the image reach"):
        gmm.check_covers(inside * 10)


def test_files_round_trip_and_malformed_files_are_refused(tmp_path, gmm):
    for model in _models(gmm):
        path = save_noise_model(model, tmp_path / f"{model.kind}.json")
        loaded = load_noise_model(path)
        x, s = np.array([150.0, 250.0]), np.array([160.0, 240.0])
        np.testing.assert_allclose(loaded.log_likelihood(x, s), model.log_likelihood(x, s),
                                   rtol=1e-6)
    with pytest.raises(InfocusInputError, match="exists; pass --overwrite"):
        save_noise_model(gmm, tmp_path / "gmm.json")
    cases = {
        "garbage.json": "{not json",
        "foreign.json": json.dumps({"format": "something-else"}),
        "nokind.json": json.dumps({"format": models.NOISE_MODEL_FORMAT, "model": {}}),
        "badshape.json": json.dumps({"format": models.NOISE_MODEL_FORMAT, "model": {
            "kind": "gmm", "low": 0, "high": 1, "weights": [[1, 2]], "means": [[1]],
            "variances": [[1, 2]]}}),
        "extra.json": json.dumps({"format": models.NOISE_MODEL_FORMAT, "model": {
            "kind": "poisson_gaussian", "gain": 1, "variance_intercept": 0, "low": 0,
            "high": 1, "colour": "red"}}),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(InfocusInputError, match="noise.model|noise model|JSON"):
            load_noise_model(tmp_path / name)
    with pytest.raises(InfocusInputError, match="No such noise model"):
        load_noise_model(tmp_path / "missing.json")
    with pytest.raises(InfocusInputError, match="malformed"):
        noise_model_from_dict({"kind": "histogram", "low": 0, "high": 1,
                               "probabilities": [[-1.0, 2.0], [0.5, 0.5]]})


def test_docstring_examples_run():
    result = doctest.testmod(models)
    assert result.attempted > 0 and result.failed == 0


def test_samples_follow_each_model(gmm, rng):
    """Draws have the model's mean and spread (what the uncertainty calibration simulates)."""
    for model in _models(gmm):
        signal = np.full(40_000, 200.0)
        drawn = model.sample(signal, rng)
        mean, std = model.mean_and_std(np.array([200.0]), points=8192)
        assert drawn.mean() == pytest.approx(mean[0], abs=0.05 * std[0]), model.kind
        assert drawn.std() == pytest.approx(std[0], rel=0.05), model.kind
