"""Which array dimension of a napari layer is which: the axes string infocus needs.

napari knows a layer's number of dimensions, whether it is RGB, and sometimes axis labels; a
layer made by infocus also carries its axes in ``layer.metadata["axes"]``. A 2-D layer is
``YX``; a 3-D one may be a volume, a time series or channels, which no array can tell, so the
widgets show the guess in an editable field with a message saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from infocus._errors import InfocusInputError
from infocus.axes import check_axes

__all__ = ["AxesGuess", "guess_axes", "layer_axes", "layer_array"]

#: Axis labels (lower case) napari readers and users commonly give, and the letter they mean.
_LABELS = {"s": "S", "sample": "S", "samples": "S", "t": "T", "time": "T", "c": "C",
           "channel": "C", "channels": "C", "z": "Z", "depth": "Z", "y": "Y", "x": "X"}
#: The guess for an array without metadata, by number of dimensions (napari's usual order).
_GUESSES = {2: "YX", 3: "ZYX", 4: "TZYX", 5: "TCZYX", 6: "STCZYX"}
#: What else an ambiguous array may be, said in the message.
_ALTERNATIVES = {3: "ZYX (a volume), TYX (a time series) or CYX (channels)",
                 4: "TZYX, CZYX or TCYX", 5: "TCZYX or STZYX", 6: "STCZYX"}


@dataclass(frozen=True)
class AxesGuess:
    """The axes of a layer and how sure they are.

    Attributes
    ----------
    axes : str
        One letter of ``STCZYX`` per dimension of the layer's data.
    certain : bool
        Taken from metadata, axis labels or a 2-D shape; False for a guess.
    message : str
        For a guess, one sentence asking the user to check it; empty otherwise.
    """

    axes: str
    certain: bool
    message: str = ""


def guess_axes(ndim: int, *, rgb: bool = False, labels: tuple[str, ...] = (),
               metadata_axes: Any = None) -> AxesGuess:
    """The axes of an array of ``ndim`` dimensions, from what napari knows of it.

    Parameters
    ----------
    ndim : int
        Dimensions of the data array (with the colour axis of an RGB layer).
    rgb : bool
        The last axis holds colours.
    labels : tuple of str
        napari's axis labels (one per dimension without the colour axis).
    metadata_axes : str, optional
        ``layer.metadata["axes"]``, as set by infocus on the layers it makes.

    Examples
    --------
    >>> guess_axes(2)
    AxesGuess(axes='YX', certain=True, message='')
    >>> guess_axes(3, labels=("t", "y", "x")).axes
    'TYX'
    >>> guess_axes(3).certain
    False
    """
    if isinstance(metadata_axes, str) and len(metadata_axes) == ndim:
        try:
            return AxesGuess(check_axes(metadata_axes), True)
        except InfocusInputError:
            pass
    spatial_ndim = ndim - 1 if rgb else ndim
    colour = "C" if rgb else ""
    from_labels = "".join(_LABELS.get(str(label).strip().lower(), "?") for label in labels)
    if len(from_labels) == spatial_ndim and "?" not in from_labels:
        try:
            return AxesGuess(check_axes(from_labels + colour), True)
        except InfocusInputError:
            pass
    if spatial_ndim < 2 or spatial_ndim > 6 or (rgb and spatial_ndim > 5):
        raise InfocusInputError(
            f"A layer of {ndim} dimensions cannot be an image for infocus, which needs 2 to 6 "
            "(Y and X, and any of S, T, C, Z); choose another layer."
        )
    guess = _GUESSES[spatial_ndim] + colour
    if spatial_ndim == 2:
        return AxesGuess(guess, True)
    return AxesGuess(guess, False, (
        f"A {spatial_ndim}-D layer may be {_ALTERNATIVES[spatial_ndim]}: check the guess "
        f"{guess} in the axes field and correct it if the layer is something else."))


def layer_array(layer: Any) -> Any:
    """The layer's full-resolution data (the first level of a multiscale layer)."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def layer_axes(layer: Any) -> AxesGuess:
    """:func:`guess_axes` for a napari layer."""
    return guess_axes(int(np.ndim(layer_array(layer))), rgb=bool(getattr(layer, "rgb", False)),
                      labels=tuple(getattr(layer, "axis_labels", ())),
                      metadata_axes=layer.metadata.get("axes"))
