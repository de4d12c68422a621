"""The registry of classical denoisers: every method is a plain function with one signature.

Each registered function has the form::

    name(image, *, axes="YX", noise=None, <method parameters, None = automatic>,
         vst=None, progress=None) -> np.ndarray   # float32, same shape as image

See :mod:`infocus.classical` for the shared behaviour (noise domain, axes, automatic parameters).

A method may also say where its parameters sensibly lie (:func:`tunable`), so that an interface
can offer sliders and choice lists without knowing the method: :func:`denoiser_parameters`
describes every parameter a user may set, from the signature and those hints.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from infocus._registry import Registry

__all__ = [
    "DENOISERS",
    "Denoiser",
    "Parameter",
    "ParameterRange",
    "denoiser_parameters",
    "get_denoiser",
    "list_denoisers",
    "tunable",
]

#: A classical denoiser: ``image`` first, every option keyword-only, float32 result of the same shape.
Denoiser = Callable[..., np.ndarray]

#: Name -> denoiser function; methods register themselves with ``@DENOISERS.register("name")``.
DENOISERS: Registry[Denoiser] = Registry("denoiser")

#: Options every denoiser has that are set by the caller's context, not tuned by a user.
_CONTEXT_OPTIONS = frozenset({"axes", "noise", "progress", "plan"})


@dataclass(frozen=True)
class ParameterRange:
    """The span a numeric parameter is usefully tuned over (the extent of a slider).

    Attributes
    ----------
    low, high : float
        The ends of the span.
    step : float, optional
        The spacing of allowed values (e.g. 2 for odd window sizes); None for a continuum.
    noise_units : bool
        The span is in multiples of the noise standard deviation in the working domain
        (:attr:`infocus.classical.NoiseDomain.sigma`), for parameters such as a filtering
        strength whose right value scales with the noise.
    """

    low: float
    high: float
    step: float | None = None
    noise_units: bool = False


#: Denoiser -> {parameter: range or choices}, filled by :func:`tunable`.
_HINTS: dict[Denoiser, dict[str, ParameterRange | tuple[str, ...]]] = {}


def tunable(**hints: ParameterRange | tuple[str, ...]) -> Callable[[Denoiser], Denoiser]:
    """Decorator: record where the denoiser's parameters lie (a range) or what they may be
    (a tuple of choices), for interfaces that build controls from :func:`denoiser_parameters`.

    Examples
    --------
    >>> @tunable(sigma=ParameterRange(0.3, 6.0), mode=("soft", "hard"))
    ... def smooth(image, *, sigma=None, mode="soft"):
    ...     return image
    """

    def decorator(function: Denoiser) -> Denoiser:
        options = inspect.signature(function).parameters
        unknown = [name for name in hints if name not in options]
        if unknown:
            raise ValueError(f"{function.__name__} has no parameter {unknown[0]!r} to describe.")
        _HINTS[function] = dict(hints)
        return function

    return decorator


@dataclass(frozen=True)
class Parameter:
    """One parameter of a classical denoiser that a user may set.

    Attributes
    ----------
    name : str
        The keyword.
    kind : type
        ``float``, ``int``, ``bool`` or ``str``.
    default : object
        The default value (None when ``automatic``).
    automatic : bool
        None is allowed and means "chosen from the data" (noise level or calibration).
    range : ParameterRange or None
        Where a numeric parameter is usefully tuned.
    choices : tuple of str or None
        The allowed values of a string parameter, when they are few.
    """

    name: str
    kind: type
    default: Any
    automatic: bool
    range: ParameterRange | None = None
    choices: tuple[str, ...] | None = None


def denoiser_parameters(name: str) -> tuple[Parameter, ...]:
    """The parameters a user may set on the denoiser registered as ``name``, in signature order.

    Examples
    --------
    >>> [p.name for p in denoiser_parameters("gaussian")]
    ['sigma', 'vst']
    >>> denoiser_parameters("gaussian")[0].automatic
    True
    """
    function = get_denoiser(name)
    hints = _HINTS.get(function, {})
    types_of = typing.get_type_hints(function)
    described = []
    for option in inspect.signature(function).parameters.values():
        if option.kind is not inspect.Parameter.KEYWORD_ONLY or option.name in _CONTEXT_OPTIONS:
            continue
        kind, optional = _plain_type(types_of[option.name])
        hint = hints.get(option.name)
        described.append(Parameter(
            name=option.name, kind=kind, default=option.default,
            automatic=optional and option.default is None,
            range=hint if isinstance(hint, ParameterRange) else None,
            choices=hint if isinstance(hint, tuple) else None,
        ))
    return tuple(described)


def _plain_type(annotation: Any) -> tuple[type, bool]:
    """``float | None`` -> ``(float, True)``; ``int`` -> ``(int, False)``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members[0], len(members) < len(typing.get_args(annotation))
    return annotation, False


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
