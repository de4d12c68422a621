"""TIFF reading and writing with tifffile: OME-TIFF and ImageJ hyperstack metadata.

Reading maps tifffile's dimension letters to infocus axes: ``T Z C Y X`` keep their
meaning and tifffile's ``S`` (colour samples, e.g. RGB) becomes the channel axis ``C``.
Other letters (``I`` image sequence and ``Q`` other for stacks without metadata, ``E``
lambda, ``A`` angle, ...) have no infocus equivalent, so such files need explicit axes.
As in tifffile, dimensions of length 1 are dropped (an ImageJ ``TZCYX`` stack with one time
point reads as ``ZCYX``), except in files infocus wrote itself, which keep their axes.

Writing always stores OME-XML metadata (also for a plain ``.tif``): the axes, the
physical pixel sizes ``PhysicalSizeZ/Y/X`` with their unit and the channel names. OME-TIFF
requires ``Y`` and ``X`` to be the last two dimensions, so an image whose axes put them
elsewhere (e.g. ``"YXC"``) is stored with ``Y X`` moved to the end (``"CYX"``), and
:func:`read_image` returns it in that stored order. The infocus sample axis ``S`` has no
OME counterpart; it is stored as OME's generic modulo dimension ``Q`` and recognised on
reading through an ``infocus axes=...`` note in the OME ``Image/Description``.

References
----------
OME-TIFF specification: https://ome-model.readthedocs.io/en/stable/ome-tiff/
C. Gohlke, tifffile: https://github.com/cgohlke/tifffile
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import weakref
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from infocus._errors import InfocusInputError
from infocus.io._common import carry_metadata, resolve_axes, short_reason
from infocus.io._image import PHYSICAL_AXES, Image, normalize_unit

__all__ = ["open_tiff_lazy", "read_tiff", "tiff_storage_axes", "write_tiff"]

_log = logging.getLogger(__name__)

#: tifffile dimension letter -> infocus axis letter (``S`` = colour samples -> channel).
_TIFF_TO_AXES = {"T": "T", "Z": "Z", "C": "C", "Y": "Y", "X": "X", "S": "C"}
_MARKER = re.compile(r"infocus axes=([A-Za-z]+)")
#: tifffile log messages that mean the file is damaged, not just unusual.
_DAMAGE_WORDS = ("offset", "corrupt", "truncat", "failed to read")


@dataclass
class _TiffMetadata:
    axes: str | None  # squeezed axes in infocus letters, None when unmappable
    letters: str  # tifffile's own (squeezed) letters, for messages
    full_axes: str | None  # infocus-written files: the axes as written (length-1 axes kept)
    pixel_sizes: dict[str, float]
    unit: str | None
    channel_names: list[str] | None


class _DamageLog(logging.Handler):
    """Collect tifffile's log records that report damage, from this thread only."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        message = record.getMessage()
        if record.levelno >= logging.ERROR or any(w in message.lower() for w in _DAMAGE_WORDS):
            self.messages.append(message)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn any failure of tifffile (raised or only logged) into one clear InfocusInputError."""
    handler = _DamageLog()
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        yield
    except InfocusInputError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise _corrupt(path, short_reason(exc)) from exc
    finally:
        logger.removeHandler(handler)
    if handler.messages:
        raise _corrupt(path, handler.messages[0].strip().rstrip("."))


def _corrupt(path: Path, reason: str) -> InfocusInputError:
    return InfocusInputError(
        f"{str(path)!r} is not a readable TIFF (file may be corrupt or truncated): {reason}."
    )


def _map_letters(letters: str, *, q_is_sample: bool) -> str | None:
    mapping = dict(_TIFF_TO_AXES)
    if q_is_sample:
        mapping["Q"] = "S"
    mapped = "".join(mapping.get(a, "?") for a in letters)
    if "?" in mapped or len(set(mapped)) != len(mapped):
        return None
    return mapped


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ome_image(xml: str) -> ElementTree.Element | None:
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    return next((e for e in root if _local(e.tag) == "Image"), None)


def _ome_metadata(xml: str) -> tuple[str | None, dict[str, float], str | None, list[str] | None]:
    """Marker, pixel sizes, unit and channel names from the first OME ``Image``."""
    image = _ome_image(xml)
    if image is None:
        return None, {}, None, None
    marker = None
    pixels = None
    for child in image:
        if _local(child.tag) == "Description" and child.text:
            found = _MARKER.search(child.text)
            marker = found.group(1).upper() if found else None
        elif _local(child.tag) == "Pixels":
            pixels = child
    if pixels is None:
        return marker, {}, None, None
    sizes: dict[str, float] = {}
    units: set[str] = set()
    for axis in PHYSICAL_AXES:
        value = pixels.get(f"PhysicalSize{axis}")
        try:
            size = float(value) if value is not None else math.nan
        except ValueError:
            size = math.nan
        if math.isfinite(size) and size > 0:
            sizes[axis] = size
            # The OME schema's default unit is the micrometre.
            units.add(normalize_unit(pixels.get(f"PhysicalSize{axis}Unit")) or "µm")
    if len(units) > 1:
        _log.warning("pixel sizes in different units %s; keeping them without a unit", units)
    unit = units.pop() if len(units) == 1 else None
    channels = [c for c in pixels if _local(c.tag) == "Channel"]
    names = [c.get("Name") for c in channels]
    channel_names = [str(n) for n in names] if names and all(names) else None
    return marker, sizes, unit, channel_names


def _imagej_metadata(
    tif: tifffile.TiffFile, axes: str | None, shape: tuple[int, ...]
) -> tuple[dict[str, float], str | None, list[str] | None]:
    """Pixel sizes (from the resolution tags and ``spacing``), unit and channel labels."""
    meta = tif.imagej_metadata or {}
    unit = normalize_unit(meta.get("unit"))
    sizes: dict[str, float] = {}
    if unit is not None and unit.lower() not in ("pixel", "pixels", "inch"):
        page = tif.pages.first
        for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
            value = page.tags.get(tag)
            if value is not None:
                numerator, denominator = value.value
                if numerator > 0 and denominator > 0:
                    sizes[axis] = denominator / numerator  # pixels per unit -> unit per pixel
        spacing = meta.get("spacing")
        if isinstance(spacing, int | float) and spacing > 0:
            sizes["Z"] = float(spacing)
    else:
        unit = None
    names = None
    labels = meta.get("Labels")
    if axes is not None and "C" in axes and isinstance(labels, list | tuple) and labels:
        n_channels = shape[axes.index("C")]
        # ImageJ stores one label per plane with the channel varying fastest; they are
        # channel names only if they repeat identically for every slice and frame.
        if len(labels) % n_channels == 0 and all(
            labels[i] == labels[i % n_channels] for i in range(len(labels))
        ):
            first = [str(x) for x in labels[:n_channels]]
            if all(first):
                names = first
    return sizes, unit, names


def _metadata(tif: tifffile.TiffFile) -> _TiffMetadata:
    series = tif.series[0]
    if len(tif.series) > 1:
        _log.warning(
            "%s holds %d image series; reading only the first", tif.filename, len(tif.series)
        )
    letters = series.axes
    marker = None
    sizes: dict[str, float] = {}
    unit: str | None = None
    names: list[str] | None = None
    if tif.is_ome and tif.ome_metadata:
        marker, sizes, unit, names = _ome_metadata(tif.ome_metadata)
    axes = _map_letters(letters, q_is_sample=marker is not None)
    if not tif.is_ome and tif.is_imagej:
        sizes, unit, names = _imagej_metadata(tif, axes, tuple(series.shape))
    full = _full_axes(axes, marker) if marker else None
    return _TiffMetadata(axes, letters, full, sizes, unit, names)


def _full_axes(squeezed: str | None, marker: str) -> str | None:
    """The axes an infocus-written file was written with, if they fit the stored dimensions.

    tifffile drops dimensions of length 1 (and OME may merge them away), so the file's
    dimensions must be the written axes with some letters left out, in the same order.
    """
    if squeezed is None or any(a not in marker for a in squeezed):
        return None
    positions = [marker.index(a) for a in squeezed]
    return marker if positions == sorted(positions) else None


def _full_shape(full: str, squeezed: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape for ``full`` axes: sizes from the squeezed dimensions, 1 for the dropped ones."""
    sizes = dict(zip(squeezed, shape, strict=True))
    return tuple(int(sizes.get(a, 1)) for a in full)


