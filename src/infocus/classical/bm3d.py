r"""BM3D and BM4D collaborative filtering (Tampere University's reference implementations).

These methods need the optional PyPI packages ``bm3d`` and ``bm4d``
(``pip install 'infocus[bm3d]'``). **Their licence allows non-commercial use only**
(reproduction, use and modification for informational, non-commercial scope; see the packages'
LICENSE files); infocus itself does not depend on them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from infocus._errors import InfocusInputError
from infocus.classical._domain import DenoisePlan, check_positive, run_denoiser
from infocus.classical._registry import DENOISERS, ParameterRange, tunable
from infocus.noise import NoiseParams

__all__ = ["BM3D_PROFILES", "BM4D_PROFILES", "bm3d", "bm4d"]

#: Profiles accepted by :func:`bm3d` (see the ``bm3d`` package): normal, high quality, very noisy.
#: ("refilter" is left out: bm3d 4.0.3 fails on it with a scalar noise level.)
BM3D_PROFILES = ("np", "high", "vn")
#: Profiles accepted by :func:`bm4d`: normal (3-D cubes), or 8x8x1 blocks matched across the volume.
BM4D_PROFILES = ("np", "8x8")

_INSTALL_HINT = "pip install 'infocus[bm3d]'"


def _require(package: str) -> ModuleType:
    """Import the optional ``bm3d``/``bm4d`` package or explain how to install it."""
    try:
        return importlib.import_module(package)
    except ImportError as error:
        raise ImportError(
            f"The {package.upper()} denoiser needs the optional package {package!r} (free for "
            f"non-commercial use only); install it with {_INSTALL_HINT}."
        ) from error


def _check_profile(profile: str, allowed: tuple[str, ...], method: str) -> str:
    if profile not in allowed:
        raise InfocusInputError(
            f"Unknown {method} profile {profile!r}; choose one of: {', '.join(allowed)}."
        )
    return profile


@DENOISERS.register("bm3d")
@tunable(sigma_psd=ParameterRange(0.25, 4.0, noise_units=True), profile=BM3D_PROFILES)
def bm3d(
    image: np.ndarray,
    *,
    axes: str = "YX",
    noise: NoiseParams | None = None,
    sigma_psd: float | None = None,
    profile: str = "np",
    vst: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    plan: DenoisePlan | None = None,
) -> np.ndarray:
    r"""BM3D: block matching and collaborative 3-D transform-domain filtering, slice by slice.

    Similar 8×8 patches are grouped into 3-D stacks, which are denoised jointly by hard
    thresholding of their 3-D transform coefficients and then by empirical Wiener filtering guided
    by the first estimate (K. Dabov, A. Foi, V. Katkovnik, K. Egiazarian, "Image denoising by
    sparse 3-D transform-domain collaborative filtering", IEEE TIP 16(8), 2007; implementation:
    Y. Mäkinen, L. Azzari, A. Foi, "Collaborative filtering of correlated noise", IEEE TIP 29,
    2020). BM3D assumes additive white Gaussian noise; for Poisson–Gaussian data it runs after the
    generalized Anscombe transform, the combination of Mäkitalo & Foi (IEEE TIP 22(1), 2013).

    Works on 2-D ``YX`` blocks: a ``ZYX`` stack is denoised **slice by slice** (use :func:`bm4d`
    for volumetric filtering). Needs ``pip install 'infocus[bm3d]'``; the ``bm3d`` package is
    free for non-commercial use only.

    Parameters
    ----------
    image : array_like
        Noisy image, any real dtype.
    axes : str
        Axes over ``STCZYX``; every ``YX`` slice is denoised independently.
    noise : NoiseParams, optional
        Noise model (per channel estimate if omitted); gives σ and the working domain.
    sigma_psd : float, optional
        Noise standard deviation in the working domain; default σ from ``noise`` (1 after the
        variance-stabilising transform).
    profile : {"np", "high", "vn"}
        Parameter profile of the ``bm3d`` package: "np" (normal), "high" (higher quality, slower)
        or "vn" (very noisy data).
    vst : bool, optional
        Force or forbid the generalized Anscombe transform (default: automatic).
    progress : callable, optional
        ``progress(done, total)`` after each slice.
    plan : DenoisePlan, optional
        Noise domain and parameters of every channel chosen beforehand, e.g. from the whole
        stack when ``image`` is one block of it (:func:`~infocus.classical.plan_denoising`);
        ``noise`` and ``vst`` are then left out.

    Returns
    -------
    ndarray
        float32, same shape as ``image``.

    Raises
    ------
    ImportError
        When the optional ``bm3d`` package is not installed.
    """
    package = _require("bm3d")
    sigma_psd = check_positive("sigma_psd", sigma_psd)
    profile = _check_profile(profile, BM3D_PROFILES, "BM3D")
    return run_denoiser(
        image,
        axes=axes,
        noise=noise,
        vst=vst,
        max_spatial_ndim=2,
        denoise_block=lambda b, _s, p: package.bm3d(b, sigma_psd=p["sigma"], profile=profile),
        choose_params=lambda _sample, sigma: {
            "sigma": sigma_psd if sigma_psd is not None else sigma
        },
        progress=progress,
        plan=plan,
    )


@DENOISERS.register("bm4d")
@tunable(sigma_psd=ParameterRange(0.25, 4.0, noise_units=True), profile=BM4D_PROFILES)
def bm4d(
    image: np.ndarray,
    *,
    axes: str = "YX",
    noise: NoiseParams | None = None,
    sigma_psd: float | None = None,
    profile: str = "np",
    vst: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    plan: DenoisePlan | None = None,
) -> np.ndarray:
    r"""BM4D: the volumetric extension of BM3D, grouping similar 3-D cubes of a ``ZYX`` block.

    M. Maggioni, V. Katkovnik, K. Egiazarian, A. Foi, "Nonlocal transform-domain filter for
    volumetric data denoising and reconstruction", IEEE TIP 22(1), 2013; implementation of
    Y. Mäkinen, L. Azzari, A. Foi (IEEE TIP 29, 2020). Like :func:`bm3d` it assumes additive white
    Gaussian noise and runs after the generalized Anscombe transform for Poisson–Gaussian data.
    Voxels are assumed isotropic. Images without a ``Z`` axis fall back to :func:`bm3d`.
    Needs ``pip install 'infocus[bm3d]'``; the ``bm4d`` package is free for non-commercial use
    only.

    Parameters
    ----------
    image : array_like
        Noisy image, any real dtype.
    axes : str
        Axes over ``STCZYX``; ``S``, ``T`` and ``C`` are denoised independently, each ``ZYX`` block
        as a volume.
    noise : NoiseParams, optional
        Noise model (per channel estimate if omitted); gives σ and the working domain.
    sigma_psd : float, optional
        Noise standard deviation in the working domain; default σ from ``noise``.
    profile : {"np", "8x8"}
        Parameter profile of the ``bm4d`` package: "np" (cubic blocks when ``Z`` has at least 5
        planes) or "8x8" (8×8×1 blocks). Both are plain BM3D without ``Z``.
    vst : bool, optional
        Force or forbid the generalized Anscombe transform (default: automatic).
    progress : callable, optional
        ``progress(done, total)`` after each block.
    plan : DenoisePlan, optional
        Noise domain and parameters of every channel chosen beforehand, e.g. from the whole
        stack when ``image`` is one block of it (:func:`~infocus.classical.plan_denoising`);
        ``noise`` and ``vst`` are then left out.

    Returns
    -------
    ndarray
        float32, same shape as ``image``.

    Raises
    ------
    ImportError
        When the optional ``bm4d`` package is not installed.
    """
    profile = _check_profile(profile, BM4D_PROFILES, "BM4D")
    if "Z" not in str(axes).upper():
        return bm3d(
            image,
            axes=axes,
            noise=noise,
            sigma_psd=sigma_psd,
            profile="np",
            vst=vst,
            progress=progress,
            plan=plan,
        )
    package = _require("bm4d")
    sigma_psd = check_positive("sigma_psd", sigma_psd)

    def block(b: np.ndarray, _sigma: float, p: Mapping[str, Any]) -> np.ndarray:
        # The bm4d package stores volumes as (Y, X, Z).
        out = package.bm4d(np.moveaxis(b, 0, -1), sigma_psd=p["sigma"], profile=profile)
        return np.moveaxis(np.asarray(out).reshape(b.shape[1:] + b.shape[:1]), -1, 0)

    return run_denoiser(
        image,
        axes=axes,
        noise=noise,
        vst=vst,
        max_spatial_ndim=3,
        denoise_block=block,
        choose_params=lambda _sample, sigma: {
            "sigma": sigma_psd if sigma_psd is not None else sigma
        },
        progress=progress,
        plan=plan,
    )
