"""How good is this denoised image, and where should it not be believed? Without ground truth.

:func:`quality_check` brings the checks of this package together for one noisy image and one
output of any denoiser (classical, trained, or another tool's):

* an estimate of the output's PSNR against the unknown clean image, with a 95 % interval
  (:mod:`infocus.qc.risk`: SURE when the denoiser can be run again, its interval widened by the
  error of a noise model estimated from the image; the Noise2Noise identity when
  other captures of the scene exist, else bounds from the output and noise model alone);
* consistency with the measurement: a map of regions where the residual is not noise
  (:mod:`infocus.qc.consistency`);
* intensity preservation: integrated intensities of objects and of the whole image
  (:mod:`infocus.qc.intensity`);
* with a classical denoiser's output for the same measurement (``reference``), a map of regions
  where the output differs from it beyond chance (:mod:`infocus.qc.disagreement`): where a
  trained model may show what it learnt rather than what the data say;
* with a ground truth, the true PSNR and SSIM beside the estimates, so a lab can check the
  estimators on its own data.

The tests that draw maps share the family-wise error ``alpha`` equally: an output consistent with its
measurement raises any flag with probability at most ``alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from infocus._errors import InfocusInputError
from infocus._validate import check_image
from infocus.axes import check_axes, default_axes
from infocus.noise import (
    NoiseCorrelation,
    NoiseParams,
    correct_for_correlation,
    detail_share,
    estimate_noise_correlation,
)
from infocus.qc.consistency import ALPHA, Consistency, check_consistency
from infocus.qc.disagreement import Disagreement, check_disagreement, classical_reference
from infocus.qc.intensity import IntensityCheck, check_intensity
from infocus.qc.ratio import RatioCheck, check_ratios
from infocus.qc.risk import RiskEstimate, estimate_mse, estimated_psnr

__all__ = ["QC_FORMAT", "Check", "QualityReport", "quality_check"]

#: Version of the JSON summary (:meth:`QualityReport.to_dict`); scripts may rely on its keys.
QC_FORMAT = "infocus-qc/1"
#: Bits of :attr:`QualityReport.flags`.
CONSISTENCY_BIT, INTENSITY_BIT, RATIO_BIT, DISAGREEMENT_BIT = 1, 2, 4, 8


@dataclass(frozen=True)
class Check:
    """One test of the output: its name, whether it passed, one sentence, and its figures."""

    name: str
    passed: bool
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class QualityReport:
    """Everything :func:`quality_check` measured; :meth:`to_dict` is the stable JSON summary.

    Attributes
    ----------
    axes : str
        Axes of the images.
    data_range : float
        The PSNR peak used.
    risk : RiskEstimate
        The ground-truth-free MSE estimate.
    noise : list of NoiseParams
        The noise model per channel (one entry without a ``C`` axis).
    consistency : Consistency
        The residual test (maps in the images' own axes order).
    intensity : IntensityCheck
        The integrated-intensity test (maps in the images' own axes order).
    checks : list of Check
        Each test's verdict.
    truth : dict or None
        With a ground truth: ``mse``, ``psnr`` and ``ssim`` of the output.
    alpha : float
        The family-wise error of the flags (shared equally by the tests).
    ratio_flags : ndarray or None
        With several channels: objects whose channel ratio changed.
    disagreement : Disagreement or None
        With a ``reference`` output: where the output differs from it beyond chance (maps in
        the images' own axes order).
    noise_correlation_share : float or None
        Where the noise model was estimated here and the noise reads correlated between
        pixels: the share of its variance the estimator's high-pass filters saw
        (:func:`~infocus.noise.detail_share`), by which ``noise`` was corrected; else None.
    """

    axes: str
    data_range: float
    risk: RiskEstimate
    noise: list[NoiseParams]
    consistency: Consistency
    intensity: IntensityCheck
    checks: list[Check]
    truth: dict[str, float] | None = None
    alpha: float = ALPHA
    ratio_flags: np.ndarray | None = None
    disagreement: Disagreement | None = None
    noise_correlation_share: float | None = None

    @property
    def psnr(self) -> tuple[float, float, float]:
        """``(estimate, low, high)`` in dB."""
        return estimated_psnr(self.risk, self.data_range)

    @property
    def flagged(self) -> bool:
        """True when any check failed."""
        return any(not check.passed for check in self.checks)

    @property
    def flags(self) -> np.ndarray:
        """uint8 map, the images' shape, a sum of bits: 1 where the output disagrees with the
        measurement, 2 on objects whose intensity changed, 4 on objects whose channel ratio
        changed, 8 where the output differs from the reference (classical) output beyond
        chance; 0 where no check objects."""
        flags = self.consistency.flags * CONSISTENCY_BIT + self.intensity.flags * INTENSITY_BIT
        if self.ratio_flags is not None:
            flags = flags + self.ratio_flags * RATIO_BIT
        if self.disagreement is not None:
            flags = flags + self.disagreement.flags * DISAGREEMENT_BIT
        return flags.astype(np.uint8)

    def summary_line(self) -> str:
        """One line for a terminal: estimated PSNR and the verdict (and, when the output was
        compared with a classical reference, that comparison's result either way)."""
        verdict = "; ".join(c.summary for c in self.checks if not c.passed) or (
            "consistent with the measurement")
        agreed = [c.summary for c in self.checks if c.name == "disagreement" and c.passed]
        return f"{self.psnr_text()}; {'; '.join([verdict, *agreed])}."

    def psnr_text(self) -> str:
        """The PSNR estimate in words, e.g. "Estimated PSNR 31.20 dB (95 % interval ...)"."""
        psnr, low, high = self.psnr
        note = f"; {self.risk.note}" if self.risk.note else ""
        if self.risk.method == "bounds":
            return (f"PSNR at least {_db(psnr)} dB (at most {_db(high)}; bounds from the output "
                    f"alone{note})")
        return (f"Estimated PSNR {_db(psnr)} dB (95 % interval {_db(low)} to {_db(high)}, "
                f"{self.risk.method}{note})")

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary: ``psnr_estimate``, ``psnr_interval``, ``flagged``, ``checks`` ...

        Non-finite numbers (an infinite PSNR bound) become ``None``.
        """
        psnr, low, high = self.psnr
        summary = {
            "format": QC_FORMAT,
            "psnr_estimate": psnr,
            "psnr_interval": [low, high],
            "mse_estimate": self.risk.mse,
            "mse_interval": [self.risk.low, self.risk.high],
            "estimate_method": self.risk.method,
            "estimate_note": self.risk.note,
            "data_range": self.data_range,
            "flagged": self.flagged,
            "checks": [{"name": c.name, "passed": c.passed, "summary": c.summary,
                        **c.figures} for c in self.checks],
            "noise": [params.to_dict() for params in self.noise],
            "noise_correlation_share": self.noise_correlation_share,
            "axes": self.axes,
            "shape": list(self.consistency.flags.shape),
            "ground_truth": self.truth,
            "alpha": self.alpha,
        }
        return _finite(summary)


def quality_check(
    noisy: np.ndarray,
    denoised: np.ndarray,
    *,
    axes: str | None = None,
    noise: NoiseParams | Sequence[NoiseParams] | None = None,
    denoiser: Callable[[np.ndarray], np.ndarray] | None = None,
    captures: Sequence[np.ndarray] = (),
    ground_truth: np.ndarray | None = None,
    data_range: float | None = None,
    alpha: float = ALPHA,
    probes: int = 2,
    seed: int = 0,
    signature: dict[str, Any] | None = None,
    reference: np.ndarray | str | None = None,
    reference_method: str | None = None,
) -> QualityReport:
    """Check a denoised image against its measurement, without ground truth.

    Parameters
    ----------
    noisy, denoised : ndarray
        The raw measurement and the denoiser's output, same shape and units (camera units:
        an output rescaled or normalised is refused).
    axes : str, optional
        Axes of both, e.g. ``"YX"``, ``"ZYX"``, ``"CYX"``; default from the shape.
    noise : NoiseParams or list of NoiseParams, optional
        The noise model (one per channel, or one for all); estimated from ``noisy`` when None.
    denoiser : callable, optional
        ``denoiser(noisy) -> denoised``, deterministic, in the images' axes: lets the error
        estimate use SURE (the denoiser runs ``probes + 1`` more times).
    captures : sequence of ndarray
        Other raw captures of the same scene (independent noise): the error estimate then uses
        the Noise2Noise identity, leaving out a capture whose brightness differs from the
        noisy image's (the estimate's note says which).
    ground_truth : ndarray, optional
        The clean image, when known: true PSNR and SSIM are reported beside the estimates.
    data_range : float, optional
        PSNR peak; default the ground truth's range, else the output's.
    alpha : float
        Family-wise error of the flags: an output consistent with its measurement raises any
        flag with at most this probability.
    probes, seed : int
        Monte-Carlo probes of SURE and their seed.
    signature : dict, optional
        The training data's description stored in a trained model
        (``model.provenance["data_signature"]``): adds the domain check, which fails when the
        noisy image's intensities, noise or structure lie outside those of the training data.
    reference : ndarray or str, optional
        A classical denoiser's output for the same measurement (e.g. BM3D), same shape and
        units (YX planes that are NaN throughout are not compared), or the name of a classical
        denoiser to run with automatic parameters and this check's noise model, on a sample of
        a large stack's planes (:func:`~infocus.qc.disagreement.classical_reference`): adds
        the disagreement check, which fails where ``denoised`` differs from it beyond chance
        (:func:`~infocus.qc.disagreement.check_disagreement`). Meant for a trained model's
        output: it shows where the model may have drawn on its training data rather than on
        this measurement; it does not say which output is right.
    reference_method : str, optional
        The name of the method that made a ``reference`` array, recorded in the check's
        figures (a name given as ``reference`` is recorded itself).

    Returns
    -------
    QualityReport

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> from infocus.noise import simulate_poisson_gaussian
    >>> clean = gaussian_filter(np.random.default_rng(0).uniform(0, 1, (128, 128)), 4)
    >>> noisy, noise = simulate_poisson_gaussian(clean, photons=50, rng=1)
    >>> report = quality_check(noisy, gaussian_filter(noisy, 1.0), noise=noise)
    >>> report.flagged
    False
    """
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise InfocusInputError(f"alpha must lie between 0 and 1 (a probability), got {alpha!r}.")
    shape = np.shape(noisy)
    axes = check_axes(axes, shape) if axes is not None else default_axes(shape)
    y = check_image(noisy, axes, name="noisy image", dtype=np.float64)
    f = _same_shape(denoised, y, "denoised image", axes)
    extra = [_same_shape(c, y, "other capture", axes) for c in captures]
    truth = None if ground_truth is None else _same_shape(ground_truth, y, "ground truth", axes)
    estimated, covariance = _noise_per_channel(y, axes, noise)
    correlation = estimate_noise_correlation(y, axes, noise=estimated)
    params, noise_covariance, correlation_share = per_pixel_noise(estimated, covariance,
                                                                  correlation)
    if isinstance(reference, str):
        reference_method = reference
        # The noise model the tests divide by, which is also the one `infocus denoise` would
        # estimate for the method (estimate_pixel_noise); one per channel is left to the
        # denoiser.
        reference = classical_reference(y, reference, axes=axes,
                                        noise=params[0] if len(params) == 1 else None)
    classical = None if reference is None else _reference_output(reference, y, axes)
    _check_units(y, f, axes)
    risk = estimate_mse(y, f, _variance_function(params, axes, f, floored=False),
                        denoiser=denoiser, capture=extra or None, probes=probes, seed=seed,
                        axes=axes, noise_covariance=noise_covariance,
                        # Used only without captures: their estimate needs no noise model.
                        correlation=correlation)
    peak = _data_range(data_range, truth, f)
    variance = _variance_function(params, axes, f, floored=True)(f)
    gains = _per_channel_map(y.shape, axes, [p.gain for p in params])
    planes = {name: channel_planes(array, axes) for name, array in
              (("noisy", y), ("denoised", f), ("variance", variance))}
    channels = len(params)
    # The tests that draw maps split the family-wise error.
    share = alpha / (2 + (channels > 1) + (classical is not None))
    # Third cumulant a·v: an upper bound of a²(f − offset) that needs no offset.
    consistency = _in_axes(check_consistency(
        planes["noisy"], planes["denoised"], planes["variance"],
        channel_planes(gains * variance, axes), alpha=share), y.shape, axes)
    intensity = _intensity_in_axes(check_intensity(
        planes["noisy"], planes["denoised"], planes["variance"], alpha=share), y.shape, axes)
    checks = [_consistency_check(consistency), _intensity_check(intensity)]
    ratio_flags = None
    if channels > 1:
        by_channel = {k: v.reshape(channels, -1, *v.shape[-2:]) for k, v in planes.items()}
        ratios = check_ratios(by_channel["noisy"], by_channel["denoised"],
                              by_channel["variance"], alpha=share)
        checks.append(_ratio_check(ratios))
        every_channel = np.broadcast_to(ratios.flags, by_channel["noisy"].shape)
        ratio_flags = _from_planes(every_channel.reshape(planes["noisy"].shape), y.shape, axes)
    disagreement = None
    if classical is not None:
        disagreement = _disagreement_in_axes(check_disagreement(
            planes["denoised"], channel_planes(classical, axes), planes["variance"],
            alpha=share), y.shape, axes)
        checks.append(_disagreement_check(disagreement, reference_method, axes))
    if signature is not None:
        checks.append(_domain_check(signature, y, axes))
    return QualityReport(axes=axes, data_range=peak, risk=risk, noise=params,
                         consistency=consistency, intensity=intensity, checks=checks,
                         ratio_flags=ratio_flags, disagreement=disagreement,
                         truth=None if truth is None else _truth(f, truth, axes, peak),
                         alpha=alpha, noise_correlation_share=correlation_share)


def _same_shape(image: np.ndarray, noisy: np.ndarray, name: str, axes: str) -> np.ndarray:
    if np.shape(image) != noisy.shape:
        raise InfocusInputError(
            f"The {name} has shape {np.shape(image)} but the noisy image {noisy.shape} (axes "
            f"{axes}); pass images of the same field of view, same size."
        )
    return check_image(image, axes, name=name, dtype=np.float64)


def _reference_output(reference: np.ndarray, noisy: np.ndarray, axes: str) -> np.ndarray:
    """The reference as float64; whole YX planes of NaN (not denoised) are allowed."""
    if np.shape(reference) != noisy.shape:
        return _same_shape(reference, noisy, "reference output", axes)
    values = np.asarray(reference, np.float64)
    missing = np.isnan(values)
    planes = channel_planes(missing, axes)
    skipped = planes.all(axis=(1, 2))
    if skipped.all() or planes[~skipped].any():
        raise InfocusInputError(
            "The reference output has NaN pixels outside planes left out as a whole (or no "
            "plane at all); pass a classical denoiser's output, NaN only on YX planes it did "
            "not denoise.")
    checked = check_image(np.where(missing, 0.0, values), axes, name="reference output",
                          dtype=np.float64)
    return np.where(missing, np.nan, checked)


def _noise_per_channel(noisy: np.ndarray, axes: str,
                       noise: NoiseParams | Sequence[NoiseParams] | None
                       ) -> tuple[list[NoiseParams], list[np.ndarray] | None]:
    """The noise model of every channel, and the covariance of each one's parameters where
    they were estimated here (None for a noise model that was given)."""
    channels = noisy.shape[axes.index("C")] if "C" in axes else 1
    if isinstance(noise, NoiseParams):
        return [noise] * channels, None
    if noise is not None:
        params = list(noise)
        if len(params) != channels or not all(isinstance(p, NoiseParams) for p in params):
            raise InfocusInputError(
                f"Give one noise model for all channels or one per channel ({channels}); got "
                f"{len(params)}."
            )
        return params, None
    from infocus.noise import estimate_noise_with_error

    rest = axes.replace("C", "")
    estimates, covariances = [], []
    for index in range(channels):
        plane = np.take(noisy, index, axis=axes.index("C")) if "C" in axes else noisy
        try:
            params, covariance = estimate_noise_with_error(plane, axes=rest)
        except InfocusInputError as error:
            raise _no_noise_model(str(error)) from None
        if params.gain * float(np.median(plane)) + params.variance_intercept <= 0:
            raise _no_noise_model("the image shows no noise")
        estimates.append(params)
        covariances.append(covariance)
    return estimates, covariances


def per_pixel_noise(params: list[NoiseParams], covariances: list[np.ndarray] | None,
                    correlation: NoiseCorrelation
                    ) -> tuple[list[NoiseParams], list[np.ndarray] | None, float | None]:
    """The noise models estimated here corrected to the per-pixel variance where the noise is
    correlated between pixels (:func:`~infocus.noise.correct_for_correlation`: on FMD's
    widefield captures the white-noise estimate reads 0.13–0.17 of the variance, corrected
    0.68–0.90), their covariances, and the share of the variance the estimate saw (None where
    nothing was corrected). A given model (``covariances`` None) is the user's and is kept; so
    is an estimate where the correlation is too weak to widen a blind spot, by the rule the
    risk estimate uses for its probes."""
    if covariances is None or not correlation.blind_pattern():
        return params, covariances, None
    corrected = [correct_for_correlation(p, correlation, c)
                 for p, c in zip(params, covariances, strict=True)]
    return ([p for p, _ in corrected], [c for _, c in corrected],
            detail_share(correlation))


def _no_noise_model(reason: str) -> InfocusInputError:
    return InfocusInputError(
        f"No noise model could be estimated from the noisy image ({reason}); give the camera's "
        "gain, offset and read noise (or --sigma for Gaussian noise), and check that NOISY is "
        "the raw image."
    )


def _per_channel_map(shape: tuple[int, ...], axes: str, values: list[float]) -> np.ndarray:
    """An array broadcastable to ``shape`` holding ``values[c]`` along the channel axis."""
    if "C" not in axes:
        return np.full((1,) * len(shape), values[0])
    layout = [1] * len(shape)
    layout[axes.index("C")] = len(values)
    return np.asarray(values, np.float64).reshape(layout)


def _variance_function(params: list[NoiseParams], axes: str, denoised: np.ndarray, *,
                       floored: bool) -> Callable[[np.ndarray], np.ndarray]:
    r"""``image -> a_c * image + b_c`` per channel.

    The error estimates need it unclipped (it is unbiased for :math:`v(\theta)` only so). The
    tests divide by it, and near the camera's dark level :math:`a f + b` can be zero or
    negative (the offset enters :math:`b`): ``floored`` keeps it at least the variance at the
    output's 1st percentile, or 5 % of its median variance when that is not positive.
    """
    gain = _per_channel_map(denoised.shape, axes, [p.gain for p in params])
    intercept = _per_channel_map(denoised.shape, axes, [p.variance_intercept for p in params])
    per_channel = tuple(i for i, a in enumerate(axes) if a != "C")
    typical = np.median(gain * denoised + intercept, axis=per_channel, keepdims=True)
    low = gain * np.percentile(denoised, 1, axis=per_channel, keepdims=True) + intercept
    floor = np.where(low > 0, low, 0.05 * np.maximum(typical, 1e-12))

    def variance(image: np.ndarray) -> np.ndarray:
        linear = gain * image + intercept
        return np.maximum(linear, floor) if floored else linear

    return variance


def _check_units(noisy: np.ndarray, denoised: np.ndarray, axes: str) -> None:
    """Refuse an output whose intensities are on another scale than the measurement's (a
    rescaled or normalised output makes every check meaningless).

    A denoiser keeps the mean intensity and does not widen the range of the smoothed data; a
    heavily smoothed (or poor) output narrows the range, which is allowed.
    """
    smooth = ndimage.gaussian_filter(channel_planes(noisy, axes), (0, 2, 2))
    low, high = np.percentile(smooth, [1, 99])
    out_low, out_high = np.percentile(denoised, [1, 99])
    spread = high - low
    if spread <= 0:
        return
    shift = abs(float(np.mean(denoised)) - float(np.mean(noisy))) / spread
    if shift <= 0.25 and (out_high - out_low) <= 2.0 * spread:
        return
    raise InfocusInputError(
        f"The denoised image does not seem to be in the noisy image's units: its mean is "
        f"{np.mean(denoised):.4g} and most of its values lie in {out_low:.4g} to {out_high:.4g}, "
        f"but the noisy image's mean is {np.mean(noisy):.4g} and its smoothed values lie in "
        f"{low:.4g} to {high:.4g}; pass the denoiser's output without rescaling or "
        "normalisation."
    )


def _data_range(data_range: float | None, truth: np.ndarray | None, f: np.ndarray) -> float:
    if data_range is not None:
        if not (isinstance(data_range, int | float) and math.isfinite(data_range)
                and data_range > 0):
            raise InfocusInputError(f"data_range must be a positive number, got {data_range!r}.")
        return float(data_range)
    reference = truth if truth is not None else f
    peak = float(reference.max() - reference.min())
    return peak if peak > 0 else 1.0


def _channel_first(axes: str) -> list[int]:
    """Axis order that puts the channel first and Y, X last."""
    order = [axes.index("C")] if "C" in axes else []
    order += [i for i, a in enumerate(axes) if a not in "CYX"]
    return order + [axes.index("Y"), axes.index("X")]


def channel_planes(array: np.ndarray, axes: str) -> np.ndarray:
    """``(P, Y, X)`` planes, channel by channel (the order :func:`_in_axes` undoes)."""
    moved = np.transpose(np.broadcast_to(array, array.shape), _channel_first(axes))
    return np.ascontiguousarray(moved).reshape((-1,) + moved.shape[-2:])


def _from_planes(planes: np.ndarray, shape: tuple[int, ...], axes: str) -> np.ndarray:
    order = _channel_first(axes)
    moved = planes.reshape([shape[i] for i in order])
    return np.transpose(moved, np.argsort(order))


def _in_axes(result: Consistency, shape: tuple[int, ...], axes: str) -> Consistency:
    return Consistency(z=_from_planes(result.z, shape, axes),
                       flags=_from_planes(result.flags, shape, axes),
                       threshold=result.threshold, tests=result.tests,
                       variance_ratio=result.variance_ratio,
                       residual_correlation=result.residual_correlation)


def _disagreement_in_axes(result: Disagreement, shape: tuple[int, ...], axes: str
                          ) -> Disagreement:
    return Disagreement(z=_from_planes(result.z, shape, axes),
                        flags=_from_planes(result.flags, shape, axes),
                        threshold=result.threshold, tests=result.tests,
                        rms_difference=result.rms_difference)


def _intensity_in_axes(result: IntensityCheck, shape: tuple[int, ...], axes: str
                       ) -> IntensityCheck:
    return IntensityCheck(objects=result.objects, labels=_from_planes(result.labels, shape, axes),
                          flags=_from_planes(result.flags, shape, axes),
                          threshold=result.threshold, total=result.total)


def _consistency_check(result: Consistency) -> Check:
    figures = {"flagged_fraction": result.flagged_fraction,
               "max_abs_z": float(np.abs(result.z).max()), "threshold": result.threshold,
               "tests": result.tests, "variance_ratio": result.variance_ratio,
               "residual_correlation": result.residual_correlation}
    if not result.flags.any():
        return Check("consistency", True, "the residual is noise everywhere", figures)
    brighter = bool((result.z[result.flags] < 0).any())
    darker = bool((result.z[result.flags] > 0).any())
    where = " and ".join(
        text for text, present in (("brighter", brighter), ("darker", darker)) if present)
    return Check("consistency", False,
                 f"{100 * result.flagged_fraction:.2g} % of the image is {where} than the "
                 "measurement supports", figures)


def _disagreement_check(result: Disagreement, method: str | None, axes: str) -> Check:
    compared = np.isfinite(channel_planes(result.z, axes)).all(axis=(1, 2))
    figures = {"reference": method, "flagged_fraction": result.flagged_fraction,
               "compared_fraction": result.compared_fraction,
               "planes_compared": int(compared.sum()), "planes": int(compared.size),
               "max_abs_z": float(np.nanmax(np.abs(result.z))), "threshold": result.threshold,
               "tests": result.tests, "rms_difference": result.rms_difference}
    details = [method] if method else []
    if not compared.all():
        details.append(f"on {compared.sum()} of {compared.size} planes")
    reference = "the classical reference" + (f" ({', '.join(details)})" if details else "")
    if not result.flags.any():
        return Check("disagreement", True,
                     f"the output agrees with {reference} up to chance", figures)
    brighter = bool((result.z[result.flags] < 0).any())
    darker = bool((result.z[result.flags] > 0).any())
    where = " and ".join(
        text for text, present in (("brighter", brighter), ("darker", darker)) if present)
    share = "of the image" if compared.all() else "of the planes compared"
    return Check("disagreement", False,
                 f"{100 * result.flagged_fraction:.2g} % {share} is {where} than {reference} "
                 "beyond chance (look there: one of the two is wrong)", figures)


def _intensity_check(result: IntensityCheck) -> Check:
    flagged = result.flagged_objects
    total = result.total
    figures = {"objects": len(result.objects), "flagged_objects": len(flagged),
               "threshold": result.threshold, "total_relative_change": total.relative_change,
               "total_z": total.z,
               "worst_relative_change": max((o.relative_change for o in result.objects),
                                            key=abs, default=0.0)}
    problems = []
    if flagged:
        problems.append(f"{len(flagged)} of {len(result.objects)} objects changed intensity "
                        f"(up to {100 * abs(figures['worst_relative_change']):.0f} %)")
    if total.flagged:
        problems.append(f"the total intensity changed by {100 * total.relative_change:+.1f} %")
    if not problems:
        return Check("intensity", True,
                     f"integrated intensities of {len(result.objects)} objects kept", figures)
    return Check("intensity", False, "; ".join(problems), figures)


def _ratio_check(result: RatioCheck) -> Check:
    flagged = result.flagged
    worst = max((c["relative_change"] for c in result.changes), key=abs, default=0.0)
    figures = {"objects": int(result.labels.max()), "ratios": len(result.changes),
               "flagged_ratios": len(flagged), "threshold": result.threshold,
               "worst_relative_change": worst,
               "median_abs_relative_change": float(np.median(
                   [abs(c["relative_change"]) for c in result.changes])) if result.changes
               else 0.0,
               # What the measured ratios' own noise allows: the true error of each output
               # ratio lies within its change ± this many standard errors at `coverage`.
               "rms_relative_standard_error": float(np.sqrt(np.mean(
                   [c["relative_standard_error"] ** 2 for c in result.changes])))
               if result.changes else 0.0,
               "coverage": result.coverage}
    if not flagged:
        return Check("ratio", True, f"channel ratios of {len(result.changes)} object(s) kept",
                     figures)
    return Check("ratio", False,
                 f"the channel ratio of {len(flagged)} of {len(result.changes)} object(s) "
                 f"changed (up to {100 * abs(worst):.0f} %)", figures)


def _domain_check(signature: dict[str, Any], noisy: np.ndarray, axes: str) -> Check:
    from infocus.intensity.signature import compare_signature

    moved = np.transpose(noisy, _channel_first(axes))
    # A model that took the channels one at a time (channels="independent") was trained on
    # all of them pooled, and its signature has one entry: compare the input pooled too.
    pooled = len(signature.get("channels", [])) == 1
    channels = noisy.shape[axes.index("C")] if "C" in axes and not pooled else 1
    findings = compare_signature(signature, moved.reshape(channels, -1, *moved.shape[-2:]))
    figures = {"findings": findings}
    if not findings:
        return Check("domain", True, "the input looks like the model's training data", figures)
    return Check("domain", False, "the input is unlike the model's training data: "
                 + "; ".join(findings), figures)


def _truth(f: np.ndarray, truth: np.ndarray, axes: str, peak: float) -> dict[str, float]:
    from infocus.metrics import evaluate

    mse = float(np.mean((f - truth) ** 2))
    scores = evaluate(f, truth, axes=axes, data_range=peak)["mean"]
    return {"mse": mse, "psnr": 10 * math.log10(peak**2 / mse) if mse > 0 else math.inf,
            "ssim": float(scores["ssim"])}


def _db(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "∞"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
