"""Reading and writing microscopy images with their axes and physical metadata.

* :func:`read_image` reads TIFF (OME-TIFF, ImageJ hyperstacks), Zarr/OME-Zarr, PNG and
  ``.npy`` files, and with the ``formats`` extra Zeiss CZI, Nikon ND2 and Leica LIF files
  (through bioio), into an :class:`Image` (pixels, axes, pixel sizes, unit, channel names).
* :func:`open_image_lazy` opens TIFF, Zarr, ``.npy`` and vendor files without reading the
  pixels.
* :func:`write_image` writes atomically (never a partial file), refuses to overwrite
  unless asked, and converts to ``float32``, ``uint16`` or ``uint8`` with counted clipping.

Examples
--------
>>> from infocus.io import read_image, write_image
>>> image = read_image("cells.tif", axes="ZYX")  # doctest: +SKIP
>>> write_image("cells_denoised.ome.tif", image.with_data(result))  # doctest: +SKIP
"""

from __future__ import annotations

from infocus.io._api import check_image_output, open_image_lazy, read_image, write_image
from infocus.io._atomic import check_output_path, check_writable_folder, is_infocus_folder
from infocus.io._common import (
    OUTPUT_DTYPES,
    SUPPORTED_SUFFIXES,
    ClippingWarning,
    convert_dtype,
)
from infocus.io._image import Image, normalize_unit

__all__ = [
    "OUTPUT_DTYPES",
    "SUPPORTED_SUFFIXES",
    "ClippingWarning",
    "Image",
    "check_image_output",
    "check_output_path",
    "check_writable_folder",
    "convert_dtype",
    "is_infocus_folder",
    "normalize_unit",
    "open_image_lazy",
    "read_image",
    "write_image",
]
