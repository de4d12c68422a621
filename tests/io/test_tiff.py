"""TIFF: OME round trips, ImageJ hyperstacks, foreign files, damaged files, lazy opening."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from infocus._errors import InfocusInputError
from infocus.io import Image, open_image_lazy, read_image, write_image
from infocus.io._tiff import tiff_storage_axes


def _image(rng: np.random.Generator, shape: tuple[int, ...], axes: str, **meta) -> Image:
    return Image(rng.random(shape, dtype=np.float32), axes, **meta)


@pytest.mark.parametrize("name", ["out.tif", "out.tiff", "out.ome.tif", "out.OME.TIFF"])
def test_round_trip_keeps_data_axes_sizes_and_names(tmp_path: Path, rng, name: str) -> None:
    image = _image(
        rng,
        (2, 3, 4, 16, 20),
        "TCZYX",
        pixel_sizes={"Z": 0.5, "Y": 0.1, "X": 0.125},
        channel_names=["DAPI", "GFP", "488"],
    )
    written = write_image(tmp_path / name, image)
    back = read_image(written)
    assert back.axes == "TCZYX"
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back.data, image.data)
    assert back.pixel_sizes == {"Z": 0.5, "Y": 0.1, "X": 0.125}
    assert back.unit == "µm"
    assert back.channel_names == ["DAPI", "GFP", "488"]  # numeric-looking names stay text
    assert back.source == str(written)
    with tifffile.TiffFile(written) as tif:  # standard OME metadata other tools understand
        assert tif.is_ome
        assert tif.series[0].axes == "TCZYX"


def test_length_one_axes_survive_the_round_trip(tmp_path: Path, rng) -> None:
    image = _image(rng, (1, 2, 1, 16, 16), "TCZYX", channel_names=["a", "b"])
    back = read_image(write_image(tmp_path / "x.tif", image))
    assert back.axes == "TCZYX"
    assert back.shape == (1, 2, 1, 16, 16)
    np.testing.assert_array_equal(back.data, image.data)
    assert back.channel_names == ["a", "b"]


@pytest.mark.parametrize(
    ("axes", "shape", "stored"),
    [
        ("YXC", (16, 12, 3), "CYX"),
        ("XY", (12, 16), "YX"),
        ("ZTYX", (3, 2, 16, 16), "ZTYX"),
        ("STCZYX", (2, 2, 3, 2, 16, 16), "TSCZYX"),
        ("SYX", (3, 16, 16), "SYX"),
    ],
)
def test_y_x_are_stored_last_and_read_back_in_stored_order(
    tmp_path: Path, rng, axes: str, shape: tuple[int, ...], stored: str
) -> None:
    assert tiff_storage_axes(axes) == stored
    image = _image(rng, shape, axes, pixel_sizes={"Y": 0.2, "X": 0.3})
    back = read_image(write_image(tmp_path / "x.tif", image))
    assert back.axes == stored
    np.testing.assert_array_equal(
        back.data, np.transpose(image.data, [axes.index(a) for a in stored])
    )
    assert back.pixel_sizes == {"Y": 0.2, "X": 0.3}


def test_other_units_round_trip(tmp_path: Path, rng) -> None:
    image = _image(rng, (16, 16), "YX", pixel_sizes={"Y": 65.0, "X": 65.0}, unit="nanometer")
    back = read_image(write_image(tmp_path / "x.ome.tif", image))
    assert back.unit == "nm"
    assert back.pixel_sizes == {"Y": 65.0, "X": 65.0}


def test_imagej_hyperstack_axes_and_calibration(tmp_path: Path, rng) -> None:
    data = rng.integers(0, 4000, (2, 4, 3, 16, 20), dtype=np.uint16)
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.2, 1 / 0.25),
        metadata={"axes": "TZCYX", "spacing": 1.5, "unit": "um"},
    )
    image = read_image(path)
    assert image.axes == "TZCYX"
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image.data, data)
    assert image.pixel_sizes == pytest.approx({"Z": 1.5, "Y": 0.25, "X": 0.2})
    assert image.unit == "µm"


def test_imagej_channel_labels_become_channel_names(tmp_path: Path, rng) -> None:
    data = rng.integers(0, 255, (2, 3, 16, 16), dtype=np.uint8)
    path = tmp_path / "labels.tif"
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        metadata={"axes": "ZCYX", "unit": "micron", "Labels": ["dapi", "gfp", "rfp"] * 2},
    )
    image = read_image(path)
    assert image.axes == "ZCYX"
    assert image.channel_names == ["dapi", "gfp", "rfp"]
    # Labels that change from slice to slice are slice labels, not channel names.
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZCYX", "Labels": list("abcdef")})
    assert read_image(path).channel_names is None


def test_imagej_without_unit_has_no_pixel_sizes(tmp_path: Path, rng) -> None:
    path = tmp_path / "plain_ij.tif"
    tifffile.imwrite(
        path, rng.random((3, 16, 16), dtype=np.float32), imagej=True, metadata={"axes": "ZYX"}
    )
    image = read_image(path)
    assert image.axes == "ZYX"
    assert image.pixel_sizes == {}


def test_foreign_ome_tiff_with_rgb_samples(tmp_path: Path, rng) -> None:
    data = rng.integers(0, 255, (16, 20, 3), dtype=np.uint8)
    path = tmp_path / "rgb.ome.tif"
    tifffile.imwrite(path, data, photometric="rgb", ome=True, metadata={"PhysicalSizeX": 0.5})
    image = read_image(path)
    assert image.axes == "YXC"  # tifffile's colour samples 'S' are our channels
    np.testing.assert_array_equal(image.data, data)
    assert image.pixel_sizes == {"X": 0.5}


def test_stack_without_axes_needs_them(tmp_path: Path, rng) -> None:
    data = rng.random((5, 16, 16), dtype=np.float32)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data)  # shaped TIFF, no axes: tifffile calls the stack 'Q'
    with pytest.raises(InfocusInputError, match=r"cannot map.*--axes"):
        read_image(path)
    image = read_image(path, axes="TYX")
    assert image.axes == "TYX"
    np.testing.assert_array_equal(image.data, data)


def test_unmappable_letters_need_axes(tmp_path: Path, rng) -> None:
    path = tmp_path / "lambda.tif"
    tifffile.imwrite(
        path,
        rng.random((4, 16, 16), dtype=np.float32),
        photometric="minisblack",
        metadata={"axes": "EYX"},
    )
    with pytest.raises(InfocusInputError, match=r"'EYX'.*cannot map"):
        read_image(path)
    assert read_image(path, axes="CYX").axes == "CYX"


def test_two_dimensional_plain_tiff_is_yx(tmp_path: Path, rng) -> None:
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, rng.random((16, 24), dtype=np.float32), metadata=None)
    assert read_image(path).axes == "YX"


def test_user_axes_of_same_length_win_over_metadata(tmp_path: Path, rng) -> None:
    image = _image(rng, (3, 16, 16), "ZYX", pixel_sizes={"Z": 2.0, "Y": 0.1, "X": 0.1})
    path = write_image(tmp_path / "z.tif", image)
    as_time = read_image(path, axes="TYX")
    assert as_time.axes == "TYX"
    assert as_time.pixel_sizes == {"Y": 0.1, "X": 0.1}  # Z size does not apply to T


def test_user_axes_of_other_length_are_refused(tmp_path: Path, rng) -> None:
    path = write_image(tmp_path / "z.tif", _image(rng, (3, 16, 16), "ZYX"))
    with pytest.raises(InfocusInputError, match=r"shape \(3, 16, 16\).*'ZYX'.*'TZYX'"):
        read_image(path, axes="TZYX")


def _truncate(path: Path, keep: int) -> Path:
    raw = path.read_bytes()
    out = path.with_name("cut_" + path.name)
    out.write_bytes(raw[:keep])
    return out


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.97, 0.9995])
def test_truncated_tiff_is_reported(tmp_path: Path, rng, fraction: float) -> None:
    # tifffile puts the OME-XML after the pixels, so a cut near the end loses only the
    # metadata; tifffile then logs an error and would return wrong axes without this check.
    path = write_image(tmp_path / "full.tif", _image(rng, (3, 64, 64), "ZYX"))
    size = path.stat().st_size
    cut = _truncate(path, int(size * fraction))
    with pytest.raises(
        InfocusInputError, match=r"not a readable TIFF \(file may be corrupt or truncated\)"
    ):
        read_image(cut, axes="ZYX")


def test_truncated_compressed_tiff_is_reported(tmp_path: Path, rng) -> None:
    path = tmp_path / "zlib.tif"
    tifffile.imwrite(
        path,
        rng.random((3, 64, 64), dtype=np.float32),
        compression="zlib",
        photometric="minisblack",
        metadata={"axes": "ZYX"},
    )
    cut = _truncate(path, path.stat().st_size - 2000)
    with pytest.raises(InfocusInputError, match="not a readable TIFF"):
        read_image(cut)


def test_garbage_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "junk.tif"
    path.write_bytes(b"this is not a tiff at all")
    with pytest.raises(InfocusInputError, match=r"'.*junk.tif' is not a readable TIFF"):
        read_image(path)


def test_lazy_open_does_not_load(tmp_path: Path, rng) -> None:
    image = _image(rng, (4, 2, 32, 32), "ZCYX", pixel_sizes={"Z": 1.0, "Y": 0.5, "X": 0.5})
    path = write_image(tmp_path / "big.ome.tif", image)
    lazy = open_image_lazy(path)
    assert isinstance(lazy.data, zarr.Array)
    assert not isinstance(lazy.data, np.ndarray)
    assert lazy.axes == "ZCYX"
    assert lazy.pixel_sizes == {"Z": 1.0, "Y": 0.5, "X": 0.5}
    np.testing.assert_array_equal(lazy.data[2, 1], image.data[2, 1])
    np.testing.assert_array_equal(lazy.load().data, image.data)


def test_lazy_open_drops_length_one_axes(tmp_path: Path, rng) -> None:
    path = write_image(tmp_path / "one.tif", _image(rng, (1, 16, 16), "CYX"))
    assert read_image(path).axes == "CYX"
    lazy = open_image_lazy(path)
    assert lazy.axes == "YX"
    assert lazy.shape == (16, 16)


@pytest.mark.shared_data
def test_real_imagej_and_plain_tiffs(shared_data: Path) -> None:
    w2s = read_image(shared_data / "w2s_8bit_subset" / "raw" / "081_0.tif")
    assert (w2s.axes, w2s.shape, w2s.dtype) == ("YX", (512, 512), np.uint8)
    assert w2s.pixel_sizes == {}  # ImageJ file without a calibration unit
    conv = read_image(
        shared_data / "convallaria_pn2v" / "20190520_tl_25um_50msec_05pc_488_130EM_Conv0000.tif"
    )
    assert (conv.axes, conv.shape, conv.dtype) == ("YX", (1024, 1024), np.uint16)
    assert conv.unit == "cm"  # what the file claims (ImageJ unit=cm, 1 pixel per cm)
    assert conv.pixel_sizes == {"Y": 1.0, "X": 1.0}
    assert int(conv.data.min()) == 324
    mitosis = open_image_lazy(shared_data / "human_mitosis" / "AS_09125_050116030001_D03f00d0.tif")
    assert isinstance(mitosis.data, zarr.Array)
    assert mitosis.shape == (512, 512)
