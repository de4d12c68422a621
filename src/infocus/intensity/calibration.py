r"""Keep a network's intensities true to the measurement: photometric calibration.

A network predicts :math:`\mathrm{E}[s \mid \text{noisy neighbourhood}]` under its *training*
distribution. On data from another microscope, sample or exposure that expectation drifts, and
the drift is an intensity error no training loss shows: CARE trained on six FMD configurations
and applied to the other six came out 17 % too bright on confocal BPAE nuclei (+2.3 grey
levels on a mean of 13) — the "denoising distorts intensities" pitfall of Laine et al. (2021).

The measurement itself pins the intensities down at large scales. Noise has zero mean
(:math:`x = s + n`, :math:`\mathrm{E}[n] = 0`), so a Gaussian-blurred measurement
:math:`G_\sigma * x` is an almost noise-free view of :math:`G_\sigma * s`: averaging over about
:math:`4\pi\sigma^2` pixels divides white noise by :math:`\sqrt{4\pi}\,\sigma` (14× at
:math:`\sigma = 4`). A prediction :math:`\hat s` in the units of the training *targets* should
therefore satisfy

.. math:: G_\sigma * \hat s \approx \alpha\, (G_\sigma * x) + \beta,

where :math:`(\alpha, \beta)` is the photometric relation between training targets and inputs
(fitted on the blurred training pairs; the identity for methods whose targets are the noisy
images themselves). Calibration fits one gain :math:`g` and offset :math:`o` per image,

.. math:: \min_{g, o} \sum_p \big(g\,(G_\sigma * \hat s)_p + o - \alpha (G_\sigma * x)_p
          - \beta\big)^2, \qquad \hat s' = g\,\hat s + o,

two numbers per image: structure is untouched, only the photometric scale is restored. A fit
that would change the scale by more than a factor of two is not applied (the image then has
too little large-scale contrast to pin it down, or the model is far outside its domain).

Measured on FMD test_mix, CARE trained on the other six configurations (shipped budget): 32.74
→ 34.00 dB mean PSNR (Confocal_BPAE_B 34.51 → 37.16), stable for σ from 2 to 16 pixels.

References
----------
R. F. Laine, G. Jacquemet, A. Krull, "Imaging in focus: an introduction to denoising bioimages in
the era of deep learning", Int. J. Biochem. Cell Biol. 140, 106077 (2021).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

__all__ = ["IntensityFit", "calibrate_intensity", "photometric_relation", "restore_large_scales"]

#: Blur (pixels) that separates the photometric scale from structure and noise.
CALIBRATION_SIGMA = 4.0
#: A gain outside [1/MAX_GAIN, MAX_GAIN] is not applied.
MAX_GAIN = 2.0


@dataclass(frozen=True)
class IntensityFit:
    """The gain and offset that made a prediction agree with its measurement.

    ``applied`` is False when the fit was refused (see :func:`calibrate_intensity`); a gain far
    from 1 or an offset far from 0 says the network distorted the intensities that much.
    """

    gain: float
    offset: float
    applied: bool

    def to_dict(self) -> dict[str, float | bool]:
        return asdict(self)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(np.asarray(image, dtype=np.float32), sigma)


def _affine(source: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Least-squares ``gain, offset`` with ``gain·source + offset ≈ target``; gain 1 when the
    source is flat (nothing to pin a gain on)."""
    source = source.astype(np.float64).ravel()
    target = target.astype(np.float64).ravel()
    spread = source.var()
    if not np.isfinite(spread) or spread <= 1e-12 * max(1.0, float(np.mean(source**2))):
        return 1.0, float(target.mean() - source.mean())
    gain = float(np.mean((source - source.mean()) * (target - target.mean())) / spread)
    return gain, float(target.mean() - gain * source.mean())


def photometric_relation(
    inputs: np.ndarray, targets: np.ndarray, sigma: float = CALIBRATION_SIGMA
) -> tuple[float, float]:
    r"""The relation :math:`(\alpha, \beta)` with :math:`G_\sigma * t \approx \alpha\,
    (G_\sigma * x) + \beta` over training pairs.

    Parameters
    ----------
    inputs, targets : ndarray, shape ``(P, *spatial)``
        Paired planes (or volumes) of noisy training inputs and their cleaner targets.

    Returns
    -------
    (alpha, beta) : tuple of float
        ``(1, 0)`` when targets are in the inputs' units (e.g. averages of the same captures).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> clean = np.stack([np.outer(np.hanning(64), np.hanning(64)) * 100 * k for k in (1, 2)])
    >>> alpha, beta = photometric_relation(clean + rng.normal(0, 5, clean.shape), 3 * clean + 10)
    >>> round(alpha, 2), round(beta)
    (3.0, 10)
    """
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.shape != targets.shape:
        raise ValueError(f"inputs {inputs.shape} and targets {targets.shape} differ in shape.")
    blurred_in = np.stack([_blur(p, sigma) for p in inputs])
    blurred_out = np.stack([_blur(p, sigma) for p in targets])
    # Regress the noisy side on the clean side, then invert: noise left in a regressor after
    # blurring would shrink the slope towards zero (regression dilution), noise in the
    # response does not.
    gain, offset = _affine(blurred_out, blurred_in)
    if abs(gain) < 1e-12:
        return 1.0, 0.0
    return 1.0 / gain, -offset / gain


