r"""Training data for the deep-learning denoisers, read patch by patch and never loaded whole.

The pipeline is

1. :func:`load_inputs` reads files and folders (``.zarr`` and very large TIFFs stay on disk);
2. :func:`to_blocks` cuts each image into *blocks* of shape ``(C, *spatial)`` by iterating the
   sample, time and (optionally) channel axes; a block is a :class:`LazyBlock`, a view that
   reads only the window it is asked for;
3. :func:`split_validation` holds out whole blocks, or a band of every block, for validation;
4. :class:`PatchSampler` draws random, augmented patches on demand for each batch, and
   :func:`fixed_validation_patches` draws one fixed validation set.

Unlike tools that extract every patch up front, memory use is one batch of patches however large
the stacks are.

Spatial dimensions
------------------
``spatial="YX"`` trains 2-D networks, ``"ZYX"`` 3-D ones; ``"TYX"`` treats time as a third
spatial axis (a 2-D+t network), which Laine et al. (2021) recommend for time-lapse data whose
frames are strongly correlated. With ``"auto"`` a ``Z`` axis gives ``ZYX`` blocks and everything
else ``YX`` blocks (time points are then separate blocks).

References
----------
A. Krull, T.-O. Buchholz, F. Jug, "Noise2Void – learning denoising from single noisy images",
CVPR 2019.

R. F. Laine, G. Jacquemet, A. Krull, "Imaging in focus: an introduction to denoising bioimages
in the era of deep learning", Int. J. Biochem. Cell Biol. 140, 106077 (2021).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from infocus._errors import InfocusInputError
from infocus.axes import check_axes

__all__ = [
    "LAZY_READ_BYTES",
    "LazyBlock",
    "LabelledShareSampler",
    "PatchSampler",
    "fixed_validation_patches",
    "load_inputs",
    "sample_planes",
    "split_validation",
    "to_blocks",
]

#: Files larger than this (in bytes) are opened lazily by :func:`load_inputs` (Zarr always is).
LAZY_READ_BYTES = 1 << 30

#: The spatial layouts a training block may have.
SPATIAL_LAYOUTS = ("YX", "ZYX", "TYX")


# --------------------------------------------------------------------------- lazy views


class LazyBlock:
    """A read-on-demand view of part of an array, with its axes reordered.

    The view keeps a reference to ``source`` (a NumPy array, ``numpy.memmap``, ``zarr.Array``
    or anything with ``shape`` and NumPy-style basic indexing) and, per output dimension, which
    source dimension and index range it shows. Indexing a :class:`LazyBlock` reads only the
    requested window from ``source``; nothing is read when the view is made.

    Parameters
    ----------
    source : array_like
        The array the pixels come from.
    index : sequence
        One entry per dimension of ``source``: an ``int`` fixes that dimension (it is iterated
        over, e.g. a time point), a ``(start, stop)`` pair keeps the range.
    dims : sequence of int or None
        One entry per dimension of the view: the source dimension it shows (which must have a
        range in ``index``), or ``None`` for a new axis of length 1 (the channel axis of a
        single-channel block).
    channel : int or None
        The source channel a single-channel block comes from (for information, e.g. to fit one
        normaliser per channel); ``None`` when the block has all channels or there are none.

    Examples
    --------
    >>> import numpy as np
    >>> data = np.arange(2 * 3 * 4).reshape(2, 3, 4)  # axes "YXC"
    >>> block = LazyBlock(data, [(0, 2), (0, 3), 1], [None, 0, 1], channel=1)
    >>> block.shape
    (1, 2, 3)
    >>> block[0, :, 1:].tolist()
    [[5, 9], [17, 21]]
    """

    __slots__ = ("channel", "dims", "index", "source")

    def __init__(
        self,
        source: Any,
        index: Sequence[int | tuple[int, int]],
        dims: Sequence[int | None],
        *,
        channel: int | None = None,
    ) -> None:
        self.source = source
        self.index = tuple(
            int(i) if isinstance(i, int | np.integer) else (int(i[0]), int(i[1])) for i in index
        )
        self.dims = tuple(None if d is None else int(d) for d in dims)
        self.channel = channel
        if len(self.index) != len(source.shape):
            raise ValueError(f"index {index} does not fit a source of shape {source.shape}")
        kept = [d for d in self.dims if d is not None]
        if sorted(kept) != [d for d, i in enumerate(self.index) if not isinstance(i, int)]:
            raise ValueError(f"dims {dims} must name each ranged source dimension once")

    @classmethod
    def wrap(cls, array: Any) -> LazyBlock:
        """A view of all of ``array``, dimensions unchanged."""
        return cls(array, [(0, int(n)) for n in array.shape], range(len(array.shape)))

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the view."""
        return tuple(1 if d is None else self.index[d][1] - self.index[d][0] for d in self.dims)

    @property
    def ndim(self) -> int:
        """Number of dimensions of the view."""
        return len(self.dims)

    @property
    def dtype(self) -> np.dtype:
        """Data type of the source."""
        return np.dtype(self.source.dtype)

    @property
    def size(self) -> int:
        """Number of elements in the view."""
        return math.prod(self.shape)

    def __repr__(self) -> str:
        return f"LazyBlock(shape={self.shape}, dtype={self.dtype}, source={type(self.source).__name__})"

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self[...]
        return array if dtype is None else array.astype(dtype, copy=False)

    def crop(self, axis: int, start: int, stop: int) -> LazyBlock:
        """The view restricted to ``start:stop`` along its dimension ``axis`` (nothing is read)."""
        axis = axis % self.ndim
        length = self.shape[axis]
        if not 0 <= start < stop <= length:
            raise ValueError(f"crop {start}:{stop} does not fit length {length} of axis {axis}")
        source_dim = self.dims[axis]
        if source_dim is None:
            raise ValueError("cannot crop a length-1 axis that the source does not have")
        index = list(self.index)
        begin = index[source_dim][0]
        index[source_dim] = (begin + start, begin + stop)
        return LazyBlock(self.source, index, self.dims, channel=self.channel)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = _expand_key(key, self.ndim)
        shape = self.shape
        read: list[Any] = [i if isinstance(i, int) else None for i in self.index]
        local: list[Any] = []
        for k, dim, length in zip(key, self.dims, shape, strict=True):
            if dim is None:
                local.append(k)
                continue
            offset = self.index[dim][0]
            if isinstance(k, slice):
                start, stop, step = k.indices(length)
                if step > 0:
                    stop = max(start, stop)
                    read[dim] = slice(offset + start, offset + stop, step)
                    local.append(slice(None))
                else:  # read forwards (zarr cannot step backwards), then reverse
                    count = len(range(start, stop, step))
                    first = start + step * (count - 1) if count else start
                    read[dim] = slice(offset + first, offset + first + (-step) * count, -step)
                    local.append(slice(None, None, -1))
            else:
                position = int(k)
                if not -length <= position < length:
                    raise IndexError(f"index {position} is out of bounds for length {length}")
                position %= length
                read[dim] = slice(offset + position, offset + position + 1)
                local.append(0)
        array = np.asarray(self.source[tuple(read)])
        # ``array`` has the ranged source dimensions in source order; reorder to the view's.
        ranged = [d for d, i in enumerate(self.index) if not isinstance(i, int)]
        kept = [d for d in self.dims if d is not None]
        array = np.transpose(array, [ranged.index(d) for d in kept])
        new_axes = tuple(i for i, d in enumerate(self.dims) if d is None)
        if new_axes:
            array = np.expand_dims(array, new_axes)
        return array[tuple(local)]


