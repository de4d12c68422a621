"""Helpers shared by the readers and writers: paths, formats, axes resolution, dtype conversion."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from infocus._errors import InfocusInputError
from infocus.axes import check_axes, default_axes, default_axes_hint

__all__ = [
    "OUTPUT_DTYPES",
    "READ_ONLY_FORMATS",
    "SUPPORTED_SUFFIXES",
    "ClippingWarning",
    "carry_metadata",
    "convert_dtype",
    "convert_dtype_warn",
    "detect_format",
    "file_suffix",
    "resolve_axes",
    "resolve_path",
    "short_reason",
]

#: File endings :func:`read_image` and :func:`write_image` understand, and their format.
SUPPORTED_SUFFIXES: dict[str, str] = {
    ".ome.tif": "tiff",
    ".ome.tiff": "tiff",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".ome.zarr": "zarr",
    ".zarr": "zarr",
    ".png": "png",
    ".npy": "npy",
    ".czi": "czi",
    ".nd2": "nd2",
    ".lif": "lif",
}

#: Formats infocus reads (through the optional bioio plug-ins) but does not write.
READ_ONLY_FORMATS = frozenset({"czi", "nd2", "lif"})

#: Data types :func:`write_image` can write.
OUTPUT_DTYPES = ("float32", "uint16", "uint8")


class ClippingWarning(UserWarning):
    """Pixels fell outside the output data type's range and were clipped.

    Attributes
    ----------
    n_clipped : int
        How many pixels were clipped (NaNs, which become 0, included).
    n_pixels : int
        How many pixels the image has.
    dtype : str
        The output data type.
    """

    def __init__(self, message: str, *, n_clipped: int, n_pixels: int, dtype: str) -> None:
        super().__init__(message)
        self.n_clipped = n_clipped
        self.n_pixels = n_pixels
        self.dtype = dtype


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`~pathlib.Path` with ``~`` expanded."""
    if not isinstance(path, str | os.PathLike):
        raise InfocusInputError(f"A path must be a string or path-like object (got {path!r}).")
    return Path(os.fspath(path)).expanduser()


def file_suffix(path: Path) -> str:
    """The (possibly double, e.g. ``.ome.tif``) lower-case file ending of ``path``."""
    name = path.name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return path.suffix.lower()


def _supported_list(*, for_writing: bool = False) -> str:
    return ", ".join(
        suffix
        for suffix, fmt in SUPPORTED_SUFFIXES.items()
        if not (for_writing and fmt in READ_ONLY_FORMATS)
    )


def detect_format(path: Path, *, for_writing: bool = False) -> str:
    """The format of ``path`` from its ending: ``"tiff"``, ``"zarr"``, ``"png"``, ``"npy"``,
    or one of the vendor formats ``"czi"``, ``"nd2"``, ``"lif"`` (read only).

    A directory holding Zarr metadata (``zarr.json``, ``.zgroup`` or ``.zarray``) counts as
    Zarr whatever its name, so an array inside a Zarr group can be read directly.

    Raises
    ------
    InfocusInputError
        For an ending infocus does not support (or, when writing, cannot write); the
        message lists the supported ones.
    """
    suffix = file_suffix(path)
    if for_writing and SUPPORTED_SUFFIXES.get(suffix) in READ_ONLY_FORMATS:
        raise InfocusInputError(
            f"Cannot write {str(path)!r}: infocus reads {suffix} files but does not write "
            f"them; use one of {_supported_list(for_writing=True)}."
        )
    if suffix in SUPPORTED_SUFFIXES:
        return SUPPORTED_SUFFIXES[suffix]
    if (
        not for_writing
        and path.is_dir()
        and any((path / marker).is_file() for marker in ("zarr.json", ".zgroup", ".zarray"))
    ):
        return "zarr"
    action = "write" if for_writing else "read"
    shown = suffix or "(no file ending)"
    raise InfocusInputError(
        f"Cannot {action} {str(path)!r}: unsupported file type {shown}; use one of "
        f"{_supported_list(for_writing=for_writing)}."
    )


def short_reason(exc: BaseException) -> str:
    """The first line of an exception's message (or its type), trimmed for one-sentence errors."""
    text = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else ""
    text = text.rstrip(".")
    if len(text) > 160:
        text = text[:157] + "..."
    return text or type(exc).__name__


def resolve_axes(
    shape: tuple[int, ...],
    file_axes: str | None,
    given: str | None,
    name: str,
    *,
    unmapped: str | None = None,
) -> str:
    """Decide the axes of an image read from a file.

    The rules, in order:

    1. Axes given by the user must have one letter per dimension. If the file has axes
       metadata of another length, the error names the shape, the file's axes and the given
       ones. A same-length string that differs from the file's metadata *wins*: the user is
       assumed to know better (e.g. a ``TYX`` time series stored as ``ZYX``).
    2. Otherwise the file's axes metadata is used.
    3. Otherwise a 2-D array is ``"YX"``; anything else must be told (``--axes``).

    Parameters
    ----------
    shape : tuple of int
        Shape of the pixel array.
    file_axes : str or None
        Axes from the file's metadata, already in infocus letters, or ``None``.
    given : str or None
        Axes given by the user.
    name : str
        File name for messages.
    unmapped : str or None
        The file's own dimension letters when they could not be translated (for the message).
    """
    if given is not None:
        given = check_axes(given)
        if file_axes is not None and len(given) != len(file_axes):
            raise InfocusInputError(
                f"{name} has shape {tuple(shape)} with axes {file_axes!r} in its metadata, but "
                f"axes {given!r} were given; pass {len(shape)} letters or leave out the axes "
                "to use the file's."
            )
        return check_axes(given, shape)
    if file_axes is not None:
        return check_axes(file_axes, shape)
    if unmapped is not None and len(shape) != 2:
        raise InfocusInputError(
            f"{name} has dimensions {unmapped!r} (shape {tuple(shape)}) that infocus cannot map "
            f"to its axes S T C Z Y X; pass the axes explicitly, e.g. --axes {default_axes_hint(shape)}."
        )
    return default_axes(shape)


