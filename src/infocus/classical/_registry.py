"""The registry of classical denoisers: every method is a plain function with one signature.

Each registered function has the form::

    name(image, *, axes="YX", noise=None, <method parameters, None = automatic>,
         vst=None, progress=None) -> np.ndarray   # float32, same shape as image

See :mod:`infocus.classical` for the shared behaviour (noise domain, axes, automatic parameters).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from infocus._registry import Registry

__all__ = ["DENOISERS", "Denoiser", "get_denoiser", "list_denoisers"]

#: A classical denoiser: ``image`` first, every option keyword-only, float32 result of the same shape.
Denoiser = Callable[..., np.ndarray]

#: Name -> denoiser function; methods register themselves with ``@DENOISERS.register("name")``.
DENOISERS: Registry[Denoiser] = Registry("denoiser")


def get_denoiser(name: str) -> Denoiser:
    """The denoiser registered under ``name`` (case-insensitive).

    Raises
    ------
    InfocusInputError
        For an unknown name; the message lists the known ones.
    """
    return DENOISERS.get(name)


def list_denoisers() -> list[str]:
    """Names of all registered classical denoisers, sorted."""
    return DENOISERS.names()