def calibrate_intensity(
    prediction: np.ndarray,
    measurement: np.ndarray,
    relation: tuple[float, float] = (1.0, 0.0),
    sigma: float = CALIBRATION_SIGMA,
) -> tuple[np.ndarray, IntensityFit]:
    r"""Give ``prediction`` the measurement's photometric scale (module docstring).

    Parameters
    ----------
    prediction : ndarray
        One channel's denoised image (any number of spatial axes), in target units.
    measurement : ndarray
        The noisy image it was predicted from, camera units, same shape.
    relation : (float, float)
        Photometric relation of training targets to inputs (:func:`photometric_relation`).
    sigma : float
        Blur in pixels.

    Returns
    -------
    calibrated : ndarray, float32
        ``gain · prediction + offset``, or ``prediction`` unchanged when the fit is refused.
    fit : IntensityFit

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> clean = np.outer(np.hanning(64), np.hanning(64)) * 50 + 5
    >>> noisy = clean + rng.normal(0, 2, clean.shape)
    >>> calibrated, fit = calibrate_intensity(0.8 * clean + 3, noisy)
    >>> round(fit.gain, 2), bool(np.abs(calibrated - clean).max() < 1)
    (1.25, True)
    """
    prediction = np.asarray(prediction, dtype=np.float32)
    measurement = np.asarray(measurement)
    if prediction.shape != measurement.shape:
        raise ValueError(
            f"prediction {prediction.shape} and measurement {measurement.shape} differ in shape."
        )
    alpha, beta = relation
    expected = alpha * _blur(measurement, sigma) + beta
    gain, offset = _affine(_blur(prediction, sigma), expected)
    if not (np.isfinite(gain) and np.isfinite(offset) and 1 / MAX_GAIN <= gain <= MAX_GAIN):
        return prediction, IntensityFit(gain, offset, applied=False)
    calibrated = (gain * prediction + offset).astype(np.float32)
    return calibrated, IntensityFit(gain, offset, applied=True)


def restore_large_scales(
    prediction: np.ndarray, measurement: np.ndarray, sigma: float = CALIBRATION_SIGMA
) -> np.ndarray:
    r"""Give ``prediction`` the measurement's large scales in every YX plane, keep its fine ones.

    .. math:: \hat s' = \hat s + G_\sigma * (x - \hat s)

    The residual :math:`x - \hat s` of a faithful denoiser is noise, whose blur is small (the
    module docstring); what a blur of the residual finds beyond that is the network's own
    large-scale error. A network that sees several channels at once predicts each channel
    partly from the others and so moves objects' integrated intensities, and their channel
    ratios, by more than the noise; restoring the measured large scales per channel keeps
    both as measured (the measurement is unbiased there) while the network's fine structure
    stays. The price is the blurred noise, :math:`1 / (4\pi\sigma^2)` of the noise variance
    (0.5 % at :math:`\sigma = 4`).

    Parameters
    ----------
    prediction : ndarray
        One channel's denoised image ``(..., Y, X)`` in the measurement's units.
    measurement : ndarray
        The noisy image it was predicted from, same shape.
    sigma : float
        Blur in pixels, along Y and X only (planes of a volume or stack stay apart).

    Returns
    -------
    ndarray, float32

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> clean = np.outer(np.hanning(64), np.hanning(64)) * 50 + 5
    >>> noisy = clean + rng.normal(0, 2, clean.shape)
    >>> restored = restore_large_scales(0.8 * clean, noisy)
    >>> round(float(restored.sum() / clean.sum()), 2)
    1.0
    """
    prediction = np.asarray(prediction, dtype=np.float32)
    measurement = np.asarray(measurement, dtype=np.float32)
    if prediction.shape != measurement.shape:
        raise ValueError(
            f"prediction {prediction.shape} and measurement {measurement.shape} differ in shape."
        )
    spread = (0.0,) * (prediction.ndim - 2) + (sigma, sigma)
    residual = ndimage.gaussian_filter(measurement - prediction, spread)
    return (prediction + residual).astype(np.float32)
