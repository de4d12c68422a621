"""Predict from a file to a file; Zarr output streams block by block with bounded memory."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["predict_file"]


class _ConvertingWriter:
    """Writes blocks indexed in the input's axes order into an array stored in another order,
    converting each block to the output dtype (rounded and clipped for integers)."""

    def __init__(self, target: Any, axes: str, stored: str, dtype: np.dtype) -> None:
        self.target = target
        self.axes = axes
        self.stored = stored
        self.dtype = np.dtype(dtype)
        self.clipped = 0

    def __setitem__(self, index: tuple, block: np.ndarray) -> None:
        from infocus.io import convert_dtype

        kept = [a for a, i in zip(self.axes, index, strict=True) if isinstance(i, slice)]
        stored_index = tuple(index[self.axes.index(a)] for a in self.stored)
        stored_kept = [a for a in self.stored if a in kept]
        block = np.transpose(block, [kept.index(a) for a in stored_kept])
        converted, clipped = convert_dtype(block, self.dtype)
        self.clipped += clipped
        self.target[stored_index] = converted


def predict_file(
    model: Any,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    axes: str | None = None,
    dtype: str = "float32",
    overwrite: bool = False,
    tile_size: int | None = None,
    overlap: int | None = None,
    tta: bool = False,
    batch_size: int = 4,
    backend: str = "auto",
    pixel_fusion: bool | None = None,
    calibrate: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Denoise the image file ``source`` with ``model`` and write ``output`` atomically.

    The input is opened lazily (Zarr, TIFF, ``.npy``) and read one block (one image plane or
    volume that the model sees) at a time. With a ``.zarr`` output each block is written as soon
    as it is predicted, so memory stays bounded by one block however long the stack; other
    formats collect the result in memory first.
    """
    import warnings

    from infocus.io import ClippingWarning, open_image_lazy, write_image
    from infocus.io._atomic import atomic_output
    from infocus.io._common import resolve_path
    from infocus.io._zarr import create_zarr, zarr_storage_axes

    output = resolve_path(output)
    image = open_image_lazy(source, axes=axes)
    options = {"tile_size": tile_size, "overlap": overlap, "tta": tta, "batch_size": batch_size,
               "backend": backend, "pixel_fusion": pixel_fusion, "calibrate": calibrate,
               "progress": progress}
    if output.suffix.lower() != ".zarr":
        result = model.denoise(image.data, axes=image.axes, **options)
        return write_image(output, image.with_data(result), dtype=dtype, overwrite=overwrite)
    with atomic_output(output, overwrite=overwrite, suffix=".zarr") as temporary:
        array = create_zarr(
            temporary, shape=tuple(image.data.shape), dtype=np.dtype(dtype), axes=image.axes,
            pixel_sizes=image.pixel_sizes, unit=image.unit, channel_names=image.channel_names,
            name=Path(str(source)).name,
        )
        writer = _ConvertingWriter(array, image.axes, zarr_storage_axes(image.axes), dtype)
        model.denoise(image.data, axes=image.axes, out=writer, **options)
    if writer.clipped:
        message = f"{writer.clipped} pixel(s) were clipped to the {dtype} range in {output}."
        warnings.warn(
            ClippingWarning(message, n_clipped=writer.clipped, n_pixels=int(np.prod(array.shape)),
                            dtype=str(dtype)),
            stacklevel=2,
        )
    return output
