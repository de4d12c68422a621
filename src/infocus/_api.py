"""The one-call entry point: ``infocus.denoise(image, "bm3d", axes="ZYX")``."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from infocus._errors import InfocusInputError

__all__ = ["denoise"]


def denoise(image: np.ndarray, method: str, *, axes: str = "YX", **options: Any) -> np.ndarray:
    """Denoise ``image`` with the method registered as ``method``.

    Parameters
    ----------
    image : ndarray
        Pixels in camera units, any real dtype.
    method : str
        A name from :func:`infocus.list_denoisers` (e.g. ``"bm3d"``, ``"nl_means"``).
    axes : str
        Axes of ``image`` over ``STCZYX``.
    **options
        Keyword options of that method (``noise``, ``vst`` and its own parameters); an option the
        method does not have is an error, never silently ignored.

    Returns
    -------
    ndarray, float32, same shape as ``image``.

    Examples
    --------
    >>> import numpy as np, infocus
    >>> noisy = np.random.default_rng(0).poisson(20.0, (64, 64)).astype(np.float32)
    >>> infocus.denoise(noisy, "gaussian", axes="YX", sigma=1.0).shape
    (64, 64)
    """
    from infocus.classical import get_denoiser

    function = get_denoiser(method)
    accepted = {
        name
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise InfocusInputError(
            f"Method {method!r} has no option(s) {', '.join(unknown)}; its options are: "
            f"{', '.join(sorted(accepted - {'axes'}))}."
        )
    return function(image, axes=axes, **options)
