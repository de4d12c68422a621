"""PNG and .npy: round trips, colour PNGs, dtype limits, pickled arrays refused."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from infocus._errors import InfocusInputError
from infocus.io import open_image_lazy, read_image, write_image


def test_npy_round_trip_needs_axes_beyond_2d(tmp_path: Path, rng) -> None:
    data = rng.random((3, 16, 16), dtype=np.float32)
    path = write_image(tmp_path / "a.npy", data, axes="ZYX")
    np.testing.assert_array_equal(np.load(path), data)
    with pytest.raises(InfocusInputError, match="--axes ZYX"):
        read_image(path)
    image = read_image(path, axes="TYX")
    assert image.axes == "TYX"
    np.testing.assert_array_equal(image.data, data)
    flat = read_image(write_image(tmp_path / "b.npy", data[0]))
    assert flat.axes == "YX"


def test_npy_with_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InfocusInputError, match="pickled Python objects"):
        read_image(path)
    with pytest.raises(InfocusInputError, match="pickled Python objects"):
        open_image_lazy(path)


def test_corrupt_npy_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.npy"
    path.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(InfocusInputError, match="not a readable .npy file"):
        read_image(path)


def test_npz_content_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "archive.npy"
    with open(path, "wb") as handle:
        np.savez(handle, a=np.zeros((4, 4)))
    with pytest.raises(InfocusInputError, match="npz archive"):
        read_image(path)


def test_npy_lazy_is_memmap(tmp_path: Path, rng) -> None:
    data = rng.random((16, 16), dtype=np.float32)
    path = write_image(tmp_path / "m.npy", data)
    lazy = open_image_lazy(path)
    assert isinstance(lazy.data, np.memmap)
    np.testing.assert_array_equal(lazy.data, data)


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_grey_png_round_trip(tmp_path: Path, rng, dtype: str) -> None:
    top = np.iinfo(dtype).max
    data = rng.integers(0, top, (16, 24)).astype(np.float32)
    back = read_image(write_image(tmp_path / "g.png", data, dtype=dtype))
    assert back.axes == "YX"
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back.data, data)


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_colour_png_round_trip(tmp_path: Path, rng, channels: int) -> None:
    data = rng.integers(0, 256, (16, 24, channels), dtype=np.uint8)
    back = read_image(write_image(tmp_path / "c.png", data, axes="YXC", dtype="uint8"))
    assert back.axes == "YXC"
    np.testing.assert_array_equal(back.data, data)


def test_channel_first_png_is_stored_channel_last(tmp_path: Path, rng) -> None:
    data = rng.integers(0, 256, (3, 16, 24), dtype=np.uint8)
    path = write_image(tmp_path / "c.png", data, axes="CYX", dtype="uint8")
    np.testing.assert_array_equal(iio.imread(path), np.moveaxis(data, 0, -1))
    single = write_image(tmp_path / "one.png", data[:1], axes="CYX", dtype="uint8")
    assert read_image(single).axes == "YX"


def test_float_png_is_refused_with_a_fix(tmp_path: Path, rng) -> None:
    with pytest.raises(InfocusInputError, match=r"--dtype uint8 or --dtype uint16.*TIFF"):
        write_image(tmp_path / "f.png", rng.random((16, 16), dtype=np.float32))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("shape", "axes", "dtype", "message"),
    [
        ((3, 16, 16), "ZYX", "uint8", "axes YX or YXC"),
        ((16, 16, 5), "YXC", "uint8", "1 to 4 channels"),
        ((16, 16, 3), "YXC", "uint16", "16-bit PNG is supported only for grey"),
    ],
)
def test_png_limits(tmp_path: Path, shape, axes: str, dtype: str, message: str) -> None:
    with pytest.raises(InfocusInputError, match=message):
        write_image(tmp_path / "x.png", np.zeros(shape), axes=axes, dtype=dtype)
    assert not list(tmp_path.iterdir())


def test_truncated_png_is_reported(tmp_path: Path, rng) -> None:
    path = write_image(
        tmp_path / "full.png",
        rng.integers(0, 256, (64, 64, 3)).astype(np.uint8),
        axes="YXC",
        dtype="uint8",
    )
    cut = tmp_path / "cut.png"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(
        InfocusInputError, match=r"not a readable PNG \(file may be corrupt or truncated\)"
    ):
        read_image(cut)


@pytest.mark.shared_data
def test_real_png(shared_data: Path) -> None:
    image = read_image(shared_data / "set12" / "01.png")
    assert (image.axes, image.dtype) == ("YX", np.uint8)
    assert image.shape in ((256, 256), (512, 512))
