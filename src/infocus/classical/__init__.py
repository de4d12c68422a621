r"""Classical denoisers behind one interface, looked up by name in :data:`DENOISERS`.

Every method is a plain function::

    denoised = method(image, *, axes="YX", noise=None, <parameters, None = automatic>,
                      vst=None, progress=None)

returning float32 of the same shape. They share one pipeline (:mod:`infocus.classical._domain`):

* **Noise domain.** The noise model is estimated per channel unless ``noise`` is given. When the
  noise is signal-dependent (Poisson–Gaussian with sizeable shot noise), the method runs on the
  generalized Anscombe transform of the image (noise σ = 1) and the result is mapped back with
  the exact unbiased inverse; otherwise it runs on the pixels with σ from the noise model.
  ``vst=True``/``False`` forces the choice.
* **Axes.** Samples (``S``), time points (``T``) and channels (``C``) are denoised independently;
  ``gaussian``, ``median``, ``nl_means``, ``tv``, ``wavelet`` and ``bm4d`` work on ``ZYX`` volumes
  when there is a ``Z`` axis, ``bm3d`` works slice by slice.
* **Automatic parameters**, chosen once per channel: from the noise level where a rule exists
  (``nl_means``, ``wavelet``, ``bm3d``, ``bm4d``), else by J-invariant self-supervised calibration
  (Batson & Royer, "Noise2Self", ICML 2019) on the channel's middle block (``gaussian``, ``median``,
  ``tv``). Every parameter can be set explicitly.
* **Plans.** What is chosen per channel from the whole stack (noise domain, automatic
  parameters) can be computed alone, :func:`plan_denoising`, and applied to any block of the
  stack (:class:`DenoisePlan`), with the result of one call on the whole stack: the basis of
  denoising a stack block by block on a cluster.

Examples
--------
>>> import numpy as np
>>> from infocus.classical import get_denoiser, list_denoisers
>>> "gaussian" in list_denoisers()
True
>>> noisy = np.random.default_rng(0).normal(10.0, 1.0, (64, 64)).astype(np.float32)
>>> get_denoiser("gaussian")(noisy, sigma=2.0).shape
(64, 64)
"""

from __future__ import annotations

from infocus.classical._domain import (
    ChannelPlan,
    DenoisePlan,
    NoiseDomain,
    choose_domain,
    plan_denoising,
)
from infocus.classical._registry import (
    DENOISERS,
    Denoiser,
    Parameter,
    ParameterRange,
    denoiser_parameters,
    get_denoiser,
    list_denoisers,
    tunable,
)
from infocus.classical.bm3d import bm3d, bm4d
from infocus.classical.nlm import nl_means
from infocus.classical.smoothing import gaussian, median
from infocus.classical.tv import tv
from infocus.classical.wavelet import wavelet

__all__ = [
    "DENOISERS",
    "ChannelPlan",
    "DenoisePlan",
    "Denoiser",
    "NoiseDomain",
    "Parameter",
    "ParameterRange",
    "bm3d",
    "bm4d",
    "choose_domain",
    "denoiser_parameters",
    "gaussian",
    "get_denoiser",
    "list_denoisers",
    "median",
    "nl_means",
    "plan_denoising",
    "tunable",
    "tv",
    "wavelet",
]
