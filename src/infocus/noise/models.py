r"""Noise models: the likelihood :math:`p(x \mid s)` of a noisy pixel value given its signal.

A noise model is what the probabilistic methods (Probabilistic Noise2Void, DivNoising) are
trained through: instead of assuming Gaussian noise, they score a candidate clean value
:math:`s` by how likely the measured value :math:`x` is under the camera's noise. Three kinds:

* :class:`PoissonGaussianNoiseModel`: :math:`x \mid s \sim \mathcal N(s,\ a s + b)`, the
  parametric model :func:`~infocus.noise.estimate_noise` measures from one image. Right in its
  first two moments for Poisson–Gaussian cameras; too symmetric for EMCCD data.
* :class:`HistogramNoiseModel`: a 2-D histogram of (signal, observation) pairs, normalised per
  signal bin (Krull et al. 2020). No assumption about the shape; needs many pairs.
* :class:`GaussianMixtureNoiseModel`: a mixture of :math:`K` Gaussians whose weights, means and
  variances are polynomials of the signal (Prakash et al. 2020), fitted by maximum likelihood.
  Smooth in :math:`s` (so a network gets useful gradients through it), and skewed where the
  data are, e.g. the gamma-amplified photon counts of an EMCCD.

The (signal, observation) pairs come from **calibration data** (:func:`calibration_pairs`: a
stack of noisy captures of a static sample, whose mean is the signal) or are **bootstrapped**
from the noisy data and a denoiser's prediction (Prakash et al. 2020): fully unsupervised.

Every model evaluates on NumPy arrays or torch tensors (differentiably), is saved as JSON
(:func:`save_noise_model`; never pickled) and says which signals it covers
(:meth:`NoiseModel.check_covers`).

References
----------
A. Krull, T. Vičar, M. Prakash, M. Lalit, F. Jug, "Probabilistic Noise2Void: unsupervised
content-aware denoising", Frontiers in Computer Science 2, 5 (2020).

M. Prakash, M. Lalit, P. Tomancak, A. Krull, F. Jug, "Fully unsupervised probabilistic
Noise2Void", ISBI 2020.
"""

from __future__ import annotations

import json
import math
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from infocus._errors import InfocusInputError

__all__ = [
    "NOISE_MODEL_FORMAT",
    "GaussianMixtureNoiseModel",
    "HistogramNoiseModel",
    "NoiseModel",
    "PoissonGaussianNoiseModel",
    "FITTED_KINDS",
    "calibration_pairs",
    "fit_gaussian_mixture",
    "fit_histogram",
    "fit_pairs",
    "load_noise_model",
    "noise_model_from_dict",
    "save_noise_model",
]

#: Identifies our noise-model files.
NOISE_MODEL_FORMAT = "infocus-noise-model/1"
_LOG_2PI = math.log(2.0 * math.pi)


def _torch():
    import torch

    return torch


def _as_tensor(value: Any, like: Any = None) -> Any:
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return value
    dtype = like.dtype if isinstance(like, torch.Tensor) else torch.float64
    device = like.device if isinstance(like, torch.Tensor) else None
    return torch.as_tensor(np.asarray(value), dtype=dtype, device=device)


