r"""DivNoising: a variational auto-encoder whose decoder speaks through the noise model, so it
gives not one answer but a distribution of plausible clean images.

The encoder maps a noisy image :math:`x` to an approximate posterior
:math:`q_\phi(z \mid x) = \mathcal N(\mu_\phi(x), \sigma^2_\phi(x))` over a latent image; the
decoder maps a latent sample to a clean signal :math:`s = g_\theta(z)`, and the noise model
(:mod:`infocus.noise.models`) says how likely the observation is, :math:`p(x \mid s)`. Training
maximises the evidence lower bound, per pixel (Prakash, Krull & Jug 2021):

.. math:: \mathcal L = \frac{1}{N}\Big( -\mathrm{E}_{q_\phi(z \mid x)}
          \big[\log p(x \mid g_\theta(z))\big]
          + \beta\, \mathrm{KL}\big(q_\phi(z \mid x)\,\|\,\mathcal N(0, I)\big)\Big),

one latent sample per step. Because the decoder is tied to the noise model, it cannot
reproduce the noise; it learns a prior over clean images. At prediction, decoding ``n`` latent
samples gives ``n`` posterior samples of the clean image (``infocus sample``): where they agree
the data pin the result down, where they differ the network is guessing. Their mean is the
MMSE estimate (:meth:`~infocus.predict.TrainedModel.denoise`), their standard deviation the
per-pixel uncertainty. That spread is not rescaled: checking the model on data it simulates
itself (what calibrates PN2V, :class:`~infocus.methods._likelihood.UsesNoiseModel`) judged it
over-dispersed (factor 0.65–0.72) where it is under-dispersed against the ground truth (1.23)
on our simulated data, because its error there is mostly structure its decoder misses, which
its own samples cannot show (docs/benchmarks.md).

The noise model is bootstrapped from a Noise2Void prediction by default, as for PN2V (the
"fully unsupervised" DivNoising of the paper), or read from a file. HDN (Prakash et al. 2022,
a hierarchical latent space) is not implemented.

References
----------
M. Prakash, A. Krull, F. Jug, "Fully unsupervised diversity denoising with convolutional
variational autoencoders", ICLR 2021.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor, nn

from infocus._errors import InfocusInputError
from infocus.methods._base import (
    SCHEMES,
    Batch,
    FitData,
    Fitted,
    PredictionContext,
    PredictionRequest,
    TrainingScheme,
    check_batch_tensor,
)
from infocus.methods._likelihood import UsesNoiseModel, fit_noise_model

__all__ = ["DivNoising"]

#: Posterior samples averaged for the MMSE estimate unless told otherwise (DivNoising: 100).
DEFAULT_SAMPLES = 100


@dataclass(frozen=True)
class DivNoising(UsesNoiseModel, TrainingScheme):
    """DivNoising (module docstring).

    Parameters
    ----------
    noise_model : str
        ``"bootstrap"`` (default), ``"parametric"`` or the path of a noise-model file.
    noise_model_kind : {"gmm", "histogram"}
        What a bootstrapped noise model is.
    kl_weight : float
        :math:`\\beta`, the weight of the KL term (1: the evidence lower bound).
    samples : int
        Posterior samples averaged for the MMSE estimate and its standard deviation.
    """

    noise_model: str = "bootstrap"
    noise_model_kind: Literal["gmm", "histogram"] = "gmm"
    kl_weight: float = 1.0
    samples: int = DEFAULT_SAMPLES

    name: ClassVar[str] = "divnoising"  # type: ignore[misc]
    summary: ClassVar[str] = (
        "DivNoising: a VAE whose decoder is the noise model; posterior samples, their mean "
        "and per-pixel uncertainty (Prakash et al. 2021)."
    )
    default_network: ClassVar[str] = "divnoising_vae"
    #: The decoder is the noise model: the network must be a VAE (encode, decode).
    network_kind: ClassVar[str] = "vae"
    #: Half the paper's widths (32 filters, 64 latent channels): on two CPU cores 16/32 ran
    #: 2.7x more steps per second for the same PSNR per step (31.9 against 31.7 dB after
    #: 1200 steps on the simulated 20-photon images).
    default_network_options: ClassVar[dict[str, Any]] = {
        "depth": 2, "base_filters": 16, "latent_channels": 32}
    #: A VAE keeps improving long after a U-Net has converged: 1200/2400/3600 steps gave
    #: 31.9/32.6/32.8 dB on the simulated 20-photon images (N2V: 33.5 at 1200); 3000 keep the
    #: whole run within ten minutes on eight 256² images on two CPU cores.
    default_training: ClassVar[dict[str, Any]] = {"steps": 3000}
    prediction_options: ClassVar[tuple[str, ...]] = ("samples",)
    outputs: ClassVar[frozenset[str]] = frozenset({"denoised", "uncertainty", "samples"})
    exportable: ClassVar[bool] = False
    # The encoder's log-variances are exponentiated and sampled from: kept in float32.
    mixed_precision: ClassVar[bool] = False
    not_exportable_because: ClassVar[str] = (
        "its prediction draws posterior samples from a variational autoencoder and averages "
        "them, which a deterministic graph cannot carry")
    citation: ClassVar[dict[str, str]] = {
        "text": "Prakash, Krull, Jug. Fully unsupervised diversity denoising with "
                "convolutional variational autoencoders. ICLR 2021.",
        "doi": "10.48550/arXiv.2006.06072"}

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 1:
            raise InfocusInputError(f"samples must be a positive integer (got {self.samples!r}).")
        if not (isinstance(self.kl_weight, int | float) and self.kl_weight >= 0):
            raise InfocusInputError(f"kl_weight must be a number >= 0 (got {self.kl_weight!r}).")
        if self.noise_model_kind not in ("gmm", "histogram"):
            raise InfocusInputError(
                f"Unknown noise_model_kind {self.noise_model_kind!r}; choose 'gmm' or 'histogram'."
            )

    def fit(self, data: FitData) -> Fitted:
        """The noise model: from a file, bootstrapped (default) or parametric."""
        _, record = fit_noise_model(data, self.noise_model, self.noise_model_kind)
        return Fitted(state=record)

    def prepare(self, noisy: Tensor, target: Tensor | None, generator: torch.Generator) -> Batch:
        """The noisy batch is both the input and what the decoder must explain."""
        noisy = check_batch_tensor(noisy)
        return Batch(input=noisy, target=noisy)

    def loss(self, prediction: Any, batch: Batch) -> dict[str, Tensor]:
        """The negative evidence lower bound per pixel, with its two terms logged."""
        signal, mean, log_variance = prediction
        b, c = batch.target.shape[:2]
        channel = torch.arange(c, device=signal.device).view(1, c, *[1] * (signal.ndim - 2))
        nll = -self.likelihood(batch.target, signal, channel).mean()
        kl = 0.5 * (mean**2 + log_variance.exp() - 1.0 - log_variance).sum()
        kl = kl / batch.target.numel()
        return {"loss": nll + self.kl_weight * kl, "nll": nll, "kl": kl}

    def prediction_network(self, network: nn.Module, request: PredictionRequest) -> nn.Module:
        samples = request.samples or int(request.options.get("samples", self.samples))
        if samples < 1:
            raise InfocusInputError(f"samples must be a positive integer (got {samples!r}).")
        seed = int(request.options.get("seed", 0))
        return _Sampler(network, samples, seed=seed, keep=request.samples is not None)

    def finish(
        self, outputs: np.ndarray, noisy: np.ndarray, context: PredictionContext
    ) -> dict[str, np.ndarray]:
        """Denormalise the samples, or their mean and standard deviation."""
        norm = context.target_norm
        channels = noisy.shape[0]
        if context.request.samples:
            samples = outputs.reshape(context.request.samples, channels, *outputs.shape[1:])
            return {"samples": norm.denormalize(samples, channel_axis=1)}
        result = {"denoised": norm.denormalize(outputs[:channels], channel_axis=0)}
        if context.request.uncertainty:
            std = np.asarray(norm.std, dtype=np.float32).reshape((-1,) + (1,) * (outputs.ndim - 1))
            result["uncertainty"] = outputs[channels:] * std
        return result


class _Sampler(nn.Module):
    """Encode once, decode ``samples`` latent draws: returns all of them ``(B, n·C, ...)``
    (``keep``) or their mean and standard deviation ``(B, 2C, ...)``, accumulated one sample
    at a time (Welford) so memory does not grow with ``n``."""

    def __init__(self, vae: nn.Module, samples: int, *, seed: int, keep: bool) -> None:
        super().__init__()
        self.vae = vae
        self.samples = samples
        self.keep = keep
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.in_channels = int(getattr(vae, "in_channels", 1))
        self.size_multiple = vae.size_multiple

    def forward(self, x: Tensor) -> Tensor:
        mean, log_variance = self.vae.encode(x)
        std = (0.5 * log_variance).exp()
        drawn = []
        running_mean = torch.zeros_like(x)
        running_m2 = torch.zeros_like(x)
        for k in range(1, self.samples + 1):
            noise = torch.randn(mean.shape, generator=self.generator, dtype=mean.dtype)
            signal = self.vae.decode(mean + std * noise.to(mean.device))
            if self.keep:
                drawn.append(signal)
                continue
            delta = signal - running_mean
            running_mean += delta / k
            running_m2 += delta * (signal - running_mean)
        if self.keep:
            return torch.cat(drawn, dim=1)
        return torch.cat([running_mean, (running_m2 / self.samples).clamp_min(0).sqrt()], dim=1)


@SCHEMES.register("divnoising")
def _divnoising(
    *,
    noise_model: str = "bootstrap",
    noise_model_kind: Literal["gmm", "histogram"] = "gmm",
    kl_weight: float = 1.0,
    samples: int = DEFAULT_SAMPLES,
) -> DivNoising:
    """DivNoising; ``noise_model`` is 'bootstrap' (default), 'parametric' or a noise-model file."""
    return DivNoising(str(noise_model), noise_model_kind, float(kl_weight), int(samples))
