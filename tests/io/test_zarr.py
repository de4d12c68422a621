"""Zarr and OME-Zarr: NGFF 0.5 round trips, NGFF 0.4 groups, bare arrays, lazy opening."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from infocus._errors import InfocusInputError
from infocus.io import Image, open_image_lazy, read_image, write_image


@pytest.mark.parametrize("name", ["out.zarr", "out.ome.zarr"])
def test_ome_zarr_round_trip(tmp_path: Path, rng, name: str) -> None:
    image = Image(
        rng.random((2, 3, 4, 16, 20), dtype=np.float32),
        "TCZYX",
        {"Z": 0.5, "Y": 0.1, "X": 0.125},
        channel_names=["DAPI", "GFP", "RFP"],
    )
    written = write_image(tmp_path / name, image)
    assert written.is_dir()
    back = read_image(written)
    assert back.axes == "TCZYX"
    np.testing.assert_array_equal(back.data, image.data)
    assert back.pixel_sizes == {"Z": 0.5, "Y": 0.1, "X": 0.125}
    assert back.unit == "µm"
    assert back.channel_names == ["DAPI", "GFP", "RFP"]


def test_written_metadata_is_ngff_0_5(tmp_path: Path, rng) -> None:
    image = Image(rng.random((3, 16, 16), dtype=np.float32), "ZYX", {"Z": 2.0, "Y": 0.3, "X": 0.3})
    path = write_image(tmp_path / "v.ome.zarr", image)
    attrs = json.loads((path / "zarr.json").read_text())["attributes"]["ome"]
    assert attrs["version"] == "0.5"
    multiscale = attrs["multiscales"][0]
    assert multiscale["axes"] == [
        {"name": "z", "type": "space", "unit": "micrometer"},
        {"name": "y", "type": "space", "unit": "micrometer"},
        {"name": "x", "type": "space", "unit": "micrometer"},
    ]
    assert multiscale["datasets"] == [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [2.0, 0.3, 0.3]}]}
    ]
    array = zarr.open_array(str(path / "0"), mode="r")
    assert array.metadata.zarr_format == 3
    assert array.metadata.dimension_names == ("z", "y", "x")


def test_canonical_order_and_missing_sizes(tmp_path: Path, rng) -> None:
    image = Image(rng.random((16, 12, 2), dtype=np.float32), "YXC", {"Y": 0.4})
    back = read_image(write_image(tmp_path / "c.zarr", image))
    assert back.axes == "CYX"
    np.testing.assert_array_equal(back.data, np.moveaxis(image.data, -1, 0))
    assert back.pixel_sizes == {"Y": 0.4}  # X had no size and gets none back


def test_sample_axis_round_trips(tmp_path: Path, rng) -> None:
    image = Image(rng.random((2, 1, 16, 16), dtype=np.float32), "SZYX")
    back = read_image(write_image(tmp_path / "s.zarr", image))
    assert back.axes == "SZYX"
    np.testing.assert_array_equal(back.data, image.data)
    assert back.pixel_sizes == {}


def test_ngff_0_4_zarr_v2_group(tmp_path: Path, rng) -> None:
    data = rng.integers(0, 1000, (2, 3, 16, 16), dtype=np.uint16)
    path = tmp_path / "old.ome.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.create_array("0", shape=data.shape, dtype=data.dtype, chunks=(1, 1, 16, 16))[...] = data
    root.create_array("1", shape=(2, 3, 8, 8), dtype=data.dtype)
    root.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [
                {"name": "c", "type": "channel"},
                {"name": "z", "type": "space", "unit": "nanometer"},
                {"name": "y", "type": "space", "unit": "nanometer"},
                {"name": "x", "type": "space", "unit": "nanometer"},
            ],
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": [1, 200, 50, 50]}],
                },
                {
                    "path": "1",
                    "coordinateTransformations": [{"type": "scale", "scale": [1, 200, 100, 100]}],
                },
            ],
            "coordinateTransformations": [{"type": "scale", "scale": [1, 2, 1, 1]}],
        }
    ]
    root.attrs["omero"] = {"channels": [{"label": "a"}, {"label": "b"}]}
    image = read_image(path)
    assert image.axes == "CZYX"
    assert image.shape == (2, 3, 16, 16)  # level 0, not the downsampled level 1
    np.testing.assert_array_equal(image.data, data)
    assert image.pixel_sizes == {"Z": 400.0, "Y": 50.0, "X": 50.0}
    assert image.unit == "nm"
    assert image.channel_names == ["a", "b"]


def test_bare_array_uses_dimension_names(tmp_path: Path, rng) -> None:
    data = rng.random((3, 16, 16), dtype=np.float32)
    named = zarr.create_array(
        str(tmp_path / "named.zarr"),
        shape=data.shape,
        dtype=data.dtype,
        dimension_names=["t", "y", "x"],
    )
    named[...] = data
    image = read_image(tmp_path / "named.zarr")
    assert image.axes == "TYX"
    np.testing.assert_array_equal(image.data, data)
    unnamed = zarr.create_array(str(tmp_path / "unnamed.zarr"), shape=data.shape, dtype=data.dtype)
    unnamed[...] = data
    with pytest.raises(InfocusInputError, match="--axes"):
        read_image(tmp_path / "unnamed.zarr")
    assert read_image(tmp_path / "unnamed.zarr", axes="ZYX").axes == "ZYX"


def test_array_inside_a_group_can_be_read_by_path(tmp_path: Path, rng) -> None:
    image = Image(rng.random((2, 16, 16), dtype=np.float32), "CYX")
    path = write_image(tmp_path / "g.zarr", image)
    inner = read_image(path / "0")  # no .zarr ending, but a Zarr array directory
    assert inner.axes == "CYX"
    np.testing.assert_array_equal(inner.data, image.data)


def test_group_without_multiscales_points_inside(tmp_path: Path) -> None:
    root = zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    root.create_array("raw", shape=(16, 16), dtype="f4")
    with pytest.raises(InfocusInputError, match=r"without OME-Zarr multiscales.*plain.zarr/raw"):
        read_image(tmp_path / "plain.zarr")


def test_broken_stores_are_reported(tmp_path: Path, rng) -> None:
    empty = tmp_path / "empty.zarr"
    empty.mkdir()
    with pytest.raises(InfocusInputError, match="not a readable Zarr store"):
        read_image(empty)
    path = write_image(tmp_path / "x.zarr", Image(rng.random((16, 16), dtype=np.float32), "YX"))
    chunk = next(p for p in (path / "0").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(b"garbage")
    with pytest.raises(InfocusInputError, match="not a readable Zarr store"):
        read_image(path)
    file_named_zarr = tmp_path / "file.zarr"
    file_named_zarr.write_bytes(b"x")
    with pytest.raises(InfocusInputError, match="is a file, but a Zarr store is a directory"):
        read_image(file_named_zarr)


def test_lazy_open_returns_zarr_array(tmp_path: Path, rng) -> None:
    image = Image(rng.random((4, 32, 32), dtype=np.float32), "ZYX", {"Z": 1.0, "Y": 0.5, "X": 0.5})
    path = write_image(tmp_path / "lazy.ome.zarr", image)
    lazy = open_image_lazy(path)
    assert isinstance(lazy.data, zarr.Array)
    assert (lazy.axes, lazy.shape, lazy.dtype) == ("ZYX", (4, 32, 32), np.float32)
    assert lazy.pixel_sizes == {"Z": 1.0, "Y": 0.5, "X": 0.5}
    np.testing.assert_array_equal(lazy.data[1, :8, :8], image.data[1, :8, :8])


@pytest.mark.parametrize("store", ["ngff_zarr_0_50.ome.zarr", "ome_zarr_0_18.ome.zarr"])
def test_stores_written_by_the_reference_libraries(store: str) -> None:
    """ngff-zarr (NGFF 0.5) and ome-zarr (NGFF 0.4) output; see tests/data/ngff/README.md."""
    path = Path(__file__).resolve().parents[1] / "data" / "ngff" / store
    image = read_image(path)
    assert image.axes == "CZYX"
    np.testing.assert_array_equal(image.data, np.arange(120, dtype=np.uint8).reshape(2, 3, 4, 5))
    assert image.pixel_sizes == {"Z": 0.5, "Y": 0.25, "X": 0.25}
    assert image.unit == "µm"
    assert image.channel_names == ["GFP", "mCherry"]
