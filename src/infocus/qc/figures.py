"""Pictures of a result: the display range every figure shares, and a before/after preview.

The preview (``infocus denoise`` and ``infocus predict`` with ``--preview``) shows the raw and
the denoised image side by side on one grey scale taken from the raw image, so a brightness
change is the method's doing and not the display's, with a zoomed crop where the image has
the most structure.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["DISPLAY_PERCENTILES", "display_range", "middle_plane", "write_preview"]

#: Percentiles of an image's values that span the grey scale of a figure: the brightest and
#: darkest half-percent (hot pixels, noise extremes) saturate instead of compressing the rest.
DISPLAY_PERCENTILES = (0.5, 99.5)

#: A preview crops when the shown plane's shorter edge has at least this many pixels.
_CROP_MIN_EDGE = 96
#: Width of each image panel of a preview, inches.
_PANEL_INCHES = 4.5
#: Where to crop is found on a plane reduced to at most this edge (cheap for any size).
_CROP_SEARCH_EDGE = 1024


def display_range(image: Any, percentiles: tuple[float, float] = DISPLAY_PERCENTILES
                  ) -> tuple[float, float]:
    """The grey-scale limits of ``image``: its values at ``percentiles`` (NaNs ignored).

    A constant image gets a unit-wide range around its value, so it still shows (mid-grey)
    instead of making matplotlib divide by zero.
    """
    values = np.asarray(image, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, percentiles))
    if high <= low:
        return low - 0.5, low + 0.5
    return low, high


def middle_plane(array: Any, axes: str) -> tuple[np.ndarray, dict[str, int]]:
    """The YX plane in the middle of every other axis of ``array`` (S, T, C, Z), read alone.

    ``array`` may be lazy (a Zarr array, a memory map): only the plane is read. Returns the
    plane as float64 and the index taken along each other axis (from 0), e.g. ``{"Z": 12}``.
    """
    from infocus._errors import InfocusInputError

    if len(axes) != np.ndim(array) or "Y" not in axes or "X" not in axes:
        raise InfocusInputError(
            f"Axes {axes!r} do not describe an image of shape {np.shape(array)}; give one letter "
            "per dimension, Y and X included.")
    shape = dict(zip(axes, np.shape(array), strict=True))
    where = {axis: size // 2 for axis, size in shape.items() if axis not in "YX"}
    plane = np.asarray(array[tuple(where.get(a, slice(None)) for a in axes)], dtype=np.float64)
    if axes.index("X") < axes.index("Y"):
        plane = plane.T
    return plane, where


def write_preview(
    noisy: Any,
    denoised: Any,
    path: str | os.PathLike[str],
    *,
    axes: str,
    denoised_axes: str | None = None,
    title: str = "",
    label: str = "denoised",
    overwrite: bool = False,
) -> Path:
    """Write a PNG of ``noisy`` and ``denoised`` side by side, with a zoomed crop.

    Both are shown on the grey scale of the raw image's :data:`DISPLAY_PERCENTILES`. A stack
    shows its middle plane (:func:`middle_plane`), named in the title. Below the full views,
    a square of a quarter of the shorter edge is shown enlarged: the one with the most detail
    in the denoised image (edges and fine structure, where methods differ), outlined above.

    Parameters
    ----------
    noisy, denoised : array-like
        The raw and the denoised image; lazy arrays are fine (one plane is read).
    path : path
        The PNG to write, atomically.
    axes : str
        Axes of ``noisy`` (S T C Z Y X letters).
    denoised_axes : str, optional
        Axes of ``denoised`` when stored in another order (TIFF and Zarr keep Y X last);
        default ``axes``.
    title : str
        First line of the heading, e.g. the method and the file name.
    label : str
        Heading of the denoised panels.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from infocus._errors import InfocusInputError
    from infocus.io._atomic import atomic_output

    raw, where = middle_plane(noisy, axes)
    result, _ = middle_plane(denoised, denoised_axes or axes)
    if raw.shape != result.shape:
        raise InfocusInputError(
            f"The denoised plane is {result.shape} but the raw one is {raw.shape}; a preview "
            "compares images of the same size.")
    low, high = display_range(raw)
    crop = _crop(result)
    # Rows as tall as their images at the panels' width (plus their titles), so no band of
    # white separates them: the full planes keep their aspect, the crop is square.
    aspect = min(max(raw.shape[0] / raw.shape[1], 0.25), 2.0)
    heights = [_PANEL_INCHES * aspect] + ([_PANEL_INCHES] if crop is not None else [])
    figure = Figure(figsize=(2 * _PANEL_INCHES + 0.2, sum(heights) + 0.45 * len(heights) + 0.7),
                    layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(len(heights), 2, squeeze=False, height_ratios=heights)
    shown = {"raw": raw, label: result}
    for column, (name, plane) in enumerate(shown.items()):
        top = panels[0][column]
        top.imshow(plane, cmap="gray", vmin=low, vmax=high, interpolation="antialiased")
        top.set_title(name)
        if crop is not None:
            (y0, y1), (x0, x1) = crop
            top.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                    edgecolor="gold", linewidth=1.2))
            bottom = panels[1][column]
            bottom.imshow(plane[y0:y1, x0:x1], cmap="gray", vmin=low, vmax=high,
                          interpolation="nearest", extent=(x0 - 0.5, x1 - 0.5, y1 - 0.5, y0 - 0.5))
            bottom.set_title(f"{name}, zoomed (rows {y0}–{y1 - 1}, columns {x0}–{x1 - 1})",
                             fontsize=9)
    for axis in panels.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    heading = [title] if title else []
    if where:
        sizes = dict(zip(axes, np.shape(noisy), strict=True))
        heading.append("middle plane: " + ", ".join(
            f"{axis} = {index} of 0–{sizes[axis] - 1}" for axis, index in where.items()))
    heading.append(f"grey scale {low:.4g} to {high:.4g} (the raw image's "
                   f"{DISPLAY_PERCENTILES[0]:g} and {DISPLAY_PERCENTILES[1]:g} percentiles)")
    figure.suptitle("\n".join(heading), fontsize=10)
    path = Path(path).expanduser()
    with atomic_output(path, overwrite=overwrite, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    return path


def _crop(plane: np.ndarray) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Rows and columns (start, stop) of the square to enlarge, or None for a small plane.

    The square, a quarter of the shorter edge, is where the plane's mean gradient magnitude
    is highest: fine structure and edges, where denoisers differ, rather than flat background
    (a variance criterion would rather pick one bright object's rim).
    """
    edge = min(plane.shape)
    if edge < _CROP_MIN_EDGE:
        return None
    side = edge // 4
    step = max(1, math.ceil(max(plane.shape) / _CROP_SEARCH_EDGE))
    small = np.nan_to_num(plane[::step, ::step])
    gradient = np.hypot(*np.gradient(small))
    window = max(1, side // step)
    detail = ndimage.uniform_filter(gradient, window, mode="nearest")
    # Only centres whose whole window lies inside the plane; uniform_filter centres a window
    # of size w at start + w // 2, so index i of ``inner`` is the window starting at i.
    half = window // 2
    inner = detail[half:small.shape[0] - (window - half) + 1,
                   half:small.shape[1] - (window - half) + 1]
    row, column = np.unravel_index(np.argmax(inner), inner.shape)
    y0 = min(int(row) * step, plane.shape[0] - side)
    x0 = min(int(column) * step, plane.shape[1] - side)
    return (y0, y0 + side), (x0, x0 + side)
