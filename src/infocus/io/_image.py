"""The :class:`Image` container: pixels plus the metadata that must survive a round trip."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from infocus._errors import InfocusInputError
from infocus.axes import check_axes

__all__ = ["Image", "PHYSICAL_AXES", "normalize_unit"]

#: Axes that have a physical pixel size (the others count samples, time points or channels).
PHYSICAL_AXES = "ZYX"

# Spellings of the common length units, mapped to the short symbol infocus stores.
_UNIT_ALIASES = {
    "um": "µm",
    "µm": "µm",  # U+00B5 MICRO SIGN
    "μm": "µm",  # U+03BC GREEK SMALL LETTER MU
    "\\u00b5m": "µm",  # ImageJ writes the micro sign escaped
    "micron": "µm",
    "microns": "µm",
    "micrometer": "µm",
    "micrometre": "µm",
    "nm": "nm",
    "nanometer": "nm",
    "nanometre": "nm",
    "mm": "mm",
    "millimeter": "mm",
    "millimetre": "mm",
    "cm": "cm",
    "centimeter": "cm",
    "centimetre": "cm",
    "m": "m",
    "meter": "m",
    "metre": "m",
    "å": "Å",
    "angstrom": "Å",
}


def normalize_unit(unit: str | None) -> str | None:
    """Map common spellings of a length unit (``"micron"``, ``"um"``, ``"micrometer"``) to a symbol.

    Unknown units are returned stripped but otherwise unchanged; ``None`` and ``""`` give ``None``.

    Examples
    --------
    >>> normalize_unit("micron")
    'µm'
    >>> normalize_unit("furlong")
    'furlong'
    """
    if unit is None:
        return None
    text = str(unit).strip()
    if not text:
        return None
    return _UNIT_ALIASES.get(text.lower(), text)


@dataclass
class Image:
    """Pixels with their axes, physical pixel sizes, channel names and origin.

    Parameters
    ----------
    data : ndarray
        The pixels. Usually a NumPy array; :func:`~infocus.io.open_image_lazy` puts an
        array-like that is read on demand here instead (a ``zarr.Array`` or ``numpy.memmap``),
        which has ``shape``, ``dtype`` and NumPy-style indexing.
    axes : str
        One letter per dimension of ``data`` over ``S T C Z Y X`` (sample, time, channel,
        depth, rows, columns) in any order, e.g. ``"ZYX"`` or ``"YXC"``; stored upper-case.
    pixel_sizes : dict of str to float
        Physical size of one pixel along ``Z``, ``Y`` and/or ``X`` in ``unit``, e.g.
        ``{"Z": 0.5, "Y": 0.1, "X": 0.1}``. Axes without a known size are simply absent.
    unit : str or None
        Length unit of ``pixel_sizes`` (``"µm"`` by default; spellings such as ``"micron"``
        or ``"um"`` are normalised to ``"µm"``).
    channel_names : list of str or None
        One name per channel (the length of the ``C`` axis, or one name when there is no
        ``C`` axis), or ``None`` when unknown.
    source : str or None
        Where the pixels came from (the path that was read), for messages and provenance.

    Raises
    ------
    InfocusInputError
        When the axes do not fit the shape, a pixel size is not a positive finite number or
        names an axis the image lacks, or the number of channel names is wrong.

    Examples
    --------
    >>> import numpy as np
    >>> image = Image(np.zeros((3, 64, 64), np.float32), "zyx", {"Z": 0.5, "Y": 0.1, "X": 0.1})
    >>> image.axes, image.shape
    ('ZYX', (3, 64, 64))
    >>> image.with_data(np.ones((3, 64, 64))).pixel_sizes["Z"]
    0.5
    """

    data: np.ndarray
    axes: str
    pixel_sizes: dict[str, float] = field(default_factory=dict)
    unit: str | None = "µm"
    channel_names: list[str] | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in np.shape(self.data))
        self.axes = check_axes(self.axes, shape)
        self.unit = normalize_unit(self.unit)
        self.pixel_sizes = _checked_pixel_sizes(self.pixel_sizes, self.axes)
        self.channel_names = _checked_channel_names(self.channel_names, self.axes, shape)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``data``."""
        return tuple(int(n) for n in self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        """Data type of ``data``."""
        return np.dtype(self.data.dtype)

    @property
    def ndim(self) -> int:
        """Number of dimensions of ``data``."""
        return len(self.shape)

    def size(self, axis: str) -> int:
        """Length of ``axis`` (a letter of :attr:`axes`), or 1 when the image lacks it."""
        axis = axis.upper()
        return self.shape[self.axes.index(axis)] if axis in self.axes else 1

    def with_data(self, data: Any, *, axes: str | None = None) -> Image:
        """A new :class:`Image` holding ``data`` with this image's metadata.

        Parameters
        ----------
        data : array_like
            The new pixels, e.g. a denoised copy of :attr:`data`.
        axes : str, optional
            New axes when ``data`` has a different layout; pixel sizes and channel names are
            kept only for the axes that remain.
        """
        if axes is None:
            return dataclasses.replace(self, data=data)
        axes = axes.upper()
        sizes = {a: s for a, s in self.pixel_sizes.items() if a in axes}
        names = self.channel_names
        if names is not None and (("C" in axes) != ("C" in self.axes)):
            names = None
        return dataclasses.replace(
            self, data=data, axes=axes, pixel_sizes=sizes, channel_names=names
        )

    def load(self) -> Image:
        """This image with ``data`` read fully into a NumPy array (no copy if it already is one)."""
        if isinstance(self.data, np.ndarray) and not isinstance(self.data, np.memmap):
            return self
        return dataclasses.replace(self, data=np.asarray(self.data[...]))


def _checked_pixel_sizes(pixel_sizes: Any, axes: str) -> dict[str, float]:
    if pixel_sizes is None:
        return {}
    if not isinstance(pixel_sizes, dict):
        raise InfocusInputError(
            f"Pixel sizes must be a mapping such as {{'Y': 0.1, 'X': 0.1}} (got {pixel_sizes!r})."
        )
    checked: dict[str, float] = {}
    for key, value in pixel_sizes.items():
        axis = str(key).upper()
        if axis not in PHYSICAL_AXES or axis not in axes:
            raise InfocusInputError(
                f"Pixel size given for axis {key!r}, but the image (axes {axes!r}) has no such "
                f"physical axis; give sizes only for its {''.join(a for a in PHYSICAL_AXES if a in axes)} axes."
            )
        try:
            size = float(value)
        except (TypeError, ValueError):
            size = math.nan
        if not (math.isfinite(size) and size > 0):
            raise InfocusInputError(
                f"Pixel size for axis {axis!r} is {value!r}; it must be a positive finite number."
            )
        checked[axis] = size
    return checked


def _checked_channel_names(names: Any, axes: str, shape: tuple[int, ...]) -> list[str] | None:
    if names is None:
        return None
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise InfocusInputError(
            f"Channel names must be a list of strings (got {names!r}), e.g. ['DAPI', 'GFP']."
        )
    names = list(names)
    n_channels = shape[axes.index("C")] if "C" in axes else 1
    if len(names) != n_channels:
        raise InfocusInputError(
            f"{len(names)} channel name(s) {names!r} were given for an image with {n_channels} "
            f"channel(s) (axes {axes!r}, shape {shape}); give one name per channel."
        )
    return names
