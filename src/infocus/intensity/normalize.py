r"""Per-channel mean/standard-deviation normalisation for training and applying networks.

A network trains best on inputs of zero mean and unit variance, so every channel :math:`c`
is mapped as

.. math:: \tilde x_c = \frac{x_c - \mu_c}{\sigma_c}, \qquad x_c = \sigma_c\,\tilde x_c + \mu_c ,

with :math:`\mu_c` and :math:`\sigma_c` the mean and (population) standard deviation of that
channel over the training data, as in Noise2Void (Krull et al., CVPR 2019) and CAREamics.

The camera offset (dark level) is handled explicitly and exactly: the mean, which contains it,
is subtracted before the network and added back after it, and nothing else happens to the
values. There is **no clipping and no percentile stretching** (unlike CSBDeep's
``normalize(x, 1, 99.8)``), so :meth:`Normalizer.denormalize` returns predictions in the
input's own camera units: a pixel of 1 000 counts comes back near 1 000 counts, not as a
rescaled fraction. For supervised training (CARE) the inputs and the targets each get their
own :class:`Normalizer`, because a low-exposure input and a high-exposure target are on
different scales::

    input_norm = Normalizer.fit(input_blocks)
    target_norm = Normalizer.fit(target_blocks)
    x, y = input_norm.normalize(x_batch, channel_axis=1), target_norm.normalize(y_batch, channel_axis=1)
    prediction = target_norm.denormalize(network(x), channel_axis=1)

Both are stored with the model as JSON through :meth:`Normalizer.to_dict` and
:meth:`Normalizer.from_dict`.

References
----------
A. Krull, T.-O. Buchholz, F. Jug, "Noise2Void – learning denoising from single noisy images",
CVPR 2019.

M. Weigert et al., "Content-aware image restoration: pushing the limits of fluorescence
microscopy", Nature Methods 15, 1090–1097 (2018).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from infocus._errors import InfocusInputError

__all__ = ["Normalizer"]

#: Side of the square Y/X tiles that :meth:`Normalizer.fit` reads from large data.
_FIT_TILE = 128
#: A standard deviation at or below this fraction of the mean's magnitude counts as zero
#: (it is rounding error of a constant image, not signal).
_RELATIVE_ZERO_STD = 1e-7


@dataclass(frozen=True)
class Normalizer:
    r"""Mean and standard deviation of each channel, to normalise data and undo it exactly.

    Attributes
    ----------
    mean : tuple of float
        :math:`\mu_c`, one value per channel, in the data's own units (camera offset included).
    std : tuple of float
        :math:`\sigma_c > 0`, one value per channel.

    Raises
    ------
    InfocusInputError
        When ``mean`` and ``std`` differ in length or are empty, a value is not finite, or a
        standard deviation is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> norm = Normalizer(mean=(100.0,), std=(10.0,))
    >>> norm.normalize(np.array([[[110.0, 90.0]]]))
    array([[[ 1., -1.]]], dtype=float32)
    >>> Normalizer.from_dict(norm.to_dict()) == norm
    True
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        mean = _float_tuple(self.mean, "mean")
        std = _float_tuple(self.std, "std")
        if not mean or len(mean) != len(std):
            raise InfocusInputError(
                f"A normalizer needs one mean and one standard deviation per channel (got "
                f"{len(mean)} mean(s) and {len(std)} standard deviation(s)); re-fit it on the "
                "training images."
            )
        if not all(math.isfinite(v) for v in mean + std):
            raise InfocusInputError(
                f"Normalizer values mean={mean}, std={std} must be finite; re-fit it on images "
                "without NaN or infinite pixels."
            )
        for c, (m, s) in enumerate(zip(mean, std, strict=True)):
            if s <= 0 or s <= _RELATIVE_ZERO_STD * abs(m):
                raise InfocusInputError(
                    f"Channel {c} of the training images is constant (mean {m:g}, standard "
                    "deviation 0), and a constant image cannot be trained on; check the files "
                    "and the axes (a wrong channel axis can select an empty channel)."
                )
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def n_channels(self) -> int:
        """Number of channels this normalizer was fitted on."""
        return len(self.mean)

    @classmethod
    def fit(
        cls,
        blocks: Any,
        *,
        max_pixels: int = 2_000_000,
        rng: np.random.Generator | int | None = None,
    ) -> Normalizer:
        r"""Estimate each channel's mean and standard deviation from training blocks.

        When the blocks hold at most ``max_pixels`` pixels per channel they are all read and the
        statistics are exact. Otherwise random tiles (up to 128×128 in Y/X, one plane deep) are
        read from random blocks (chosen with probability proportional to their size) until
        ``max_pixels`` pixels per channel have been seen, so a large lazy array (a
        ``zarr.Array`` or a :class:`~infocus.training.LazyBlock`) is never loaded whole; with the
        default 2 million samples the relative error of :math:`\mu_c` and :math:`\sigma_c` is
        well below 1 % for any image whose content varies on scales smaller than the blocks.
        The moments are accumulated in float64 with the pairwise update of Chan, Golub and
        LeVeque (1983), :math:`M_2 = M_2^a + M_2^b + \delta^2 n_a n_b / n`.

        Parameters
        ----------
        blocks : array_like or list of array_like
            Blocks of shape ``(C, *spatial)`` (as made by :func:`~infocus.training.to_blocks`); a
            single array with a ``shape`` is taken as one block. All must have the same ``C``.
        max_pixels : int
            Largest number of pixels per channel to read.
        rng : numpy.random.Generator, int or None
            Randomness for the sampled tiles (unused when everything is read).

        Returns
        -------
        Normalizer
            One mean and standard deviation (ddof = 0) per channel.

        Raises
        ------
        InfocusInputError
            No blocks, blocks with different channel counts, NaN or infinite values, or a
            constant channel.
        """
        blocks = [blocks] if hasattr(blocks, "shape") else list(blocks)
        if not blocks:
            raise InfocusInputError(
                "No training images were given to fit the normalisation on; pass at least one image."
            )
        if int(max_pixels) < 1:
            raise InfocusInputError(f"max_pixels must be a positive integer (got {max_pixels!r}).")
        n_channels = _channel_count(blocks)
        sizes = np.array([math.prod(b.shape[1:]) for b in blocks], dtype=np.float64)
        moments = _Moments(n_channels)
        if sizes.sum() <= max_pixels:
            for block in blocks:
                moments.add(np.asarray(block[(slice(None),) * len(block.shape)]))
        else:
            generator = np.random.default_rng(rng)
            probabilities = sizes / sizes.sum()
            while moments.count < max_pixels:
                block = blocks[int(generator.choice(len(blocks), p=probabilities))]
                window = [slice(None)]
                for axis, size in enumerate(block.shape[1:]):
                    # One plane deep in leading spatial axes, a tile in Y/X.
                    side = min(size, _FIT_TILE) if axis >= len(block.shape) - 3 else 1
                    start = int(generator.integers(0, size - side + 1))
                    window.append(slice(start, start + side))
                moments.add(np.asarray(block[tuple(window)]))
        mean, std = moments.result()
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise InfocusInputError(
                "The training images contain NaN or infinite pixels; replace them (e.g. with the "
                "background value) before training."
            )
        return cls(mean=tuple(mean.tolist()), std=tuple(std.tolist()))

    def _broadcast(self, x: np.ndarray, channel_axis: int | None) -> tuple[np.ndarray, np.ndarray]:
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        if channel_axis is None or self.n_channels == 1:
            if self.n_channels != 1:
                raise InfocusInputError(
                    f"This normalizer has {self.n_channels} channels, so the channel axis of the "
                    "array must be given (channel_axis=...)."
                )
            return mean.reshape(()), std.reshape(())
        if x.ndim == 0:
            raise InfocusInputError("Cannot normalise a scalar; pass an array with a channel axis.")
        axis = channel_axis if channel_axis >= 0 else x.ndim + channel_axis
        if not 0 <= axis < x.ndim or x.shape[axis] != self.n_channels:
            length = x.shape[axis] if 0 <= axis < x.ndim else "no"
            raise InfocusInputError(
                f"Array of shape {x.shape} has {length} entries along channel axis "
                f"{channel_axis}, but the normalizer was fitted on {self.n_channels} channels; "
                "pass the right channel_axis or the normalizer fitted on these images."
            )
        shape = [1] * x.ndim
        shape[axis] = self.n_channels
        return mean.reshape(shape), std.reshape(shape)

    def normalize(self, x: Any, channel_axis: int | None = 0) -> np.ndarray:
        r"""Map ``x`` to :math:`(x_c - \mu_c) / \sigma_c` along ``channel_axis`` (float32, new array).

        A single-channel normalizer applies to any array (``channel_axis`` is then ignored).
        """
        array = np.asarray(x)
        mean, std = self._broadcast(array, channel_axis)
        out = np.subtract(array, mean, dtype=np.float32)
        out /= std
        return out

    def denormalize(self, x: Any, channel_axis: int | None = 0) -> np.ndarray:
        r"""Undo :meth:`normalize`: :math:`\sigma_c \tilde x_c + \mu_c` (float32, new array).

        The result is in the units of the data the normalizer was fitted on; it is not clipped.
        """
        array = np.asarray(x)
        mean, std = self._broadcast(array, channel_axis)
        out = np.multiply(array, std, dtype=np.float32)
        out += mean
        return out

    def to_dict(self) -> dict[str, list[float]]:
        """The JSON form, ``{"mean": [...], "std": [...]}``, stored with a trained model."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: Any) -> Normalizer:
        """Rebuild from :meth:`to_dict` output; a malformed dict raises :class:`InfocusInputError`."""
        if not isinstance(data, dict) or "mean" not in data or "std" not in data:
            raise InfocusInputError(
                f"Normalisation settings must be a mapping with 'mean' and 'std' lists (got "
                f"{data!r}); the model file may be damaged, so re-train or re-export it."
            )
        return cls(mean=data["mean"], std=data["std"])


def _float_tuple(values: Any, name: str) -> tuple[float, ...]:
    if isinstance(values, int | float | np.number):
        values = (values,)
    if isinstance(values, np.ndarray):
        values = values.ravel().tolist()
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise InfocusInputError(
            f"Normalizer {name} must be a list of numbers, one per channel (got {values!r})."
        ) from None


def _channel_count(blocks: Sequence[Any]) -> int:
    counts = set()
    for block in blocks:
        shape = tuple(block.shape)
        if len(shape) < 3:
            raise InfocusInputError(
                f"A training block has shape {shape}, but blocks must be (C, *spatial) with at "
                "least two spatial axes; make them with to_blocks(image, axes)."
            )
        counts.add(shape[0])
    if len(counts) != 1:
        raise InfocusInputError(
            f"The training images have different numbers of channels ({sorted(counts)}); use "
            "images with the same channels, or channels='independent'."
        )
    return counts.pop()


class _Moments:
    """Running per-channel count, mean and sum of squared deviations (float64)."""

    def __init__(self, n_channels: int) -> None:
        self.count = 0
        self.mean = np.zeros(n_channels)
        self.m2 = np.zeros(n_channels)

    def add(self, values: np.ndarray) -> None:
        x = np.asarray(values, dtype=np.float64).reshape(values.shape[0], -1)
        n = x.shape[1]
        if n == 0:
            return
        mean = x.mean(axis=1)
        m2 = ((x - mean[:, None]) ** 2).sum(axis=1)
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * n / total)
        self.count = total

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        return self.mean, np.sqrt(self.m2 / self.count)
