r"""Let the error estimate choose the denoiser: run candidates, rank them without ground truth.

:func:`choose_denoiser` runs several denoisers on one noisy image, estimates the PSNR of each
output against the unknown clean image (:mod:`infocus.qc.risk`), and keeps the output with the
highest estimate. The candidates are

* the classical methods with automatic parameters (:data:`CLASSICAL_CANDIDATES`; ones whose
  optional package is missing are skipped with a note). Each can be run again, so its output
  is scored by SURE (Stein's unbiased risk estimate for Poisson–Gaussian noise, the divergence
  by Monte-Carlo: Ramani, Blu & Unser 2008), which costs ``probes + 1`` more runs;
* self-supervised trained methods (:data:`TRAINED_CANDIDATES`, trained on the image itself)
  when the time budget allows: their time is estimated from a timed training step of their
  network and the image size before they start, and their training steps are cut to fit the
  budget (never below :data:`MIN_TRAINED_STEPS`). Their output is scored by SURE with the
  trained network *held fixed*: the estimate does not count how the training itself depended
  on the noise of this image, so it is a little optimistic where the network memorised noise.

Every output is scored against the same PSNR peak (:func:`reference_peak`), so the ranking is
the ranking of the estimated mean squared errors.

The estimates are as good as :mod:`infocus.qc.risk` is on the data at hand: docs/qc.md lists
where SURE is biased (few photons, BM3D's hard thresholding, spatially correlated noise), and
docs/benchmarks.md measures how often this choice is the truly best one.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from infocus._errors import InfocusInputError
from infocus._validate import check_image
from infocus.axes import check_axes, default_axes
from infocus.noise import NoiseParams, estimate_noise_correlation
from infocus.qc.quality import (
    _noise_per_channel,
    _variance_function,
    channel_planes,
    per_pixel_noise,
)
from infocus.qc.risk import RiskEstimate, estimate_mse, estimated_psnr

__all__ = [
    "AUTO",
    "CLASSICAL_CANDIDATES",
    "DEFAULT_BUDGET",
    "TRAINED_CANDIDATES",
    "Choice",
    "Ranked",
    "Skipped",
    "choose_denoiser",
    "parse_budget",
    "reference_peak",
]

#: The ``--method`` value that lets the estimate choose.
AUTO = "auto"
#: Classical candidates, cheapest first; ``bm4d`` only where there is a ``Z`` axis (without
#: one it is BM3D again).
CLASSICAL_CANDIDATES = ("wavelet", "nl_means", "gaussian", "median", "tv", "bm3d")
VOLUME_CANDIDATES = ("bm4d",)
#: Self-supervised methods trained on the image itself when the budget allows.
TRAINED_CANDIDATES = ("n2v",)
#: Seconds allowed by default: enough for the classical candidates on a typical image, too
#: little for any training on a CPU.
DEFAULT_BUDGET = 60.0
#: Fewer training steps than this are not worth a candidate (the network is still blurry).
MIN_TRAINED_STEPS = 300
#: Budgets below this many seconds left do not consider training at all (not even the timing
#: probe, which imports PyTorch).
MIN_TRAINED_SECONDS = 30.0

_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
          "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
          "h": 3600.0, "hour": 3600.0, "hours": 3600.0}


def parse_budget(text: str | float) -> float:
    """Seconds in a budget written like ``"90s"``, ``"5min"``, ``"1.5h"`` or ``"120"``.

    Examples
    --------
    >>> parse_budget("5min"), parse_budget("90s"), parse_budget("1h"), parse_budget("45")
    (300.0, 90.0, 3600.0, 45.0)
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*", str(text))
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _UNITS:
            raise InfocusInputError(
                f"Budget {text!r} is not a time; write a number with s, min or h, e.g. "
                "--budget 90s or --budget 5min."
            )
        seconds = float(match.group(1)) * _UNITS[unit]
    if not (math.isfinite(seconds) and seconds >= 0):
        raise InfocusInputError(f"The budget must be a time of zero or more, got {text!r}.")
    return seconds


