"""Axes strings: which array dimension is which.

An image travels with an axes string over ``S T C Z Y X`` (sample, time, channel, depth,
rows, columns), e.g. ``"YX"``, ``"ZYX"``, ``"TYX"``, ``"CYX"``, ``"TCZYX"``. Every image has
``Y`` and ``X``; the other letters are optional and appear at most once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from infocus._errors import InfocusInputError

__all__ = [
    "AXES_ORDER",
    "apply_blockwise",
    "check_axes",
    "default_axes",
    "iter_blocks",
    "spatial_axes",
    "yx_planes",
]

AXES_ORDER = "STCZYX"
_AXIS_NAMES = {"S": "sample", "T": "time", "C": "channel", "Z": "depth", "Y": "rows", "X": "columns"}


def check_axes(axes: str, shape: tuple[int, ...] | None = None) -> str:
    """Validate an axes string (and, if given, that it matches ``shape``); return it upper-case.

    Raises
    ------
    InfocusInputError
        Unknown or repeated letters, missing ``Y``/``X``, or a length that differs from the
        number of dimensions of ``shape``.

    Examples
    --------
    >>> check_axes("tyx", (5, 64, 64))
    'TYX'
    """
    if not isinstance(axes, str) or not axes:
        raise InfocusInputError(
            f"Axes must be a non-empty string over {AXES_ORDER!r} (got {axes!r}); pass e.g. axes='YX'."
        )
    axes = axes.upper()
    unknown = sorted({a for a in axes if a not in AXES_ORDER})
    if unknown:
        raise InfocusInputError(
            f"Axes {axes!r} contain unknown letter(s) {''.join(unknown)!r}; use only the letters "
            f"{' '.join(AXES_ORDER)} (sample, time, channel, depth, rows, columns)."
        )
    repeated = sorted({a for a in axes if axes.count(a) > 1})
    if repeated:
        raise InfocusInputError(
            f"Axes {axes!r} name {''.join(repeated)!r} more than once; each axis may appear only once."
        )
    if "Y" not in axes or "X" not in axes:
        raise InfocusInputError(
            f"Axes {axes!r} lack 'Y' and/or 'X'; every image needs both spatial axes, e.g. 'ZYX'."
        )
    if shape is not None and len(shape) != len(axes):
        raise InfocusInputError(
            f"Image of shape {tuple(shape)} has {len(shape)} dimensions but axes {axes!r} name "
            f"{len(axes)}; pass axes with one letter per dimension (e.g. {default_axes_hint(shape)!r})."
        )
    return axes


def default_axes_hint(shape: tuple[int, ...]) -> str:
    """A plausible axes string for ``shape``, used only in error messages."""
    guesses = {1: "X", 2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX", 6: "STCZYX"}
    return guesses.get(len(shape), "YX")


def default_axes(shape: tuple[int, ...]) -> str:
    """Axes for an array without metadata: ``"YX"`` for 2-D; anything else must be told.

    Raises
    ------
    InfocusInputError
        For arrays that are not 2-D, since a 3-D array may be ``ZYX``, ``TYX`` or ``CYX``.
    """
    if len(shape) == 2:
        return "YX"
    raise InfocusInputError(
        f"Image of shape {tuple(shape)} has no axes metadata and {len(shape)} dimensions is "
        f"ambiguous; pass the axes explicitly, e.g. --axes {default_axes_hint(shape)} or TYX."
    )


def spatial_axes(axes: str, *, max_ndim: int = 3) -> str:
    """The spatial axes a method works on: ``"ZYX"`` if present and allowed, else ``"YX"``."""
    axes = axes.upper()
    if max_ndim >= 3 and "Z" in axes:
        return "ZYX"
    return "YX"


def yx_planes(array: np.ndarray, axes: str) -> np.ndarray:
    """All YX planes of ``array`` as one ``(P, Y, X)`` stack (a view where possible).

    Examples
    --------
    >>> yx_planes(np.zeros((3, 4, 5, 6)), "TZYX").shape
    (12, 5, 6)
    >>> yx_planes(np.zeros((5, 6, 2)), "YXT").shape   # any order
    (2, 5, 6)
    """
    axes = check_axes(axes, array.shape)
    order = [i for i, a in enumerate(axes) if a not in "YX"] + [axes.index("Y"), axes.index("X")]
    planes = np.transpose(array, order)
    return planes.reshape((-1,) + planes.shape[-2:])


def iter_blocks(shape: tuple[int, ...], axes: str, block_axes: str) -> Iterator[tuple]:
    """Yield index tuples that select each ``block_axes`` block of an array.

    Every axis not in ``block_axes`` is iterated over; the block axes are kept whole
    (``slice(None)``), in their original order.
    """
    loop_dims = [i for i, a in enumerate(axes) if a not in block_axes]
    for position in np.ndindex(*[shape[i] for i in loop_dims]):
        index: list = [slice(None)] * len(shape)
        for dim, value in zip(loop_dims, position, strict=True):
            index[dim] = value
        yield tuple(index)


def apply_blockwise(
    function: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    axes: str,
    *,
    max_spatial_ndim: int = 3,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Apply a 2-D or 3-D ``function`` to every spatial block of ``image``.

    Samples, time points and channels are processed independently; ``Z`` is part of the block
    when ``max_spatial_ndim`` is 3, otherwise the volume is processed slice by slice. The
    function receives blocks in ``(Z)YX`` order and must return the same shape.

    Returns
    -------
    ndarray, float32, same shape as ``image``.
    """
    axes = check_axes(axes, image.shape)
    block = spatial_axes(axes, max_ndim=max_spatial_ndim)
    # Transpose so the block axes come last in canonical order; simpler indexing.
    loop = [a for a in axes if a not in block]
    order = [axes.index(a) for a in loop] + [axes.index(a) for a in block]
    moved = np.transpose(image, order)
    out = np.empty(moved.shape, dtype=np.float32)
    outer = moved.shape[: len(loop)]
    total = int(np.prod(outer)) if outer else 1
    for count, position in enumerate(np.ndindex(*outer) if outer else [()], start=1):
        result = np.asarray(function(moved[position]))
        if result.shape != moved[position].shape:
            raise RuntimeError(
                f"denoiser returned shape {result.shape} for a block of shape {moved[position].shape}"
            )
        out[position] = result
        if progress is not None:
            progress(count, total)
    return np.transpose(out, np.argsort(order))
