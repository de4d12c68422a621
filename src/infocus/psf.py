r"""Point-spread functions: read a measured one, or simulate one from the optics.

A fluorescence microscope images the fluorophore density :math:`s` as :math:`h * s`, the
convolution with its point-spread function :math:`h`, before the camera adds noise. Methods
that deconvolve (DecoNoising) need :math:`h` sampled on the image's pixel grid, with odd sizes
(so it has a centre pixel) and unit sum (so convolving keeps the total intensity).

* :func:`read_psf` loads a measured PSF (e.g. the average of bead images) and
  :func:`check_psf` makes it usable: finite, non-negative up to noise (the camera offset of a bead
  image is not removed here: subtract it first), odd-sized, normalised to sum 1.
* :func:`simulate_psf` computes one: ``"gaussian"``, the Gaussian approximation of a widefield
  PSF with :math:`\sigma_{xy} = 0.21\,\lambda/\mathrm{NA}` and
  :math:`\sigma_z = 0.66\,\lambda n/\mathrm{NA}^2` (Zhang, Zerubia & Olivo-Marin, "Gaussian
  approximations of fluorescence microscope point-spread function models", Applied Optics
  46(10), 2007), numpy only; ``"widefield"`` and ``"confocal"``, the vectorial Gibson–Lanni
  model computed by the maintained ``psfmodels`` package (Talley Lambert; Gibson & Lanni,
  JOSA A 8(10), 1991; Aguet et al. 2009), an optional extra.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Literal

import numpy as np

from infocus._errors import InfocusInputError

__all__ = ["PSF_MODELS", "check_psf", "read_psf", "simulate_psf"]

PsfModel = Literal["gaussian", "widefield", "confocal"]
#: The models :func:`simulate_psf` knows.
PSF_MODELS: tuple[str, ...] = ("gaussian", "widefield", "confocal")
#: A simulated PSF is cut where it falls below this fraction of its peak.
CUTOFF = 1e-3


def check_psf(psf: object, ndim: int) -> np.ndarray:
    """A PSF ready for convolution: float32, ``ndim`` axes of odd length, sum 1.

    Small negative values (noise in a measured PSF) are set to zero; leading axes of length
    one are dropped (a 2-D PSF stored as ``1 x Y x X``).

    Raises
    ------
    InfocusInputError
        Non-finite values, a PSF that is mostly negative or all zero, another dimensionality
        than the data, or an even size.
    """
    array = np.asarray(psf, dtype=np.float64)
    while array.ndim > ndim and array.shape[0] == 1:
        array = array[0]
    if array.ndim != ndim:
        raise InfocusInputError(
            f"The PSF has {array.ndim} axes but the images are {ndim}-D; give a "
            f"{ndim}-D PSF (or train on {array.ndim}-D data)."
        )
    if not np.all(np.isfinite(array)):
        raise InfocusInputError("The PSF contains NaN or infinite values; give a finite PSF.")
    positive = float(array[array > 0].sum())
    negative = float(-array[array < 0].sum())
    if positive <= 0 or negative > 0.5 * positive:
        raise InfocusInputError(
            "The PSF cannot be normalised: it is all zero or mostly negative; subtract the "
            "camera offset of a bead image so the background is near zero, not below."
        )
    if any(n % 2 == 0 for n in array.shape):
        raise InfocusInputError(
            f"The PSF has shape {array.shape}; every side must be odd so that it has a centre "
            "pixel (crop one row or column)."
        )
    array = np.clip(array, 0.0, None)
    return (array / array.sum()).astype(np.float32)


def read_psf(path: str | os.PathLike[str], ndim: int) -> np.ndarray:
    """Read a PSF image (TIFF, Zarr, ``.npy``, ...) and :func:`check_psf` it."""
    from infocus.io import read_image

    return check_psf(read_image(path).data, ndim)


def simulate_psf(
    model: PsfModel,
    *,
    ndim: int,
    na: float,
    wavelength: float,
    pixel_size: float,
    z_step: float | None = None,
    refractive_index: float = 1.515,
) -> np.ndarray:
    """A PSF for the given optics, sampled on the image grid (odd sizes, sum 1).

    Parameters
    ----------
    model : {"gaussian", "widefield", "confocal"}
        See the module docstring; the last two need ``pip install 'infocus[psf]'``.
    ndim : int
        2 (the in-focus plane) or 3.
    na : float
        Numerical aperture of the objective (at most ``refractive_index``).
    wavelength : float
        Emission wavelength in nanometres.
    pixel_size : float
        Pixel size in the sample plane, micrometres.
    z_step : float, optional
        Distance between planes in micrometres (3-D only; default ``pixel_size``).
    refractive_index : float
        Of the immersion medium (1.515 for oil).
    """
    _check_optics(model, ndim, na, wavelength, pixel_size, z_step, refractive_index)
    dz = z_step if z_step is not None else pixel_size
    wavelength_um = wavelength / 1000.0
    if model == "gaussian":
        sigma_xy = 0.21 * wavelength_um / na / pixel_size
        sigma_z = 0.66 * wavelength_um * refractive_index / na**2 / dz
        sigmas = (sigma_z, sigma_xy, sigma_xy)[-ndim:]
        psf = _gaussian(sigmas)
    else:
        psf = _gibson_lanni(model, ndim, na, wavelength_um, pixel_size, dz, refractive_index)
    return check_psf(_crop(psf), ndim)


def _check_optics(model: str, ndim: int, na: float, wavelength: float, pixel_size: float,
                  z_step: float | None, refractive_index: float) -> None:
    if model not in PSF_MODELS:
        raise InfocusInputError(
            f"Unknown PSF model {model!r}; choose one of {', '.join(PSF_MODELS)}.")
    if ndim not in (2, 3):
        raise InfocusInputError(f"A PSF is 2-D or 3-D (got ndim={ndim}).")
    for name, value in (("na", na), ("wavelength", wavelength), ("pixel_size", pixel_size),
                        ("refractive_index", refractive_index)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InfocusInputError(
                f"{name} must be a positive number (got {value!r}); e.g. --na 1.4 "
                "--wavelength 520 --pixel-size 0.1.")
    if z_step is not None and not (math.isfinite(z_step) and z_step > 0):
        raise InfocusInputError(f"z_step must be a positive number of micrometres (got {z_step}).")
    if na > refractive_index:
        raise InfocusInputError(
            f"A numerical aperture of {na} exceeds the immersion medium's refractive index "
            f"{refractive_index}; check --na (oil objectives reach about 1.4-1.49).")
    if wavelength < 100:
        raise InfocusInputError(
            f"The wavelength is in nanometres (got {wavelength}); e.g. 520 for GFP.")


def _gaussian(sigmas: Sequence[float]) -> np.ndarray:
    radius = [max(1, math.ceil(3.5 * s)) for s in sigmas]
    grids = np.meshgrid(*[np.arange(-r, r + 1, dtype=np.float64) for r in radius],
                        indexing="ij")
    exponent = sum((g / max(s, 1e-6)) ** 2 for g, s in zip(grids, sigmas, strict=True))
    return np.exp(-0.5 * exponent)


def _gibson_lanni(model: str, ndim: int, na: float, wavelength: float, pixel_size: float,
                  dz: float, refractive_index: float) -> np.ndarray:
    try:
        import psfmodels
    except ImportError:
        raise ImportError(
            f"The {model} PSF model is computed by psfmodels; install it with "
            "pip install 'infocus[psf]', or use --psf-model gaussian.") from None
    # Wide enough for the first rings: 4 Airy radii (0.61 λ/NA) on each side.
    half = max(3, math.ceil(4 * 0.61 * wavelength / na / pixel_size))
    planes = 1 if ndim == 2 else 2 * max(2, math.ceil(2 * wavelength * refractive_index
                                                      / na**2 / dz)) + 1
    z = (np.arange(planes) - planes // 2) * dz  # micrometres from the focal plane
    options = dict(nx=2 * half + 1, dxy=pixel_size, NA=na, ni=refractive_index,
                   ni0=refractive_index, ns=refractive_index)
    if model == "confocal":
        # Excitation about 8 % bluer than emission (a typical Stokes shift); 1 Airy unit.
        psf = psfmodels.confocal_psf(z, **options, ex_wvl=wavelength * 0.92, em_wvl=wavelength)
    else:
        psf = psfmodels.make_psf(z, **options, wvl=wavelength, model="vectorial")
    psf = np.asarray(psf, dtype=np.float64)
    return psf[psf.shape[0] // 2] if ndim == 2 else psf


def _crop(psf: np.ndarray) -> np.ndarray:
    """Drop border planes/rows below :data:`CUTOFF` of the peak, keeping the centre centred."""
    keep = psf >= CUTOFF * psf.max()
    index = []
    for axis in range(psf.ndim):
        other = tuple(a for a in range(psf.ndim) if a != axis)
        used = np.flatnonzero(keep.any(axis=other))
        centre = psf.shape[axis] // 2
        reach = int(max(centre - used.min(), used.max() - centre))
        index.append(slice(centre - reach, centre + reach + 1))
    return psf[tuple(index)]