def _expand_key(key: Any, ndim: int) -> tuple[Any, ...]:
    """A full-length tuple of slices and ints (basic indexing only)."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is None for k in key) or any(
        not isinstance(k, slice | int | np.integer) and k is not Ellipsis for k in key
    ):
        raise TypeError("LazyBlock supports only basic indexing with integers and slices")
    if Ellipsis in key:
        at = key.index(Ellipsis)
        fill = ndim - (len(key) - 1)
        key = key[:at] + (slice(None),) * fill + key[at + 1 :]
    if len(key) > ndim:
        raise IndexError(f"too many indices ({len(key)}) for a view with {ndim} dimensions")
    return tuple(key) + (slice(None),) * (ndim - len(key))


def _crop(block: Any, axis: int, start: int, stop: int) -> Any:
    """``block`` restricted to ``start:stop`` along ``axis``, as a view (never a copy)."""
    if isinstance(block, LazyBlock):
        return block.crop(axis, start, stop)
    if isinstance(block, np.ndarray):
        index = [slice(None)] * block.ndim
        index[axis] = slice(start, stop)
        return block[tuple(index)]
    return LazyBlock.wrap(block).crop(axis, start, stop)


# --------------------------------------------------------------------------- blocks


def to_blocks(
    data: Any,
    axes: str,
    *,
    spatial: Literal["auto", "YX", "ZYX", "TYX"] = "auto",
    channels: Literal["independent", "joint"] = "independent",
) -> list[LazyBlock]:
    """Cut one image into training blocks of shape ``(C, *spatial)`` without reading it.

    Parameters
    ----------
    data : array_like
        The image: a NumPy array, ``numpy.memmap`` or ``zarr.Array`` (anything with ``shape``,
        ``dtype`` and basic indexing is used as is; nothing is loaded).
    axes : str
        One letter per dimension of ``data`` over ``S T C Z Y X``, in any order.
    spatial : {"auto", "YX", "ZYX", "TYX"}
        The block's spatial axes. ``"auto"`` is ``"ZYX"`` when ``axes`` has ``Z`` and ``"YX"``
        otherwise. ``"TYX"`` treats time as a third dimension (2-D+t, Laine et al. 2021).
        Every other axis except ``C`` is iterated, one block per position.
    channels : {"independent", "joint"}
        ``"independent"``: every channel becomes its own single-channel block (one network
        serves all channels, as in Noise2Void); ``"joint"``: the channels stay together as the
        block's first axis (a multi-channel network).

    Returns
    -------
    list of LazyBlock
        Blocks of shape ``(C, *spatial)`` with the spatial axes in the order of ``spatial``;
        ``C`` is 1 for independent channels and for images without a ``C`` axis. Blocks are
        ordered by their position along the iterated axes (in the order of ``axes``), channel
        by channel within a position.

    Raises
    ------
    InfocusInputError
        Bad axes, an unknown ``spatial`` or ``channels`` option, a ``spatial`` layout naming an
        axis the image lacks, or a non-numeric data type.

    Examples
    --------
    >>> import numpy as np
    >>> blocks = to_blocks(np.zeros((5, 2, 32, 32)), "TCYX")
    >>> len(blocks), blocks[0].shape
    (10, (1, 32, 32))
    >>> to_blocks(np.zeros((5, 2, 32, 32)), "TCYX", spatial="TYX", channels="joint")[0].shape
    (2, 5, 32, 32)
    """
    if not hasattr(data, "shape") or not hasattr(data, "__getitem__"):
        data = np.asarray(data)
    shape = tuple(int(n) for n in data.shape)
    axes = check_axes(axes, shape)
    dtype = np.dtype(data.dtype)
    if not (
        np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating) or dtype == np.bool_
    ):
        raise InfocusInputError(
            f"The image has dtype {dtype}, which cannot be trained on; convert it to an integer "
            "or floating-point type."
        )
    layout = str(spatial).upper()
    if layout == "AUTO":
        layout = "ZYX" if "Z" in axes else "YX"
    if layout not in SPATIAL_LAYOUTS:
        raise InfocusInputError(
            f"Unknown spatial layout {spatial!r}; use 'auto', 'YX', 'ZYX' or 'TYX'."
        )
    missing = [a for a in layout if a not in axes]
    if missing:
        raise InfocusInputError(
            f"Spatial layout {layout!r} needs a {''.join(missing)!r} axis, but the image has axes "
            f"{axes!r} (shape {shape}); use spatial='auto' or pass the right axes."
        )
    if channels not in ("independent", "joint"):
        raise InfocusInputError(
            f"Unknown channel mode {channels!r}; use 'independent' (one single-channel network "
            "for all channels) or 'joint' (channels as network inputs)."
        )
    joint = channels == "joint" and "C" in axes
    kept = set(layout) | ({"C"} if joint else set())
    loop_dims = [i for i, a in enumerate(axes) if a not in kept]
    spatial_dims = [axes.index(a) for a in layout]
    channel_dim = axes.index("C") if "C" in axes else None
    blocks: list[LazyBlock] = []
    for position in np.ndindex(*[shape[i] for i in loop_dims]):
        index: list[Any] = [(0, n) for n in shape]
        for dim, value in zip(loop_dims, position, strict=True):
            index[dim] = int(value)
        if joint:
            dims: list[int | None] = [channel_dim, *spatial_dims]
        else:
            dims = [None, *spatial_dims]
        source_channel = (
            position[loop_dims.index(channel_dim)] if channel_dim in loop_dims else None
        )
        blocks.append(LazyBlock(data, index, dims, channel=source_channel))
    return blocks


# --------------------------------------------------------------------------- checks


def _as_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check_blocks(inputs: Any, targets: Any, name: str = "training") -> tuple[list, list | None]:
    if hasattr(inputs, "shape"):
        raise InfocusInputError(
            f"The {name} inputs must be a list of blocks, not one array; wrap it as [array] or "
            "use to_blocks(image, axes)."
        )
    inputs = list(inputs)
    if not inputs:
        raise InfocusInputError(f"No {name} images were given; pass at least one image.")
    for block in inputs:
        if len(block.shape) < 3:
            raise InfocusInputError(
                f"A {name} block has shape {tuple(block.shape)}, but blocks must be "
                "(C, *spatial) with two or three spatial axes; make them with to_blocks(image, axes)."
            )
    ndims = {len(b.shape) for b in inputs}
    if len(ndims) != 1:
        raise InfocusInputError(
            f"The {name} blocks mix 2-D and 3-D images; use images with the same spatial axes."
        )
    channel_counts = sorted({int(b.shape[0]) for b in inputs})
    if len(channel_counts) != 1:
        raise InfocusInputError(
            f"The {name} images have different numbers of channels ({channel_counts}); use images "
            "with the same channels, or channels='independent'."
        )
    if targets is None:
        return inputs, None
    if hasattr(targets, "shape"):
        raise InfocusInputError(
            f"The {name} targets must be a list of blocks, not one array; wrap it as [array]."
        )
    targets = list(targets)
    if len(targets) != len(inputs):
        raise InfocusInputError(
            f"{len(inputs)} {name} input block(s) but {len(targets)} target block(s) were given; "
            "each input needs exactly one target (check that both folders hold matching files)."
        )
    for i, (x, y) in enumerate(zip(inputs, targets, strict=True)):
        if tuple(x.shape) != tuple(y.shape):
            raise InfocusInputError(
                f"Input block {i} has shape {tuple(x.shape)} but its target has shape "
                f"{tuple(y.shape)}; inputs and targets must be pixel-aligned images of the same shape."
            )
    return inputs, targets


def _check_patch_shape(patch_shape: Any, n_spatial: int) -> tuple[int, ...]:
    if isinstance(patch_shape, int | np.integer):
        patch_shape = (int(patch_shape),) * n_spatial
    try:
        patch = tuple(int(p) for p in patch_shape)
    except (TypeError, ValueError):
        raise InfocusInputError(
            f"Patch shape must be a tuple of positive integers (got {patch_shape!r})."
        ) from None
    if len(patch) != n_spatial:
        raise InfocusInputError(
            f"Patch shape {patch} has {len(patch)} dimension(s) but the training blocks have "
            f"{n_spatial} spatial dimensions; give one patch size per spatial axis."
        )
    if min(patch) < 1:
        raise InfocusInputError(f"Patch shape {patch} must be positive in every dimension.")
    return patch


def _check_fits(blocks: Sequence[Any], patch: tuple[int, ...]) -> None:
    for block in blocks:
        spatial = tuple(int(n) for n in block.shape[1:])
        small = [n for n, p in zip(spatial, patch, strict=True) if n < p]
        if small:
            raise InfocusInputError(
                f"Image of shape {spatial} is smaller than the patch size {patch}; use "
                f"--patch-size N ≤ {min(small)} (or larger images)."
            )


# --------------------------------------------------------------------------- sampling


class PatchSampler:
    """Random training patches drawn on demand from blocks that stay on disk.

    For every patch a block is chosen with probability proportional to its number of pixels,
    then a uniformly random position where the patch fits; only that window is read. With
    ``augment`` the patch is flipped along each spatial axis with probability 1/2 and rotated in
    the Y/X plane by a random multiple of 90° (only 0° or 180° when the Y/X patch is not
    square). For a square 2-D patch this draws each of the 8 symmetries of the square (the
    dihedral group D4) with probability 1/8; a 3-D patch is rotated in Y/X only (the Z or T
    axis is never swapped with Y or X, since their sampling usually differs) and also flipped
    along Z or T. An input and its target get the same window and the same transform.

    Parameters
    ----------
    inputs : list of array_like
        Blocks of shape ``(C, *spatial)`` (:func:`to_blocks`), all with the same ``C`` and the
        same number of spatial axes.
    targets : list of array_like, optional
        One block per input, of the same shape (CARE, Noise2Noise); ``None`` for
        self-supervised training.
    patch_shape : tuple of int
        Patch size per spatial axis, e.g. ``(64, 64)`` or ``(16, 64, 64)``; an int is used for
        every axis.
    augment : bool
        Apply random flips and rotations.
    rotate : bool
        With ``augment``, also rotate by 90° (else flips only, which is 180° at most). Turn it
        off when the noise is correlated along one axis only and the training scheme relies on
        that direction (structN2V's line along X).
    rng : numpy.random.Generator, int or None
        Randomness; a seed makes the sequence of batches reproducible.

    Raises
    ------
    InfocusInputError
        No blocks, mismatched input/target shapes or counts, blocks that differ in channels or
        dimensions, or a patch larger than a block.

    Examples
    --------
    >>> import numpy as np
    >>> sampler = PatchSampler(to_blocks(np.ones((100, 100)), "YX"), patch_shape=(32, 32), rng=0)
    >>> x, y = sampler.sample(4)
    >>> x.shape, x.dtype, y
    ((4, 1, 32, 32), dtype('float32'), None)
    """

    def __init__(
        self,
        inputs: Sequence[Any],
        targets: Sequence[Any] | None = None,
        *,
        patch_shape: tuple[int, ...] | int,
        augment: bool = True,
        rotate: bool = True,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        self.inputs, self.targets = _check_blocks(inputs, targets)
        self.rotate = bool(rotate)
        self.patch_shape = _check_patch_shape(patch_shape, len(self.inputs[0].shape) - 1)
        _check_fits(self.inputs, self.patch_shape)
        self.augment = bool(augment)
        self.rng = _as_rng(rng)
        sizes = np.array([math.prod(b.shape[1:]) for b in self.inputs], dtype=np.float64)
        self._probabilities = sizes / sizes.sum()
        self._n_pixels = int(sizes.sum())

    @property
    def n_channels(self) -> int:
        """Channels per patch (``C``)."""
        return int(self.inputs[0].shape[0])

    @property
    def n_pixels(self) -> int:
        """Total number of spatial pixels (per channel) over all blocks."""
        return self._n_pixels

    @property
    def patches_per_epoch(self) -> int:
        """How many patches cover the data about once: ``ceil(n_pixels / prod(patch_shape))``."""
        return max(1, math.ceil(self._n_pixels / math.prod(self.patch_shape)))

    def _transform(self) -> tuple[np.ndarray, int]:
        n_spatial = len(self.patch_shape)
        flips = self.rng.random(n_spatial) < 0.5
        if not self.rotate:
            turns = 0
        elif self.patch_shape[-1] == self.patch_shape[-2]:
            turns = int(self.rng.integers(4))
        else:
            turns = 2 * int(self.rng.integers(2))
        return flips, turns

    @staticmethod
    def _apply(patch: np.ndarray, flips: np.ndarray, turns: int) -> np.ndarray:
        axes = tuple(1 + i for i in np.flatnonzero(flips))
        if axes:
            patch = np.flip(patch, axis=axes)
        if turns:
            patch = np.rot90(patch, k=turns, axes=(-2, -1))
        return patch

    def _read(self, block: Any, window: tuple[slice, ...], which: str, i: int) -> np.ndarray:
        patch = np.asarray(block[window], dtype=np.float32)
        if not np.isfinite(patch).all():
            raise InfocusInputError(
                f"A patch of {which} block {i} contains NaN or infinite pixels; replace them "
                "(e.g. with the background value) before training."
            )
        return patch

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Draw a batch: ``(x, y)`` of shape ``(batch_size, C, *patch_shape)``, float32.

        ``y`` is ``None`` without targets. Values are the raw pixel values (normalise them with
        :class:`~infocus.training.Normalizer`).

        Raises
        ------
        InfocusInputError
            When a drawn patch contains NaN or infinite pixels.
        """
        if int(batch_size) < 1:
            raise InfocusInputError(f"Batch size must be a positive integer (got {batch_size!r}).")
        batch_size = int(batch_size)
        shape = (batch_size, self.n_channels, *self.patch_shape)
        x = np.empty(shape, dtype=np.float32)
        y = None if self.targets is None else np.empty(shape, dtype=np.float32)
        choices = self.rng.choice(len(self.inputs), size=batch_size, p=self._probabilities)
        for b, i in enumerate(choices):
            block = self.inputs[i]
            window = [slice(None)]
            for size, p in zip(block.shape[1:], self.patch_shape, strict=True):
                start = int(self.rng.integers(0, int(size) - p + 1))
                window.append(slice(start, start + p))
            window_t = tuple(window)
            patch = self._read(block, window_t, "input", int(i))
            if self.augment:
                flips, turns = self._transform()
                patch = self._apply(patch, flips, turns)
            x[b] = patch
            if y is not None:
                assert self.targets is not None
                target = self._read(self.targets[i], window_t, "target", int(i))
                if self.augment:
                    target = self._apply(target, flips, turns)
                y[b] = target
        return x, y



class LabelledShareSampler:
    """Batches in which a fixed share of the patches comes from the images that carry labels.

    When only a few of many images are labelled, :class:`PatchSampler` draws labelled
    patches as rarely as labelled pixels are: with 1 labelled image of 20, one patch in 20.
    Here ``round(share * batch_size)`` patches of every batch come from the labelled blocks and
    the rest from all blocks (labelled ones included), each part drawn like
    :class:`PatchSampler` draws. This follows the joint-training setting of DenoiSeg
    (Buchholz et al. 2020), where every batch carries both the self-supervised loss and the
    labelled one; how often the few labelled images are seen no longer depends on how many
    unlabelled ones come with them.

    Parameters
    ----------
    inputs, targets : list of array_like
        Blocks ``(C, *spatial)`` and their label blocks, as for :class:`PatchSampler`.
    labelled : sequence of bool
        Which blocks carry labels; at least one must, and one must not.
    share : float
        Share of each batch drawn from the labelled blocks, in ``[0, 1]``.
    patch_shape, augment, rotate, rng
        As for :class:`PatchSampler` (one random stream serves both parts).

    Raises
    ------
    InfocusInputError
        A ``share`` outside ``[0, 1]``, a ``labelled`` list that does not match the blocks or
        marks none or all of them, or anything :class:`PatchSampler` refuses.

    Examples
    --------
    >>> import numpy as np
    >>> blocks = [np.zeros((1, 32, 32), np.float32) for _ in range(4)]
    >>> labels = [np.ones((1, 32, 32), np.float32)] + [np.full((1, 32, 32), -1.0, np.float32)] * 3
    >>> sampler = LabelledShareSampler(blocks, labels, [True, False, False, False], share=0.5,
    ...                                patch_shape=(16, 16), rng=0)
    >>> x, y = sampler.sample(8)
    >>> int((y[:4] >= 0).all())
    1
    """

    def __init__(
        self,
        inputs: Sequence[Any],
        targets: Sequence[Any],
        labelled: Sequence[bool],
        *,
        share: float,
        patch_shape: tuple[int, ...] | int,
        augment: bool = True,
        rotate: bool = True,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        try:
            share = float(share)
        except (TypeError, ValueError):
            share = math.nan
        if not 0.0 <= share <= 1.0:
            raise InfocusInputError(
                f"The labelled share of a batch must lie in [0, 1] (got {share!r}); 0.5 draws "
                "half of every batch from the labelled images.")
        marks = [bool(m) for m in labelled]
        if len(marks) != len(inputs) or all(marks) or not any(marks):
            raise InfocusInputError(
                "A labelled share needs one mark per image and both labelled and unlabelled "
                "images; with all images labelled (or none) use PatchSampler.")
        self.share = share
        self.rng = _as_rng(rng)
        options = {"patch_shape": patch_shape, "augment": augment, "rotate": rotate,
                   "rng": self.rng}
        self.everything = PatchSampler(inputs, targets, **options)
        self.labelled = PatchSampler([b for b, m in zip(inputs, marks, strict=True) if m],
                                     [t for t, m in zip(targets, marks, strict=True) if m],
                                     **options)
        self.patch_shape = self.everything.patch_shape

    @property
    def n_channels(self) -> int:
        """Channels per patch (``C``)."""
        return self.everything.n_channels

    @property
    def n_pixels(self) -> int:
        """Total number of spatial pixels (per channel) over all blocks."""
        return self.everything.n_pixels

    @property
    def patches_per_epoch(self) -> int:
        """As for :class:`PatchSampler`, over all blocks."""
        return self.everything.patches_per_epoch

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw a batch ``(x, y)``: the labelled part first, then the part from all blocks.

        Raises
        ------
        InfocusInputError
            A batch size below 1, or a patch with NaN or infinite pixels.
        """
        if int(batch_size) < 1:
            raise InfocusInputError(f"Batch size must be a positive integer (got {batch_size!r}).")
        batch_size = int(batch_size)
        from_labelled = int(round(self.share * batch_size))
        parts = [sampler.sample(n) for sampler, n in ((self.labelled, from_labelled),
                                                      (self.everything, batch_size - from_labelled))
                 if n > 0]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts if p[1] is not None])
        return x, y


def fixed_validation_patches(
    val_inputs: Sequence[Any],
    val_targets: Sequence[Any] | None,
    patch_shape: tuple[int, ...] | int,
    n: int = 128,
    rng: np.random.Generator | int | None = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """A fixed set of ``n`` validation patches, so the validation loss is comparable across epochs.

    The patches are drawn like :class:`PatchSampler` draws them, without augmentation, once:
    call this before training and evaluate the same arrays after every epoch. The result depends
    only on the blocks and ``rng`` (a seed, 0 by default, gives the same patches every run).

    Parameters
    ----------
    val_inputs, val_targets : list of array_like
        Validation blocks (from :func:`split_validation`); ``val_targets`` may be ``None``.
    patch_shape : tuple of int
        Patch size per spatial axis.
    n : int
        Number of patches.
    rng : numpy.random.Generator, int or None
        Randomness for the positions.

    Returns
    -------
    x, y : ndarray, float32, shape ``(n, C, *patch_shape)``
        ``y`` is ``None`` without targets.
    """
    sampler = PatchSampler(val_inputs, val_targets, patch_shape=patch_shape, augment=False, rng=rng)
    return sampler.sample(n)


def sample_planes(
    blocks: Sequence[Any], *, size: int = 256, max_planes: int = 32
) -> np.ndarray:
    """Central YX crops of evenly chosen planes of the blocks, for measuring the noise.

    Only the crops are read, so lazy (Zarr) blocks stay on disk.

    Parameters
    ----------
    blocks : list of array_like
        Blocks of shape ``(C, *spatial)`` (:func:`to_blocks`), the last two axes Y and X.
    size : int
        Edge of the crops (smaller planes give smaller crops: the smallest plane decides).
    max_planes : int
        Most planes to read, spread evenly over blocks and their leading axes.

    Returns
    -------
    ndarray, float64, shape ``(C, P, h, w)``

    Examples
    --------
    >>> blocks = to_blocks(np.zeros((3, 300, 200)), "SYX")
    >>> sample_planes(blocks, size=128).shape
    (1, 3, 128, 128)
    """
    if not blocks:
        raise InfocusInputError("No blocks to sample planes from.")
    height = min(size, *(int(b.shape[-2]) for b in blocks))
    width = min(size, *(int(b.shape[-1]) for b in blocks))
    located = [
        (block, index)
        for block in blocks
        for index in np.ndindex(*(int(n) for n in block.shape[1:-2]))
    ]
    chosen = np.unique(np.linspace(0, len(located) - 1, min(len(located), max_planes)).round())
    planes = []
    for k in chosen.astype(int):
        block, index = located[k]
        top = (int(block.shape[-2]) - height) // 2
        left = (int(block.shape[-1]) - width) // 2
        window = (slice(None), *index, slice(top, top + height), slice(left, left + width))
        planes.append(np.asarray(block[window], dtype=np.float64))
    return np.stack(planes, axis=1)


def split_validation(
    inputs: Sequence[Any],
    targets: Sequence[Any] | None = None,
    *,
    fraction: float = 0.1,
    patch_shape: tuple[int, ...] | int,
    rng: np.random.Generator | int | None = None,
) -> tuple[list[Any], list[Any] | None, list[Any], list[Any] | None]:
    """Split blocks into training and validation parts whose pixels never overlap.

    * With 5 or more blocks, whole blocks are held out: ``max(1, round(fraction * n))`` of them
      (at most ``n - 1``), chosen at random; the others are for training.
    * With fewer blocks, each block is split in two along its first spatial axis (Z, T or Y)
      where it is at least two patches long, else along the next one: the last
      ``max(patch, round(fraction * length))`` rows (capped so that a patch still fits in the
      rest) are for validation and the rows before them for training.

    In both cases no pixel is used for both, so the validation loss measures generalisation to
    unseen pixels (for self-supervised methods, whose "targets" are the inputs themselves, an
    overlap would make the validation loss meaningless). Pairs are split identically. The
    results are views; nothing is read.

    Parameters
    ----------
    inputs, targets : list of array_like
        Blocks of shape ``(C, *spatial)``; ``targets`` may be ``None``.
    fraction : float
        Share of the data to hold out, in ``(0, 1)``.
    patch_shape : tuple of int
        The training patch size; every part keeps at least one patch.
    rng : numpy.random.Generator, int or None
        Randomness for choosing whole blocks.

    Returns
    -------
    train_inputs, train_targets, val_inputs, val_targets : lists (targets ``None`` without targets)

    Raises
    ------
    InfocusInputError
        A bad ``fraction``, mismatched blocks, or, with fewer than 5 blocks, a block too small
        to hold one training and one validation patch.
    """
    inputs, targets = _check_blocks(inputs, targets)
    if not 0.0 < float(fraction) < 1.0:
        raise InfocusInputError(
            f"The validation fraction must be between 0 and 1 (got {fraction!r}); 0.1 is usual."
        )
    patch = _check_patch_shape(patch_shape, len(inputs[0].shape) - 1)
    n = len(inputs)
    if n >= 5:
        n_val = min(n - 1, max(1, round(fraction * n)))
        held = set(_as_rng(rng).choice(n, size=n_val, replace=False).tolist())
        train_idx = [i for i in range(n) if i not in held]
        val_idx = sorted(held)
        return (
            [inputs[i] for i in train_idx],
            None if targets is None else [targets[i] for i in train_idx],
            [inputs[i] for i in val_idx],
            None if targets is None else [targets[i] for i in val_idx],
        )
    train_in, val_in = [], []
    train_t: list[Any] | None = None if targets is None else []
    val_t: list[Any] | None = None if targets is None else []
    for i, block in enumerate(inputs):
        spatial = tuple(int(s) for s in block.shape[1:])
        axis = next(
            (a for a, (s, p) in enumerate(zip(spatial, patch, strict=True)) if s >= 2 * p), None
        )
        if axis is None:
            raise InfocusInputError(
                f"Image of shape {spatial} is too small to hold out a validation band one patch "
                f"({patch}) high and still train on the rest; use a smaller --patch-size or give "
                "at least five images so that whole images are held out."
            )
        length, p = spatial[axis], patch[axis]
        band = min(max(p, round(fraction * length)), length - p)
        cut = length - band
        train_in.append(_crop(block, axis + 1, 0, cut))
        val_in.append(_crop(block, axis + 1, cut, length))
        if targets is not None:
            assert train_t is not None and val_t is not None
            train_t.append(_crop(targets[i], axis + 1, 0, cut))
            val_t.append(_crop(targets[i], axis + 1, cut, length))
    return train_in, train_t, val_in, val_t


# --------------------------------------------------------------------------- files


def _image_files(path: Path) -> list[Path]:
    from infocus.io._common import detect_format

    if not path.exists():
        raise InfocusInputError(f"Input {str(path)!r} does not exist; check the path.")
    if not path.is_dir():
        return [path]
    try:
        detect_format(path)  # a Zarr store is a directory but one image
    except InfocusInputError:
        pass
    else:
        return [path]
    found = []
    for entry in sorted(path.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        try:
            detect_format(entry)
        except InfocusInputError:
            continue
        found.append(entry)
    if not found:
        from infocus.io._common import SUPPORTED_SUFFIXES

        raise InfocusInputError(
            f"Folder {str(path)!r} holds no image files infocus can read "
            f"({', '.join(SUPPORTED_SUFFIXES)}); point to the images or to the folder that holds them."
        )
    return found


def image_files(path: str | os.PathLike[str]) -> list[Path]:
    """The image files a path stands for: itself, or the readable images directly inside a
    folder (sorted by name), as :func:`load_inputs` reads them."""
    from infocus.io._common import resolve_path

    return list(_image_files(resolve_path(path)))


def load_inputs(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    axes: str | None = None,
) -> list[tuple[Any, str]]:
    """Open training images from files and folders, keeping large ones on disk.

    A folder contributes every image file directly inside it that infocus can read (sorted by
    name; other files are skipped). Zarr stores, and any file larger than
    :data:`LAZY_READ_BYTES` (1 GiB), are opened lazily with :func:`infocus.io.open_image_lazy`
    (their pixels are read patch by patch during training); the others are read with
    :func:`infocus.io.read_image`.

    Parameters
    ----------
    paths : path or list of paths
        Image files, Zarr stores and folders.
    axes : str, optional
        Axes of every image, overriding the files' metadata (e.g. ``"TYX"``).

    Returns
    -------
    list of (data, axes)
        One entry per image, in order; pass each to :func:`to_blocks`.

    Raises
    ------
    InfocusInputError
        A path that does not exist, a folder without images, or an unreadable file.
    """
    from infocus.io import open_image_lazy, read_image
    from infocus.io._common import detect_format, resolve_path

    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    files = [f for p in paths for f in _image_files(resolve_path(p))]
    if not files:
        raise InfocusInputError("No input images were given; pass image files or folders.")
    images = []
    for file in files:
        lazy = detect_format(file) == "zarr" or (
            file.is_file() and file.stat().st_size > LAZY_READ_BYTES
        )
        image = open_image_lazy(file, axes=axes) if lazy else read_image(file, axes=axes)
        images.append((image.data, image.axes))
    return images
