"""read_image / write_image dispatch: paths, suffixes, axes rules, dtypes and clipping."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from infocus._errors import InfocusInputError
from infocus.io import ClippingWarning, Image, read_image, write_image


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InfocusInputError, match=r"^No such file: '.*nope\.tif'; check the path\.$"):
        read_image(tmp_path / "nope.tif")


@pytest.mark.parametrize("name", ["photo.jpg", "stack.h5", "noending"])
def test_unsupported_suffix_lists_supported_ones(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"x")
    with pytest.raises(
        InfocusInputError, match=r"unsupported file type.*\.tif.*\.ome\.zarr.*\.png.*\.npy"
    ):
        read_image(path)
    with pytest.raises(InfocusInputError, match="Cannot write"):
        write_image(tmp_path / ("out_" + name), np.zeros((16, 16)))


def test_directory_with_file_ending_is_refused(tmp_path: Path) -> None:
    (tmp_path / "folder.tif").mkdir()
    with pytest.raises(InfocusInputError, match="is a directory, not a TIFF file"):
        read_image(tmp_path / "folder.tif")


def test_home_is_expanded_and_pathlike_accepted(tmp_path: Path, monkeypatch, rng) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    data = rng.random((16, 16), dtype=np.float32)
    written = write_image("~/x.tif", data)
    assert written == tmp_path / "x.tif"
    np.testing.assert_array_equal(read_image("~/x.tif").data, data)

    class Custom(os.PathLike):
        def __fspath__(self) -> str:
            return str(tmp_path / "x.tif")

    assert read_image(Custom()).shape == (16, 16)
    with pytest.raises(InfocusInputError, match="path-like"):
        read_image(42)  # type: ignore[arg-type]


def test_array_without_axes_must_be_2d(tmp_path: Path) -> None:
    with pytest.raises(InfocusInputError, match="ambiguous"):
        write_image(tmp_path / "x.tif", np.zeros((3, 16, 16)))
    assert not list(tmp_path.iterdir())


def test_wrong_axes_length_on_write(tmp_path: Path) -> None:
    with pytest.raises(InfocusInputError, match=r"shape \(3, 16, 16\)"):
        write_image(tmp_path / "x.tif", np.zeros((3, 16, 16)), axes="YX")


def test_metadata_arguments_override_the_image(tmp_path: Path, rng) -> None:
    image = Image(
        rng.random((2, 16, 16), dtype=np.float32), "CYX", {"X": 0.1}, channel_names=["a", "b"]
    )
    path = write_image(
        tmp_path / "x.tif",
        image,
        pixel_sizes={"Y": 0.3, "X": 0.3},
        channel_names=["c", "d"],
        unit="nm",
    )
    back = read_image(path)
    assert (back.pixel_sizes, back.channel_names, back.unit) == (
        {"Y": 0.3, "X": 0.3},
        ["c", "d"],
        "nm",
    )
    plain = read_image(
        write_image(
            tmp_path / "y.ome.tif",
            image.data,
            axes="CYX",
            pixel_sizes={"X": 0.2},
            channel_names=["e", "f"],
        )
    )
    assert (plain.axes, plain.pixel_sizes, plain.channel_names) == ("CYX", {"X": 0.2}, ["e", "f"])


def test_float32_is_the_default_output(tmp_path: Path) -> None:
    data = np.arange(256, dtype=np.float64).reshape(16, 16) / 7
    back = read_image(write_image(tmp_path / "x.tif", data))
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back.data, data.astype(np.float32))


def test_uint16_output_rounds_clips_and_warns_with_count(tmp_path: Path) -> None:
    data = np.full((16, 16), 1000.4, dtype=np.float32)
    data[0, :3] = [-5.0, 70000.0, np.nan]
    data[1, 0] = 65535.4  # rounds to 65535: inside the range
    with pytest.warns(
        ClippingWarning, match=r"3 of 256 pixels .* uint16 range \[0, 65535\]"
    ) as record:
        path = write_image(tmp_path / "x.tif", data, dtype="uint16")
    assert record[0].message.n_clipped == 3
    assert record[0].message.n_pixels == 256
    back = read_image(path).data
    assert back.dtype == np.uint16
    assert back[0, :3].tolist() == [0, 65535, 0]
    assert back[1, 0] == 65535
    assert back[5, 5] == 1000


def test_no_warning_when_nothing_is_clipped(tmp_path: Path, rng) -> None:
    data = rng.integers(0, 255, (16, 16)).astype(np.float32)
    back = read_image(write_image(tmp_path / "x.tif", data, dtype=np.uint8))  # filterwarnings=error
    np.testing.assert_array_equal(back.data, data)


def test_unsupported_output_dtype(tmp_path: Path) -> None:
    with pytest.raises(InfocusInputError, match=r"float32, uint16, uint8"):
        write_image(tmp_path / "x.tif", np.zeros((16, 16)), dtype="int32")
    with pytest.raises(InfocusInputError, match=r"float32, uint16, uint8"):
        write_image(tmp_path / "x.tif", np.zeros((16, 16)), dtype="bogus")


def test_complex_pixels_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InfocusInputError, match="dtype complex"):
        write_image(tmp_path / "x.tif", np.zeros((16, 16), complex))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["x.tif", "x.zarr", "x.npy"])
def test_lazy_image_can_be_written(tmp_path: Path, rng, name: str) -> None:
    from infocus.io import open_image_lazy

    image = Image(rng.random((2, 16, 16), dtype=np.float32), "ZYX")
    source = write_image(tmp_path / name, image)
    lazy = open_image_lazy(source, axes="ZYX" if name.endswith(".npy") else None)
    copy = write_image(tmp_path / ("copy_" + name), lazy)
    np.testing.assert_array_equal(
        read_image(copy, axes=lazy.axes if name.endswith(".npy") else None).data, image.data
    )
