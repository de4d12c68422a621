r"""How far a denoised image is from the unknown clean one, estimated without ground truth.

For a measurement :math:`y` with :math:`\mathrm{E}[y] = \theta` and the Poisson–Gaussian
variance :math:`v(\theta) = a\theta + b` (:class:`~infocus.noise.NoiseParams`), and a denoiser
:math:`f`, the mean squared error :math:`\frac1N\lVert f(y) - \theta\rVert^2` has the unbiased
(to first order in the Poisson part) estimate

.. math::
    \widehat{\mathrm{MSE}} = \frac1N\Big(\lVert f(y) - y\rVert^2 - \sum_i v(y_i)
        + 2\sum_i v(y_i)\,\frac{\partial f_i}{\partial y_i}(y)\Big),

Stein's unbiased risk estimate (SURE) extended to signal-dependent noise: exact for Gaussian
noise (Stein 1981), and for the Poisson part it is PG-URE's first-order form (Luisier, Blu &
Unser 2011, "Image denoising in mixed Poisson–Gaussian noise", IEEE TIP 20(3)), using
:math:`\mathrm{E}[y_i \, g(y)] \approx \theta_i \mathrm{E}[g] + v(\theta_i)\,\mathrm{E}[\partial_i g]`.
The weight :math:`v(\theta_i)` of the divergence term is evaluated at the output,
:math:`v(f_i(y))`, not at :math:`y_i`: :math:`v(y_i)` is unbiased for :math:`v(\theta_i)` but
at low counts it correlates with :math:`\partial_i f_i`, because a denoiser working through a
variance-stabilising transform (Anscombe) is steepest where :math:`y_i` is small; with
:math:`v(y_i)` the estimate of a Gaussian filter behind the Anscombe transform was 2.7–4.1 dB
optimistic at 5 photons per pixel, and BM3D's estimated MSE came out negative. The output's
dependence on :math:`y_i`'s own noise is weak, so :math:`v(f_i)` is a near-independent plug-in.

The weighted divergence :math:`\sum_i v_i \partial_i f_i` needs the denoiser again: it is
measured by Monte-Carlo (Ramani, Blu & Unser 2008, "Monte-Carlo SURE"): for a random
:math:`\pm1` probe :math:`n`, :math:`\sum_i v_i \partial_i f_i \approx \frac1\varepsilon
\sum_i v_i n_i \big(f_i(y + \varepsilon n) - f_i(y)\big)`. Without a way to run the denoiser
again, the MSE can only be bounded: the divergence of a denoiser that averages a pixel with its
neighbours lies in :math:`[0, 1]` per pixel, and a reference denoiser whose MSE is known bounds
the output's by the triangle inequality (:func:`_output_only_bounds`).

A second capture :math:`y'` of the same scene, with independent noise, gives an estimate that
needs neither the denoiser nor its divergence (the Noise2Noise identity, Lehtinen et al. 2018):
:math:`\mathrm{E}\lVert f(y) - y'\rVert^2 = N\,\mathrm{MSE} + \sum_i v(\theta_i)`, and the
noise variance is measured from the captures too, :math:`\mathrm{E}(y_i - y'_i)^2 = 2 v(\theta_i)`,
so :math:`\widehat{\mathrm{MSE}} = \frac1N\big(\lVert f(y) - y'\rVert^2 - \tfrac12\lVert y -
y'\rVert^2\big)` needs no noise model. A scene that changed between the captures biases
it: captures whose brightness differs from the noisy image's beyond noise are found and left
out (:func:`agreeing_captures`), and with none left the estimate falls back to SURE or the
bounds.

The interval of an estimate comes from its spatial spread: the per-pixel terms are averaged
over blocks (large enough that the denoiser's dependence between blocks is small), and the
standard error of the block means gives a 95 % interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from infocus._errors import InfocusInputError
from infocus._validate import check_image
from infocus.axes import check_axes, yx_planes
from infocus.noise import NoiseParams
from infocus.noise.correlation import NoiseCorrelation

__all__ = ["RiskEstimate", "estimate_mse", "estimated_psnr"]

#: Edge of the blocks whose means give the interval (pixels).
BLOCK = 16
#: Two-sided 95 % normal quantile.
Z95 = 1.96


@dataclass(frozen=True)
class RiskEstimate:
    """A ground-truth-free estimate of the MSE of a denoised image.

    Attributes
    ----------
    mse : float
        The estimate (camera units squared).
    low, high : float
        A 95 % interval (for ``method="bounds"``: the bounds themselves).
    method : str
        ``"sure"`` (the denoiser was run again for the divergence), ``"second capture"``
        (another capture of the scene was given) or ``"bounds"`` (neither: ``mse`` is then the
        interval's upper end, see :func:`_output_only_bounds`).
    note : str
        What the estimate left out and why (captures whose brightness differs from the noisy
        image's, :func:`agreeing_captures`), or empty.
    """

    mse: float
    low: float
    high: float
    method: str
    note: str = ""


def estimate_mse(
    noisy: np.ndarray,
    denoised: np.ndarray,
    noise: NoiseParams | Callable[[np.ndarray], np.ndarray],
    *,
    denoiser: Callable[[np.ndarray], np.ndarray] | None = None,
    capture: np.ndarray | Sequence[np.ndarray] | None = None,
    probes: int = 2,
    seed: int = 0,
    axes: str | None = None,
    correlation: NoiseCorrelation | None = None,
    noise_covariance: np.ndarray | Sequence[np.ndarray] | None = None,
) -> RiskEstimate:
    r"""Estimate :math:`\frac1N\lVert f(y) - \theta\rVert^2` without the clean image.

    Parameters
    ----------
    noisy, denoised : ndarray
        The measurement :math:`y` and the denoiser's output :math:`f(y)`, same shape, camera
        units (the output must not be rescaled or normalised).
    noise : NoiseParams or callable
        The noise model of ``noisy`` (e.g. :func:`~infocus.noise.estimate_noise`), or a function
        giving the noise variance of every pixel of an image (channels with their own
        parameters).
    denoiser : callable, optional
        ``denoiser(noisy) -> denoised``, deterministic; lets the divergence be measured
        (``method="sure"``). Without it the estimate is an interval (``method="bounds"``).
    capture : ndarray or sequence of ndarray, optional
        Another capture of the same scene with independent noise (not denoised), or several:
        ``method="second capture"``, which needs no denoiser; several captures average their
        estimates. A capture whose brightness differs from the noisy image's is left out
        (:func:`agreeing_captures`; the estimate's ``note`` says so), and with none left the
        estimate is made as without captures.
    probes : int
        Monte-Carlo probes for the divergence (each runs the denoiser once more).
    seed : int
        Seeds the probes.
    axes : str, optional
        Axes of the images (to find Y and X); default: the last two are Y and X.
    correlation : NoiseCorrelation, optional
        The noise's spatial correlation (:func:`~infocus.noise.estimate_noise_correlation`).
        Stein's identity then needs the covariance, not the variance:
        :math:`\mathrm{E}[n^\top f(y)] = \mathrm{tr}(J_f C)` with
        :math:`C_{ij} = \sqrt{v_i v_j}\,\rho(i - j)`; the probes are correlated accordingly.
        None: independent pixels.
    noise_covariance : ndarray (2, 2) or sequence of them, optional
        Covariance of the noise model's ``(gain, variance_intercept)`` when they were
        estimated (:func:`~infocus.noise.estimate_noise_with_error`), one for all pixels or one
        per channel (axis ``C``). The SURE interval then also holds the noise model's own
        error (:func:`_noise_model_error`); None: the noise model counts as exact (a
        calibrated camera). The second-capture estimate needs no noise model; the bounds
        are not widened.

    Returns
    -------
    RiskEstimate

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.ndimage import gaussian_filter
    >>> from infocus.noise import NoiseParams
    >>> rng = np.random.default_rng(0)
    >>> clean = gaussian_filter(rng.uniform(50, 150, (128, 128)), 4)
    >>> noisy = clean + rng.normal(0, 5, clean.shape)
    >>> smooth = lambda x: gaussian_filter(x, 1.5)
    >>> estimate = estimate_mse(noisy, smooth(noisy), NoiseParams.gaussian(5), denoiser=smooth)
    >>> true = float(np.mean((smooth(noisy) - clean) ** 2))
    >>> abs(estimate.mse - true) / true < 0.1
    True
    """
    shape = np.shape(noisy)
    axes = check_axes(axes, shape) if axes is not None else "S" * (len(shape) - 2) + "YX"
    y = check_image(noisy, axes, name="noisy image", dtype=np.float64)
    if np.shape(denoised) != y.shape:
        raise InfocusInputError(
            f"The denoised image has shape {np.shape(denoised)} but the noisy one {y.shape}; "
            "pass the denoiser's output for this very image."
        )
    f = check_image(denoised, axes, name="denoised image", dtype=np.float64)
    if isinstance(noise, NoiseParams):
        variance_of = _variance_function(noise)
    elif callable(noise):
        variance_of = noise
    else:
        raise InfocusInputError(
            f"noise must be a NoiseParams (got {type(noise).__name__}); estimate it with "
            "infocus.noise.estimate_noise(noisy)."
        )
    if isinstance(probes, bool) or not isinstance(probes, int) or probes < 1:
        raise InfocusInputError(f"probes must be a positive integer, got {probes!r}.")
    note = ""
    if capture is not None:
        captures = [capture] if isinstance(capture, np.ndarray) else list(capture)
        checked = [check_image(c, axes, name="second capture", dtype=np.float64)
                   for c in captures]
        _check_captures(y, f, checked)
        kept, note = agreeing_captures(y, f, checked, axes)
        if kept:
            return replace(_from_captures(y, f, kept, axes), note=note)
    return replace(_from_noise_model(y, f, variance_of, denoiser, probes, seed, axes,
                                     correlation, noise_covariance), note=note)


def _from_noise_model(y: np.ndarray, f: np.ndarray,
                      variance_of: Callable[[np.ndarray], np.ndarray],
                      denoiser: Callable[[np.ndarray], np.ndarray] | None, probes: int,
                      seed: int, axes: str, correlation: NoiseCorrelation | None,
                      noise_covariance: np.ndarray | Sequence[np.ndarray] | None
                      ) -> RiskEstimate:
    """SURE when the denoiser can be run again, else the output-only bounds."""
    variance = variance_of(y)
    base = (f - y) ** 2 - variance
    kernel = _correlation_kernel(correlation, axes)
    if denoiser is None:
        return _output_only_bounds(y, f, variance, axes, kernel)
    # The divergence's weights are v(θ) (the identity below); v(y) would be unbiased for it but
    # correlates with ∂f_i/∂y_i at low light (a variance-stabilised denoiser's slope grows as
    # y_i falls), which made the estimate several dB optimistic at 5 photons. The output is a
    # plug-in for θ nearly independent of y_i's own noise.
    weights = np.maximum(variance_of(f), 0.0)
    divergence = _weighted_divergence(y, f, weights, denoiser, probes, seed, kernel)
    terms = base + 2.0 * divergence
    mse = float(np.mean(terms))
    spread = _block_standard_error(terms, axes)
    if noise_covariance is not None:
        slope = np.divide(divergence, weights, out=np.zeros_like(divergence),
                          where=weights > 1e-12 * max(float(weights.max()), 1e-300))
        spread = math.hypot(spread, _noise_model_error(y, f, slope, noise_covariance, axes))
    return RiskEstimate(mse=mse, low=mse - Z95 * spread, high=mse + Z95 * spread, method="sure")


def _noise_model_error(y: np.ndarray, f: np.ndarray, slope: np.ndarray,
                       covariance: np.ndarray | Sequence[np.ndarray], axes: str) -> float:
    r"""Standard error of the SURE estimate caused by the noise model's estimated parameters.

    With :math:`v(x) = a x + b` and :math:`D_i = \partial f_i / \partial y_i`, the estimate
    :math:`\frac1N \sum_i (f_i - y_i)^2 - v(y_i) + 2 v(f_i) D_i` moves with the parameters
    along :math:`g = \frac1N \sum_i (2 f_i D_i - y_i,\; 2 D_i - 1)`, so its variance from
    them is :math:`g^\top \Sigma g` (first order), summed over channels with their own
    :math:`\Sigma`. A denoiser that averages many pixels (:math:`D \approx 0`) inherits the
    noise model's whole error: its estimate subtracts the mean noise variance.
    """
    channels = y.shape[axes.index("C")] if "C" in axes else 1
    covariances = ([np.asarray(covariance, np.float64)] * channels
                   if np.ndim(covariance) == 2 else [np.asarray(c, np.float64) for c in covariance])
    if len(covariances) != channels or any(c.shape != (2, 2) for c in covariances):
        raise InfocusInputError(
            f"noise_covariance must be one 2×2 matrix or one per channel ({channels}); got "
            f"{len(covariances)} of shape {[c.shape for c in covariances]}."
        )
    per_channel = [(y, f, slope)] if "C" not in axes else [
        tuple(np.take(a, index, axis=axes.index("C")) for a in (y, f, slope))
        for index in range(channels)]
    total = 0.0
    for (y_c, f_c, slope_c), sigma in zip(per_channel, covariances, strict=True):
        gradient = np.array([np.sum(2.0 * f_c * slope_c - y_c),
                             np.sum(2.0 * slope_c - 1.0)]) / y.size
        total += float(gradient @ sigma @ gradient)
    return math.sqrt(max(total, 0.0))


def _variance_function(noise: NoiseParams) -> Callable[[np.ndarray], np.ndarray]:
    # Not clipped at zero: a y + b is an unbiased estimate of a θ + b only unclipped (a noisy
    # dark pixel may fall below the offset), and only means of it enter the estimates.
    def variance(image: np.ndarray) -> np.ndarray:
        return noise.gain * image + noise.variance_intercept

    return variance


def _from_captures(y: np.ndarray, f: np.ndarray, captures: list[np.ndarray], axes: str
                   ) -> RiskEstimate:
    r"""The Noise2Noise identity with the noise variance measured from the captures themselves:
    for two captures :math:`y_j, y_k` of one scene, :math:`\mathrm{E}[(y_j - y_k)^2]/2 = v(\theta)`
    exactly, so no noise model (and none of its estimation error) enters. All pairs among
    ``y`` and ``captures`` are averaged."""
    images = [y, *captures]
    pairs = [(j, k) for j in range(len(images)) for k in range(j + 1, len(images))]
    noise_variance = sum((images[j] - images[k]) ** 2 for j, k in pairs) / (2 * len(pairs))
    squared = sum((f - capture) ** 2 for capture in captures) / len(captures)
    terms = squared - noise_variance
    mse = float(np.mean(terms))
    spread = _block_standard_error(terms, axes)
    return RiskEstimate(mse=mse, low=mse - Z95 * spread, high=mse + Z95 * spread,
                        method="second capture")


def _check_captures(y: np.ndarray, f: np.ndarray, captures: list[np.ndarray]) -> None:
    if not captures:
        raise InfocusInputError("No second capture was given; pass at least one, or none.")
    for capture in captures:
        if capture.shape != f.shape:
            raise InfocusInputError(
                f"A second capture has shape {capture.shape} but the denoised image {f.shape}; "
                "pass another capture of the same field of view."
            )
    images = [y, *captures]
    for j in range(len(images)):
        for k in range(j + 1, len(images)):
            # Two copies of one capture have no noise between them: the identity would read
            # the noise variance as 0 and the output's distance to the copy as its error.
            if np.array_equal(images[j], images[k]):
                first = "the noisy image" if j == 0 else f"capture {j}"
                raise InfocusInputError(
                    f"Capture {k} is identical to {first} (the same file twice?); give other "
                    "captures of the scene, each with its own noise."
                )


#: A capture is used when the bias its difference from the noisy image's scene brings
#: (:func:`capture_mismatch`) is at most this share of the estimated MSE (about 0.2 dB).
CAPTURE_AGREEMENT = 0.05
#: Width (pixels) of the smoothing that :func:`capture_mismatch` regresses on.
MISMATCH_SMOOTHING = 2.0


def capture_mismatch(y: np.ndarray, capture: np.ndarray, axes: str) -> tuple[float, float]:
    r"""How a capture's expected image differs from the noisy image's: ``(brightness ratio,
    mean square of the difference)``.

    The difference :math:`d = y' - y` has expectation :math:`\delta = \theta' - \theta`.
    It is regressed on :math:`u = S(y + y')`, a Gaussian smoothing over Y and X: with one
    scene, :math:`\mathrm{E}\operatorname{cov}(d, u) = s\,(\bar v' - \bar v) = 0`
    (:math:`s` the smoothing's centre weight), whatever the noise; a capture of brightness
    :math:`\theta' - \mu = r(\theta - \mu)` above the camera offset :math:`\mu` gives the
    slope :math:`\beta \approx (r - 1) / (r + 1)`, so :math:`r = (1 + \beta)/(1 - \beta)`
    (the noise left in :math:`u` pulls it towards 1, the brighter capture's larger noise
    variance away from it; on simulated data it read 1.2 as 1.21). The mean square of
    :math:`\delta` is then about
    :math:`\beta^2 \operatorname{var}(u) + \bar d^2`. A change other than in brightness (the
    scene drifted) is not seen.

    The Noise2Noise identity with such a capture estimates the MSE plus about half that mean
    square: confocal and two-photon captures of one view in FMD differ in brightness by up to
    20 % (laser power, bleaching), which made the estimate several dB pessimistic or optimistic.
    """
    sigma = [MISMATCH_SMOOTHING if axis in "YX" else 0.0 for axis in axes]
    difference = capture - y
    smoothed = ndimage.gaussian_filter(capture + y, sigma)
    centred = smoothed - smoothed.mean()
    spread = float(np.mean(centred**2))
    if spread <= 0:
        return 1.0, float(np.mean(difference)) ** 2
    slope = float(np.mean((difference - difference.mean()) * centred)) / spread
    ratio = (1 + slope) / (1 - slope) if slope < 1 else math.inf
    return ratio, slope**2 * spread + float(np.mean(difference)) ** 2


def agreeing_captures(y: np.ndarray, f: np.ndarray, captures: list[np.ndarray], axes: str
                      ) -> tuple[list[np.ndarray], str]:
    r"""The captures whose scene agrees with the noisy image's, and a sentence on those left
    out (empty when none was).

    A capture is kept when half the mean square of its expected difference from the noisy
    image (:func:`capture_mismatch`), the bias it would bring, is at most
    :data:`CAPTURE_AGREEMENT` of the lowest MSE that any capture alone estimates, plus the
    level that noise alone gives that mean square (about :math:`6 \bar v / N`, its 95th
    percentile for :math:`N` pixels).
    """
    mismatches = [capture_mismatch(y, capture, axes) for capture in captures]
    alone = [float(np.mean((f - c) ** 2) - np.mean((y - c) ** 2) / 2) for c in captures]
    reference = max(min(alone), 0.0)
    kept, left_out = [], []
    for index, (capture, (ratio, square)) in enumerate(zip(captures, mismatches, strict=True),
                                                      start=1):
        noise_level = 6 * float(np.mean((y - capture) ** 2)) / 2 / y.size
        if square / 2 <= CAPTURE_AGREEMENT * reference + noise_level:
            kept.append(capture)
        else:
            left_out.append(f"capture {index} ({_brightness_words(ratio)})")
    if not left_out:
        return kept, ""
    what = ", ".join(left_out)
    if kept:
        whose = "its scene differs" if len(left_out) == 1 else "their scenes differ"
        return kept, (f"left out {what}: {whose} from the noisy image's beyond noise, which "
                      "the estimate from captures assumes away")
    return kept, (f"no capture used ({what}): each one's scene differs from the noisy "
                  "image's beyond noise, which the estimate from captures assumes away; "
                  "capture again at the same settings")


def _brightness_words(ratio: float) -> str:
    if not math.isfinite(ratio):
        return "far brighter"
    change = 100 * (ratio - 1)
    if abs(change) < 1:
        return "same brightness, other differences"
    return f"{abs(change):.0f} % {'brighter' if change > 0 else 'dimmer'}"


def estimated_psnr(estimate: RiskEstimate, data_range: float) -> tuple[float, float, float]:
    """``(psnr, low, high)`` in dB for ``estimate`` and the peak ``data_range``; an MSE at or
    below zero (possible for an estimate) gives an infinite bound."""
    def to_db(value: float) -> float:
        return math.inf if value <= 0 else 10.0 * math.log10(data_range**2 / value)

    return to_db(estimate.mse), to_db(estimate.high), to_db(estimate.low)


def _weighted_divergence(y: np.ndarray, f: np.ndarray, variance: np.ndarray,
                         denoiser: Callable[[np.ndarray], np.ndarray], probes: int,
                         seed: int, kernel: np.ndarray | None = None) -> np.ndarray:
    r"""Per-pixel terms whose sum is :math:`\mathrm{tr}(J_f C)`, averaged over ``probes`` ±1
    probes :math:`b`: :math:`b_i (f_i(y + \varepsilon C b) - f_i(y)) / \varepsilon`, whose
    expectation over :math:`b` is :math:`(J_f C)_{ii}`. For independent pixels
    :math:`C = \mathrm{diag}(v)` and this is :math:`v_i\,\partial f_i/\partial y_i`.

    The perturbation :math:`\varepsilon C b` is about 1 % of the noise's standard deviation:
    small against the noise (so the finite difference is local) yet far above float32 rounding
    of the denoiser's arithmetic.
    """
    rng = np.random.default_rng(seed)
    epsilon = 0.01 / math.sqrt(max(float(np.mean(variance)), 1e-12))
    # Differences are taken against the denoiser's own output, not the given one: an output
    # saved as integers differs from it by rounding, which the division by epsilon would blow up.
    reference = _run(denoiser, y)
    _check_reproduces(reference, f)
    root = np.sqrt(np.maximum(variance, 0.0))
    total = np.zeros_like(y)
    for _ in range(probes):
        probe = rng.choice(np.array([-1.0, 1.0]), size=y.shape)
        direction = variance * probe if kernel is None else root * ndimage.correlate(
            root * probe, kernel, mode="reflect")
        total += probe * (_run(denoiser, y + epsilon * direction) - reference) / epsilon
    return total / probes


def _correlation_kernel(correlation: NoiseCorrelation | None, axes: str) -> np.ndarray | None:
    """The noise's correlation as a kernel over the images' axes (Y and X only), or None when
    the pixels count as independent: by the rule that widens Noise2Void's blind spot
    (:meth:`NoiseCorrelation.blind_pattern`), since an estimate from one image reads a little
    of the image's own structure as correlation."""
    if correlation is None or not correlation.blind_pattern():
        return None
    lag = max(max(abs(dy), abs(dx)) for dy, dx in correlation.offsets)
    plane = np.array([[correlation.at(dy, dx) for dx in range(-lag, lag + 1)]
                      for dy in range(-lag, lag + 1)])
    shape = [1] * len(axes)
    shape[axes.index("Y")], shape[axes.index("X")] = plane.shape
    return plane.reshape(shape) if axes.index("Y") < axes.index("X") else plane.T.reshape(shape)


#: Widths (pixels) among which the reference Gaussian filter is chosen by SURE.
REFERENCE_WIDTHS = (0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6)


def _output_only_bounds(y: np.ndarray, f: np.ndarray, variance: np.ndarray, axes: str,
                        kernel: np.ndarray | None = None) -> RiskEstimate:
    r"""An interval for the MSE of an output whose denoiser cannot be run again.

    Two bounds are intersected. (1) The divergence of an averaging denoiser lies in [0, 1] per
    pixel, so :math:`\overline{(f-y)^2} - \bar v \le \mathrm{MSE} \le \overline{(f-y)^2} +
    \bar v`. (2) A reference denoiser :math:`g` whose MSE we can estimate (a Gaussian filter,
    its width chosen by SURE, whose divergence is its kernel's centre weight exactly) bounds
    the output's root MSE by the triangle inequality:
    :math:`\lvert d - \rho_g\rvert \le \rho_f \le d + \rho_g` with
    :math:`d = \lVert f - g\rVert / \sqrt N`. The estimate reported is the interval's upper
    end (a PSNR the output reaches at least): no point inside it can be preferred without the
    denoiser.
    """
    residual = float(np.mean((f - y) ** 2))
    mean_variance = float(np.mean(variance))
    low, high = max(residual - mean_variance, 0.0), residual + mean_variance
    reference_mse, reference = _reference_filter(y, variance, axes, kernel)
    if reference_mse > 0:
        distance = math.sqrt(float(np.mean((f - reference) ** 2)))
        root = math.sqrt(reference_mse)
        low = max(low, max(distance - root, 0.0) ** 2)
        high = min(high, (distance + root) ** 2)
    high = max(high, low)
    return RiskEstimate(mse=high, low=low, high=high, method="bounds")


def _reference_filter(y: np.ndarray, variance: np.ndarray, axes: str,
                      kernel: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The Gaussian filter of :data:`REFERENCE_WIDTHS` with the lowest SURE, and that SURE.

    Its divergence is exact: the kernel's centre weight, or with correlated noise the sum of
    its weights times the noise correlation at their offsets."""
    correlation = None if kernel is None else kernel.reshape(
        [n for n in kernel.shape if n > 1] or [1, 1])
    best: tuple[float, np.ndarray] | None = None
    for width in REFERENCE_WIDTHS:
        sigma = [width if axis in "YX" else 0.0 for axis in axes]
        smoothed = ndimage.gaussian_filter(y, sigma, truncate=4.0)
        impulse = np.zeros((33, 33))
        impulse[16, 16] = 1.0
        weights = ndimage.gaussian_filter(impulse, width, truncate=4.0)
        if correlation is None:
            divergence = float(weights[16, 16])
        else:
            lag = correlation.shape[0] // 2
            divergence = float(np.sum(weights[16 - lag:17 + lag, 16 - lag:17 + lag]
                                      * correlation))
        risk = float(np.mean((smoothed - y) ** 2 - variance + 2 * divergence * variance))
        if best is None or risk < best[0]:
            best = (risk, smoothed)
    assert best is not None
    return best


def _run(denoiser: Callable[[np.ndarray], np.ndarray], image: np.ndarray) -> np.ndarray:
    result = np.asarray(denoiser(image), np.float64)
    if result.shape != image.shape:
        raise InfocusInputError(
            f"The denoiser returned shape {result.shape} for an image of shape {image.shape}; "
            "it must return an image of the same shape."
        )
    return result


#: How far the re-run denoiser may differ from the given output (fraction of its range, at
#: the 99th percentile of pixels): rounding to 8-bit is 0.2 %.
REPRODUCTION_TOLERANCE = 0.01


def _check_reproduces(reference: np.ndarray, f: np.ndarray) -> None:
    """Refuse a denoiser that does not make the given output: its divergence would be another
    denoiser's."""
    scale = float(np.ptp(f)) or 1.0
    difference = float(np.percentile(np.abs(reference - f), 99)) / scale
    if difference > REPRODUCTION_TOLERANCE:
        raise InfocusInputError(
            f"The denoiser given does not reproduce the denoised image (they differ by "
            f"{100 * difference:.2g} % of its range); give the method and options that made it, "
            "or leave them out for an estimate from the output alone."
        )


def _block_standard_error(terms: np.ndarray, axes: str) -> float:
    """Standard error of the mean of ``terms`` from the means of ``BLOCK``-pixel YX blocks."""
    planes = yx_planes(terms, axes)
    height, width = (n // BLOCK * BLOCK for n in planes.shape[1:])
    if height == 0 or width == 0:
        return float(np.std(terms) / math.sqrt(terms.size))
    blocks = planes[:, :height, :width].reshape(
        planes.shape[0], height // BLOCK, BLOCK, width // BLOCK, BLOCK).mean(axis=(2, 4))
    if blocks.size < 2:
        return float(np.std(terms) / math.sqrt(terms.size))
    return float(np.std(blocks, ddof=1) / math.sqrt(blocks.size))