def carry_metadata(
    file_axes: str | None,
    axes: str,
    shape: tuple[int, ...],
    pixel_sizes: dict[str, float],
    channel_names: list[str] | None,
) -> tuple[dict[str, float], list[str] | None]:
    """Keep the file's metadata that still applies to the final ``axes``.

    When the user overrode the file's axes, a pixel size survives only if its letter sits
    at the same position in both strings, and channel names only if ``C`` does (or neither
    string has ``C``). Sizes for axes the image lacks and a wrong number of channel names
    are dropped rather than reported: metadata never stops a file from being read.
    """
    if file_axes is not None and file_axes != axes:
        pixel_sizes = {
            a: s
            for a, s in pixel_sizes.items()
            if a in file_axes and a in axes and file_axes.index(a) == axes.index(a)
        }
        same_c = ("C" not in file_axes and "C" not in axes) or (
            "C" in file_axes and "C" in axes and file_axes.index("C") == axes.index("C")
        )
        if not same_c:
            channel_names = None
    pixel_sizes = {a: s for a, s in pixel_sizes.items() if a in axes}
    n_channels = shape[axes.index("C")] if "C" in axes else 1
    if channel_names is not None and len(channel_names) != n_channels:
        channel_names = None
    return pixel_sizes, channel_names


def convert_dtype(data: np.ndarray, dtype: str | np.dtype) -> tuple[np.ndarray, int]:
    """Convert pixels to an output data type; return the result and how many pixels were clipped.

    ``float32`` keeps values as they are (values beyond the float32 range are clipped to it
    rather than becoming infinite). Integer types round to the nearest integer,
    :math:`\\mathrm{clip}(\\mathrm{round}(x), \\min, \\max)`, with the type's range (``[0, 255]``
    for ``uint8``, ``[0, 65535]`` for ``uint16``); NaN becomes 0. Values are never rescaled:
    write a normalised image yourself if its range does not fit.

    Parameters
    ----------
    data : ndarray
        Real-valued pixels.
    dtype : {"float32", "uint16", "uint8"}
        Output data type.

    Returns
    -------
    converted : ndarray
    n_clipped : int
        Pixels that were out of range (or NaN for integer output).

    Examples
    --------
    >>> convert_dtype(np.array([-3.2, 7.6, 70000.0]), "uint16")
    (array([    0,     8, 65535], dtype=uint16), 2)
    """
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype.lower()
    if name not in OUTPUT_DTYPES:
        raise InfocusInputError(
            f"Output data type {dtype!r} is not supported; choose one of {', '.join(OUTPUT_DTYPES)}."
        )
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise InfocusInputError(
            f"Cannot write pixels of dtype {array.dtype}; convert them to integers or floats first."
        )
    target = np.dtype(name)
    if array.dtype == target:
        return array, 0
    if target.kind == "f":
        if array.dtype.kind == "f" and array.dtype.itemsize > target.itemsize:
            limit = np.finfo(target).max
            with np.errstate(invalid="ignore"):
                over = np.abs(array) > limit
            n_clipped = int(np.count_nonzero(over))
            if n_clipped:
                array = np.clip(array, -limit, limit)
            return array.astype(target), n_clipped
        return array.astype(target), 0
    info = np.iinfo(target)
    if array.dtype.kind in "biu":
        wide = array.astype(np.int64, copy=False)
        n_clipped = int(np.count_nonzero((wide < info.min) | (wide > info.max)))
        return np.clip(wide, info.min, info.max).astype(target), n_clipped
    rounded = np.rint(array.astype(np.float64, copy=False))
    nan = np.isnan(rounded)
    with np.errstate(invalid="ignore"):
        outside = (rounded < info.min) | (rounded > info.max)
    n_clipped = int(np.count_nonzero(outside | nan))
    rounded = np.where(nan, 0.0, np.clip(rounded, info.min, info.max))
    return rounded.astype(target), n_clipped


def convert_dtype_warn(data: np.ndarray, dtype: str | np.dtype) -> np.ndarray:
    """:func:`convert_dtype`, issuing a :class:`ClippingWarning` when pixels were clipped."""
    converted, n_clipped = convert_dtype(data, dtype)
    if n_clipped:
        n_pixels = int(np.size(data))
        name = converted.dtype.name
        if converted.dtype.kind == "f":
            low, high = -float(np.finfo(converted.dtype).max), float(np.finfo(converted.dtype).max)
        else:
            low, high = np.iinfo(converted.dtype).min, np.iinfo(converted.dtype).max
        warnings.warn(
            ClippingWarning(
                f"{n_clipped} of {n_pixels} pixels ({100 * n_clipped / n_pixels:.3g}%) were "
                f"outside the {name} range [{low:g}, {high:g}] (or NaN) and were clipped; "
                "rescale the image or write float32 to keep them.",
                n_clipped=n_clipped,
                n_pixels=n_pixels,
                dtype=name,
            ),
            stacklevel=3,
        )
    return converted
