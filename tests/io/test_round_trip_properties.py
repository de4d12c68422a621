"""Property tests: dtype conversion invariants and round trips over random shapes and axes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from infocus.io import Image, convert_dtype, read_image, write_image
from infocus.io._tiff import tiff_storage_axes
from infocus.io._zarr import zarr_storage_axes

_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def axes_and_shapes(draw: st.DrawFn) -> tuple[str, tuple[int, ...]]:
    extra = draw(st.lists(st.sampled_from("STCZ"), unique=True, max_size=3))
    letters = draw(st.permutations([*extra, "Y", "X"]))
    sizes = {a: draw(st.integers(1, 3)) for a in extra}
    sizes.update(Y=draw(st.integers(1, 9)), X=draw(st.integers(1, 9)))
    return "".join(letters), tuple(sizes[a] for a in letters)


@given(
    values=hnp.arrays(
        np.float64, st.integers(1, 50), elements=st.one_of(st.floats(-1e6, 1e6), st.just(np.nan))
    ),
    dtype=st.sampled_from(["uint8", "uint16"]),
)
def test_integer_conversion_is_round_and_clip(values: np.ndarray, dtype: str) -> None:
    out, n_clipped = convert_dtype(values, dtype)
    info = np.iinfo(dtype)
    assert out.dtype == np.dtype(dtype)
    rounded = np.rint(values)
    inside = (rounded >= info.min) & (rounded <= info.max)
    assert n_clipped == int(np.count_nonzero(~inside))  # NaN compares False: counted
    np.testing.assert_array_equal(out[inside], rounded[inside])
    assert np.all(out[rounded > info.max] == info.max)
    assert np.all(out[rounded < info.min] == info.min)
    assert np.all(out[np.isnan(values)] == 0)


@given(values=hnp.arrays(np.int64, st.integers(1, 50), elements=st.integers(-(2**40), 2**40)))
def test_integer_input_clips_exactly(values: np.ndarray) -> None:
    out, n_clipped = convert_dtype(values, "uint16")
    assert n_clipped == int(np.count_nonzero((values < 0) | (values > 65535)))
    np.testing.assert_array_equal(out, np.clip(values, 0, 65535))


def test_float32_conversion_clips_only_beyond_float32() -> None:
    out, n_clipped = convert_dtype(np.array([1e39, -1e39, 3.5, np.nan]), "float32")
    assert n_clipped == 2
    assert np.isfinite(out[:3]).all()
    assert out[2] == np.float32(3.5)
    assert np.isnan(out[3])


@_SETTINGS
@given(case=axes_and_shapes(), seed=st.integers(0, 2**16))
def test_npy_round_trip(case: tuple[str, tuple[int, ...]], seed: int) -> None:
    axes, shape = case
    data = np.random.default_rng(seed).random(shape, dtype=np.float32)
    with tempfile.TemporaryDirectory() as folder:
        back = read_image(write_image(Path(folder) / "x.npy", data, axes=axes), axes=axes)
    assert back.axes == axes
    np.testing.assert_array_equal(back.data, data)


@pytest.mark.parametrize(
    ("suffix", "order"), [(".tif", tiff_storage_axes), (".zarr", zarr_storage_axes)]
)
def test_tiff_and_zarr_round_trip(suffix: str, order) -> None:
    @_SETTINGS
    @given(case=axes_and_shapes(), seed=st.integers(0, 2**16), size=st.floats(0.01, 10.0))
    def check(case: tuple[str, tuple[int, ...]], seed: int, size: float) -> None:
        axes, shape = case
        data = np.random.default_rng(seed).random(shape, dtype=np.float32)
        names = [f"ch{i}" for i in range(shape[axes.index("C")])] if "C" in axes else None
        image = Image(data, axes, {"X": size}, channel_names=names)
        with tempfile.TemporaryDirectory() as folder:
            back = read_image(write_image(Path(folder) / ("x" + suffix), image))
        stored = order(axes)
        assert back.axes == stored
        np.testing.assert_array_equal(
            back.data, np.transpose(data, [axes.index(a) for a in stored])
        )
        assert back.pixel_sizes == {"X": size}
        assert back.channel_names == names

    check()