class NoiseModel(ABC):
    """:math:`p(x \\mid s)` for one pixel, in camera units.

    Attributes
    ----------
    kind : str
        ``"poisson_gaussian"``, ``"histogram"`` or ``"gmm"`` (the ``kind`` in its JSON form).
    signal_range : (float, float)
        The signals the model was fitted on; outside it the model extrapolates.
    """

    kind: ClassVar[str]

    @property
    @abstractmethod
    def signal_range(self) -> tuple[float, float]: ...

    @abstractmethod
    def _log_likelihood(self, observed: Any, signal: Any) -> Any:
        """Torch implementation, broadcasting ``observed`` against ``signal``."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The JSON form (with ``"kind"``); :func:`noise_model_from_dict` inverts it."""

    def log_likelihood(self, observed: Any, signal: Any) -> Any:
        r""":math:`\log p(x \mid s)`, broadcasting ``observed`` against ``signal``.

        NumPy in, NumPy (float64) out; torch tensors in, a differentiable tensor out (in the
        tensors' dtype and device).
        """
        torch = _torch()
        if isinstance(observed, torch.Tensor) or isinstance(signal, torch.Tensor):
            like = observed if isinstance(observed, torch.Tensor) else signal
            return self._log_likelihood(_as_tensor(observed, like), _as_tensor(signal, like))
        with torch.no_grad():
            result = self._log_likelihood(_as_tensor(observed), _as_tensor(signal))
        return result.numpy()

    def likelihood(self, observed: Any, signal: Any) -> Any:
        """:math:`p(x \\mid s)` (see :meth:`log_likelihood`)."""
        value = self.log_likelihood(observed, signal)
        return np.exp(value) if isinstance(value, np.ndarray) else value.exp()

    def mean_and_std(self, signal: np.ndarray, *, points: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """:math:`\\mathrm{E}[x \\mid s]` and :math:`\\mathrm{Std}[x \\mid s]` by numerical
        integration over an observation grid four range widths beyond the fitted range (for
        plots and checks; the parametric models override it with exact moments)."""
        signal = np.asarray(signal, dtype=np.float64).ravel()
        low, high = self.signal_range
        span = high - low
        grid = np.linspace(low - 4 * span, high + 4 * span, points)
        density = self.likelihood(grid[None, :], signal[:, None])
        weight = density / np.maximum(density.sum(axis=1, keepdims=True), 1e-300)
        mean = (weight * grid).sum(axis=1)
        std = np.sqrt(np.maximum((weight * (grid - mean[:, None]) ** 2).sum(axis=1), 0))
        return mean, std

    def check_covers(self, image: np.ndarray, *, what: str = "the image") -> None:
        """Refuse an image whose signal lies well outside the signals the model was fitted on:
        the likelihood would be an extrapolation there.

        The signal is approximated by the image blurred over 2 pixels in Y and X (the noise
        itself reaches further than the signal); its 0.1st and 99.9th percentiles must lie
        within the fitted range widened by a quarter of its width on each side.
        """
        from scipy import ndimage

        values = np.asarray(image, dtype=np.float64)
        if values.size == 0 or not np.isfinite(values).all():
            return
        axes = tuple(range(max(0, values.ndim - 2), values.ndim))
        smooth = ndimage.gaussian_filter(values, 2.0, axes=axes)
        low, high = np.percentile(smooth, [0.1, 99.9])
        fit_low, fit_high = self.signal_range
        margin = 0.25 * (fit_high - fit_low)
        if low < fit_low - margin or high > fit_high + margin:
            raise InfocusInputError(
                f"The noise model covers signals {fit_low:.4g}–{fit_high:.4g} but {what} reach "
                f"{low:.4g}–{high:.4g}; fit the noise model on data of the same camera and "
                "intensity range (or let infocus bootstrap one from the data)."
            )

    def sample(self, signal: np.ndarray, rng: np.random.Generator | int | None = None
               ) -> np.ndarray:
        """Draw one noisy value per signal (here by inverting the numerical CDF; the models
        override it with exact, fast draws)."""
        generator = np.random.default_rng(rng)
        signal = np.asarray(signal, dtype=np.float64)
        low, high = self.signal_range
        span = high - low
        grid = np.linspace(low - 0.5 * span, high + 0.5 * span, 4096)
        density = self.likelihood(grid[None, :], signal.ravel()[:, None])
        cdf = np.cumsum(density, axis=1)
        cdf /= np.maximum(cdf[:, -1:], 1e-300)
        u = generator.random((signal.size, 1))
        index = np.minimum((cdf < u).sum(axis=1), grid.size - 1)
        return grid[index].reshape(signal.shape)


@dataclass(frozen=True)
class PoissonGaussianNoiseModel(NoiseModel):
    r""":math:`x \mid s \sim \mathcal N\!\left(s,\ \max(a s + b,\ v_{\min})\right)`.

    The Gaussian approximation of a Poisson–Gaussian camera, with the variance function
    :math:`a s + b` of :class:`~infocus.noise.NoiseParams` (``s`` in camera units, offset
    included).

    Parameters
    ----------
    gain, variance_intercept : float
        :math:`a` and :math:`b`.
    low, high : float
        The signals it was measured on.
    min_variance : float
        Floor of the variance (keeps the likelihood finite where :math:`a s + b \le 0`).

    Examples
    --------
    >>> model = PoissonGaussianNoiseModel(gain=2.0, variance_intercept=9.0, low=0, high=100)
    >>> round(float(model.log_likelihood(np.array(50.0), np.array(50.0))), 4)  # N(0; 0, 109)
    -3.2646
    """

    gain: float
    variance_intercept: float
    low: float
    high: float
    min_variance: float = 1e-6

    kind: ClassVar[str] = "poisson_gaussian"

    @property
    def signal_range(self) -> tuple[float, float]:
        return (self.low, self.high)

    def _log_likelihood(self, observed: Any, signal: Any) -> Any:
        variance = (self.gain * signal + self.variance_intercept).clamp_min(self.min_variance)
        return -0.5 * ((observed - signal) ** 2 / variance + variance.log() + _LOG_2PI)

    def mean_and_std(self, signal: np.ndarray, *, points: int = 0) -> tuple[np.ndarray, np.ndarray]:
        signal = np.asarray(signal, dtype=np.float64).ravel()
        variance = np.maximum(self.gain * signal + self.variance_intercept, self.min_variance)
        return signal, np.sqrt(variance)

    def sample(self, signal: np.ndarray, rng: np.random.Generator | int | None = None
               ) -> np.ndarray:
        signal = np.asarray(signal, dtype=np.float64)
        _, std = self.mean_and_std(signal)
        return signal + std.reshape(signal.shape) * np.random.default_rng(rng).normal(
            size=signal.shape)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "gain": self.gain,
                "variance_intercept": self.variance_intercept, "low": self.low,
                "high": self.high, "min_variance": self.min_variance}


