r"""What the noise-model methods (PN2V, DivNoising) share: choosing and fitting their noise
model before training, and evaluating it on the network's normalised tensors.

A network works on normalised intensities :math:`\tilde x = (x - m_c)/\sigma_c` per channel
:math:`c`; a noise model (:mod:`infocus.noise.models`) is written in camera units. Changing
variables, :math:`\log \tilde p(\tilde x \mid \tilde s) = \log p(m_c + \sigma_c \tilde x \mid
m_c + \sigma_c \tilde s) + \log \sigma_c`, which :class:`NormalizedLikelihood` evaluates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from infocus._errors import InfocusInputError
from infocus.methods._base import FitData
from infocus.noise.models import (
    NoiseModel,
    PoissonGaussianNoiseModel,
    fit_pairs,
    load_noise_model,
    noise_model_from_dict,
)

__all__ = [
    "BOOTSTRAP_STEPS",
    "CALIBRATION_MARGIN",
    "NOISE_MODEL_CHOICES",
    "NormalizedLikelihood",
    "fit_noise_model",
    "log_mean_exp",
    "stored_noise_model",
]

#: How a noise-model method gets its noise model (besides a file written by
#: ``infocus noise-model fit``): bootstrapped from a Noise2Void prediction of the training
#: data (the default, fully unsupervised), or the parametric Poisson–Gaussian model measured
#: from the noisy data (:func:`~infocus.noise.estimate_noise`).
NOISE_MODEL_CHOICES = ("bootstrap", "parametric")
#: Pixels left out at the border of a validation patch when calibrating (the network sees less
#: context there than in a tiled prediction).
CALIBRATION_MARGIN = 8
#: Training steps of the Noise2Void a noise model is bootstrapped from: half its default. The
#: noise model only needs the prediction's error to be small beside the noise (it widens the
#: fitted noise by that error's variance), and the saving keeps PN2V and DivNoising within ten
#: minutes on eight 256² images on two CPU cores (docs/benchmarks.md).
BOOTSTRAP_STEPS = 600
#: Most (signal, observation) pairs a bootstrapped noise model is fitted on.
_BOOTSTRAP_PAIRS = 2_000_000


class NormalizedLikelihood:
    """:math:`\\log p(x \\mid s)` of normalised tensors ``(B, C, ...)`` (see the module).

    Parameters
    ----------
    model : NoiseModel
        In camera units.
    mean, std : sequence of float
        Per-channel normalisation of the network's inputs.
    """

    def __init__(self, model: NoiseModel, mean: Sequence[float], std: Sequence[float]) -> None:
        self.model = model
        self.mean = torch.tensor(list(mean), dtype=torch.float32)
        self.std = torch.tensor(list(std), dtype=torch.float32)

    def __call__(self, observed: Tensor, signal: Tensor, channel: Tensor) -> Tensor:
        """:math:`\\log \tilde p` of normalised ``observed`` given normalised ``signal``;
        ``channel`` holds each value's channel index. All three broadcast together."""
        mean = self.mean.to(signal.device, signal.dtype)[channel]
        std = self.std.to(signal.device, signal.dtype)[channel]
        log_p = self.model.log_likelihood(mean + std * observed, mean + std * signal)
        return log_p + std.log()


def stored_noise_model(state: dict[str, Any], source: str) -> NoiseModel:
    """The noise model in a model's state, with a clear error when missing or malformed."""
    if "noise_model" not in state:
        raise InfocusInputError(
            f"{source} has no noise model in its state; it cannot predict. Retrain it with "
            "infocus train (the noise model is fitted or bootstrapped then)."
        )
    return noise_model_from_dict(state["noise_model"], source=f"The noise model of {source}")


def fit_noise_model(data: FitData, choice: str, kind: str) -> tuple[NoiseModel, dict[str, Any]]:
    """The noise model a method trains through, and a record of how it was obtained.

    Parameters
    ----------
    data : FitData
        The training data.
    choice : str
        ``"bootstrap"``: fit to (Noise2Void prediction, noisy) pairs of the training data
        (Prakash et al. 2020); ``"parametric"``: the Poisson–Gaussian model measured from the
        noisy data; anything else: a noise-model file (``infocus noise-model fit``).
    kind : {"gmm", "histogram"}
        The model fitted when bootstrapping.
    """
    planes = data.planes("inputs", size=1024, max_planes=8)
    if choice == "bootstrap":
        model = _bootstrap(data, planes, kind)
        record = {"noise_model_source": f"bootstrapped ({kind}) from a Noise2Void prediction"}
    elif choice == "parametric":
        model = _parametric(planes)
        record = {"noise_model_source": "parametric Poisson–Gaussian, estimated from the data"}
    else:
        model = load_noise_model(choice)
        record = {"noise_model_source": f"file {choice}"}
    model.check_covers(planes, what="the training images")
    data.say(f"Noise model: {record['noise_model_source']}; signals "
             f"{model.signal_range[0]:.4g}–{model.signal_range[1]:.4g}.")
    return model, {"noise_model": model.to_dict(), **record}


