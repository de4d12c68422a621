"""PNG (imageio) and NumPy ``.npy`` files: pixels only, no physical metadata.

* PNG holds a 2-D grey image (axes ``"YX"``) or a colour image (``"YXC"``: grey + alpha,
  RGB or RGBA) of 8 or 16 bits; 16 bits only for grey images (a limit of the Pillow
  backend). Float data must be converted first (``--dtype uint8`` or ``uint16``).
* ``.npy`` holds any numeric array but no axes, so anything that is not 2-D needs explicit
  axes when read back. Pickled (object) arrays are refused, since unpickling can run code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infocus._errors import InfocusInputError
from infocus.io._common import resolve_axes, short_reason
from infocus.io._image import Image

__all__ = ["check_png", "open_npy_lazy", "read_npy", "read_png", "write_npy", "write_png"]


def read_png(path: Path, *, axes: str | None = None) -> Image:
    """Read a PNG: ``"YX"`` for grey images, ``"YXC"`` for grey + alpha, RGB and RGBA."""
    import imageio.v3 as iio

    try:
        # From bytes: imageio leaves a file open when no plugin can read it.
        data = np.asarray(iio.imread(path.read_bytes(), extension=".png"))
    except Exception as exc:
        raise InfocusInputError(
            f"{str(path)!r} is not a readable PNG (file may be corrupt or truncated): {short_reason(exc)}."
        ) from exc
    file_axes = {2: "YX", 3: "YXC"}.get(data.ndim)
    final = resolve_axes(data.shape, file_axes, axes, path.name)
    return Image(data, final, source=str(path))


def _png_layout(image: Image) -> tuple[str, tuple[int, ...]]:
    """Check that ``image`` fits a PNG; return the storage axes and shape."""
    axes = image.axes
    if set(axes) not in ({"Y", "X"}, {"Y", "X", "C"}):
        raise InfocusInputError(
            f"A PNG holds a 2-D image with axes YX or YXC, not {axes!r}; write a TIFF "
            "(.tif) or OME-Zarr (.zarr) instead."
        )
    stored = "YX" if "C" not in axes else "YXC"
    shape = tuple(image.size(a) for a in stored)
    n_channels = image.size("C")
    if n_channels not in (1, 2, 3, 4):
        raise InfocusInputError(
            f"A PNG holds 1 to 4 channels (grey, grey + alpha, RGB, RGBA) but the image has "
            f"{n_channels}; write a TIFF (.tif) instead."
        )
    return stored, shape


def check_png_dtype(dtype: str) -> None:
    """PNG holds 8- and 16-bit integers only."""
    if dtype not in ("uint8", "uint16"):
        raise InfocusInputError(
            f"PNG stores only 8- or 16-bit integers, not {dtype}; pass --dtype uint8 or "
            "--dtype uint16 (values are rounded and clipped), or write a TIFF to keep float32."
        )


def check_png(image: Image, dtype: str) -> None:
    """Raise a clear error before writing if ``image`` cannot become a ``dtype`` PNG."""
    _png_layout(image)
    check_png_dtype(dtype)
    if dtype == "uint16" and image.size("C") > 1:
        raise InfocusInputError(
            "16-bit PNG is supported only for grey images; pass --dtype uint8 or write a TIFF."
        )


def write_png(path: Path, image: Image) -> None:
    """Write ``image`` (already uint8 or uint16) as a PNG."""
    import imageio.v3 as iio

    stored, shape = _png_layout(image)
    data = np.transpose(np.asarray(image.data), [image.axes.index(a) for a in stored])
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    iio.imwrite(path, data, extension=".png")


def _npy_error(path: Path, exc: BaseException) -> InfocusInputError:
    text = str(exc).lower()
    if "pickle" in text or "python objects" in text:
        return InfocusInputError(
            f"{str(path)!r} holds pickled Python objects, which infocus refuses to load because "
            "unpickling can run code; save a numeric array with numpy.save instead."
        )
    return InfocusInputError(
        f"{str(path)!r} is not a readable .npy file (file may be corrupt or truncated): {short_reason(exc)}."
    )


def read_npy(path: Path, *, axes: str | None = None) -> Image:
    """Read a ``.npy`` array (no pickles); axes must be given unless it is 2-D."""
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise _npy_error(path, exc) from exc
    if not isinstance(data, np.ndarray):  # np.load returns NpzFile for .npz content
        raise InfocusInputError(
            f"{str(path)!r} is an .npz archive, not a single .npy array; save one array with numpy.save."
        )
    final = resolve_axes(data.shape, None, axes, path.name)
    return Image(data, final, source=str(path))


def open_npy_lazy(path: Path, *, axes: str | None = None) -> Image:
    """Open a ``.npy`` file as a read-only ``numpy.memmap`` (pages are read on access)."""
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise _npy_error(path, exc) from exc
    if not isinstance(data, np.ndarray):
        raise InfocusInputError(
            f"{str(path)!r} is an .npz archive, not a single .npy array; save one array with numpy.save."
        )
    final = resolve_axes(data.shape, None, axes, path.name)
    return Image(data, final, source=str(path))


def write_npy(path: Path, image: Image) -> None:
    """Write the pixels of ``image`` as ``.npy`` (axes and pixel sizes are not stored)."""
    with open(path, "wb") as handle:
        np.save(handle, np.asarray(image.data), allow_pickle=False)
