"""Noise physics: Poisson–Gaussian parameters, variance stabilisation, simulation and estimation.

* :class:`NoiseParams`: the affine noise-variance model :math:`\\mathrm{Var}[x|y] = a y + b`.
* :func:`generalized_anscombe` / :func:`inverse_generalized_anscombe`: variance stabilisation
  and its exact unbiased inverse (Mäkitalo & Foi 2013).
* :func:`simulate_poisson_gaussian`, :func:`add_emccd_noise`, :func:`add_stripe_noise`,
  :func:`add_correlated_noise`, :func:`scale_to_photons`: camera-noise simulation.
* :func:`estimate_noise`, :func:`estimate_noise_with_error`, :func:`noise_level_function`:
  single-image noise estimation (with the parameters' covariance) in the
  spirit of Foi et al. (2008).
* :func:`estimate_noise_correlation`: the noise's spatial correlation, from the noisy image alone
  (decides how wide a blind spot must be); :func:`correct_for_correlation` turns a noise
  estimate made as if the noise were white into the per-pixel variance of correlated noise, and
  :func:`estimate_pixel_noise` does both (the noise model the classical denoisers estimate).
"""

from __future__ import annotations

from infocus.noise._params import NoiseParams
from infocus.noise.correlation import (
    NoiseCorrelation,
    estimate_noise_correlation,
    estimate_pixel_noise,
)
from infocus.noise.estimate import (
    NoiseLevelPoints,
    correct_for_correlation,
    detail_share,
    estimate_noise,
    estimate_noise_with_error,
    noise_level_function,
)
from infocus.noise.simulate import (
    add_correlated_noise,
    add_emccd_noise,
    add_stripe_noise,
    scale_to_photons,
    simulate_poisson_gaussian,
)
from infocus.noise.vst import generalized_anscombe, inverse_generalized_anscombe

__all__ = [
    "NoiseCorrelation",
    "NoiseLevelPoints",
    "NoiseParams",
    "add_correlated_noise",
    "add_emccd_noise",
    "add_stripe_noise",
    "correct_for_correlation",
    "detail_share",
    "estimate_noise",
    "estimate_noise_correlation",
    "estimate_noise_with_error",
    "estimate_pixel_noise",
    "generalized_anscombe",
    "inverse_generalized_anscombe",
    "noise_level_function",
    "scale_to_photons",
    "simulate_poisson_gaussian",
]
