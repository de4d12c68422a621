"""Predict from a file to a file; Zarr output streams block by block with bounded memory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["predict_file", "sample_file"]


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


def output_dtype(name: str, dtype: str, data: np.ndarray | None = None) -> str:
    """The pixel type of output ``name``: ``dtype``, except label images, which are uint16
    when their ids fit (known ``data``) and uint32 otherwise."""
    from infocus.predict.model import LABEL_OUTPUTS

    if name not in LABEL_OUTPUTS:
        return dtype
    if data is not None and float(np.max(data, initial=0)) < 2**16:
        return "uint16"
    return "uint32"


def predict_file(
    model: Any,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    axes: str | None = None,
    dtype: str = "float32",
    overwrite: bool = False,
    uncertainty: str | os.PathLike[str] | None = None,
    tile_size: int | None = None,
    overlap: int | None = None,
    tta: bool | None = None,
    batch_size: int = 4,
    backend: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    also: dict[str, str | os.PathLike[str]] | None = None,
    **options: Any,
) -> Path:
    """Denoise the image file ``source`` with ``model`` and write ``output`` atomically.

    The input is opened lazily (Zarr, TIFF, ``.npy``) and read one block (one image plane or
    volume that the model sees) at a time. With ``.zarr`` outputs each block is written as soon
    as it is predicted, so memory stays bounded by one block however long the stack; other
    formats collect the result in memory first. ``uncertainty`` names a second output for the
    per-pixel posterior standard deviation (probabilistic methods), ``also`` further images
    by name (e.g. ``{"deconvolved": path}``); ``options`` are the method's own prediction
    options.
    """
    from infocus.io import open_image_lazy, write_image
    from infocus.io._common import resolve_path

    output = resolve_path(output)
    targets = {"denoised": output}
    if uncertainty is not None:
        model.require_output("uncertainty")
        targets["uncertainty"] = resolve_path(uncertainty)
    for name, path in (also or {}).items():
        model.require_output(name)
        targets[name] = resolve_path(path)
    extras = tuple(also or ())
    image = open_image_lazy(source, axes=axes)
    settings = {"tile_size": tile_size, "overlap": overlap, "tta": tta, "batch_size": batch_size,
                "backend": backend, "progress": progress, **options}
    if all(path.suffix.lower() != ".zarr" for path in targets.values()):
        result = model.predict(image.data, axes=image.axes, uncertainty=uncertainty is not None,
                               also=extras, **settings)
        for name, path in targets.items():
            data = result.extras[name] if name in extras else getattr(result, name)
            write_image(path, image.with_data(data), dtype=output_dtype(name, dtype, data),
                        overwrite=overwrite)
        return output
    with _zarr_outputs(targets, image, dtype, overwrite, Path(str(source)).name) as writers:
        model.predict(image.data, axes=image.axes, uncertainty=uncertainty is not None,
                      out=writers["denoised"], uncertainty_out=writers.get("uncertainty"),
                      also=extras, also_out={name: writers[name] for name in extras},
                      **settings)
    return output


def sample_file(
    model: Any,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    n: int,
    axes: str | None = None,
    seed: int = 0,
    dtype: str = "float32",
    overwrite: bool = False,
    tile_size: int | None = None,
    batch_size: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``n`` posterior samples of the image file ``source`` to ``output`` (atomically),
    stacked along a new leading sample axis ``S``."""
    from infocus._errors import InfocusInputError
    from infocus.io import open_image_lazy, write_image
    from infocus.io._common import resolve_path

    model.require_output("samples")
    output = resolve_path(output)
    image = open_image_lazy(source, axes=axes)
    if "S" in image.axes:
        raise InfocusInputError(
            f"The image already has a sample axis ({image.axes}); the posterior samples are "
            "stacked along S, so sample one image (or time point) of it at a time."
        )
    samples = model.sample(image.data, axes=image.axes, n=n, seed=seed, tile_size=tile_size,
                           batch_size=batch_size, progress=progress)
    return write_image(output, image.with_data(samples, axes="S" + image.axes), dtype=dtype,
                       overwrite=overwrite)


@contextmanager
def _zarr_outputs(targets: dict[str, Path], image: Any, dtype: str, overwrite: bool, name: str
                  ) -> Iterator[dict[str, Any]]:
    """Writable arrays for each output: Zarr stores written in place (temporary name, renamed
    on success), other formats collected in memory and written at the end."""
    import warnings

    from infocus.io import ClippingWarning, write_image
    from infocus.io._atomic import atomic_output
    from infocus.io._zarr import create_zarr, zarr_storage_axes

    with ExitStack() as stack:
        writers: dict[str, Any] = {}
        in_memory: dict[str, np.ndarray] = {}
        for key, path in targets.items():
            if path.suffix.lower() != ".zarr":
                in_memory[key] = writers[key] = np.empty(image.data.shape, dtype=np.float32)
                continue
            temporary = stack.enter_context(
                atomic_output(path, overwrite=overwrite, suffix=".zarr"))
            kind = output_dtype(key, dtype)
            array = create_zarr(
                temporary, shape=tuple(image.data.shape), dtype=np.dtype(kind), axes=image.axes,
                pixel_sizes=image.pixel_sizes, unit=image.unit,
                channel_names=image.channel_names, name=name,
            )
            writers[key] = _ConvertingWriter(array, image.axes, zarr_storage_axes(image.axes),
                                             kind)
        yield writers
        for key, data in in_memory.items():
            write_image(targets[key], image.with_data(data), dtype=output_dtype(key, dtype, data),
                        overwrite=overwrite)
    for key, writer in writers.items():
        if isinstance(writer, _ConvertingWriter) and writer.clipped:
            message = f"{writer.clipped} pixel(s) were clipped to the {dtype} range in {targets[key]}."
            warnings.warn(
                ClippingWarning(message, n_clipped=writer.clipped,
                                n_pixels=int(np.prod(image.data.shape)), dtype=str(dtype)),
                stacklevel=3,
            )
