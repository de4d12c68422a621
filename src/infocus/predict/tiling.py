"""Tiled, blended, memory-bounded prediction: apply a network to images of any size.

A network sees an image through tiles that fit in memory. Three things decide whether the
stitched result equals the result the network would give on the whole image:

1. **Alignment.** A U-Net with ``depth`` poolings is translation-equivariant only for shifts
   that are multiples of ``2**depth``. :func:`plan_tiles` puts every tile origin on that grid
   (``multiple``) and makes every tile size a multiple of it, padding the image at its far end
   (reflect, or symmetric when the image is too small to reflect) up to a multiple. The user
   never has to pick sizes that suit the network.
2. **Overlap and blending.** Near an inner tile edge the network sees the edge instead of the
   neighbouring pixels. Predictions within ``margin`` pixels of an inner edge get weight zero,
   the rest of the overlap is cross-faded with a raised-cosine ramp (:func:`blend_weights`), and
   the output is :math:`\\hat y = \\sum_k w_k\\, y_k / \\sum_k w_k`. Sides that touch the image
   border are not ramped. Hence, for any operator :math:`f` with receptive radius
   :math:`r \\le` ``margin`` that is equivariant to shifts by ``multiple``, tiled and untiled
   results agree up to floating-point rounding; larger receptive fields are blended without
   seams.
3. **Bounded memory.** :func:`tiled_apply` walks the tiles strip by strip along the first
   spatial axis and writes each region to the output as soon as no later tile touches it, so
   its working memory is a few strips (:math:`O(\\text{tile} \\times \\text{image width})`),
   not the image. The source (a NumPy array, ``np.memmap`` or ``zarr.Array``) is only sliced.

The network is any callable mapping a float32 batch ``(B, C, *tile)`` to ``(B, C_out, *tile)``;
nothing here imports a deep-learning framework.

Tiling with overlap follows Weigert et al., "Content-aware image restoration: pushing the
limits of fluorescence microscopy", Nature Methods 15, 1090-1097 (2018); the weighted
(windowed) stitching is the overlap-add scheme of e.g. Pielawski & Wählby, "Introducing Hann
windows for reducing edge-effects in patch-based image segmentation", PLoS ONE 15(3) (2020).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from infocus._errors import InfocusInputError

__all__ = [
    "Tile",
    "auto_tile_shape",
    "available_memory",
    "blend_weights",
    "padded_shape",
    "plan_tiles",
    "tiled_apply",
]

#: Default upper bound of an automatic tile side, by number of spatial dimensions.
_MAX_AUTO_SIDE = {1: 65536, 2: 1024, 3: 128}


@dataclass(frozen=True)
class Tile:
    """One tile of a plan: where it lies in the padded image and which sides touch its border.

    Attributes
    ----------
    index : tuple of int
        Position in the tile grid, e.g. ``(row, column)``; plans list tiles in row-major order
        of this index.
    origin : tuple of int
        First voxel of the tile, in padded-image coordinates (equal to image coordinates, since
        padding is added only at the far end of each axis). A multiple of ``multiple``.
    shape : tuple of int
        Tile size; the same for every tile of a plan.
    at_border : tuple of (bool, bool)
        Per axis, whether the tile's start and end touch the padded image border.
    """

    index: tuple[int, ...]
    origin: tuple[int, ...]
    shape: tuple[int, ...]
    at_border: tuple[tuple[bool, bool], ...]

    @property
    def slices(self) -> tuple[slice, ...]:
        """Slices that read this tile from the padded image (spatial axes only)."""
        return tuple(slice(o, o + s) for o, s in zip(self.origin, self.shape, strict=True))

    @property
    def stop(self) -> tuple[int, ...]:
        """One past the last voxel of the tile, per axis."""
        return tuple(o + s for o, s in zip(self.origin, self.shape, strict=True))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _per_axis(value: int | Sequence[int], ndim: int, name: str, *, minimum: int) -> tuple[int, ...]:
    """Broadcast an int or check a sequence of ints against ``ndim``; enforce ``>= minimum``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values = (int(value),) * ndim
    else:
        try:
            values = tuple(value)  # type: ignore[arg-type]
        except TypeError:
            raise InfocusInputError(
                f"{name} must be an integer or a sequence of integers (got {value!r}); "
                f"pass e.g. {name}=64."
            ) from None
        if len(values) != ndim or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values
        ):
            raise InfocusInputError(
                f"{name} {value!r} must be one integer or {ndim} integers, one per spatial axis."
            )
        values = tuple(int(v) for v in values)
    if any(v < minimum for v in values):
        bound = "positive" if minimum == 1 else f"at least {minimum}"
        raise InfocusInputError(f"{name} {value!r} must be {bound} on every axis.")
    return values


