"""Public entry points: :func:`read_image`, :func:`open_image_lazy` and :func:`write_image`."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from infocus._errors import InfocusInputError
from infocus.axes import default_axes
from infocus.io._atomic import atomic_output, check_output_path, check_writable_folder
from infocus.io._bioio import VENDOR_FORMATS, open_vendor_lazy, read_vendor
from infocus.io._common import (
    OUTPUT_DTYPES,
    convert_dtype_warn,
    detect_format,
    file_suffix,
    resolve_path,
    short_reason,
)
from infocus.io._image import Image
from infocus.io._simple import (
    check_png,
    check_png_dtype,
    open_npy_lazy,
    read_npy,
    read_png,
    write_npy,
    write_png,
)
from infocus.io._tiff import open_tiff_lazy, read_tiff, write_tiff
from infocus.io._zarr import open_zarr_lazy, read_zarr, write_zarr

__all__ = ["check_image_output", "open_image_lazy", "read_image", "write_image"]

PathLike = str | os.PathLike[str]

_READERS: dict[str, Callable[..., Image]] = {
    "tiff": read_tiff,
    "zarr": read_zarr,
    "png": read_png,
    "npy": read_npy,
}
_LAZY_OPENERS: dict[str, Callable[..., Image]] = {
    "tiff": open_tiff_lazy,
    "zarr": open_zarr_lazy,
    "png": read_png,  # PNGs are small and compressed as a whole: read eagerly
    "npy": open_npy_lazy,
}
_WRITERS: dict[str, Callable[[Path, Image], None]] = {
    "tiff": write_tiff,
    "zarr": write_zarr,
    "png": write_png,
    "npy": write_npy,
}


def _input_path(path: PathLike) -> tuple[Path, str]:
    resolved = resolve_path(path)
    if not resolved.exists():
        raise InfocusInputError(f"No such file: {str(resolved)!r}; check the path.")
    fmt = detect_format(resolved)
    if fmt == "zarr" and not resolved.is_dir():
        raise InfocusInputError(
            f"{str(resolved)!r} is a file, but a Zarr store is a directory; check the path."
        )
    if fmt != "zarr" and resolved.is_dir():
        raise InfocusInputError(
            f"{str(resolved)!r} is a directory, not a {fmt.upper()} file; check the path."
        )
    return resolved, fmt


def read_image(
    path: PathLike, *, axes: str | None = None, scene: int | str | None = None
) -> Image:
    """Read an image file into memory, with its axes and metadata.

    The format follows the file ending: ``.tif``/``.tiff``/``.ome.tif``/``.ome.tiff``
    (tifffile; OME-TIFF and ImageJ hyperstack metadata), ``.zarr``/``.ome.zarr`` (Zarr v2/v3
    and OME-Zarr NGFF 0.4/0.5, full-resolution level), ``.png`` (imageio) and ``.npy``
    (NumPy, no pickles). A directory holding Zarr metadata is read as Zarr whatever its name.
    Zeiss ``.czi``, Nikon ``.nd2`` and Leica ``.lif`` files are read through bioio and its
    plug-ins, the optional extra ``pip install 'infocus[formats]'``.

    Axes are decided as follows:

    1. ``axes``, if given, must have one letter per dimension; if the file's metadata names a
       different *number* of axes, an error names the shape and both strings. If it names
       the same number but different letters, **the given axes win** (you know your data
       better than a mislabelled file); pixel sizes and channel names are then kept only
       for the letters that stay in place.
    2. Otherwise the file's metadata is used: OME ``DimensionOrder``, ImageJ hyperstack
       dimensions, tifffile shaped ``axes``, NGFF axis names, Zarr ``dimension_names`` or
       bioio's dimensions (``T C Z Y X``; RGB samples become ``C``, unstitched mosaic
       tiles ``S``). PNGs are ``"YX"`` (grey) or ``"YXC"`` (colour). TIFF and vendor
       files drop dimensions of length 1 (other than ``Y`` and ``X``).
    3. Otherwise a 2-D array is ``"YX"``; any other array needs ``axes``.

    Parameters
    ----------
    path : str or os.PathLike
        The file (or Zarr directory); ``~`` is expanded.
    axes : str, optional
        Axes over ``S T C Z Y X`` in the order of the stored dimensions, e.g. ``"TYX"``.
    scene : int or str, optional
        For CZI, ND2 and LIF files holding several scenes (positions, series): the index or
        name of the one to read; the first by default.

    Returns
    -------
    Image
        Pixels in their stored data type (not yet float32), axes, pixel sizes (from OME
        ``PhysicalSizeX/Y/Z``, ImageJ resolution and ``spacing``, NGFF ``scale`` or bioio's
        ``physical_pixel_sizes``), unit, channel names (OME ``Channel/@Name``, ImageJ
        labels, OMERO ``label`` or the vendor file's names) and ``source=str(path)``.

    Raises
    ------
    InfocusInputError
        Missing file, unsupported ending, corrupt or truncated file, pickled ``.npy``,
        ambiguous or mismatching axes, a scene that does not exist, or a vendor file
        larger than the free memory.
    ImportError
        A CZI, ND2 or LIF file without the ``formats`` extra installed.

    Examples
    --------
    >>> image = read_image("stack.ome.tif")  # doctest: +SKIP
    >>> image.axes, image.pixel_sizes  # doctest: +SKIP
    ('ZYX', {'Z': 0.5, 'Y': 0.1, 'X': 0.1})
    """
    resolved, fmt = _input_path(path)
    _check_scene(resolved, fmt, scene)
    with _damage_is_input_error(resolved, fmt):
        if fmt in VENDOR_FORMATS:
            return read_vendor(resolved, fmt, axes=axes, scene=scene)
        return _READERS[fmt](resolved, axes=axes)


def _check_scene(path: Path, fmt: str, scene: int | str | None) -> None:
    if scene is not None and fmt not in VENDOR_FORMATS:
        raise InfocusInputError(
            f"A scene was asked for, but {path.name} is a {_FORMAT_NAMES[fmt]}, which infocus "
            "reads as one image; leave out the scene (it applies to CZI, ND2 and LIF files)."
        )


@contextlib.contextmanager
def _damage_is_input_error(path: Path, fmt: str) -> Iterator[None]:
    """The one place where a reader's unexpected failure on a damaged file (a parser's own
    exception deep in tifffile, zarr or a codec) becomes one sentence naming the file."""
    try:
        yield
    except (InfocusInputError, ImportError, KeyboardInterrupt):
        raise
    except MemoryError:
        raise InfocusInputError(
            f"{str(path)!r} declares more pixels than fit in memory; if it is intact, open it "
            "with open_image_lazy (the predict command streams such files)."
        ) from None
    except Exception as exc:
        raise InfocusInputError(
            f"{str(path)!r} is damaged or not a valid {_FORMAT_NAMES[fmt]} "
            f"({short_reason(exc)}); check the file or export it again."
        ) from None


_FORMAT_NAMES = {
    "tiff": "TIFF",
    "zarr": "Zarr store",
    "png": "PNG",
    "npy": ".npy file",
    **{fmt: f"{name} file" for fmt, (_, _, name) in VENDOR_FORMATS.items()},
}


def open_image_lazy(
    path: PathLike, *, axes: str | None = None, scene: int | str | None = None
) -> Image:
    """Open an image without reading its pixels, for images larger than memory.

    ``Image.data`` is a ``zarr.Array`` for Zarr stores (the full-resolution level of an
    OME-Zarr) and for TIFFs (tifffile's Zarr view of the first series, which reads strips or
    tiles on access), a read-only ``numpy.memmap`` for ``.npy``, a view that reads the
    planes it is indexed with for CZI, ND2 and LIF (through bioio's dask arrays; ``scene`` as
    in :func:`read_image`), and an ordinary array for PNG (read eagerly). Index it (``image.data[0, 100:200]``) to read a block, or call
    :meth:`Image.load` to read everything. Axes follow the rules of :func:`read_image`,
    except that TIFF axes of length 1 are always dropped.

    Examples
    --------
    >>> image = open_image_lazy("big.ome.zarr")  # doctest: +SKIP
    >>> block = image.data[0, :, :256, :256]  # doctest: +SKIP
    """
    resolved, fmt = _input_path(path)
    _check_scene(resolved, fmt, scene)
    with _damage_is_input_error(resolved, fmt):
        if fmt in VENDOR_FORMATS:
            return open_vendor_lazy(resolved, fmt, axes=axes, scene=scene)
        return _LAZY_OPENERS[fmt](resolved, axes=axes)


def check_image_output(path: str | os.PathLike[str], *, dtype: Any = "float32",
                       overwrite: bool = False) -> Path:
    """Everything about an image output that can be checked before the work that fills it:
    a supported ending, a supported ``dtype`` (and one the format can store: PNG holds only
    8/16-bit integers), an existing, writable folder, and an existing output only with
    ``overwrite`` (never a folder infocus did not write). Returns the resolved path.

    Raises
    ------
    InfocusInputError, OutputExistsError
        With one sentence naming the problem and the fix.
    """
    resolved = resolve_path(path)
    fmt = detect_format(resolved, for_writing=True)
    name = _dtype_name(dtype)
    if fmt == "png":
        check_png_dtype(name)
    check_output_path(resolved, overwrite=overwrite)
    check_writable_folder(resolved.parent)
    return resolved


def _dtype_name(dtype: Any) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in OUTPUT_DTYPES:
        raise InfocusInputError(
            f"Output data type {dtype!r} is not supported; choose one of {', '.join(OUTPUT_DTYPES)}."
        )
    return name


def _as_image(
    image: Image | np.ndarray,
    axes: str | None,
    pixel_sizes: dict[str, float] | None,
    channel_names: Sequence[str] | None,
    unit: str | None,
) -> Image:
    if isinstance(image, Image):
        changes: dict[str, Any] = {}
        if axes is not None:
            changes["axes"] = axes
        if pixel_sizes is not None:
            changes["pixel_sizes"] = dict(pixel_sizes)
        if channel_names is not None:
            changes["channel_names"] = list(channel_names)
        if unit is not None:
            changes["unit"] = unit
        return dataclasses.replace(image, **changes) if changes else image
    array = np.asarray(image)
    return Image(
        array,
        axes if axes is not None else default_axes(array.shape),
        dict(pixel_sizes or {}),
        unit=unit if unit is not None else "µm",
        channel_names=list(channel_names) if channel_names is not None else None,
    )


def write_image(
    path: PathLike,
    image: Image | np.ndarray,
    *,
    axes: str | None = None,
    dtype: str | np.dtype = "float32",
    overwrite: bool = False,
    pixel_sizes: dict[str, float] | None = None,
    channel_names: Sequence[str] | None = None,
    unit: str | None = None,
) -> Path:
    """Write an image atomically in the format its file ending names.

    Formats: TIFF (``.tif``, ``.tiff``, ``.ome.tif``, ``.ome.tiff``; always with OME-XML
    axes, pixel sizes and channel names), OME-Zarr (``.zarr``, ``.ome.zarr``; NGFF 0.5, one
    level), PNG (``.png``; ``YX``/``YXC`` images, ``uint8``/``uint16`` only) and ``.npy``
    (pixels only). TIFF and OME-Zarr store ``Y X`` last (OME-Zarr in ``S T C Z Y X`` order),
    so an image with, e.g., axes ``"YXC"`` is stored, and read back, as ``"CYX"``.

    Output values are converted, never rescaled: ``float32`` keeps them, ``uint16`` and
    ``uint8`` round to the nearest integer and clip to the type's range (NaN becomes 0).
    When any pixel is clipped a :class:`~infocus.io.ClippingWarning` says how many (its
    ``n_clipped`` attribute holds the count); use :func:`~infocus.io.convert_dtype` to get
    the count without writing.

    The file is first written under a hidden temporary name in the same directory
    (``.{name}.tmp-XXXXXXXX{suffix}``) and renamed onto ``path`` only when complete, so a
    failed or interrupted write never leaves a partial output (or damages the old one).

    Parameters
    ----------
    path : str or os.PathLike
        Output file (or Zarr directory); ``~`` is expanded. Its directory must exist.
    image : Image or ndarray
        Pixels, with metadata if an :class:`Image`.
    axes : str, optional
        Axes of an array (default ``"YX"`` for 2-D arrays; required otherwise); for an
        :class:`Image`, replaces its axes.
    dtype : {"float32", "uint16", "uint8"}
        Output data type.
    overwrite : bool
        Replace an existing output; otherwise :class:`~infocus.OutputExistsError` is raised.
    pixel_sizes, channel_names, unit : optional
        Metadata for an array, or replacements for an :class:`Image`'s.

    Returns
    -------
    Path
        The written path (with ``~`` expanded).

    Raises
    ------
    InfocusInputError
        Unsupported ending or dtype, a missing output directory, axes or metadata that do
        not fit, or an image the format cannot hold (float PNG, 5-channel PNG, ...).
    OutputExistsError
        ``path`` exists and ``overwrite`` is false.

    Examples
    --------
    >>> write_image("denoised.ome.tif", image.with_data(result))  # doctest: +SKIP
    PosixPath('denoised.ome.tif')
    """
    resolved = resolve_path(path)
    fmt = detect_format(resolved, for_writing=True)
    name = _dtype_name(dtype)
    prepared = _as_image(image, axes, pixel_sizes, channel_names, unit)
    if fmt == "png":
        check_png(prepared, name)
    check_output_path(resolved, overwrite=overwrite)  # fail before any expensive work
    converted = prepared.with_data(convert_dtype_warn(np.asarray(prepared.data), name))
    with atomic_output(resolved, overwrite=overwrite, suffix=file_suffix(resolved)) as tmp:
        _WRITERS[fmt](tmp, converted)
    return resolved