def _build(
    path: Path, data: object, meta: _TiffMetadata, file_axes: str | None, axes: str | None
) -> Image:
    shape = tuple(int(n) for n in np.shape(data))
    final = resolve_axes(shape, file_axes, axes, path.name, unmapped=meta.letters)
    sizes, names = carry_metadata(file_axes, final, shape, meta.pixel_sizes, meta.channel_names)
    return Image(
        data,  # type: ignore[arg-type]
        final,
        sizes,
        unit=meta.unit or "µm",
        channel_names=names,
        source=str(path),
    )


def read_tiff(path: Path, *, axes: str | None = None) -> Image:
    """Read the first image series of a TIFF file into memory (see the module notes)."""
    with _reading(path), tifffile.TiffFile(path) as tif:
        meta = _metadata(tif)
        series = tif.series[0]
        data = series.asarray()
        if meta.full_axes is not None and meta.axes is not None:
            data = data.reshape(_full_shape(meta.full_axes, meta.axes, data.shape))
    return _build(path, data, meta, meta.full_axes or meta.axes, axes)


def open_tiff_lazy(path: Path, *, axes: str | None = None) -> Image:
    """Open a TIFF as a ``zarr.Array`` that reads tiles on access (length-1 axes dropped)."""
    import zarr

    with _reading(path):
        tif = tifffile.TiffFile(path)
        try:
            meta = _metadata(tif)
            store = tif.series[0].aszarr(level=0)
            data = zarr.open(store, mode="r")
        except BaseException:
            tif.close()
            raise
    # The file stays open while the array is referenced and is closed when it is collected.
    weakref.finalize(data, tif.close)
    try:
        return _build(path, data, meta, meta.axes, axes)
    except BaseException:
        tif.close()
        raise


