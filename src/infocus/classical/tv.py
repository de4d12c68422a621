r"""Total-variation denoising (Rudin–Osher–Fatemi) solved with Chambolle's projection algorithm."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from skimage.restoration import denoise_tv_chambolle

from infocus._errors import InfocusInputError
from infocus.classical._calibrate import calibrate
from infocus.classical._domain import DenoisePlan, check_positive, run_denoiser
from infocus.classical._registry import DENOISERS, ParameterRange, tunable
from infocus.noise import NoiseParams

__all__ = ["TV_WEIGHT_FACTORS", "tv"]

#: Candidate weights, as multiples of the noise level σ, tried by the calibration.
TV_WEIGHT_FACTORS: tuple[float, ...] = (0.35, 0.5, 0.7, 1.0, 1.4, 2.0)


def _tv_block(block: np.ndarray, weight: float, max_num_iter: int, eps: float) -> np.ndarray:
    # TV is shift-equivariant; removing the mean keeps skimage's relative stopping rule
    # (energy change < eps * initial energy) from stopping early on bright images.
    mean = float(block.mean())
    out = denoise_tv_chambolle(block - mean, weight=weight, eps=eps, max_num_iter=max_num_iter)
    return out + mean


@DENOISERS.register("tv")
@tunable(weight=ParameterRange(0.1, 4.0, noise_units=True))
def tv(
    image: np.ndarray,
    *,
    axes: str = "YX",
    noise: NoiseParams | None = None,
    weight: float | None = None,
    max_num_iter: int = 500,
    eps: float = 1e-5,
    vst: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    plan: DenoisePlan | None = None,
) -> np.ndarray:
    r"""Total-variation (ROF) denoising with Chambolle's algorithm.

    Solves, in the working domain,

    .. math::

        \hat{y} = \arg\min_u \; \tfrac{1}{2}\lVert u - z\rVert_2^2 + \lambda\,\mathrm{TV}(u),
        \qquad \mathrm{TV}(u) = \sum_p \lVert \nabla u(p) \rVert_2 ,

    which keeps edges but flattens smooth gradients (L. Rudin, S. Osher, E. Fatemi, Physica D 60,
    1992; A. Chambolle, "An algorithm for total variation minimization and applications",
    J. Math. Imaging Vis. 20, 2004). Runs :func:`skimage.restoration.denoise_tv_chambolle`
    (``weight`` = :math:`\lambda`) on the block minus its mean.

    Parameters
    ----------
    image : array_like
        Noisy image, any real dtype.
    axes : str
        Axes over ``STCZYX``; ``S``, ``T`` and ``C`` are denoised independently, ``ZYX`` blocks with
        3-D total variation.
    noise : NoiseParams, optional
        Noise model (per channel estimate if omitted); gives σ and the working domain.
    weight : float, optional
        :math:`\lambda` in the working domain's units. The problem is scale-equivariant, so the
        right :math:`\lambda` is proportional to the noise level; there is no closed-form constant,
        so by default :math:`\lambda = c\,\sigma` with :math:`c` in :data:`TV_WEIGHT_FACTORS`
        (0.35 to 2) chosen by the lowest J-invariant self-supervised loss on the channel's middle
        block (Batson & Royer, "Noise2Self", ICML 2019).
    max_num_iter : int
        Iteration cap for Chambolle's algorithm (default 500).
    eps : float
        Relative energy change at which it stops (default 1e-5).
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
    weight = check_positive("weight", weight)
    eps_value = check_positive("eps", eps)
    if (
        isinstance(max_num_iter, bool)
        or not isinstance(max_num_iter, int | np.integer)
        or max_num_iter < 1
    ):
        raise InfocusInputError(f"max_num_iter must be a positive integer (got {max_num_iter!r}).")
    iterations = int(max_num_iter)

    def run(block: np.ndarray, w: float) -> np.ndarray:
        return _tv_block(block, w, iterations, float(eps_value))

    def choose(sample: np.ndarray, sigma: float) -> Mapping[str, Any]:
        if weight is not None:
            return {"weight": weight}
        return {"weight": calibrate(sample, run, [f * sigma for f in TV_WEIGHT_FACTORS])}

    return run_denoiser(
        image,
        axes=axes,
        noise=noise,
        vst=vst,
        max_spatial_ndim=3,
        denoise_block=lambda b, _s, p: run(b, p["weight"]),
        choose_params=choose,
        progress=progress,
        plan=plan,
    )
