"""Checks on images, shared by every entry point; all user-facing error text lives here."""

from __future__ import annotations

import numpy as np

from infocus._errors import InfocusInputError
from infocus.axes import check_axes

__all__ = ["MIN_SPATIAL_SIZE", "check_float32_exact", "check_image", "check_spatial_size"]

#: Smallest height/width any method accepts; smaller images carry too little to denoise.
MIN_SPATIAL_SIZE = 8


def check_image(
    image: object,
    axes: str | None = None,
    *,
    name: str = "image",
    dtype: type[np.floating] = np.float32,
) -> np.ndarray:
    """Validate a pixel array and return it as floating point (a copy only when needed).

    Parameters
    ----------
    image : array_like
        Real-valued pixels (bool, integer or float).
    axes : str, optional
        If given, checked against the shape and used to find Y and X.
    name : str
        How to call the array in error messages ("image", "ground truth", ...).
    dtype : numpy floating type
        Returned dtype; float32 (the working precision of every denoiser) by default.

    Raises
    ------
    InfocusInputError
        Unsupported dtype, empty or tiny image, NaN or infinite pixels, axes/shape mismatch.
    """
    array = np.asarray(image)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
        or array.dtype == np.bool_
    ):
        raise InfocusInputError(
            f"The {name} has dtype {array.dtype}, which infocus cannot denoise; convert it to an "
            "integer or floating-point type (complex and text data are not images)."
        )
    if array.size == 0:
        raise InfocusInputError(
            f"The {name} is empty (shape {array.shape}); check that the file holds pixel data."
        )
    if array.ndim < 2:
        raise InfocusInputError(
            f"The {name} has shape {array.shape} but needs at least two dimensions (Y and X)."
        )
    check_spatial_size(array.shape, axes, name=name)
    if dtype == np.float32:
        check_float32_exact(array, name=name)
    out = array.astype(dtype, copy=False)
    finite = np.isfinite(out)
    if not finite.all():
        bad = int(out.size - np.count_nonzero(finite))
        raise InfocusInputError(
            f"The {name} contains {bad} NaN or infinite pixel(s); replace them (e.g. with the "
            "background value) first."
        )
    return out


def check_spatial_size(shape: tuple[int, ...], axes: str | None, *, name: str = "image") -> None:
    """Refuse an image whose Y or X size is below :data:`MIN_SPATIAL_SIZE` (``axes`` checked
    against ``shape`` when given, else Y and X are the last two axes)."""
    if axes is not None:
        axes = check_axes(axes, shape)
        spatial = [shape[axes.index(a)] for a in "YX"]
    else:
        spatial = list(shape[-2:])
    if min(spatial) < MIN_SPATIAL_SIZE:
        raise InfocusInputError(
            f"The {name} is {spatial[0]}x{spatial[1]} pixels in Y/X, smaller than the "
            f"{MIN_SPATIAL_SIZE}x{MIN_SPATIAL_SIZE} minimum; check the axes or use a larger image."
        )


#: float32 represents every integer up to 2**24 exactly; above, neighbouring values merge.
FLOAT32_EXACT = 2**24


def check_float32_exact(array: np.ndarray, *, name: str = "image") -> None:
    """Refuse integer pixels that float32, the working precision, cannot hold exactly.

    A 32- or 64-bit integer image with values beyond :math:`2^{24}` would lose its small
    variations (the noise and the fine signal) when converted; the user can subtract the
    offset or rescale knowingly instead.
    """
    if not np.issubdtype(array.dtype, np.integer) or array.dtype.itemsize < 4:
        return
    low, high = int(array.min()), int(array.max())
    peak = max(abs(low), abs(high))
    if peak > FLOAT32_EXACT:
        raise InfocusInputError(
            f"The {name} ({array.dtype}) holds values up to {peak}, beyond the {FLOAT32_EXACT} "
            "that infocus's 32-bit floating-point arithmetic represents exactly; subtract the "
            "offset (e.g. the minimum, " + str(low) + ") or rescale the data first."
        )
