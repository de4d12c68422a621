"""Zarr and OME-Zarr (NGFF) reading and writing with zarr-python, without the ome-zarr package.

Reading accepts

* an OME-Zarr group, NGFF 0.4 (``multiscales`` in the group attributes, usually Zarr v2)
  or 0.5 (under the ``ome`` attribute, Zarr v3): the first (full-resolution) dataset is
  read, axis names ``t c z y x`` give the axes, the ``scale`` transformations (dataset and
  multiscale level multiplied) give the pixel sizes of ``z y x`` and the ``omero`` channel
  labels give the channel names;
* a bare Zarr array, whose axes come from its Zarr v3 ``dimension_names`` (or the xarray
  ``_ARRAY_DIMENSIONS`` attribute of Zarr v2) when they are all recognised.

Writing produces an NGFF 0.5 OME-Zarr group (Zarr v3) with one resolution level ``0``.
NGFF fixes the axes order to ``t, c, z, y, x``, so data are stored in the canonical order
``S T C Z Y X`` restricted to the image's axes (``"YXC"`` is stored as ``"CYX"``) and
:func:`read_image` returns that order. The infocus sample axis ``S`` is written as an extra
axis named ``s`` of custom type ``"sample"``, which strict NGFF validators reject; images
without ``S`` are valid NGFF 0.5.

References
----------
J. Moore et al., "OME-NGFF: a next-generation file format for expanding bioimaging data-access
strategies", Nature Methods 18, 1496-1498 (2021); https://ngff.openmicroscopy.org/
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from infocus._errors import InfocusInputError
from infocus.axes import AXES_ORDER
from infocus.io._common import carry_metadata, resolve_axes, short_reason
from infocus.io._image import PHYSICAL_AXES, Image, normalize_unit

if TYPE_CHECKING:
    import zarr

# zarr is imported inside the functions: it takes a quarter of a second to import, which
# every command-line call would pay even when no Zarr file is involved.

__all__ = ["open_zarr_lazy", "read_zarr", "write_zarr", "zarr_storage_axes"]

_NAME_TO_AXIS = {
    "t": "T",
    "time": "T",
    "c": "C",
    "ch": "C",
    "channel": "C",
    "z": "Z",
    "y": "Y",
    "x": "X",
    "s": "S",
    "sample": "S",
}
_AXIS_TYPES = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space", "S": "sample"}
#: infocus unit symbol -> NGFF (UDUNITS-2) unit name.
_NGFF_UNITS = {
    "µm": "micrometer",
    "nm": "nanometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "Å": "angstrom",
}


def _unreadable(path: Path, reason: str) -> InfocusInputError:
    return InfocusInputError(
        f"{str(path)!r} is not a readable Zarr store (it may be corrupt or incomplete): {reason}."
    )


def _map_names(names: list[Any] | tuple[Any, ...] | None) -> str | None:
    if not names or any(not isinstance(n, str) for n in names):
        return None
    axes = "".join(_NAME_TO_AXIS.get(n.lower(), "?") for n in names)
    if "?" in axes or len(set(axes)) != len(axes):
        return None
    return axes


def _scale(transforms: Any) -> list[float] | None:
    for transform in transforms or []:
        if isinstance(transform, dict) and transform.get("type") == "scale":
            return [float(v) for v in transform.get("scale", [])]
    return None


class _Located:
    """The array to read and the metadata found around it."""

    def __init__(self, array: zarr.Array) -> None:
        self.array = array
        self.axes: str | None = None
        self.names_text: str | None = None
        self.pixel_sizes: dict[str, float] = {}
        self.unit: str | None = None
        self.channel_names: list[str] | None = None


def _locate(path: Path) -> _Located:
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises many kinds for missing or broken metadata
        raise _unreadable(path, short_reason(exc)) from exc
    if isinstance(node, zarr.Array):
        found = _Located(node)
        names = getattr(node.metadata, "dimension_names", None)
        if names is None:
            names = dict(node.attrs).get("_ARRAY_DIMENSIONS")
        found.axes = _map_names(names)
        found.names_text = ",".join(map(str, names)) if names else None
        return found
    attrs = dict(node.attrs)
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else attrs
    multiscales = ome.get("multiscales")
    if not multiscales:
        inside = sorted(name for name, _ in node.arrays())
        hint = f"; point to an array inside it, e.g. {str(path / inside[0])!r}" if inside else ""
        raise InfocusInputError(
            f"{str(path)!r} is a Zarr group without OME-Zarr multiscales metadata{hint or ', and it holds no arrays'}."
        )
    try:
        multiscale = multiscales[0]
        dataset = multiscale["datasets"][0]
        array = node[dataset["path"]]
    except (KeyError, IndexError, TypeError) as exc:
        raise _unreadable(
            path, f"OME-Zarr multiscales metadata lacks dataset {short_reason(exc)}"
        ) from exc
    if not isinstance(array, zarr.Array):
        raise _unreadable(path, f"dataset {dataset['path']!r} is not an array")
    found = _Located(array)
    axes_meta = multiscale.get("axes")
    if axes_meta is None and array.ndim == 5:  # NGFF 0.1-0.2: always t, c, z, y, x
        axes_meta = ["t", "c", "z", "y", "x"]
    names = [a.get("name") if isinstance(a, dict) else a for a in axes_meta or []]
    found.axes = _map_names(names) if len(names) == array.ndim else None
    found.names_text = ",".join(map(str, names)) if names else None
    if found.axes is not None:
        scale = _scale(dataset.get("coordinateTransformations"))
        outer = _scale(multiscale.get("coordinateTransformations"))
        if scale is not None and outer is not None and len(outer) == len(scale):
            scale = [a * b for a, b in zip(scale, outer, strict=True)]
        entries = [a if isinstance(a, dict) else {} for a in axes_meta or []]
        axis_units = [normalize_unit(e.get("unit")) for e in entries]
        if scale is not None and len(scale) == array.ndim:
            # A scale of 1 without a unit means "uncalibrated", not "one micrometre".
            found.pixel_sizes = {
                axis: value
                for axis, value, unit in zip(found.axes, scale, axis_units, strict=True)
                if axis in PHYSICAL_AXES
                and math.isfinite(value)
                and value > 0
                and (unit is not None or value != 1.0)
            }
        units = {
            u for a, u in zip(found.axes, axis_units, strict=True) if u and a in found.pixel_sizes
        }
        found.unit = units.pop() if len(units) == 1 else None
    omero = ome.get("omero") or attrs.get("omero")
    if isinstance(omero, dict):
        labels = [c.get("label") for c in omero.get("channels", []) if isinstance(c, dict)]
        if labels and all(isinstance(x, str) and x for x in labels):
            found.channel_names = labels
    return found


def _build(path: Path, data: Any, found: _Located, axes: str | None) -> Image:
    shape = tuple(int(n) for n in data.shape)
    final = resolve_axes(shape, found.axes, axes, path.name, unmapped=found.names_text)
    sizes, names = carry_metadata(found.axes, final, shape, found.pixel_sizes, found.channel_names)
    return Image(data, final, sizes, unit=found.unit or "µm", channel_names=names, source=str(path))


def read_zarr(path: Path, *, axes: str | None = None) -> Image:
    """Read a Zarr array or the full-resolution level of an OME-Zarr image into memory."""
    found = _locate(path)
    try:
        data = np.asarray(found.array[...])
    except Exception as exc:
        raise _unreadable(path, short_reason(exc)) from exc
    return _build(path, data, found, axes)


def open_zarr_lazy(path: Path, *, axes: str | None = None) -> Image:
    """Open a Zarr array or OME-Zarr level 0 as a ``zarr.Array`` (nothing is read yet)."""
    found = _locate(path)
    return _build(path, found.array, found, axes)


def zarr_storage_axes(axes: str) -> str:
    """The axes order an OME-Zarr stores: the canonical ``S T C Z Y X`` order.

    Examples
    --------
    >>> zarr_storage_axes("YXC")
    'CYX'
    """
    return "".join(a for a in AXES_ORDER if a in axes)


def _chunks(shape: tuple[int, ...], axes: str, limits: dict[str, int] | None = None
            ) -> tuple[int, ...]:
    """One chunk per plane of up to 16 x 256 x 256 pixels (about 4 MB of float32); ``limits``
    overrides the largest chunk length per axis."""
    limits = {"Z": 16, "Y": 256, "X": 256, **(limits or {})}
    return tuple(max(1, min(n, limits.get(a, 1))) for n, a in zip(shape, axes, strict=True))


def create_zarr(
    path: Path,
    *,
    shape: tuple[int, ...],
    dtype: Any,
    axes: str,
    pixel_sizes: dict[str, float] | None = None,
    unit: str | None = None,
    channel_names: list[str] | None = None,
    name: str = "image",
    chunk_limits: dict[str, int] | None = None,
) -> Any:
    """Create an empty NGFF 0.5 OME-Zarr group at ``path`` and return its level-0 array.

    The array is in the canonical storage order :func:`zarr_storage_axes` of ``axes`` (its
    shape is ``shape`` permuted accordingly); fill it chunk by chunk for out-of-core output.
    ``chunk_limits`` caps the chunk length along some axes (e.g. ``{"Z": 1}`` so that writers
    of different planes never share a chunk).
    """
    import zarr

    stored = zarr_storage_axes(axes)
    stored_shape = tuple(shape[axes.index(a)] for a in stored)
    pixel_sizes = pixel_sizes or {}
    root = zarr.open_group(str(path), mode="w-", zarr_format=3)
    array = root.create_array(
        "0",
        shape=stored_shape,
        dtype=dtype,
        chunks=_chunks(stored_shape, stored, chunk_limits),
        dimension_names=[a.lower() for a in stored],
    )
    unit = _NGFF_UNITS.get(unit or "", unit)
    axes_meta: list[dict[str, str]] = []
    for axis in stored:
        entry = {"name": axis.lower(), "type": _AXIS_TYPES[axis]}
        if axis in pixel_sizes and unit:
            entry["unit"] = unit
        axes_meta.append(entry)
    scale = [float(pixel_sizes.get(a, 1.0)) for a in stored]
    ome: dict[str, Any] = {
        "version": "0.5",
        "multiscales": [
            {
                "name": name,
                "axes": axes_meta,
                "datasets": [
                    {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
                ],
            }
        ],
    }
    if channel_names is not None:
        ome["omero"] = {
            "version": "0.5",
            "channels": [{"label": label, "active": True} for label in channel_names],
        }
    root.attrs["ome"] = ome
    return array


def write_zarr(path: Path, image: Image) -> None:
    """Write ``image`` (data already in its output dtype) as an NGFF 0.5 OME-Zarr group."""
    stored = zarr_storage_axes(image.axes)
    data = np.transpose(np.asarray(image.data), [image.axes.index(a) for a in stored])
    array = create_zarr(
        path,
        shape=tuple(np.shape(image.data)),
        dtype=data.dtype,
        axes=image.axes,
        pixel_sizes=image.pixel_sizes,
        unit=image.unit,
        channel_names=image.channel_names,
        name=Path(image.source).name if image.source else "image",
    )
    array[...] = data
