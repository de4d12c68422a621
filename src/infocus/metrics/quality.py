r"""Image-quality metrics against a clean reference.

Conventions (Laine, Jacquemet & Krull 2021, "Imaging in focus: an introduction to denoising
bioimages in the era of deep learning", Int. J. Biochem. Cell Biol. 140:106077, Box 1):
the first argument is the image under test (a prediction, or the raw input), the second the
clean target :math:`s`; the data range is :math:`\max(s) - \min(s)` of the *target* unless it is
given (FMD and BSD68 use a fixed peak of 255 for 8-bit data).
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

from infocus._errors import InfocusInputError
from infocus._validate import check_image

__all__ = ["affine_fit", "mse", "psnr", "si_psnr", "ssim"]


def _pair(prediction: object, target: object) -> tuple[np.ndarray, np.ndarray]:
    pred = check_image(prediction, name="prediction", dtype=np.float64)
    tgt = check_image(target, name="ground truth", dtype=np.float64)
    if pred.shape != tgt.shape:
        raise InfocusInputError(
            f"Prediction shape {pred.shape} differs from ground-truth shape {tgt.shape}; "
            "compare images of the same size and axes."
        )
    return pred, tgt


def _data_range(target: np.ndarray, data_range: float | None) -> float:
    if data_range is None:
        data_range = float(target.max() - target.min())
        if data_range <= 0:
            raise InfocusInputError(
                "The ground truth is constant, so its data range max(s) - min(s) is 0 and PSNR is "
                "undefined; pass data_range explicitly (e.g. 255 for 8-bit data)."
            )
    elif not data_range > 0:
        raise InfocusInputError(f"data_range must be positive (got {data_range}).")
    return float(data_range)


def mse(prediction: object, target: object) -> float:
    r"""Mean squared error :math:`\frac{1}{N}\sum_i (x_i - s_i)^2`.

    Examples
    --------
    >>> mse(np.zeros((8, 8)), np.full((8, 8), 2.0))
    4.0
    """
    pred, tgt = _pair(prediction, target)
    return float(np.mean((pred - tgt) ** 2))


def psnr(prediction: object, target: object, *, data_range: float | None = None) -> float:
    r"""Peak signal-to-noise ratio in dB.

    .. math:: \mathrm{PSNR}(x, s) = 10 \log_{10} \frac{R^2}{\mathrm{MSE}(x, s)},
              \qquad R = \max(s) - \min(s) \text{ unless given}

    (Laine et al. 2021, Box 1). ``inf`` when the images are identical.

    Parameters
    ----------
    prediction, target : array_like, same shape
        Image under test and clean reference.
    data_range : float, optional
        Peak value :math:`R`; default the range of ``target``. Use 255 for the FMD and
        BSD68 protocols on 8-bit data.

    Examples
    --------
    >>> target = np.zeros((8, 8)); target[0, 0] = 10.0
    >>> round(psnr(target + 1.0, target), 6)   # MSE 1, range 10 -> 20 dB
    20.0
    """
    pred, tgt = _pair(prediction, target)
    peak = _data_range(tgt, data_range)
    error = float(np.mean((pred - tgt) ** 2))
    return math.inf if error == 0 else 10.0 * math.log10(peak**2 / error)


def ssim(prediction: object, target: object, *, data_range: float | None = None) -> float:
    r"""Structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004, IEEE TIP 13:600).

    .. math:: \mathrm{SSIM}(x, s) = \frac{(2\mu_x\mu_s + C_1)(2\sigma_{xs} + C_2)}
              {(\mu_x^2 + \mu_s^2 + C_1)(\sigma_x^2 + \sigma_s^2 + C_2)},
              \quad C_1 = (0.01R)^2,\ C_2 = (0.03R)^2,

    averaged over 7×7 (×7 in 3-D) uniform windows with sample covariances: the settings of
    ``skimage.metrics.structural_similarity`` that CARE, FMD and Noise2Void report. ``R`` is
    the data range, as in :func:`psnr`.
    """
    pred, tgt = _pair(prediction, target)
    peak = _data_range(tgt, data_range)
    win = min(7, *[n if n % 2 else n - 1 for n in tgt.shape])
    return float(structural_similarity(pred, tgt, data_range=peak, win_size=win))


def affine_fit(prediction: object, target: object) -> np.ndarray:
    r"""Least-squares affine fit of ``prediction`` to ``target``: :math:`\alpha x + \beta`.

    .. math:: \alpha = \frac{\mathrm{cov}(x, s)}{\mathrm{var}(x)},
              \qquad \beta = \bar s - \alpha \bar x

    as CSBDeep's ``normalize_minmse`` (Weigert et al. 2018, Nat. Methods 15:1090).
    """
    pred, tgt = _pair(prediction, target)
    centred = pred - pred.mean()
    variance = float(np.mean(centred**2))
    alpha = float(np.mean(centred * (tgt - tgt.mean())) / variance) if variance > 0 else 0.0
    beta = float(tgt.mean() - alpha * pred.mean())
    return alpha * pred + beta


def si_psnr(prediction: object, target: object, *, data_range: float | None = None) -> float:
    r"""Scale-invariant PSNR: :func:`psnr` after the affine fit :func:`affine_fit`.

    This is the metric CARE uses (Weigert et al. 2018): it forgives a global change of
    brightness and contrast, so it measures denoising rather than intensity scaling. Useful
    when the prediction and the ground truth were scaled separately (e.g. the W2S 8-bit data).
    CARE also percentile-normalises the target and reports ``data_range=1``; that equals this
    value with ``data_range`` set to the target's 0.1–99.9 percentile range.
    """
    return psnr(affine_fit(prediction, target), target, data_range=data_range)