def _check_spatial_shape(spatial_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(spatial_shape)
    if not shape or not all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in shape
    ):
        raise InfocusInputError(
            f"Spatial shape {shape!r} must be one or more positive integers; check the image axes."
        )
    return tuple(int(n) for n in shape)


def padded_shape(
    spatial_shape: Sequence[int], multiple: int | Sequence[int] = 1
) -> tuple[int, ...]:
    """The spatial shape after padding each axis up to a multiple of ``multiple``.

    Examples
    --------
    >>> padded_shape((100, 37), 8)
    (104, 40)
    """
    shape = _check_spatial_shape(spatial_shape)
    mult = _per_axis(multiple, len(shape), "multiple", minimum=1)
    return tuple(_round_up(n, m) for n, m in zip(shape, mult, strict=True))


def _effective_tile(tile: int, overlap: int, multiple: int, padded: int) -> int:
    """Tile size on one axis: aligned, able to advance by ``multiple``, at most the image."""
    size = max(_round_up(tile, multiple), _round_up(overlap, multiple) + multiple)
    return min(size, padded)


def _axis_origins(padded: int, tile: int, overlap: int, multiple: int) -> list[int]:
    """Fewest evenly spread, aligned origins whose tiles cover ``[0, padded)`` with overlap."""
    if tile >= padded:
        return [0]
    units = (padded - tile) // multiple  # last origin, in units of `multiple`
    max_step = (tile - overlap) // multiple  # >= 1 by construction of the tile size
    steps = -(-units // max_step)
    # floor(j * units / steps) has consecutive differences <= ceil(units / steps) <= max_step.
    return [(j * units // steps) * multiple for j in range(steps + 1)]


def plan_tiles(
    spatial_shape: Sequence[int],
    tile_shape: int | Sequence[int],
    overlap: int | Sequence[int],
    *,
    multiple: int | Sequence[int] = 1,
) -> list[Tile]:
    """Plan overlapping, grid-aligned tiles that cover an image of any size.

    The image is (virtually) padded at the far end of each axis to
    :func:`padded_shape` ``(spatial_shape, multiple)``. On each axis the tile size is
    ``tile_shape`` rounded up to a multiple of ``multiple`` (and, if needed, enlarged so tiles
    can advance by at least ``multiple`` while keeping the overlap), capped by the padded
    image. Origins are multiples of ``multiple``, consecutive tiles overlap by at least
    ``overlap`` voxels, and the fewest tiles are used, spread evenly so no overlap is
    needlessly large. All tiles have the same shape, so they can be batched.

    Parameters
    ----------
    spatial_shape : sequence of int
        Image shape without the channel axis, e.g. ``(Y, X)`` or ``(Z, Y, X)``.
    tile_shape : int or sequence of int
        Requested tile size per axis; at least ``2 * overlap``.
    overlap : int or sequence of int
        Minimum overlap of neighbouring tiles per axis, in voxels.
    multiple : int or sequence of int
        Alignment of origins and sizes, e.g. ``2**depth`` for a U-Net with ``depth`` poolings.

    Returns
    -------
    list of Tile
        In row-major order of :attr:`Tile.index`.

    Raises
    ------
    InfocusInputError
        Non-positive sizes, a negative overlap, or a tile smaller than twice the overlap.

    Examples
    --------
    >>> [t.origin for t in plan_tiles((100,), 48, 16, multiple=8)]
    [(0,), (24,), (56,)]
    """
    sizes, per_axis = _plan_axes(spatial_shape, tile_shape, overlap, multiple)
    return [_make_tile(index, per_axis, sizes) for index in np.ndindex(*map(len, per_axis))]


def _plan_axes(
    spatial_shape: Sequence[int],
    tile_shape: int | Sequence[int],
    overlap: int | Sequence[int],
    multiple: int | Sequence[int],
) -> tuple[tuple[int, ...], list[list[int]]]:
    """Validated tile size and tile origins per axis; the plan is their Cartesian product."""
    shape = _check_spatial_shape(spatial_shape)
    ndim = len(shape)
    tiles_req = _per_axis(tile_shape, ndim, "tile_shape", minimum=1)
    overlaps = _per_axis(overlap, ndim, "overlap", minimum=0)
    mult = _per_axis(multiple, ndim, "multiple", minimum=1)
    for t, o in zip(tiles_req, overlaps, strict=True):
        if t < 2 * o:
            raise InfocusInputError(
                f"tile_shape {tuple(tiles_req)} is smaller than twice the overlap "
                f"{tuple(overlaps)} on some axis; use tiles of at least {2 * max(overlaps)} "
                "voxels or a smaller overlap."
            )
    padded = padded_shape(shape, mult)
    sizes = tuple(
        _effective_tile(t, o, m, p)
        for t, o, m, p in zip(tiles_req, overlaps, mult, padded, strict=True)
    )
    per_axis = [
        _axis_origins(p, s, o, m) for p, s, o, m in zip(padded, sizes, overlaps, mult, strict=True)
    ]
    return sizes, per_axis


def _make_tile(index: tuple[int, ...], per_axis: list[list[int]], sizes: tuple[int, ...]) -> Tile:
    return Tile(
        index=tuple(int(j) for j in index),
        origin=tuple(per_axis[d][j] for d, j in enumerate(index)),
        shape=sizes,
        at_border=tuple((j == 0, j == len(per_axis[d]) - 1) for d, j in enumerate(index)),
    )


def _default_margin(overlap: int) -> int:
    return overlap // 4


def _window_1d(size: int, overlap: int, margin: int, at_start: bool, at_end: bool) -> np.ndarray:
    """Raised-cosine window of one axis in float64 (see :func:`blend_weights`)."""
    window = np.ones(size, dtype=np.float64)
    width = min(overlap, size)
    if width == 0:
        return window
    fade = overlap - 2 * margin
    i = np.arange(width, dtype=np.float64)
    # Zero on [0, margin) (the clip), sin^2 rise over the fade, 1 on [overlap - margin, overlap).
    ramp = np.sin(0.5 * np.pi * np.clip((i - margin + 0.5) / fade, 0.0, 1.0)) ** 2
    if not at_start:
        window[:width] *= ramp
    if not at_end:
        window[size - width :] *= ramp[::-1]
    return window


def _check_margin(margin: int | Sequence[int] | None, overlaps: tuple[int, ...]) -> tuple[int, ...]:
    if margin is None:
        return tuple(_default_margin(o) for o in overlaps)
    margins = _per_axis(margin, len(overlaps), "margin", minimum=0)
    for m, o in zip(margins, overlaps, strict=True):
        if m > 0 and 2 * m >= o:
            raise InfocusInputError(
                f"margin {margin!r} must be less than half the overlap {overlaps!r} on every "
                "axis, so that neighbouring tiles can be cross-faded; lower the margin or raise "
                "the overlap."
            )
    return margins


def blend_weights(
    tile_shape: Sequence[int],
    overlap: int | Sequence[int],
    at_image_border: Sequence[tuple[bool, bool]] | None = None,
    *,
    margin: int | Sequence[int] | None = None,
) -> np.ndarray:
    """Blending window of one tile: a separable raised-cosine ramp over the overlap.

    On each axis, a side that does not touch the image border is ramped over the ``overlap``
    voxels next to it: the first ``margin`` voxels (which see the tile edge instead of the
    image) get weight 0, the next ``f = overlap - 2 * margin`` rise as

    .. math:: w(i) = \\sin^2\\!\\left(\\frac{\\pi}{2}\\,\\frac{i - \\text{margin} + 1/2}{f}\\right),

    and the rest is 1. The window is the product of the axis windows. Two tiles overlapping by
    exactly ``overlap`` have weights summing to 1 (:math:`\\sin^2 + \\cos^2`), and in general the
    stitched output is :math:`\\sum_k w_k y_k / \\sum_k w_k`. The window is strictly positive
    except in the ``margin`` bands at inner edges; sides touching the image border are not
    ramped.

    Parameters
    ----------
    tile_shape : sequence of int
        Tile size per axis, e.g. :attr:`Tile.shape`.
    overlap : int or sequence of int
        Overlap used to plan the tiles.
    at_image_border : sequence of (bool, bool), optional
        Per axis, whether the start and end touch the image border (:attr:`Tile.at_border`);
        by default no side does.
    margin : int or sequence of int, optional
        Voxels at each inner edge that get weight 0; less than half the overlap. Default
        ``overlap // 4``. Tiled and untiled results agree for operators whose receptive radius
        is at most ``margin``.

    Returns
    -------
    ndarray, float64, shape ``tile_shape``.
    """
    shape = _check_spatial_shape(tile_shape)
    ndim = len(shape)
    overlaps = _per_axis(overlap, ndim, "overlap", minimum=0)
    margins = _check_margin(margin, overlaps)
    if at_image_border is None:
        at_image_border = ((False, False),) * ndim
    borders = tuple(tuple(bool(b) for b in pair) for pair in at_image_border)
    if len(borders) != ndim or any(len(pair) != 2 for pair in borders):
        raise InfocusInputError(
            f"at_image_border must hold one (start, end) pair of booleans per axis ({ndim} pairs)."
        )
    window = np.ones((), dtype=np.float64)
    for size, o, m, (start, end) in zip(shape, overlaps, margins, borders, strict=True):
        window = np.multiply.outer(window, _window_1d(size, o, m, start, end))
    return window


# --------------------------------------------------------------------------------------------
# Reading tiles from a virtually padded source


def _source_index(padded_index: np.ndarray, size: int) -> np.ndarray:
    """Map indices of the end-padded axis to source indices (reflect, else symmetric)."""
    pad = int(padded_index.max()) + 1 - size
    if size >= 2 and pad <= size - 1:
        period = 2 * size - 2  # reflect: ... n-2 n-1 n-2 ...
        j = padded_index % period
        return np.where(j < size, j, period - j)
    period = 2 * size  # symmetric: ... n-2 n-1 n-1 n-2 ...
    j = padded_index % period
    return np.where(j < size, j, period - 1 - j)


def _axis_readers(
    size: int, origins: list[int], tile: int
) -> list[tuple[slice, np.ndarray | None]]:
    """Per tile position on one axis: the source slice to read and local indices (if padded)."""
    readers = []
    for origin in origins:
        if origin + tile <= size:
            readers.append((slice(origin, origin + tile), None))
            continue
        index = _source_index(np.arange(origin, origin + tile), size)
        lo, hi = int(index.min()), int(index.max()) + 1
        readers.append((slice(lo, hi), index - lo))
    return readers


class _StripReader:
    """Read the source one strip (one row of tiles along the first axis) at a time.

    One large read per strip instead of one per tile: chunked stores (zarr) decode each chunk
    about once instead of once per overlapping tile, and a NumPy source is not copied at all
    (tiles are views until batched).
    """

    def __init__(self, source: Any, readers: list[list[tuple[slice, np.ndarray | None]]]) -> None:
        self.source = source
        self.readers = readers
        self.strips: dict[int, np.ndarray] = {}

    def tile(self, index: tuple[int, ...]) -> np.ndarray:
        strip = self.strips.get(index[0])
        if strip is None:
            rows, local = self.readers[0][index[0]]
            strip = np.asarray(self.source[(slice(None), rows)], dtype=np.float32)
            if local is not None:
                strip = np.take(strip, local, axis=1)
            self.strips[index[0]] = strip
        rest = [self.readers[d][j] for d, j in enumerate(index) if d > 0]
        block = strip[(slice(None), slice(None), *[r[0] for r in rest])]
        for axis, (_, local) in enumerate(rest, start=2):
            if local is not None:
                block = np.take(block, local, axis=axis)
        return block

    def release_before(self, row: int) -> None:
        """Forget strips whose row index is below ``row`` (no later tile needs them)."""
        for j in [j for j in self.strips if j < row]:
            del self.strips[j]


def _row_chunk(out: Any) -> int:
    """Rows per chunk (or shard) of ``out`` along the first spatial axis; 1 if not chunked."""
    for name in ("shards", "chunks"):
        chunks = getattr(out, name, None)
        if isinstance(chunks, tuple) and len(chunks) > 1 and isinstance(chunks[1], int):
            return max(1, chunks[1])
    return 1


class _RowWriter:
    """Write finished rows in order, holding them back until they fill whole chunks.

    Chunked stores (zarr) then write every chunk once, instead of decoding and re-encoding it
    for each strip that ends inside it. Rows are held in one preallocated float32 array of
    ``chunk + strip`` rows; unchunked outputs (NumPy arrays, memmaps) are written at once.
    """

    def __init__(self, out: Any, total_rows: int, chunk: int) -> None:
        self.out = out
        self.total = total_rows
        self.chunk = chunk
        self.start = 0  # first row not yet written
        self.held = 0  # rows waiting in self.pending
        self.pending: np.ndarray | None = None

    def write(self, rows: np.ndarray) -> None:
        """Append ``rows`` (shape ``(C, n, *rest)``, any float dtype) after those given before."""
        rest = (slice(None),) * (rows.ndim - 2)
        n = rows.shape[1]
        if self.chunk == 1:
            values = rows if isinstance(self.out, np.ndarray) else rows.astype(np.float32)
            self.out[(slice(None), slice(self.start, self.start + n), *rest)] = values
            self.start += n
            return
        if self.pending is None or self.pending.shape[1] < self.held + n:
            grown = np.empty(
                (rows.shape[0], self.chunk + max(n, self.chunk), *rows.shape[2:]), np.float32
            )
            if self.pending is not None:
                grown[:, : self.held] = self.pending[:, : self.held]
            self.pending = grown
        self.pending[:, self.held : self.held + n] = rows
        self.held += n
        end = self.start + self.held
        cut = end if end >= self.total else end // self.chunk * self.chunk
        if cut <= self.start:
            return
        done = cut - self.start
        self.out[(slice(None), slice(self.start, cut), *rest)] = self.pending[:, :done]
        left = self.held - done  # < chunk <= done, so the move below does not overlap
        self.pending[:, :left] = self.pending[:, done : self.held]
        self.held = left
        self.start = cut


# --------------------------------------------------------------------------------------------
# The driver


def _as_source(source: Any) -> Any:
    if not (hasattr(source, "shape") and hasattr(source, "__getitem__")):
        source = np.asarray(source)
    if len(source.shape) < 2:
        raise InfocusInputError(
            f"The source has shape {tuple(source.shape)} but needs a channel axis and at least "
            "one spatial axis, (C, *spatial); add a channel axis with image[None]."
        )
    return source


def tiled_apply(
    source: Any,
    function: Callable[[np.ndarray], Any],
    *,
    tile_shape: int | Sequence[int],
    overlap: int | Sequence[int],
    multiple: int | Sequence[int] = 1,
    batch_size: int = 4,
    margin: int | Sequence[int] | None = None,
    out: Any = None,
    out_channels: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Any:
    """Apply a tile-wise ``function`` (e.g. a network) to a large image, blending the tiles.

    Tiles come from :func:`plan_tiles`, are cut from strips read from ``source`` (one read
    per row of tiles, end-padded by reflection where they extend past the image), converted to
    float32 and passed to ``function`` in batches. Predictions are weighted by :func:`blend_weights` and accumulated (in float64)
    in a buffer that spans only the current strip(s) of tiles along the first spatial axis;
    each region is normalised, cropped to the image and written to the output as soon as no
    later tile touches it:

    .. math:: \\hat y(x) = \\frac{\\sum_k w_k(x)\\, f(\\text{tile}_k)(x)}{\\sum_k w_k(x)}.

    Since the tile grid is a Cartesian product and the windows are separable, the
    denominator is a product of 1-D sums and costs no image-sized memory. Working memory,
    independent of the image's first spatial axis, is about
    ``8 * C_out * (tile + stride) * R`` bytes for the float64 buffer, plus
    ``4 * C * tile * R`` per strip read, plus one batch, where ``R`` is the voxel count of one
    row (``X`` in 2-D, ``Y * X`` in 3-D) and a batch spans at most two rows of tiles (larger
    batches on narrow images hold one strip per row they span); a chunked ``out`` adds up to
    two chunk-rows of float32 so that every chunk is written once. The identity ``function``
    returns the input exactly (float64 accumulation).

    With the default ``margin = overlap // 4``, tiled and untiled results agree for operators
    whose receptive radius is at most ``overlap // 4``; pass ``margin`` (up to
    ``(overlap - 1) // 2``) to trade cross-fade width for a larger exact radius.

    Parameters
    ----------
    source : array_like, shape (C, *spatial)
        NumPy array, ``np.memmap`` or ``zarr.Array``; only ever sliced, one strip at a time.
    function : callable
        Maps a float32 batch ``(B, C, *tile)`` to ``(B, C_out, *tile)`` (anything
        ``np.asarray`` accepts). It must accept any tile shape that is a multiple of
        ``multiple``; all tiles of one call share one shape.
    tile_shape, overlap, multiple
        As in :func:`plan_tiles`.
    batch_size : int
        Tiles per call of ``function``; results do not depend on it.
    margin : int or sequence of int, optional
        As in :func:`blend_weights` (default ``overlap // 4``).
    out : array-like, optional
        Where to write the result, shape ``(C_out, *spatial)``, supporting ``__setitem__``
        (e.g. ``zarr.Array`` or ``np.memmap``); it is written strip by strip and returned.
    out_channels : int, optional
        Expected ``C_out``; checked against ``function``'s output.
    progress : callable, optional
        Called as ``progress(done_tiles, total_tiles)`` after each batch.

    Returns
    -------
    ndarray, float32, shape ``(C_out, *spatial)``, or ``out`` when given.

    Raises
    ------
    InfocusInputError
        Bad sizes (see :func:`plan_tiles`), a non-positive ``batch_size``, or an ``out`` whose
        shape differs from ``(C_out, *spatial)``.
    RuntimeError
        If ``function`` returns a batch of the wrong shape.
    """
    source = _as_source(source)
    spatial = _check_spatial_shape(tuple(source.shape[1:]))
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise InfocusInputError(f"batch_size must be a positive integer (got {batch_size!r}).")
    grid = _Grid(spatial, tile_shape, overlap, multiple, margin)
    out_channels = _check_out(out, spatial, out_channels)
    reader = _StripReader(source, grid.readers)
    accumulator: _Accumulator | None = None
    done = 0
    tiles = (_make_tile(index, grid.origins, grid.tile) for index in np.ndindex(*grid.counts))
    for first in range(0, grid.n_tiles, batch_size):
        batch = list(itertools.islice(tiles, batch_size))
        reader.release_before(batch[0].index[0])
        x = np.stack([reader.tile(t.index) for t in batch])
        y = np.asarray(function(x))
        _check_batch_output(y, x, len(batch), grid.tile, out_channels)
        if accumulator is None:
            out_channels = int(y.shape[1])
            if out is None:
                out = np.empty((out_channels, *spatial), dtype=np.float32)
            accumulator = _Accumulator(grid, out_channels, grid.strip_height(batch_size), out)
        for tile, pred in zip(batch, y, strict=True):
            accumulator.add(tile, pred)
        accumulator.flush(grid.flush_row(first + batch_size))
        done += len(batch)
        if progress is not None:
            progress(done, grid.n_tiles)
    return out


def _check_out(out: Any, spatial: tuple[int, ...], out_channels: int | None) -> int | None:
    """The output channel count ``out`` fixes (or ``out_channels``), after checking its shape."""
    if out is None:
        return out_channels
    out_shape = tuple(int(n) for n in out.shape)
    if len(out_shape) != len(spatial) + 1 or out_shape[1:] != spatial:
        raise InfocusInputError(
            f"out has shape {out_shape} but the prediction has shape (C_out, "
            f"{', '.join(map(str, spatial))}); allocate out with that shape."
        )
    if out_channels is not None and out_shape[0] != out_channels:
        raise InfocusInputError(
            f"out has {out_shape[0]} channels but out_channels is {out_channels}; make them agree."
        )
    return out_shape[0]


def _check_batch_output(y: np.ndarray, x: np.ndarray, count: int, tile: tuple[int, ...],
                        out_channels: int | None) -> None:
    if (
        y.ndim != len(tile) + 2
        or y.shape[0] != count
        or tuple(y.shape[2:]) != tile
        or (out_channels is not None and y.shape[1] != out_channels)
    ):
        raise RuntimeError(
            f"function returned shape {tuple(y.shape)} for a batch of shape {x.shape}; "
            f"expected (B, C_out, *tile) = ({count}, "
            f"{out_channels if out_channels is not None else 'C_out'}, "
            f"{', '.join(map(str, tile))})"
        )


class _Grid:
    """The tile grid of :func:`tiled_apply`: tile origins, readers, 1-D blending windows and
    their sums per axis (the separable normaliser), and the order tiles are processed in.

    Tiles are generated lazily in row-major order (no per-tile objects are kept). Tile k lies
    in row k // per_row of the first axis; rows before the first row of the next batch are
    final after each batch.
    """

    def __init__(self, spatial: tuple[int, ...], tile_shape: Any, overlap: Any, multiple: Any,
                 margin: Any) -> None:
        ndim = len(spatial)
        self.spatial = spatial
        self.tile, self.origins = _plan_axes(spatial, tile_shape, overlap, multiple)
        overlaps = _per_axis(overlap, ndim, "overlap", minimum=0)
        margins = _check_margin(margin, overlaps)
        self.padded = padded_shape(spatial, multiple)
        self.readers = [_axis_readers(spatial[d], self.origins[d], self.tile[d])
                        for d in range(ndim)]
        self.windows = [
            [
                _window_1d(self.tile[d], overlaps[d], margins[d], j == 0,
                           j == len(self.origins[d]) - 1)
                for j in range(len(self.origins[d]))
            ]
            for d in range(ndim)
        ]
        self.norms = []
        for d in range(ndim):
            norm = np.zeros(self.padded[d], dtype=np.float64)
            for origin, window in zip(self.origins[d], self.windows[d], strict=True):
                norm[origin : origin + self.tile[d]] += window
            if not np.all(norm > 0):  # pragma: no cover - guaranteed by plan_tiles and margin
                raise RuntimeError("tile weights do not cover the image; this is a bug in infocus")
            self.norms.append(norm)
        self.rest_norm = np.ones((), dtype=np.float64)
        for norm in self.norms[1:]:
            self.rest_norm = np.multiply.outer(self.rest_norm, norm)
        self.counts = [len(o) for o in self.origins]
        self.per_row = math.prod(self.counts[1:])
        self.n_tiles = self.counts[0] * self.per_row
        self._weights: dict[tuple[tuple[bool, bool], ...], np.ndarray] = {}

    def flush_row(self, first: int) -> int:
        """The first padded row that tiles from number ``first`` on still touch."""
        return self.origins[0][first // self.per_row] if first < self.n_tiles else self.padded[0]

    def strip_height(self, batch_size: int) -> int:
        """Rows the accumulation buffer needs: from the last flush to the furthest row a batch
        reaches, over all batches."""
        return max(
            self.origins[0][(min(first + batch_size, self.n_tiles) - 1) // self.per_row]
            + self.tile[0] - self.flush_row(first)
            for first in range(0, self.n_tiles, batch_size)
        )

    def weight(self, tile: Tile) -> np.ndarray:
        """The blending window of ``tile``; it depends only on which sides touch the border,
        so there are at most 3**ndim kinds."""
        weight = self._weights.get(tile.at_border)
        if weight is None:
            weight = np.ones((), dtype=np.float64)
            for d in range(len(self.tile)):
                weight = np.multiply.outer(weight, self.windows[d][tile.index[d]])
            self._weights[tile.at_border] = weight
        return weight


class _Accumulator:
    """Weighted predictions summed in float64 over a buffer spanning the open strip(s) of
    tiles; finished rows are normalised, cropped and handed to a :class:`_RowWriter`."""

    def __init__(self, grid: _Grid, channels: int, height: int, out: Any) -> None:
        self.grid = grid
        self.buffer = np.zeros((channels, height, *grid.padded[1:]), dtype=np.float64)
        self.product = np.empty((channels, *grid.tile), dtype=np.float64)
        self.writer = _RowWriter(out, grid.spatial[0], _row_chunk(out))
        self.crop_rest = tuple(slice(0, n) for n in grid.spatial[1:])
        self.low = 0  # padded row held at buffer row 0
        self.high = 0  # one past the furthest padded row accumulated so far

    def add(self, tile: Tile, prediction: np.ndarray) -> None:
        region = (
            slice(None),
            slice(tile.origin[0] - self.low, tile.stop[0] - self.low),
            *tile.slices[1:],
        )
        np.multiply(self.grid.weight(tile), prediction, out=self.product)  # no allocation
        self.buffer[region] += self.product
        self.high = max(self.high, tile.stop[0])

    def flush(self, until: int) -> None:
        """Rows [low, until) are final: normalise, crop to the image and write them out."""
        rows = until - self.low
        if rows <= 0:
            return
        grid, buffer, low = self.grid, self.buffer, self.low
        final = buffer[:, :rows]
        final /= grid.rest_norm  # in place, broadcast: no strip-sized temporaries
        final /= grid.norms[0][low:until].reshape((rows,) + (1,) * (len(grid.tile) - 1))
        stop = min(until, grid.spatial[0])
        if stop > low:
            self.writer.write(final[(slice(None), slice(0, stop - low), *self.crop_rest)])
        keep = self.high - until
        # Move the unfinished rows to the front in pieces of at most `rows` rows, so source
        # and destination never overlap and numpy needs no temporary copy.
        for start in range(0, max(keep, 0), rows):
            piece = min(rows, keep - start)
            buffer[:, start : start + piece] = buffer[:, rows + start : rows + start + piece]
        buffer[:, max(keep, 0) :] = 0.0
        self.low = until


# --------------------------------------------------------------------------------------------
# Choosing a tile size


def available_memory() -> int:
    """Bytes of memory available to this process now (psutil if installed, else ``sysconf``)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX without psutil
        return 2**31


def auto_tile_shape(
    spatial_shape: Sequence[int],
    *,
    multiple: int = 1,
    bytes_per_voxel: float,
    memory_budget: int | float,
    batch_size: int = 1,
    max_side: int | None = None,
) -> tuple[int, ...]:
    """Largest square (2-D) or cubic (3-D) aligned tile whose working memory fits a budget.

    The side ``s`` is the largest multiple of ``multiple`` not above ``max_side`` (default
    1024 in 2-D, 128 in 3-D) such that

    .. math:: \\text{bytes\\_per\\_voxel} \\cdot \\prod_d \\min(s, \\lceil n_d \\rceil_m)
              \\cdot \\text{batch\\_size} \\le \\text{memory\\_budget},

    where :math:`\\lceil n_d \\rceil_m` is the image size rounded up to the multiple (no tile
    is larger than the padded image).

    Parameters
    ----------
    spatial_shape : sequence of int
        Image shape without channels.
    multiple : int
        Alignment of the tile (``2**depth`` for a U-Net).
    bytes_per_voxel : float
        Estimated peak working memory of ``function`` per input voxel (activations,
        gradients-free), e.g. measured once on a small tile.
    memory_budget : int or float
        Bytes the prediction may use, e.g. ``available_memory() // 2``.
    batch_size : int
        Tiles per batch.
    max_side : int, optional
        Upper bound of the side.

    Raises
    ------
    InfocusInputError
        If even a ``multiple``-sized tile does not fit the budget, or inputs are not positive.
    """
    shape = _check_spatial_shape(spatial_shape)
    ndim = len(shape)
    (mult,) = _per_axis(multiple, 1, "multiple", minimum=1)
    if not (bytes_per_voxel > 0 and memory_budget > 0 and batch_size >= 1):
        raise InfocusInputError(
            "bytes_per_voxel, memory_budget and batch_size must be positive; check the estimate."
        )
    cap = max_side if max_side is not None else _MAX_AUTO_SIDE.get(ndim, 128)
    padded = padded_shape(shape, mult)
    side = max(mult, cap // mult * mult)
    side = min(side, max(padded))
    side = _round_up(side, mult)
    while side >= mult:
        tile = tuple(min(side, p) for p in padded)
        if bytes_per_voxel * math.prod(tile) * batch_size <= memory_budget:
            return tile
        side -= mult
    need = bytes_per_voxel * math.prod(min(mult, p) for p in padded) * batch_size
    raise InfocusInputError(
        f"A memory budget of {memory_budget / 2**20:.1f} MiB cannot hold even the smallest "
        f"aligned tile ({need / 2**20:.1f} MiB); free memory, lower batch_size or use a smaller "
        "network."
    )