@dataclass(frozen=True)
class HistogramNoiseModel(NoiseModel):
    r"""A 2-D histogram of (signal, observation) pairs, normalised per signal bin.

    Both axes share the bins :math:`[e_0, e_n)` of width :math:`w`. With :math:`H_{ij}` the
    count of pairs in signal bin :math:`i` and observation bin :math:`j`,
    :math:`p(x \mid s) = H_{ij} / (w \sum_j H_{ij})` for :math:`x` in bin :math:`j`,
    interpolated linearly in :math:`s` between the centres of neighbouring signal bins (so that
    the likelihood has a gradient with respect to :math:`s`, as in Krull et al. 2020). Empty
    bins, and observations outside the range, get a small floor probability; signal bins
    without pairs borrow the nearest bin that has some.

    Parameters
    ----------
    low, high : float
        The histogram's range (both axes).
    probabilities : ndarray, shape (n, n)
        Row :math:`i`: :math:`p(x \in \text{bin } j \mid s \in \text{bin } i)`, rows summing to 1.
    """

    low: float
    high: float
    probabilities: np.ndarray

    kind: ClassVar[str] = "histogram"
    #: Probability given to an observation bin no pair fell into.
    FLOOR: ClassVar[float] = 1e-7

    def __post_init__(self) -> None:
        table = np.asarray(self.probabilities, dtype=np.float64)
        if table.ndim != 2 or table.shape[0] != table.shape[1] or table.shape[0] < 2:
            raise InfocusInputError(
                f"A histogram noise model needs a square table of at least 2×2 bins (got shape "
                f"{table.shape}); refit it with infocus noise-model fit."
            )
        if not (np.isfinite(table).all() and (table >= 0).all() and self.high > self.low):
            raise InfocusInputError(
                "The histogram noise model is malformed (negative or non-finite probabilities, "
                "or an empty range); refit it with infocus noise-model fit."
            )
        object.__setattr__(self, "probabilities", table)

    @property
    def signal_range(self) -> tuple[float, float]:
        return (self.low, self.high)

    @property
    def bins(self) -> int:
        return int(self.probabilities.shape[0])

    def _log_likelihood(self, observed: Any, signal: Any) -> Any:
        torch = _torch()
        n = self.bins
        width = (self.high - self.low) / n
        table = torch.as_tensor(self.probabilities + self.FLOOR, dtype=observed.dtype,
                                device=observed.device)
        observed, signal = torch.broadcast_tensors(observed, signal)
        column = ((observed - self.low) / width).floor().clamp(0, n - 1).long()
        position = ((signal - self.low) / width - 0.5).clamp(0, n - 1)
        row = position.detach().floor().clamp(0, n - 2).long()
        fraction = position - row
        # Interpolated as probabilities (not their logarithms), so each row stays a density.
        probability = (1 - fraction) * table[row, column] + fraction * table[row + 1, column]
        inside = (observed >= self.low) & (observed < self.high)
        return torch.where(inside, probability.log(), math.log(self.FLOOR)) - math.log(width)

    def sample(self, signal: np.ndarray, rng: np.random.Generator | int | None = None
               ) -> np.ndarray:
        """One draw per signal: the row (or its neighbour, with the interpolation's weight),
        a bin by the row's probabilities, a value uniformly within the bin."""
        generator = np.random.default_rng(rng)
        values = np.asarray(signal, dtype=np.float64)
        n = self.bins
        width = (self.high - self.low) / n
        position = np.clip((values.ravel() - self.low) / width - 0.5, 0, n - 1)
        row = np.minimum(np.floor(position).astype(int), n - 2)
        row = row + (generator.random(row.size) < position - row)
        cdf = np.cumsum(self.probabilities, axis=1)
        bins = (generator.random((row.size, 1)) > cdf[row]).sum(axis=1).clip(0, n - 1)
        draw = self.low + (bins + generator.random(row.size)) * width
        return draw.reshape(values.shape)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "low": self.low, "high": self.high,
                "probabilities": np.round(self.probabilities, 9).tolist()}


