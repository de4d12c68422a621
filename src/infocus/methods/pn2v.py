r"""Probabilistic Noise2Void: a blind-spot network that predicts a distribution of clean values
per pixel, trained and applied through an explicit noise model.

Noise2Void predicts one value per pixel from its neighbours, the mean of the *prior*
:math:`p(s_i \mid x_{\text{neighbours}})`, and throws away what the pixel's own noisy value
says. PN2V (Krull et al. 2020) makes the network output :math:`K` samples
:math:`s_i^1, \dots, s_i^K` of that prior per pixel and trains them, at blind-spot pixels, to
maximise the likelihood of the observation under the noise model :math:`p(x \mid s)`
(:mod:`infocus.noise.models`):

.. math:: \mathcal L = -\frac{1}{|M|} \sum_{i \in M}
          \log \frac1K \sum_{k=1}^K p\!\left(x_i \mid s_i^k\right).

At prediction the pixel's own value is weighed in by Bayes' rule: with
:math:`w_k \propto p(x_i \mid s_i^k)`, the minimum-mean-square-error estimate and the posterior
standard deviation are

.. math:: \hat s_i = \frac{\sum_k w_k s_i^k}{\sum_k w_k}, \qquad
          \sigma_i^2 = \frac{\sum_k w_k (s_i^k - \hat s_i)^2}{\sum_k w_k}.

The noise model comes from a file (``infocus noise-model fit`` on calibration data), or is
**bootstrapped** by default: Noise2Void is trained first on the same data with the same
budget, and a Gaussian mixture is fitted to the (prediction, noisy) pairs (Prakash et al.
2020, "Boot. GMM", the best fully unsupervised variant of that paper).

The network's prior samples come out too wide where the likelihood hardly constrains their
spread (low signal-to-noise ratios), which would give the noisy pixel too much weight; after
training, a factor for their spread is chosen and the uncertainty scaled on data the model
simulates itself, without ground truth (:meth:`ProbabilisticNoise2Void.after_training`).

The blind spot is N2V's (:class:`~infocus.methods.blind_spot.Noise2Void`), measured and
widened for spatially correlated noise like ``n2v``'s.

References
----------
A. Krull, T. Vičar, M. Prakash, M. Lalit, F. Jug, "Probabilistic Noise2Void: unsupervised
content-aware denoising", Frontiers in Computer Science 2, 5 (2020).

M. Prakash, M. Lalit, P. Tomancak, A. Krull, F. Jug, "Fully unsupervised probabilistic
Noise2Void", ISBI 2020.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from infocus._errors import InfocusInputError
from infocus.methods._base import (
    SCHEMES,
    Batch,
    ChannelMode,
    FitData,
    Fitted,
    PredictionContext,
    PredictionRequest,
)
from infocus.methods._likelihood import (
    NormalizedLikelihood,
    UsesNoiseModel,
    fit_noise_model,
    interior,
    log_mean_exp,
)
from infocus.methods.blind_spot import (
    _MEASURED_FILL,
    MASKED_FRACTION,
    Noise2Void,
    _pattern,
    radius_for_pattern,
)

__all__ = ["ProbabilisticNoise2Void"]

#: The factors of the prior's spread :meth:`ProbabilisticNoise2Void.after_training` chooses
#: among (1: the network's samples as they are).
PRIOR_SCALES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)
#: Prior samples per pixel. PN2V used 800 on a GPU; 64 keep the output layer (16 × 64
#: multiply-adds per pixel, 5 % of the 16-filter U-Net's 21 000) and the per-pixel posterior
#: cheap on a CPU. Not tuned: whether more samples pay off on a CPU budget is open.
DEFAULT_SAMPLES = 64


@dataclass(frozen=True)
class ProbabilisticNoise2Void(UsesNoiseModel, Noise2Void):
    """PN2V: N2V's blind spots, a network with ``samples`` outputs per channel, the
    noise-model loss and the Bayesian prediction (module docstring).

    Parameters
    ----------
    samples : int
        :math:`K`, prior samples per pixel (the network's output channels per input channel).
    noise_model : str
        ``"bootstrap"`` (default), ``"parametric"`` or the path of a noise-model file.
    noise_model_kind : {"gmm", "histogram"}
        What a bootstrapped noise model is.
    """

    samples: int = DEFAULT_SAMPLES
    noise_model: str = "bootstrap"
    noise_model_kind: Literal["gmm", "histogram"] = "gmm"

    prediction_options: ClassVar[tuple[str, ...]] = ("estimate",)
    outputs: ClassVar[frozenset[str]] = frozenset({"denoised", "uncertainty"})
    exportable: ClassVar[bool] = False
    not_exportable_because: ClassVar[str] = (
        "its prediction weighs the network's prior samples by the noise model's likelihood of "
        "every noisy pixel (the MMSE estimate), which a graph of the network cannot carry")
    citation: ClassVar[dict[str, str]] = {
        "text": "Krull, Vicar, Prakash, Lalit, Jug. Probabilistic Noise2Void: unsupervised "
                "content-aware denoising. Frontiers in Computer Science 2, 5 (2020).",
        "doi": "10.3389/fcomp.2020.00005"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 2:
            raise InfocusInputError(
                f"samples must be an integer >= 2 (got {self.samples!r}); PN2V's network "
                f"outputs that many prior samples per pixel (default {DEFAULT_SAMPLES})."
            )
        if self.noise_model_kind not in ("gmm", "histogram"):
            raise InfocusInputError(
                f"Unknown noise_model_kind {self.noise_model_kind!r}; choose 'gmm' or 'histogram'."
            )

    @property
    def summary(self) -> str:  # type: ignore[override]
        return ("Probabilistic Noise2Void: blind spots and a noise model; posterior mean and "
                "uncertainty per pixel (Krull et al. 2020; Prakash et al. 2020).")

    @property
    def default_network(self) -> str:  # type: ignore[override]
        return "unet"

    def defaults_for(self, ndim: int) -> dict[str, Any]:
        return {"fraction": MASKED_FRACTION["n2v"][ndim]}

    def network_options(self, channels: int) -> dict[str, Any]:
        return {"in_channels": channels, "out_channels": channels * self.samples}

    def fit(self, data: FitData) -> Fitted:
        """The blind spot (as N2V), then the noise model: from the file named by
        ``noise_model``, or bootstrapped, or parametric."""
        blind = super().fit(data)
        _, record = fit_noise_model(data, self.noise_model, self.noise_model_kind)
        return Fitted(options=blind.options, state={**blind.state, **record})

    def bind(self, state: dict[str, Any], normalizer: Any) -> ProbabilisticNoise2Void:
        bound = super().bind(state, normalizer)
        object.__setattr__(bound, "_prior_scale", float(state.get("prior_scale", 1.0)))
        return bound

    def loss(self, prediction: Tensor, batch: Batch) -> Tensor:
        """Negative log of the mean likelihood of the observation over the prior samples, at
        the blind-spot pixels."""
        assert batch.mask is not None
        c = batch.target.shape[1]
        where = batch.mask.to(torch.bool).nonzero(as_tuple=True)
        if where[0].numel() == 0:
            return prediction.sum() * 0.0
        # Pixels as rows: a free view of a channels-last output, (B·spatial, C, K).
        pixels = prediction.movedim(1, -1).reshape(-1, c, self.samples)
        row = where[0]
        for axis, size in zip(where[2:], batch.target.shape[2:], strict=True):
            row = row * size + axis
        samples = pixels[row, where[1]]  # (N, K)
        observed = batch.target[where]
        log_p = self.likelihood(observed[:, None], samples, where[1][:, None])
        return -log_mean_exp(log_p, dim=1).mean()

    def after_training(self, network: nn.Module, patches: Tensor, generator: torch.Generator
                       ) -> dict[str, Any]:
        r"""Choose the prior's width and calibrate the uncertainty on simulated data
        (:class:`~infocus.methods._likelihood.UsesNoiseModel`).

        PN2V's prior samples come out too wide (at low signal-to-noise ratios the likelihood
        hardly constrains their spread), and an over-wide prior gives the noisy pixel too
        much weight. The prior mean of the validation patches is taken as a clean image, a
        noisy one is drawn from the noise model, and the factor :math:`c` that scales the
        samples' spread about their mean is chosen among :data:`PRIOR_SCALES` to minimise the
        MMSE's error on it; the uncertainty is then scaled to match that error.
        """
        b, c = patches.shape[:2]
        truth = network(patches).view(b, c, self.samples, *patches.shape[2:]).mean(2)
        noisy = self.simulate(truth, generator)
        samples = network(noisy).view(b, c, self.samples, *patches.shape[2:])
        best: tuple[float, float, float] | None = None
        for scale in PRIOR_SCALES:
            mean, std = posterior_moments(noisy, samples, self.likelihood, prior_scale=scale)
            error = float(interior(mean - truth).square().mean())
            spread = float(interior(std).square().mean())
            if best is None or error < best[1]:
                best = (scale, error, spread)
        assert best is not None
        scale, error, spread = best
        return {"prior_scale": scale,
                "uncertainty_scale": float(np.sqrt(error / spread)) if spread > 0 else 1.0}

    def prediction_network(self, network: nn.Module, request: PredictionRequest) -> nn.Module:
        estimate = request.options.get("estimate", "mmse")
        if estimate not in ("mmse", "prior"):
            raise InfocusInputError(
                f"Unknown estimate {estimate!r}; choose 'mmse' (the posterior mean, default) or "
                "'prior' (the mean of the prior samples, what Noise2Void predicts)."
            )
        return _PosteriorHead(network, self.likelihood, self.samples,
                              posterior=estimate == "mmse",
                              prior_scale=getattr(self, "_prior_scale", 1.0))



    def finish(
        self, outputs: np.ndarray, noisy: np.ndarray, context: PredictionContext
    ) -> dict[str, np.ndarray]:
        """Denormalise the posterior mean and standard deviation."""
        channels = outputs.shape[0] // 2
        result = {"denoised": context.target_norm.denormalize(outputs[:channels], channel_axis=0)}
        if context.request.uncertainty:
            std = np.asarray(context.target_norm.std, dtype=np.float32)
            shape = (-1,) + (1,) * (outputs.ndim - 1)
            scale = float(context.state.get("uncertainty_scale", 1.0))
            result["uncertainty"] = outputs[channels:] * (scale * std.reshape(shape))
        return result


class _PosteriorHead(nn.Module):
    """The network plus Bayes' rule per pixel: outputs the posterior mean and standard
    deviation ``(B, 2C, ...)`` (or the prior's, with ``posterior=False``)."""

    def __init__(self, network: nn.Module, likelihood: NormalizedLikelihood, samples: int, *,
                 posterior: bool, prior_scale: float) -> None:
        super().__init__()
        self.network = network
        self.prior_scale = prior_scale
        self.likelihood = likelihood
        self.samples = samples
        self.posterior = posterior
        self.in_channels = int(getattr(network, "in_channels", 1))
        self.size_multiple = network.size_multiple

    def forward(self, x: Tensor) -> Tensor:
        b, c, *spatial = x.shape
        samples = self.network(x).view(b, c, self.samples, *spatial)
        mean, std = posterior_moments(x, samples, self.likelihood, prior_scale=self.prior_scale,
                                      posterior=self.posterior)
        return torch.cat([mean, std], dim=1)


def posterior_moments(
    noisy: Tensor, samples: Tensor, likelihood: NormalizedLikelihood, *, prior_scale: float,
    posterior: bool = True,
) -> tuple[Tensor, Tensor]:
    """Posterior mean and standard deviation ``(B, C, ...)`` of prior ``samples``
    ``(B, C, K, ...)`` given the ``noisy`` pixels ``(B, C, ...)`` (module docstring); the
    samples' spread about their mean is scaled by ``prior_scale`` first. With
    ``posterior=False``, the prior's moments."""
    b, c, _, *spatial = samples.shape
    centre = samples.mean(2, keepdim=True)
    samples = centre + prior_scale * (samples - centre)
    if posterior:
        channel = torch.arange(c, device=noisy.device).view(1, c, 1, *[1] * len(spatial))
        weights = torch.softmax(likelihood(noisy[:, :, None], samples, channel), dim=2)
    else:
        weights = torch.full_like(samples, 1.0 / samples.shape[2])
    mean = (weights * samples).sum(2)
    variance = (weights * (samples - mean[:, :, None]) ** 2).sum(2)
    return mean, variance.clamp_min(0).sqrt()


@SCHEMES.register("pn2v")
def _pn2v(
    *,
    fraction: float = 0.002,
    radius: int = 2,
    channels: ChannelMode = "independent",
    blind_spot: Sequence[Sequence[int]] | str = "auto",
    samples: int = DEFAULT_SAMPLES,
    noise_model: str = "bootstrap",
    noise_model_kind: Literal["gmm", "histogram"] = "gmm",
) -> ProbabilisticNoise2Void:
    """PN2V; ``noise_model`` is 'bootstrap' (default), 'parametric' or a noise-model file."""
    struct = _pattern(blind_spot)
    return ProbabilisticNoise2Void(
        fraction, radius_for_pattern(radius, struct), "uniform", struct, _MEASURED_FILL,
        channels=channels, name="pn2v", measures_correlation=True, samples=samples,
        noise_model=str(noise_model), noise_model_kind=noise_model_kind,
    )

