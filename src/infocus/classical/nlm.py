r"""Non-local means (Buades, Coll & Morel), with its filtering strength set from the noise level."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from skimage.restoration import denoise_nl_means

from infocus._errors import InfocusInputError
from infocus.classical._domain import DenoisePlan, check_odd_size, check_positive, run_denoiser
from infocus.classical._registry import DENOISERS, ParameterRange, tunable
from infocus.noise import NoiseParams

__all__ = ["NLM_H_FACTOR", "nl_means"]

#: Default filtering strength relative to the noise level: :math:`h = 0.8\,\sigma`.
NLM_H_FACTOR = 0.8


@DENOISERS.register("nl_means")
@tunable(h=ParameterRange(0.2, 3.0, noise_units=True), patch_size=ParameterRange(3, 11, step=2),
         patch_distance=ParameterRange(1, 15, step=1))
def nl_means(
    image: np.ndarray,
    *,
    axes: str = "YX",
    noise: NoiseParams | None = None,
    h: float | None = None,
    patch_size: int = 5,
    patch_distance: int = 6,
    fast_mode: bool = True,
    vst: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    plan: DenoisePlan | None = None,
) -> np.ndarray:
    r"""Non-local means: average pixels whose surrounding patches look alike.

    Each pixel becomes a weighted mean of the pixels :math:`q` within ``patch_distance`` of it,

    .. math::

        \hat{y}(p) = \frac{\sum_q w(p, q)\, z(q)}{\sum_q w(p, q)}, \qquad
        w(p, q) = \exp\!\left(-\frac{\max(d^2(P_p, P_q) - 2\sigma^2,\ 0)}{h^2}\right),

    where :math:`d^2` is the mean squared difference between the ``patch_size``-wide patches
    around :math:`p` and :math:`q` and :math:`\sigma` the noise level in the working domain
    (A. Buades, B. Coll, J.-M. Morel, "A non-local algorithm for image denoising", CVPR 2005;
    "Non-Local Means Denoising", IPOL 2011). Runs :func:`skimage.restoration.denoise_nl_means`.

    Parameters
    ----------
    image : array_like
        Noisy image, any real dtype.
    axes : str
        Axes over ``STCZYX``; ``S``, ``T`` and ``C`` are denoised independently, ``ZYX`` blocks with
        3-D patches.
    noise : NoiseParams, optional
        Noise model (per channel estimate if omitted); gives :math:`\sigma` and the working domain.
    h : float, optional
        Filtering strength, in the working domain's units. Default :math:`h = 0.8\,\sigma`
        with :math:`\sigma` passed to the filter so the expected noise term is subtracted from
        the patch distances, as in scikit-image's non-local-means example.
    patch_size : int
        Odd patch width (default 5).
    patch_distance : int
        Search radius in pixels (default 6, i.e. a 13-pixel-wide search window).
    fast_mode : bool
        Uniform patch weights with the fast integral-image algorithm (default) instead of
        Gaussian-weighted patches.
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
    """
    h = check_positive("h", h)
    patch_size = check_odd_size("patch_size", patch_size)
    distance = check_positive("patch_distance", patch_distance)
    if distance is None or int(distance) != distance:
        raise InfocusInputError(
            f"patch_distance must be a positive integer (got {patch_distance!r})."
        )

    def choose(_sample: np.ndarray, sigma: float) -> Mapping[str, Any]:
        return {"h": h if h is not None else NLM_H_FACTOR * sigma}

    def block(b: np.ndarray, sigma: float, p: Mapping[str, Any]) -> np.ndarray:
        return denoise_nl_means(
            b,
            patch_size=patch_size,
            patch_distance=int(distance),
            h=p["h"],
            fast_mode=bool(fast_mode),
            sigma=sigma,
            preserve_range=True,
            channel_axis=None,
        )

    return run_denoiser(
        image,
        axes=axes,
        noise=noise,
        vst=vst,
        max_spatial_ndim=3,
        denoise_block=block,
        choose_params=choose,
        progress=progress,
        plan=plan,
    )