@dataclass(frozen=True)
class Ranked:
    """One candidate that ran, with its ground-truth-free score.

    Attributes
    ----------
    method : str
        The registered name.
    kind : str
        ``"classical"`` or ``"trained"``.
    psnr, low, high : float
        Estimated PSNR (dB) and its 95 % interval (``low`` may be ``-inf``, ``high`` ``inf``).
    mse : float
        The estimated mean squared error (camera units squared) the PSNR comes from.
    estimator : str
        How it was estimated: ``"sure"``, ``"sure, weights fixed"`` (a network trained on this
        image, scored as a fixed function) or ``"bounds"`` (the output alone; ``psnr`` is then
        the lower bound).
    seconds : float
        Wall time of the candidate: its run, training and the re-runs of the estimate.
    note : str
        What else there is to know (e.g. the training steps the budget allowed).
    """

    method: str
    kind: str
    psnr: float
    low: float
    high: float
    mse: float
    estimator: str
    seconds: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "kind": self.kind, "psnr_estimate": self.psnr,
                "psnr_interval": [self.low, self.high], "mse_estimate": self.mse,
                "estimator": self.estimator, "seconds": self.seconds, "note": self.note}


@dataclass(frozen=True)
class Skipped:
    """A candidate that did not run, and why."""

    method: str
    reason: str


@dataclass(frozen=True)
class Choice:
    """What :func:`choose_denoiser` found.

    Attributes
    ----------
    method : str
        The candidate kept (the highest estimated PSNR).
    output : ndarray
        Its output, float32, the noisy image's shape.
    ranking : tuple of Ranked
        Every candidate that ran, best estimate first.
    skipped : tuple of Skipped
        Candidates that did not run, with the reason.
    data_range : float
        The PSNR peak shared by all estimates.
    budget : float
        The time budget in seconds.
    denoiser : callable
        ``image -> output`` of the kept candidate (a trained network held fixed), e.g. for a
        full quality report that re-runs it.
    correlated_noise : bool
        The noise was measured to be correlated between neighbouring pixels: the estimates
        that ranked the candidates may then be a few dB off (the noise model is corrected for
        the correlation, but only in part; docs/qc.md), and :meth:`reason` says so.
    """

    method: str
    output: np.ndarray = field(repr=False)
    ranking: tuple[Ranked, ...]
    skipped: tuple[Skipped, ...]
    data_range: float
    budget: float
    denoiser: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    correlated_noise: bool = False

    @property
    def best(self) -> Ranked:
        return self.ranking[0]

    def reason(self) -> str:
        """Which candidate was kept and how clearly it won, and a warning where the noise is
        correlated between pixels."""
        if not self.correlated_noise:
            return self._kept()
        return self._kept() + (
            " The noise is correlated between neighbouring pixels, which the estimates only "
            "partly account for (on widefield images classical methods' estimates were up to "
            "2.9 dB high and n2v's up to 3.4 dB low, and the choice lost up to 2.2 dB): check "
            "the result, or name the method (n2v hides correlated neighbours).")

    def _kept(self) -> str:
        best = self.best
        text = (f"Kept {best.method}: the highest estimated PSNR, {_db(best.psnr)} dB "
                f"({best.estimator})")
        if len(self.ranking) == 1:
            return text + ", the only candidate that ran."
        runner_up = self.ranking[1]
        if not math.isfinite(runner_up.psnr):
            return (text + f", as {runner_up.method}: both errors are estimated at or below "
                    "zero, so the estimate cannot tell them apart.")
        gap = best.psnr - runner_up.psnr
        text += (f", {_db(gap)} dB above {runner_up.method}" if math.isfinite(gap)
                 else f", above {runner_up.method} ({_db(runner_up.psnr)} dB)")
        if runner_up.high >= best.low:
            return text + "; their 95 % intervals overlap, so the two may be equally good."
        return text + "; their 95 % intervals do not overlap."

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "reason": self.reason(), "data_range": self.data_range,
                "correlated_noise": self.correlated_noise,
                "budget_seconds": self.budget,
                "ranking": [r.to_dict() for r in self.ranking],
                "skipped": [{"method": s.method, "reason": s.reason} for s in self.skipped]}