def _bootstrap(data: FitData, planes: np.ndarray, kind: str) -> NoiseModel:
    """Train Noise2Void on the data, predict the sampled planes (without fusing the noisy
    pixel back in: the signal must not contain the observation's own noise) and fit ``kind``
    to the (prediction, noisy) pairs."""
    if data.pretrain is None:
        raise InfocusInputError(
            "Bootstrapping a noise model needs the training engine; pass a noise-model file or "
            "noise_model='parametric'."
        )
    n2v = data.pretrain("n2v", steps=BOOTSTRAP_STEPS)
    flat = planes.reshape(-1, *planes.shape[-2:])  # every channel's planes, as images
    predicted = n2v.denoise(flat.astype(np.float32), axes="SYX", pixel_fusion=False,
                            backend="torch")
    rng = np.random.default_rng(data.seed)
    signal, observed = predicted.ravel().astype(np.float64), flat.ravel()
    if signal.size > _BOOTSTRAP_PAIRS:
        keep = rng.choice(signal.size, size=_BOOTSTRAP_PAIRS, replace=False)
        signal, observed = signal[keep], observed[keep]
    # The model covers the data's signal range, even where an undertrained (or very smooth)
    # prediction does not reach: its trends extend there.
    return fit_pairs(signal, observed, kind, signal_range=_signal_range(flat), rng=rng)


def _signal_range(planes: np.ndarray) -> tuple[float, float]:
    """The 0.1st to 99.9th percentile of the planes blurred over 2 pixels: the range of the
    signal, which the noise itself overshoots."""
    from scipy import ndimage

    smooth = ndimage.gaussian_filter(planes.astype(np.float64), 2.0, axes=(-2, -1))
    low, high = np.percentile(smooth, [0.1, 99.9])
    return float(low), float(high)


def _parametric(planes: np.ndarray) -> NoiseModel:
    from infocus.noise import estimate_noise

    noise = estimate_noise(planes.reshape(-1, *planes.shape[-2:]), axes="SYX")
    low, high = _signal_range(planes)
    return PoissonGaussianNoiseModel(
        gain=float(noise.gain), variance_intercept=float(noise.variance_intercept),
        low=float(low), high=float(high),
        min_variance=max(1e-6, 1e-6 * float(high - low) ** 2),
    )


def interior(tensor: Tensor) -> Tensor:
    """``tensor`` ``(B, C, ...)`` without :data:`CALIBRATION_MARGIN` pixels at each spatial
    border (all of it when the patch is too small)."""
    index = [slice(None), slice(None)]
    for size in tensor.shape[2:]:
        cut = CALIBRATION_MARGIN if size > 4 * CALIBRATION_MARGIN else 0
        index.append(slice(cut, size - cut))
    return tensor[tuple(index)]


def log_mean_exp(values: Tensor, dim: int) -> Tensor:
    """:math:`\\log \\frac1K \\sum_k e^{v_k}` along ``dim``, computed stably."""
    return torch.logsumexp(values, dim=dim) - math.log(values.shape[dim])


class UsesNoiseModel:
    r"""The hooks PN2V and DivNoising share: the stored noise model is checked when a model is
    loaded, checked against each image before it is predicted, bound to the network's
    normalisation (:attr:`likelihood`), and can simulate noisy data (:meth:`simulate`).

    Calibrating the uncertainty without ground truth
    ------------------------------------------------
    A per-pixel standard deviation is only useful if, where it says :math:`\pm 5`, the error is
    about 5. Residuals against the noisy image cannot check that: with a bootstrapped noise
    model the denoiser's own error is already part of the noise model's variance, so it cancels
    out. A trained model can instead be checked on data it makes itself (a parametric
    bootstrap): its estimate :math:`\hat s` of the validation patches is taken as a clean
    image, a noisy image :math:`x^* \sim p(x \mid \hat s)` is drawn from the noise model, and
    the model's estimate :math:`\hat s^*` and standard deviation :math:`\sigma^*` of
    :math:`x^*` are compared with :math:`\hat s`. One factor,

    .. math:: u = \sqrt{\overline{(\hat s^* - \hat s)^2} \,/\, \overline{\sigma^{*2}}},

    then scales every predicted standard deviation (``uncertainty_scale`` in the model's
    state). PN2V does this; for DivNoising it judged the spread in the wrong direction (see
    :mod:`infocus.methods.divnoising`).
    """

    def check_state(self, state: dict[str, Any], source: str) -> None:
        stored_noise_model(state, source)

    def check_input(self, noisy: np.ndarray, state: dict[str, Any]) -> None:
        stored_noise_model(state, "this model").check_covers(noisy, what="the image")

    def bind(self, state: dict[str, Any], normalizer: Any) -> Any:
        import dataclasses

        bound = dataclasses.replace(self)  # type: ignore[type-var]
        likelihood = NormalizedLikelihood(stored_noise_model(state, "this model"),
                                          normalizer.mean, normalizer.std)
        object.__setattr__(bound, "_likelihood", likelihood)
        return bound

    def simulate(self, signal: Tensor, generator: torch.Generator) -> Tensor:
        """A noisy image drawn from the noise model for a normalised ``signal`` ``(B, C, ...)``,
        normalised like the network's inputs."""
        likelihood = self.likelihood
        shape = (1, -1) + (1,) * (signal.ndim - 2)
        mean = likelihood.mean.view(shape).double()
        std = likelihood.std.view(shape).double()
        camera = (mean + std * signal.detach().double().cpu()).numpy()
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        noisy = likelihood.model.sample(camera, np.random.default_rng(seed))
        return ((torch.from_numpy(noisy) - mean) / std).to(signal.device, signal.dtype)

    @property
    def likelihood(self) -> NormalizedLikelihood:
        likelihood = getattr(self, "_likelihood", None)
        if likelihood is None:
            raise InfocusInputError(
                "This method needs its noise model before computing a loss or a prediction; "
                "train it with infocus.train (which fits or bootstraps one) or load a trained "
                "model."
            )
        return likelihood
