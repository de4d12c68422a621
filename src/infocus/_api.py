"""The one-call entry point: ``infocus.denoise(image, "bm3d", axes="ZYX")``."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from infocus._errors import InfocusInputError

__all__ = ["check_options", "denoise"]


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
    check_options(method, function, options)
    return function(image, axes=axes, **options)


def check_options(
    method: str, function: Any, names: Any, *, reserved: frozenset[str] = frozenset({"axes"})
) -> None:
    """Raise a clear error for any name in ``names`` that ``function`` has no keyword option for.

    ``reserved`` options exist but are not the user's to set here (e.g. set by other flags).
    """
    accepted = {
        name
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in reserved
    }
    unknown = [name for name in names if name not in accepted]
    if unknown:
        raise InfocusInputError(
            f"Method {method!r} has no option {unknown[0]!r}; its options are: "
            f"{', '.join(sorted(accepted)) or 'none'}."
        )