def reference_peak(noisy: np.ndarray, axes: str) -> float:
    """The PSNR peak every candidate is scored against: the range of the noisy image smoothed
    by a 1-pixel Gaussian in Y and X (a denoiser's own range would give each output another
    peak, and a ranking of PSNRs with different peaks is no ranking of errors)."""
    planes = channel_planes(noisy, axes)
    smooth = ndimage.gaussian_filter(planes, (0, 1.0, 1.0))
    peak = float(smooth.max() - smooth.min())
    return peak if peak > 0 else 1.0


@dataclass
class _Run:
    """A candidate's output and the deterministic ``image -> output`` that made it."""

    output: np.ndarray
    denoiser: Callable[[np.ndarray], np.ndarray]
    estimator: str
    note: str = ""


def choose_denoiser(
    noisy: np.ndarray,
    *,
    axes: str | None = None,
    noise: NoiseParams | None = None,
    budget: float | str = DEFAULT_BUDGET,
    candidates: Sequence[str | tuple[str, dict[str, Any]]] | None = None,
    data_range: float | None = None,
    probes: int = 2,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    on_output: Callable[[str, np.ndarray], None] | None = None,
) -> Choice:
    """Run candidate denoisers, estimate each output's PSNR without ground truth, keep the best.

    Parameters
    ----------
    noisy : ndarray
        The raw image, camera units.
    axes : str, optional
        Its axes, e.g. ``"YX"``, ``"ZYX"``, ``"CYX"``; default from the shape.
    noise : NoiseParams, optional
        The noise model (one for all channels); estimated per channel when None.
    budget : float or str
        Time allowed for all candidates, in seconds or as text (``"5min"``,
        :func:`parse_budget`). The classical candidates always run; a trained candidate runs
        only when its estimated time fits in what is left, with its steps cut to fit.
    candidates : sequence of str or (str, dict), optional
        Registered names to try (classical or self-supervised learned methods), or
        ``(name, options)`` for a classical method with fixed options (ranked as e.g.
        ``"gaussian sigma=6"``); default the classical candidates for these axes, then
        :data:`TRAINED_CANDIDATES`.
    data_range : float, optional
        PSNR peak; default :func:`reference_peak`.
    probes, seed : int
        Monte-Carlo probes of SURE (each re-runs the candidate once) and their seed; the seed
        also seeds the training of trained candidates.
    log : callable, optional
        ``log(message)`` before each candidate and for each one skipped.
    on_output : callable, optional
        ``on_output(method, output)`` for every candidate's output as it is made (only the
        kept one is held otherwise), e.g. to score them all against a ground truth.

    Returns
    -------
    Choice

    Raises
    ------
    InfocusInputError
        For a bad budget, an unknown candidate, a method that needs training pairs or labels,
        or when no candidate could run.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> from infocus.noise import simulate_poisson_gaussian
    >>> clean = gaussian_filter(np.random.default_rng(0).uniform(0, 1, (96, 96)), 3)
    >>> noisy, noise = simulate_poisson_gaussian(clean, photons=30, rng=1)
    >>> choice = choose_denoiser(noisy, noise=noise, candidates=["gaussian", "wavelet"])
    >>> choice.method in {"gaussian", "wavelet"}, len(choice.ranking)
    (True, 2)
    """
    seconds = parse_budget(budget)
    shape = np.shape(noisy)
    axes = check_axes(axes, shape) if axes is not None else default_axes(shape)
    y = check_image(noisy, axes, name="noisy image", dtype=np.float64)
    names = _candidates(candidates, axes)
    say = log or (lambda _message: None)
    estimated, covariances = _noise_per_channel(y, axes, noise)
    correlation = estimate_noise_correlation(y, axes, noise=estimated)
    params, _, _ = per_pixel_noise(estimated, covariances, correlation)
    # One noise model for the methods when there is one channel: every re-run then denoises
    # with the same model instead of estimating it again from the perturbed image. It is the
    # per-pixel one the scores use, as `infocus denoise` would estimate it (estimate_pixel_noise).
    method_noise = noise if noise is not None or "C" in axes else params[0]
    variance = _variance_function(params, axes, y, floored=False)
    peak = reference_peak(y, axes) if data_range is None else _checked_peak(data_range)
    started = time.perf_counter()
    ranked: list[Ranked] = []
    skipped: list[Skipped] = []
    best: tuple[float, np.ndarray, Callable[[np.ndarray], np.ndarray]] | None = None
    for index, (name, options) in enumerate(names, start=1):
        scheme = _learned(name)
        if options:
            name = f"{name} " + " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in options.items())
        begun = time.perf_counter()
        try:
            if scheme is None:
                say(f"{name} ({index} of {len(names)}) ...")
                run = _run_classical(name.split()[0], y, axes, method_noise, options)
            else:
                left = seconds - (begun - started)
                steps, why_not = _steps_within(name, scheme, y.shape, axes, left, probes)
                if steps is None:
                    skipped.append(Skipped(name, why_not))
                    say(f"{name} skipped: {why_not}")
                    continue
                say(f"{name} ({index} of {len(names)}): training {steps} steps on the image ...")
                run = _run_trained(name, y, axes, steps, seed)
        except ImportError as error:  # an optional package (e.g. bm3d) is not installed
            skipped.append(Skipped(name, str(error)))
            say(f"{name} skipped: {error}")
            continue
        if on_output is not None:
            on_output(name, run.output)
        risk = _score(y, run, variance, axes, probes, seed, correlation)
        psnr, low, high = estimated_psnr(risk, peak)
        estimator = run.estimator if risk.method == "sure" else risk.method
        ranked.append(Ranked(method=name, kind="classical" if scheme is None else "trained",
                             psnr=psnr, low=low, high=high, mse=risk.mse,
                             estimator=estimator, seconds=time.perf_counter() - begun,
                             note=run.note))
        if best is None or risk.mse < best[0]:
            best = (risk.mse, run.output, run.denoiser)
    if best is None:
        raise InfocusInputError(
            "No candidate could run (" + "; ".join(f"{s.method}: {s.reason}" for s in skipped)
            + "); install the missing package or give other candidates."
        )
    ranking = tuple(sorted(ranked, key=lambda r: r.mse))
    return Choice(method=ranking[0].method, output=best[1].astype(np.float32, copy=False),
                  ranking=ranking, skipped=tuple(skipped), data_range=peak, budget=seconds,
                  denoiser=best[2], correlated_noise=bool(correlation.blind_pattern()))