def tiff_storage_axes(axes: str) -> str:
    """The axes order a TIFF stores: ``Y X`` last, other axes in their given order.

    OME-TIFF allows a modulo dimension (used for the sample axis ``S``) first only if one of
    ``T C Z`` is unused, so with all of them present ``S`` goes second.

    Examples
    --------
    >>> tiff_storage_axes("YXC")
    'CYX'
    >>> tiff_storage_axes("STCZYX")
    'TSCZYX'
    """
    rest = [a for a in axes if a not in "YX"]
    if rest and rest[0] == "S" and all(a in rest for a in "TCZ"):
        rest[0], rest[1] = rest[1], rest[0]
    return "".join(rest) + "YX"


def write_tiff(path: Path, image: Image) -> None:
    """Write ``image`` (data already in its output dtype) as a TIFF with OME-XML metadata."""
    stored = tiff_storage_axes(image.axes)
    data = np.transpose(np.asarray(image.data), [image.axes.index(a) for a in stored])
    metadata: dict[str, object] = {
        "axes": stored.replace("S", "Q"),
        "Description": f"infocus axes={stored}",
    }
    for axis, size in image.pixel_sizes.items():
        metadata[f"PhysicalSize{axis}"] = float(size)
        if image.unit is not None:
            metadata[f"PhysicalSize{axis}Unit"] = image.unit
    if image.channel_names is not None:
        metadata["Channel"] = {"Name": list(image.channel_names)}
    tifffile.imwrite(path, data, ome=True, photometric="minisblack", metadata=metadata)
