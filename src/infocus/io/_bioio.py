"""Microscope vendor formats (Zeiss CZI, Nikon ND2, Leica LIF) read through bioio.

bioio and its reader plug-ins are the optional extra ``infocus[formats]``; each ending is
read by one plug-in, constructed directly (no plug-in discovery): ``.czi`` by bioio-czi
(aicspylibczi), ``.nd2`` by bioio-nd2 (nd2) and ``.lif`` by bioio-lif (liffile). TIFF,
OME-TIFF and OME-Zarr stay with infocus's own readers.

bioio presents every scene as ``T C Z Y X`` (mosaic tiles stitched), with ``S`` for the
colour samples of RGB images and ``M`` for mosaic tiles a plug-in cannot stitch. These
map to infocus axes as ``T C Z Y X`` -> themselves, RGB ``S`` -> ``C`` (as tifffile's
samples) and ``M`` -> ``S`` (independent images). As in the TIFF reader, dimensions of
length 1 are dropped (``Y`` and ``X`` always stay), so a single-channel z-stack is
``"ZYX"`` and an RGB slide ``"YXC"``.

Pixel sizes come from bioio's ``physical_pixel_sizes`` (``Z``, ``Y``, ``X``), which every
plug-in reports in micrometres; sizes that are missing, zero or not finite are left out.
Channel names are kept unless they are the ``Channel:i:j`` identifiers bioio makes up for
unnamed channels.

A file holds one or more scenes (CZI scenes, ND2 positions, LIF images); scene 0 is read
unless ``scene`` names another by index or name.

References
----------
bioio: https://github.com/bioio-devs/bioio
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from infocus._errors import InfocusInputError
from infocus.io._common import carry_metadata, resolve_axes, short_reason
from infocus.io._image import PHYSICAL_AXES, Image

__all__ = ["VENDOR_FORMATS", "open_vendor_lazy", "read_vendor"]

_log = logging.getLogger(__name__)

#: Format -> (plug-in module, plug-in distribution, format name for messages).
VENDOR_FORMATS: dict[str, tuple[str, str, str]] = {
    "czi": ("bioio_czi", "bioio-czi", "Zeiss CZI"),
    "nd2": ("bioio_nd2", "bioio-nd2", "Nikon ND2"),
    "lif": ("bioio_lif", "bioio-lif", "Leica LIF"),
}
_INSTALL_HINT = "pip install 'infocus[formats]'"
#: Reader options per format. bioio-czi's delayed reading names the RGB sample dimension
#: ``A`` (its own letter) and, unless ``A`` is a chunk dimension, returns the first sample
#: for all three (bioio-czi 3.0.1); one chunk per plane keeps lazy reads to what is asked.
_READER_OPTIONS: dict[str, dict[str, Any]] = {"czi": {"chunk_dims": ["Y", "X", "S", "A"]}}
#: bioio dimension letter -> infocus axis letter.
_BIOIO_TO_AXES = {"T": "T", "C": "C", "Z": "Z", "Y": "Y", "X": "X", "S": "C", "M": "S"}
#: bioio's preamble to a plug-in's own reason for refusing a file.
_PREAMBLE = re.compile(r"^.*? does not support the image: .*?\.\s+", re.DOTALL)
#: The channel identifiers bioio generates for channels without a name (OME ``Channel:0:1``).
_GENERATED_CHANNEL = re.compile(r"^Channel:\d+(:\d+)?$")


def _require_plugin(fmt: str) -> Any:
    """The bioio plug-in module for ``fmt``, or an ImportError that says how to install it."""
    module, distribution, name = VENDOR_FORMATS[fmt]
    try:
        importlib.import_module("bioio")
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"Reading {name} files needs bioio and its {distribution} plug-in; install them "
            f"with {_INSTALL_HINT}."
        ) from None


class _ReaderLog(logging.Handler):
    """Keep bioio's own report of why a reader failed (it logs it, then raises a generic error)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.args[-1] if isinstance(record.args, tuple) and record.args else None
        self.reasons.append(str(error) if error is not None else record.getMessage())


@contextlib.contextmanager
def _quiet_bioio() -> Iterator[_ReaderLog]:
    """Collect (instead of printing) the warnings bioio logs while it opens a file."""
    handler = _ReaderLog()
    logger = logging.getLogger("bioio.bio_image")
    logger.addHandler(handler)
    propagate = logger.propagate
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.propagate = propagate
        logger.removeHandler(handler)


def _open(path: Path, fmt: str) -> Any:
    """A ``bioio.BioImage`` of ``path`` read by the plug-in for ``fmt``."""
    plugin = _require_plugin(fmt)
    from bioio import BioImage

    with _quiet_bioio() as log:
        try:
            return BioImage(path, reader=plugin.Reader, **_READER_OPTIONS.get(fmt, {}))
        except Exception as exc:
            reason = _PREAMBLE.sub("", log.reasons[0] if log.reasons else str(exc))
            raise InfocusInputError(
                f"{str(path)!r} is damaged or not a valid {VENDOR_FORMATS[fmt][2]} file "
                f"({short_reason(Exception(reason))}); check the file or export it again."
            ) from None


def _select_scene(bio: Any, scene: int | str | None, name: str) -> None:
    scenes = tuple(str(s) for s in bio.scenes)
    if scene is None:
        if len(scenes) > 1:
            _log.warning(
                "%s holds %d scenes; reading scene 0 (%r); pass scene=INDEX or scene=NAME to "
                "read another", name, len(scenes), scenes[0])
        return
    listed = ", ".join(repr(s) for s in scenes[:10]) + (", ..." if len(scenes) > 10 else "")
    if isinstance(scene, bool) or not isinstance(scene, int | str):
        raise InfocusInputError(
            f"A scene is an index or a name, not {scene!r}; {name} holds {listed}."
        )
    if isinstance(scene, int) and not 0 <= scene < len(scenes):
        raise InfocusInputError(
            f"{name} has {len(scenes)} scene(s), so scene {scene} does not exist; choose an "
            f"index from 0 to {len(scenes) - 1} or a name ({listed})."
        )
    if isinstance(scene, str) and scene not in scenes:
        raise InfocusInputError(
            f"{name} has no scene named {scene!r}; choose one of {listed} or an index."
        )
    bio.set_scene(scene)


