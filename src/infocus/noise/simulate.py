r"""Simulated camera noise for fluorescence microscopy.

* :func:`simulate_poisson_gaussian`: shot noise plus Gaussian read noise, the standard model of
  CCD and sCMOS cameras, :math:`x = a\,\mathrm{Poisson}(s) + \mu + \mathcal N(0, \sigma^2)`.
* :func:`add_emccd_noise`: the electron-multiplying gain register of an EMCCD, whose stochastic
  gain doubles the shot-noise variance (excess noise factor :math:`F^2 = 2`).
* :func:`add_stripe_noise`: per-row and per-column offsets (sCMOS read-out lines, CCD bias drift).
* :func:`add_correlated_noise`: spatially correlated Gaussian noise (white noise filtered by a
  kernel), e.g. from demosaicing, interpolation or a sensor's cross-talk.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy import ndimage

from infocus._errors import InfocusInputError
from infocus._validate import check_image
from infocus.noise._params import NoiseParams

__all__ = [
    "add_correlated_noise",
    "add_emccd_noise",
    "add_stripe_noise",
    "scale_to_photons",
    "simulate_poisson_gaussian",
]


#: numpy's Poisson sampler takes means up to about 9.2e18; far beyond any camera's full well.
MAX_PHOTONS = 1e15


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool | float) or (isinstance(rng, numbers.Integral) and rng < 0):
        raise InfocusInputError(
            f"The random seed must be a whole number >= 0 (got {rng!r}); e.g. --seed 0."
        )
    return np.random.default_rng(rng)


def _check_nonnegative(value: float, name: str, hint: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise InfocusInputError(f"{name} must be a finite number >= 0 (got {value}); {hint}.")
    return value


def _check_positive(value: float, name: str, hint: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise InfocusInputError(f"{name} must be a finite number > 0 (got {value}); {hint}.")
    return value


def scale_to_photons(clean: np.ndarray, photons: float) -> np.ndarray:
    """Scale a non-negative image so that its maximum is ``photons`` expected photons.

    Parameters
    ----------
    clean : ndarray
        Noise-free intensities, all >= 0 and not all zero (any scale).
    photons : float
        Expected photon count at the brightest pixel (fluorescence: typically 10–1000).

    Returns
    -------
    ndarray, float64, same shape: expected photon counts :math:`s`.

    Raises
    ------
    InfocusInputError
        Negative or all-zero ``clean``, or ``photons`` <= 0.
    """
    photons = _check_positive(photons, "photons", "pass the expected photon count at the peak")
    if photons > MAX_PHOTONS:
        raise InfocusInputError(
            f"photons must be at most {MAX_PHOTONS:g} (got {photons:g}); a camera pixel holds far "
            "fewer, and Poisson noise at such counts is negligible anyway."
        )
    image = check_image(clean, name="clean image").astype(np.float64)
    low = float(image.min())
    if low < 0:
        raise InfocusInputError(
            f"The clean image has negative values (minimum {low:g}); expected photon counts "
            "cannot be negative, so subtract the background or clip at 0 first."
        )
    peak = float(image.max())
    if peak <= 0:
        raise InfocusInputError(
            "The clean image is all zero, so it cannot be scaled to a photon count; pass an image "
            "with some signal."
        )
    return image * (photons / peak)


def simulate_poisson_gaussian(
    clean: np.ndarray,
    *,
    photons: float,
    gain: float = 1.0,
    offset: float = 0.0,
    read_noise: float = 0.0,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, NoiseParams]:
    r"""Simulate a camera image with Poisson shot noise and Gaussian read noise.

    The clean image is scaled so that its maximum is ``photons`` expected photons,
    :math:`s = \text{photons} \cdot \text{clean} / \max(\text{clean})`, and

    .. math:: x = a\,\mathrm{Poisson}(s) + \mu + \mathcal N(0, \sigma^2),
              \qquad \mathrm{Var}[x \mid y] = a\,y + \sigma^2 - a\mu,\; y = \mathrm{E}[x] = a s + \mu .

    Values are not rounded or clipped (clip or round the result yourself to model an ADC).

    Parameters
    ----------
    clean : ndarray
        Noise-free, non-negative image (any scale, not all zero).
    photons : float
        Expected photon count at the brightest pixel.
    gain : float
        :math:`a`, camera units per photo-electron (> 0).
    offset : float
        :math:`\mu`, the camera's dark level in camera units.
    read_noise : float
        :math:`\sigma`, the read-noise standard deviation in camera units (>= 0).
    rng : numpy Generator, int or None
        Source of randomness (a seed makes the result reproducible).

    Returns
    -------
    noisy : ndarray, float32
        The simulated camera image, same shape as ``clean``.
    noise : NoiseParams
        The exact parameters, ``NoiseParams.from_camera(gain=gain, offset=offset,
        read_noise=read_noise)``; the expected image is ``gain * scale_to_photons(clean,
        photons) + offset``.

    Examples
    --------
    >>> import numpy as np
    >>> noisy, noise = simulate_poisson_gaussian(np.ones((16, 16)), photons=100, gain=2.0,
    ...                                          offset=100.0, read_noise=3.0, rng=0)
    >>> noise.variance_intercept
    -191.0
    """
    gain = _check_positive(gain, "gain", "pass camera units per photo-electron, e.g. gain=1.0")
    read_noise = _check_nonnegative(read_noise, "read_noise", "pass the read-noise std, e.g. 0")
    offset = float(offset)
    if not math.isfinite(offset):
        raise InfocusInputError(f"offset must be finite (got {offset}); pass the dark level.")
    expected = scale_to_photons(clean, photons)
    generator = _generator(rng)
    noisy = gain * generator.poisson(expected).astype(np.float64) + offset
    if read_noise > 0:
        noisy += generator.normal(0.0, read_noise, size=noisy.shape)
    return noisy.astype(np.float32), NoiseParams.from_camera(
        gain=gain, offset=offset, read_noise=read_noise
    )


def add_emccd_noise(
    signal_photons: np.ndarray,
    *,
    em_gain: float,
    gain: float = 1.0,
    offset: float = 0.0,
    read_noise: float = 0.0,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, NoiseParams]:
    r"""Simulate an electron-multiplying CCD (EMCCD) image from expected photon counts.

    Gamma–Poisson model of the EM register (Basden, Haniff & Mackay 2003; Hirsch et al. 2013):
    :math:`n \sim \mathrm{Poisson}(s)` photo-electrons are multiplied to
    :math:`e \sim \mathrm{Gamma}(\text{shape}=n, \text{scale}=g_{EM})` electrons (:math:`e = 0`
    for :math:`n = 0`), read out as :math:`x = a\,e + \mu + \mathcal N(0, \sigma^2)`. Then
    :math:`\mathrm{E}[x] = a g_{EM} s + \mu` and :math:`\mathrm{Var}[x] = 2 a^2 g_{EM}^2 s + \sigma^2`:
    the stochastic gain doubles the shot-noise variance, the excess noise factor
    :math:`F^2 = \mathrm{Var}[e] / (g_{EM}^2 \mathrm{Var}[n]) = 2` that real registers approach at
    high gain. The noise is therefore *not* Poisson–Gaussian in shape (it is skewed), but its
    variance is affine in the mean with effective gain :math:`2 a g_{EM}`.

    Parameters
    ----------
    signal_photons : ndarray
        Expected photo-electron counts :math:`s` per pixel (>= 0), e.g. from
        :func:`scale_to_photons`.
    em_gain : float
        :math:`g_{EM}`, the mean electron-multiplication gain (> 0; typically 10–1000).
    gain : float
        :math:`a`, camera units per electron after multiplication (> 0).
    offset, read_noise : float
        :math:`\mu` and :math:`\sigma` in camera units.
    rng : numpy Generator, int or None
        Source of randomness.

    Returns
    -------
    noisy : ndarray, float32
    noise : NoiseParams
        The variance-matched Poisson–Gaussian description,
        ``NoiseParams.from_camera(gain=2 * gain * em_gain, offset=offset, read_noise=read_noise)``
        (exact for the first two moments).

    References
    ----------
    A. G. Basden, C. A. Haniff, C. D. Mackay, "Photon counting strategies with low-light-level
    CCDs", MNRAS 345, 985–991 (2003). M. Hirsch, R. J. Wareham, M. L. Martin-Fernandez,
    M. P. Hobson, D. J. Rolfe, "A stochastic model for electron multiplication charge-coupled
    devices – from theory to practice", PLoS ONE 8(1), e53671 (2013).
    """
    em_gain = _check_positive(em_gain, "em_gain", "pass the mean EM gain, e.g. em_gain=100")
    gain = _check_positive(gain, "gain", "pass camera units per electron, e.g. gain=1.0")
    read_noise = _check_nonnegative(read_noise, "read_noise", "pass the read-noise std, e.g. 0")
    offset = float(offset)
    signal = np.asarray(signal_photons, dtype=np.float64)
    if signal.size == 0 or not np.all(np.isfinite(signal)) or float(signal.min()) < 0:
        raise InfocusInputError(
            "signal_photons must be finite expected photon counts >= 0; scale the clean image "
            "with scale_to_photons(clean, photons) first."
        )
    generator = _generator(rng)
    electrons = generator.poisson(signal)
    # Gamma(shape=n, scale=g) is the sum of n exponential stages; shape 0 gives exactly 0.
    multiplied = generator.gamma(np.maximum(electrons, 0).astype(np.float64), em_gain)
    multiplied[electrons == 0] = 0.0
    noisy = gain * multiplied + offset
    if read_noise > 0:
        noisy += generator.normal(0.0, read_noise, size=noisy.shape)
    return noisy.astype(np.float32), NoiseParams.from_camera(
        gain=2.0 * gain * em_gain, offset=offset, read_noise=read_noise
    )


def add_stripe_noise(
    image: np.ndarray,
    *,
    row_sigma: float = 0.0,
    column_sigma: float = 0.0,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    r"""Add per-row and per-column offsets, as in sCMOS read-out or drifting CCD bias.

    :math:`x_{ij} \mathrel{+}= r_i + c_j` with :math:`r_i \sim \mathcal N(0, \sigma_r^2)` and
    :math:`c_j \sim \mathcal N(0, \sigma_c^2)`, drawn independently for every YX plane (the last
    two axes). The result violates the pixel-independence that blind-spot methods such as
    Noise2Void assume, which makes it a useful stress test.

    Returns
    -------
    ndarray, float32, same shape as ``image``.
    """
    row_sigma = _check_nonnegative(row_sigma, "row_sigma", "pass the row-offset std, e.g. 2.0")
    column_sigma = _check_nonnegative(
        column_sigma, "column_sigma", "pass the column-offset std, e.g. 2.0"
    )
    out = check_image(image).astype(np.float64)
    generator = _generator(rng)
    if row_sigma > 0:
        out += generator.normal(0.0, row_sigma, size=out.shape[:-1] + (1,))
    if column_sigma > 0:
        out += generator.normal(0.0, column_sigma, size=out.shape[:-2] + (1, out.shape[-1]))
    return out.astype(np.float32)


def add_correlated_noise(
    image: np.ndarray,
    *,
    sigma: float,
    kernel: np.ndarray,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    r"""Add stationary, spatially correlated Gaussian noise of marginal standard deviation ``sigma``.

    White noise :math:`w \sim \mathcal N(0, 1)` is convolved (periodically) with the kernel
    normalised to unit energy, :math:`k / \lVert k \rVert_2`, so :math:`n = \sigma\, w * k/\lVert k
    \rVert_2` has :math:`\mathrm{Var}[n] = \sigma^2` and autocorrelation
    :math:`\rho(\delta) = \sum_i k_i k_{i+\delta} / \sum_i k_i^2`.

    Parameters
    ----------
    image : ndarray
        Image to add noise to; a kernel with fewer dimensions than the image acts on the
        trailing axes (e.g. a 2-D kernel on every YX plane of a stack).
    sigma : float
        Marginal noise standard deviation (>= 0).
    kernel : ndarray
        Correlation kernel, not all zero, with at most ``image.ndim`` dimensions.
    rng : numpy Generator, int or None
        Source of randomness.

    Returns
    -------
    ndarray, float32, same shape as ``image``.
    """
    sigma = _check_nonnegative(sigma, "sigma", "pass the noise standard deviation")
    out = check_image(image).astype(np.float64)
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim == 0 or k.ndim > out.ndim or k.size == 0 or not np.all(np.isfinite(k)):
        raise InfocusInputError(
            f"kernel must be a finite array with 1 to {out.ndim} dimensions (got shape "
            f"{k.shape}); pass e.g. a 3x3 array."
        )
    energy = float(np.sqrt(np.sum(k * k)))
    if energy == 0:
        raise InfocusInputError("kernel is all zero; pass a kernel with non-zero weights.")
    k = (k / energy).reshape((1,) * (out.ndim - k.ndim) + k.shape)
    white = _generator(rng).standard_normal(out.shape)
    noise = ndimage.convolve(white, k, mode="wrap")
    return (out + sigma * noise).astype(np.float32)