def _candidates(candidates: Sequence[str | tuple[str, dict[str, Any]]] | None, axes: str
                ) -> list[tuple[str, dict[str, Any]]]:
    """``(name, fixed options)`` of every candidate, checked against the registries."""
    from infocus._api import check_options
    from infocus.classical import get_denoiser, list_denoisers
    from infocus.methods import list_schemes

    if candidates is None:
        volume = VOLUME_CANDIDATES if "Z" in axes else ()
        return [(name, {}) for name in (*CLASSICAL_CANDIDATES, *volume, *TRAINED_CANDIDATES)]
    pairs = [(c.lower(), {}) if isinstance(c, str) else (str(c[0]).lower(), dict(c[1]))
             for c in candidates]
    if not pairs:
        raise InfocusInputError("No candidates were given; name at least one method.")
    known = set(list_denoisers()) | set(list_schemes())
    for name, options in pairs:
        if name not in known:
            raise InfocusInputError(
                f"Unknown candidate {name!r}; choose among {', '.join(sorted(known))}.")
        scheme = _learned(name)
        if scheme is not None and (scheme.needs_target or scheme.labels):
            raise InfocusInputError(
                f"{name!r} needs {'label images' if scheme.labels else 'pairs of images'} to "
                "train; only methods that train on the noisy image itself can be candidates.")
        if options:
            if scheme is not None:
                raise InfocusInputError(
                    f"Fixed options apply to classical candidates, not to {name!r}.")
            check_options(name, get_denoiser(name), options,
                          reserved=frozenset({"axes", "noise", "progress", "plan"}))
    return pairs


def _learned(name: str) -> Any:
    """The registered learned method ``name``, or None for a classical denoiser."""
    from infocus.methods import create_scheme, list_schemes

    return create_scheme(name) if name in list_schemes() else None


def _checked_peak(data_range: float) -> float:
    if not (isinstance(data_range, int | float) and math.isfinite(data_range)
            and data_range > 0):
        raise InfocusInputError(f"data_range must be a positive number, got {data_range!r}.")
    return float(data_range)