@dataclass(frozen=True)
class GaussianMixtureNoiseModel(NoiseModel):
    r"""A mixture of Gaussians whose parameters are polynomials of the signal.

    With :math:`u = (s - s_{lo}) / (s_{hi} - s_{lo})` clipped to :math:`[0, 1]` and polynomials
    :math:`P(u) = \sum_{i<n} c_i u^i`, component :math:`k` has weight
    :math:`\alpha_k = \operatorname{softmax}_k P^{\alpha}_k(u)`, variance
    :math:`\sigma_k^2 = \Delta^2 \max\big(\sum_i e^{c^{\sigma}_{ki}} u^i,\ \sigma_{\min}^2\big)`
    (non-negative coefficients, so the variance grows with the signal) and mean
    :math:`\mu_k = s + \Delta\,(P^{\mu}_k(u) - \sum_j \alpha_j P^{\mu}_j(u))`, shifted so that
    :math:`\mathrm{E}[x \mid s] = s` (the noise has zero mean), with
    :math:`\Delta = s_{hi} - s_{lo}`:

    .. math:: p(x \mid s) = \sum_{k=1}^{K} \alpha_k\, \mathcal N(x;\ \mu_k,\ \sigma_k^2).

    This is the model of Prakash et al. (2020), written in units of the fitted range so that its
    initialisation and learning rate do not depend on the camera's units.

    Parameters
    ----------
    low, high : float
        :math:`s_{lo}`, :math:`s_{hi}`: the signals it was fitted on.
    weights, means, variances : ndarray, shape (K, n)
        Polynomial coefficients :math:`c^{\alpha}`, :math:`c^{\mu}`, :math:`c^{\sigma}`
        (lowest order first).
    min_std : float
        :math:`\sigma_{\min}` in units of :math:`\Delta`.
    """

    low: float
    high: float
    weights: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    min_std: float = 1e-3

    kind: ClassVar[str] = "gmm"

    def __post_init__(self) -> None:
        arrays = [np.asarray(a, dtype=np.float64) for a in (self.weights, self.means,
                                                            self.variances)]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].ndim != 2 or 0 in arrays[0].shape:
            raise InfocusInputError(
                "The Gaussian-mixture noise model is malformed: weights, means and variances "
                f"need one shape (K, n) (got {[a.shape for a in arrays]}); refit it with "
                "infocus noise-model fit."
            )
        if not (all(np.isfinite(a).all() for a in arrays) and self.high > self.low
                and self.min_std > 0):
            raise InfocusInputError(
                "The Gaussian-mixture noise model is malformed (non-finite coefficients or an "
                "empty signal range); refit it with infocus noise-model fit."
            )
        for name, array in zip(("weights", "means", "variances"), arrays, strict=True):
            object.__setattr__(self, name, array)

    @property
    def signal_range(self) -> tuple[float, float]:
        return (self.low, self.high)

    @property
    def components(self) -> int:
        return int(self.weights.shape[0])

    def _parameters(self, signal: Any, coefficients: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
        """Weights, means and standard deviations of every component at ``signal``
        (a trailing axis of length K)."""
        torch = _torch()
        c_weight, c_mean, c_var = coefficients
        span = self.high - self.low
        u = ((signal - self.low) / span).clamp(0.0, 1.0)[..., None]  # (..., 1)

        def polynomial(c: Any) -> Any:
            # Horner's scheme, one component per column: (..., K) without (..., K, n) temporaries.
            value = c[:, -1] + 0.0 * u
            for i in range(c.shape[1] - 2, -1, -1):
                value = value * u + c[:, i]
            return value

        weight = torch.softmax(polynomial(c_weight), dim=-1)
        offset = polynomial(c_mean)
        mean = signal[..., None] + span * (offset - (weight * offset).sum(-1, keepdim=True))
        variance = polynomial(c_var.exp()).clamp_min(self.min_std**2)
        return weight, mean, span * variance.sqrt()

    def _coefficients(self, like: Any) -> tuple[Any, Any, Any]:
        return tuple(_as_tensor(a, like) for a in (self.weights, self.means, self.variances))

    def _log_likelihood(self, observed: Any, signal: Any) -> Any:
        torch = _torch()
        observed, signal = torch.broadcast_tensors(observed, signal)
        weight, mean, std = self._parameters(signal, self._coefficients(signal))
        return _mixture_log_density(observed, weight, mean, std)

    def mean_and_std(self, signal: np.ndarray, *, points: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Exact moments: :math:`\\mathrm{E} = \\sum_k \\alpha_k \\mu_k` (= s) and
        :math:`\\mathrm{Var} = \\sum_k \\alpha_k (\\sigma_k^2 + \\mu_k^2) - \\mathrm{E}^2`."""
        torch = _torch()
        with torch.no_grad():
            s = torch.as_tensor(np.asarray(signal, dtype=np.float64).ravel())
            weight, mean, std = self._parameters(s, self._coefficients(s))
            first = (weight * mean).sum(-1)
            second = (weight * (std**2 + mean**2)).sum(-1)
        return first.numpy(), np.sqrt(np.maximum((second - first**2).numpy(), 0.0))

    def sample(self, signal: np.ndarray, rng: np.random.Generator | int | None = None
               ) -> np.ndarray:
        """One draw per signal: a component by its weight, then its Gaussian."""
        torch = _torch()
        generator = np.random.default_rng(rng)
        values = np.asarray(signal, dtype=np.float64)
        with torch.no_grad():
            s = torch.as_tensor(values.ravel())
            weight, mean, std = (t.numpy() for t in self._parameters(s, self._coefficients(s)))
        chosen = (generator.random((values.size, 1)) > np.cumsum(weight, axis=1)).sum(axis=1)
        chosen = np.minimum(chosen, self.components - 1)
        rows = np.arange(values.size)
        draw = mean[rows, chosen] + std[rows, chosen] * generator.normal(size=values.size)
        return draw.reshape(values.shape)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "low": self.low, "high": self.high,
                "weights": self.weights.tolist(), "means": self.means.tolist(),
                "variances": self.variances.tolist(), "min_std": self.min_std}


def _mixture_log_density(observed: Any, weight: Any, mean: Any, std: Any) -> Any:
    torch = _torch()
    z = (observed[..., None] - mean) / std
    terms = weight.clamp_min(1e-30).log() - std.log() - 0.5 * (z * z + _LOG_2PI)
    return torch.logsumexp(terms, dim=-1)


# ------------------------------------------------------------------------------- fitting
def _check_pairs(signal: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    signal = np.asarray(signal, dtype=np.float64).ravel()
    observed = np.asarray(observed, dtype=np.float64).ravel()
    if signal.shape != observed.shape:
        raise InfocusInputError(
            f"Got {signal.size} signal values but {observed.size} observations; pair every "
            "noisy value with its signal (same shapes)."
        )
    keep = np.isfinite(signal) & np.isfinite(observed)
    if keep.sum() < 1000:
        raise InfocusInputError(
            f"Only {int(keep.sum())} finite (signal, observation) pairs; a noise model needs at "
            "least 1000 (use larger or more images)."
        )
    signal, observed = signal[keep], observed[keep]
    if np.ptp(signal) <= 0:
        raise InfocusInputError(
            "All signal values are equal, so nothing says how the noise changes with the "
            "signal; use images with bright and dim regions."
        )
    return signal, observed


def _subsample(signal: np.ndarray, observed: np.ndarray, limit: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if signal.size <= limit:
        return signal, observed
    keep = rng.choice(signal.size, size=limit, replace=False)
    return signal[keep], observed[keep]


def fit_histogram(
    signal: np.ndarray, observed: np.ndarray, *, bins: int = 128,
    low: float | None = None, high: float | None = None,
) -> HistogramNoiseModel:
    """A :class:`HistogramNoiseModel` of (signal, observation) pairs.

    Parameters
    ----------
    signal, observed : ndarray
        Paired values (any shapes, same size): the clean signal and a noisy measurement of it.
    bins : int
        Bins per axis over ``[low, high]``.
    low, high : float, optional
        The range; default the 0.01st to 99.99th percentile of all values.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.uniform(10, 100, 200_000)
    >>> model = fit_histogram(s, rng.poisson(s).astype(float), bins=64)
    >>> model.bins, model.signal_range[0] < 15
    (64, True)
    """
    signal, observed = _check_pairs(signal, observed)
    both = np.concatenate([signal, observed])
    lo = float(np.percentile(both, 0.01)) if low is None else float(low)
    hi = float(np.percentile(both, 99.99)) if high is None else float(high)
    if not hi > lo or int(bins) < 2:
        raise InfocusInputError(f"The histogram needs high > low and >= 2 bins (got {lo}, {hi}, {bins}).")
    counts, _, _ = np.histogram2d(signal, observed, bins=int(bins), range=[[lo, hi], [lo, hi]])
    totals = counts.sum(axis=1)
    filled = np.flatnonzero(totals > 0)
    # Signal bins without pairs borrow the nearest bin that has some.
    nearest = filled[np.abs(np.arange(int(bins))[:, None] - filled[None, :]).argmin(axis=1)]
    counts, totals = counts[nearest], totals[nearest]
    return HistogramNoiseModel(lo, hi, counts / totals[:, None])


def fit_gaussian_mixture(
    signal: np.ndarray,
    observed: np.ndarray,
    *,
    components: int = 3,
    coefficients: int = 2,
    steps: int = 1000,
    batch_size: int = 20_000,
    learning_rate: float = 0.05,
    min_std: float = 1e-3,
    clip_percentiles: tuple[float, float] = (0.5, 99.5),
    signal_range: tuple[float, float] | None = None,
    rng: np.random.Generator | int | None = 0,
) -> GaussianMixtureNoiseModel:
    """Fit a :class:`GaussianMixtureNoiseModel` to (signal, observation) pairs by maximum
    likelihood (Adam on random batches of pairs), as Prakash et al. (2020).

    Parameters
    ----------
    signal, observed : ndarray
        Paired values (any shapes, same size).
    components : int
        :math:`K`, Gaussians in the mixture (3 models EMCCD skew well).
    coefficients : int
        Polynomial coefficients per parameter (2: linear in the signal).
    steps, batch_size, learning_rate :
        The optimisation: Adam, the learning rate decaying to zero on a cosine (about 20 s on
        two CPU cores at the defaults; 2000 steps of 100 000 pairs fitted the same model).
    min_std : float
        Smallest component standard deviation, in units of the fitted signal range.
    clip_percentiles : (float, float)
        Pairs whose signal lies outside these percentiles are left out: the extremes of a
        bootstrapped signal are where the denoiser is least reliable.
    signal_range : (float, float), optional
        The range the polynomials are written on (and the model says it covers); default the
        clipped signals' range. A bootstrapped model passes the data's range, so that its
        linear trends reach signals the denoiser's prediction did not.
    rng : Generator, int or None
        Seeds the initialisation and the batches.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.uniform(10, 100, 100_000)
    >>> model = fit_gaussian_mixture(s, rng.poisson(s).astype(float), steps=300)
    >>> mean, std = model.mean_and_std(np.array([25.0, 81.0]))
    >>> np.round(std, 0)  # Poisson: std = sqrt(s)
    array([5., 9.])
    """
    torch = _torch()
    signal, observed = _check_pairs(signal, observed)
    lo, hi = np.percentile(signal, clip_percentiles)
    if not hi > lo:
        lo, hi = float(signal.min()), float(signal.max())
    keep = (signal >= lo) & (signal <= hi)
    signal, observed = signal[keep], observed[keep]
    if signal_range is not None:
        lo, hi = min(signal_range), max(signal_range)
    lo, hi = float(lo), float(hi)
    generator = np.random.default_rng(rng)
    span = float(hi - lo)
    k, n = int(components), int(coefficients)
    if k < 1 or n < 1:
        raise InfocusInputError(f"components and coefficients must be >= 1 (got {k}, {n}).")
    # Start near Poisson–Gaussian-like noise: every component centred, variance growing with u.
    spread = np.var(observed - signal) / span**2
    init_var = np.full((k, n), math.log(max(spread, min_std**2)))
    initial = [generator.normal(0, 0.1, (k, n)), generator.normal(0, 0.01, (k, n)), init_var]
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in initial]
    optimizer = torch.optim.Adam(params, lr=learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, int(steps)))
    model = GaussianMixtureNoiseModel(float(lo), float(hi), *initial, min_std=min_std)
    s_all = torch.from_numpy(signal)
    x_all = torch.from_numpy(observed)
    for _ in range(int(steps)):
        index = torch.from_numpy(generator.integers(0, signal.size, min(batch_size, signal.size)))
        s, x = s_all[index], x_all[index]
        weight, mean, std = model._parameters(s, tuple(params))
        loss = -_mixture_log_density(x, weight, mean, std).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    fitted = [p.detach().numpy().copy() for p in params]
    return GaussianMixtureNoiseModel(float(lo), float(hi), *fitted, min_std=min_std)


#: What :func:`fit_pairs` can fit.
FITTED_KINDS = ("gmm", "histogram")


def fit_pairs(signal: np.ndarray, observed: np.ndarray, kind: str = "gmm", *,
              signal_range: tuple[float, float] | None = None,
              rng: np.random.Generator | int | None = 0) -> NoiseModel:
    """Fit a noise model of ``kind`` (``"gmm"`` or ``"histogram"``) to (signal, observation)
    pairs; ``signal_range`` widens the range the model covers (see
    :func:`fit_gaussian_mixture`)."""
    if kind == "gmm":
        return fit_gaussian_mixture(signal, observed, signal_range=signal_range, rng=rng)
    if kind == "histogram":
        low = high = None
        if signal_range is not None:
            finite = np.asarray(observed)[np.isfinite(observed)]
            low = min(min(signal_range), float(np.percentile(finite, 0.01)))
            high = max(max(signal_range), float(np.percentile(finite, 99.99)))
        return fit_histogram(signal, observed, low=low, high=high)
    raise InfocusInputError(
        f"Unknown noise-model kind {kind!r}; choose one of: {', '.join(FITTED_KINDS)}."
    )


def calibration_pairs(
    stack: np.ndarray, *, max_pairs: int = 5_000_000, rng: np.random.Generator | int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(signal, observation) pairs from noisy captures of a static sample.

    The signal of each pixel is its mean over the captures; every capture is an observation
    of it (Krull et al. 2020). The stack must be static: a sample that moved or bleached
    between captures makes the mean a blur, and the noise model would learn the motion as
    noise.

    Parameters
    ----------
    stack : ndarray, shape (N, *spatial)
        N >= 2 captures of the same field of view, camera units.
    max_pairs : int
        Most pairs returned (a random subset beyond that).

    Raises
    ------
    InfocusInputError
        Fewer than two captures, or captures that are not of a static sample (see
        :func:`_check_static`).
    """
    stack = np.asarray(stack, dtype=np.float64)
    if stack.ndim < 3 or stack.shape[0] < 2:
        raise InfocusInputError(
            f"A calibration stack needs at least two captures of the same view along its first "
            f"axis (got shape {stack.shape}); pass e.g. axes 'SYX' or 'TYX'."
        )
    _check_static(stack)
    signal = np.broadcast_to(stack.mean(axis=0), stack.shape)
    return _subsample(signal.ravel(), stack.ravel(), int(max_pairs), np.random.default_rng(rng))


def _check_static(stack: np.ndarray, sigma: float = 4.0, tolerance: float = 5.0) -> None:
    r"""Refuse a calibration stack whose captures differ by more than noise.

    Two tests on the mean of each half of the stack (first vs. second half of the captures).
    Bleaching: the halves' mean intensities differ by more than 2 % of the signal's spread.
    Motion: the difference of the halves, blurred by a Gaussian of ``sigma`` pixels, has
    ``tolerance`` times more variance than white noise of the difference's own pixel
    variance would have after that blur (for a static sample the difference is pure noise).
    """
    from scipy import ndimage

    half = stack.shape[0] // 2
    first, second = stack[:half].mean(axis=0), stack[half : 2 * half].mean(axis=0)
    spread = float(np.percentile(stack[0], 99) - np.percentile(stack[0], 1)) or 1.0
    drift = float(abs(first.mean() - second.mean()))
    if drift > 0.02 * spread:
        raise InfocusInputError(
            f"The calibration captures are not static: the mean intensity changes by "
            f"{drift:.3g} between the first and second half of the stack (bleaching or a "
            "changing light source?); use captures of a static, stable sample."
        )
    difference = second - first
    spatial = tuple(range(difference.ndim))
    blurred = ndimage.gaussian_filter(difference, sigma, axes=spatial[-2:])
    # A normalised Gaussian kernel g keeps sum(g**2) of white noise's variance: 1/(4 pi sigma^2).
    expected = difference.var() / (4.0 * math.pi * sigma**2)
    if blurred.var() > tolerance * expected:
        raise InfocusInputError(
            "The calibration captures are not static: they differ by structures larger than "
            "noise (the sample moved or changed between captures); use captures of a static "
            "sample, or let infocus bootstrap the noise model from the data."
        )


# ------------------------------------------------------------------------------- files
_KINDS: dict[str, type[NoiseModel]] = {
    cls.kind: cls
    for cls in (PoissonGaussianNoiseModel, HistogramNoiseModel, GaussianMixtureNoiseModel)
}


def noise_model_from_dict(data: Any, *, source: str = "the noise model") -> NoiseModel:
    """Inverse of :meth:`NoiseModel.to_dict`; a clear error for anything malformed."""
    if not isinstance(data, dict) or data.get("kind") not in _KINDS:
        kind = data.get("kind") if isinstance(data, dict) else None
        raise InfocusInputError(
            f"{source} is missing or malformed (kind {kind!r}; expected one of "
            f"{', '.join(sorted(_KINDS))}); refit it with infocus noise-model fit."
        )
    cls = _KINDS[data["kind"]]
    fields = {k: v for k, v in data.items() if k != "kind"}
    try:
        return cls(**fields)
    except (TypeError, ValueError) as error:
        raise InfocusInputError(
            f"{source} is malformed ({error}); refit it with infocus noise-model fit."
        ) from None


def save_noise_model(model: NoiseModel, path: str | os.PathLike[str], *,
                     overwrite: bool = False, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as JSON (atomically; never pickled)."""
    from infocus.io._atomic import atomic_output

    path = Path(path).expanduser()
    payload = {"format": NOISE_MODEL_FORMAT, "model": model.to_dict(), **(metadata or {})}
    with atomic_output(path, overwrite=overwrite, suffix=".json") as temporary:
        Path(temporary).write_text(json.dumps(payload, indent=1))
    return path


def load_noise_model(path: str | os.PathLike[str]) -> NoiseModel:
    """Read a noise model written by :func:`save_noise_model`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InfocusInputError(f"No such noise model: {path}; check the path.")
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InfocusInputError(f"{path} is not a noise-model file (invalid JSON: {error}).") from None
    if not isinstance(payload, dict) or payload.get("format") != NOISE_MODEL_FORMAT:
        raise InfocusInputError(
            f"{path} is not an infocus noise model (format {NOISE_MODEL_FORMAT!r}); write one "
            "with infocus noise-model fit."
        )
    return noise_model_from_dict(payload.get("model"), source=f"The noise model in {path}")