def _file_axes(dims: str, shape: tuple[int, ...]) -> tuple[str | None, str, tuple[Any, ...]]:
    """Map bioio's dims to infocus axes after dropping length-1 dimensions.

    Returns the axes (``None`` when they cannot be mapped), the kept bioio letters (for
    messages) and the index that drops the length-1 dimensions.
    """
    keep = [i for i, (d, n) in enumerate(zip(dims, shape, strict=True)) if n != 1 or d in "YX"]
    letters = "".join(dims[i] for i in keep)
    mapped = "".join(_BIOIO_TO_AXES.get(d, "?") for d in letters)
    index = tuple(slice(None) if i in keep else 0 for i in range(len(dims)))
    if "?" in mapped or len(set(mapped)) != len(mapped):
        return None, letters, index
    return mapped, letters, index


def _pixel_sizes(bio: Any) -> dict[str, float]:
    sizes = bio.physical_pixel_sizes
    found: dict[str, float] = {}
    for axis in PHYSICAL_AXES:
        value = getattr(sizes, axis, None)
        with contextlib.suppress(TypeError, ValueError):
            if value is not None and np.isfinite(float(value)) and float(value) > 0:
                found[axis] = float(value)
    return found


def _channel_names(bio: Any) -> list[str] | None:
    try:
        names = [str(n) for n in bio.channel_names]
    except Exception:  # channel metadata is optional; never stop a file from being read
        return None
    if not names or any(not n or _GENERATED_CHANNEL.match(n) for n in names):
        return None
    return names


class LazyBlocks:
    """A read-only array view of a dask array whose indexing returns NumPy arrays.

    Prediction and training index lazily opened images block by block and expect NumPy
    results (as from a ``zarr.Array``, whose ``chunks`` attribute it shares: prediction
    takes an array with ``chunks`` as one to stream); each index reads only the planes it
    covers.
    """

    def __init__(self, array: Any) -> None:
        self._array = array

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self._array.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._array.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def chunks(self) -> tuple[int, ...]:
        """The (first) chunk length along each axis, as a ``zarr.Array`` reports it."""
        return tuple(int(c[0]) if c else 0 for c in self._array.chunks)

    def __repr__(self) -> str:
        return f"<LazyBlocks shape={self.shape} dtype={self.dtype} chunks={self.chunks}>"

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        # One thread: the readers hold one file handle, and callers parallelise over blocks.
        return np.asarray(self._array[key].compute(scheduler="synchronous"))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self[...]
        return data if dtype is None else data.astype(dtype, copy=False)


def image_from_bioimage(
    bio: Any,
    name: str,
    *,
    axes: str | None = None,
    scene: int | str | None = None,
    lazy: bool = False,
    source: str | None = None,
) -> Image:
    """An :class:`Image` of one scene of a ``bioio.BioImage`` (see the module notes).

    Parameters
    ----------
    bio : bioio.BioImage
        The opened file (or array).
    name : str
        File name for messages.
    axes : str, optional
        Axes overriding the mapped ones (same number of letters).
    scene : int or str, optional
        Scene index or name (default: the first).
    lazy : bool
        Return the pixels as a :class:`LazyBlocks` view instead of reading them.
    source : str, optional
        Stored as ``Image.source``.
    """
    _select_scene(bio, scene, name)
    dims = "".join(bio.dims.order)
    shape = tuple(int(n) for n in bio.shape)
    file_axes, letters, index = _file_axes(dims, shape)
    if lazy:
        pixels: Any = LazyBlocks(bio.dask_data[index])
    else:
        _check_fits_in_memory(shape, bio.dtype, name)
        # The reader's own whole-scene read: one pass, not one task per plane.
        pixels = np.asarray(bio.data)[index]
    kept = tuple(int(n) for n in pixels.shape)
    final = resolve_axes(kept, file_axes, axes, name, unmapped=letters)
    sizes, names = carry_metadata(file_axes, final, kept, _pixel_sizes(bio), _channel_names(bio))
    return Image(pixels, final, sizes, unit="µm", channel_names=names, source=source)


def _check_fits_in_memory(shape: tuple[int, ...], dtype: Any, name: str) -> None:
    import psutil

    needed = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    available = psutil.virtual_memory().available
    if needed > available:
        raise InfocusInputError(
            f"{name} holds {needed / 2**30:.1f} GiB of pixels (shape {shape}) but only "
            f"{available / 2**30:.1f} GiB of memory is free; open it with open_image_lazy "
            "(the predict command streams such files) or export a smaller region."
        )


def read_vendor(
    path: Path, fmt: str, *, axes: str | None = None, scene: int | str | None = None
) -> Image:
    """Read one scene of a CZI, ND2 or LIF file into memory."""
    bio = _open(path, fmt)
    return image_from_bioimage(bio, path.name, axes=axes, scene=scene, source=str(path))


def open_vendor_lazy(
    path: Path, fmt: str, *, axes: str | None = None, scene: int | str | None = None
) -> Image:
    """Open one scene of a CZI, ND2 or LIF file; its planes are read when indexed."""
    bio = _open(path, fmt)
    return image_from_bioimage(
        bio, path.name, axes=axes, scene=scene, lazy=True, source=str(path)
    )