def _run_classical(name: str, y: np.ndarray, axes: str, noise: NoiseParams | None,
                   options: dict[str, Any]) -> _Run:
    from infocus.classical import get_denoiser

    function = get_denoiser(name)

    def denoiser(image: np.ndarray) -> np.ndarray:
        # Automatic parameters are chosen again on each re-run; the probes move the image by
        # about 1 % of the noise, which does not change a calibrated choice.
        return function(image, axes=axes, noise=noise, **options)

    return _Run(output=denoiser(y), denoiser=denoiser, estimator="sure")


def _run_trained(name: str, y: np.ndarray, axes: str, steps: int, seed: int) -> _Run:
    from infocus.methods.config import default_config
    from infocus.training.loop import train

    config = default_config(name).with_updates(steps=steps)
    model = train(y.astype(np.float32), method=name, axes=axes, config=config, seed=seed,
                  progress=False, log=lambda _message: None)

    def denoiser(image: np.ndarray) -> np.ndarray:
        return model.denoise(image.astype(np.float32), axes=axes)

    return _Run(output=denoiser(y), denoiser=denoiser, estimator="sure, weights fixed",
                note=f"trained {steps} steps on this image")


def _score(y: np.ndarray, run: _Run, variance: Callable[[np.ndarray], np.ndarray], axes: str,
           probes: int, seed: int, correlation: Any) -> RiskEstimate:
    """SURE with the candidate re-run; the output-only bounds when it does not reproduce
    its own output (a non-deterministic denoiser)."""
    try:
        return estimate_mse(y, run.output, variance, denoiser=run.denoiser, probes=probes,
                            seed=seed, axes=axes, correlation=correlation)
    except InfocusInputError:
        return estimate_mse(y, run.output, variance, axes=axes, correlation=correlation)


def _steps_within(name: str, scheme: Any, shape: tuple[int, ...], axes: str, seconds: float,
                  probes: int) -> tuple[int | None, str]:
    """Training steps of ``name`` that fit in ``seconds`` with the prediction and the
    estimate's re-runs, or None and the reason it does not fit."""
    from infocus.methods.config import default_config

    if seconds < MIN_TRAINED_SECONDS:
        return None, (f"the budget leaves {max(seconds, 0.0):.0f} s; training is considered "
                      f"from {MIN_TRAINED_SECONDS:.0f} s left (e.g. --budget 5min)")
    config = default_config(name)
    step, per_pixel = _timing_probe(scheme, config, axes)
    pixels = int(np.prod(shape))
    predicting = (2 + probes) * pixels * per_pixel
    steps = min(config.steps, int((seconds - predicting) / step))
    if steps < MIN_TRAINED_STEPS:
        needed = MIN_TRAINED_STEPS * step + predicting
        return None, (f"{MIN_TRAINED_STEPS} training steps and {2 + probes} predictions would "
                      f"take about {needed:.0f} s, the budget leaves {seconds:.0f} s")
    return steps, ""


def _timing_probe(scheme: Any, config: Any, axes: str) -> tuple[float, float]:
    """Seconds per training step and per predicted pixel, from timed forward and backward
    passes of the method's network on one batch of default-size patches (prediction counted
    as a third of a step's work per pixel, plus a third for overlapping tiles)."""
    import torch

    from infocus.nets import create_network

    ndim = 3 if "Z" in axes else 2
    patch = (16, 64, 64) if ndim == 3 else (64, 64)
    network = create_network(config.network, ndim=ndim,
                             **{**scheme.network_options(1), **config.network_options})
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-4)
    batch = torch.randn(config.batch_size, 1, *patch)
    timings = []
    for _ in range(3):  # the first pass allocates; the best of the other two counts
        begun = time.perf_counter()
        optimizer.zero_grad()
        output = network(batch)
        loss = (output if isinstance(output, torch.Tensor) else output[0]).square().mean()
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - begun)
    step = min(timings[1:])
    per_pixel = step / 3 / (config.batch_size * int(np.prod(patch))) * (4 / 3)
    return step, per_pixel


def _db(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "∞"
