"""Atomic writing: no partial output on failure, refuse or allow overwriting, missing directories."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from infocus._errors import InfocusInputError, OutputExistsError
from infocus.io import Image, read_image, write_image
from infocus.io._atomic import atomic_output


class WriterCrash(RuntimeError):
    pass


def _image(rng: np.random.Generator) -> Image:
    return Image(rng.random((2, 16, 16), dtype=np.float32), "ZYX", {"Y": 0.1, "X": 0.1})


def _crashing_tiff_writer(path, data, **kwargs) -> None:
    Path(path).write_bytes(b"II*\x00 half a file")  # the temporary file now exists
    raise WriterCrash("disk full")


def test_failed_tiff_write_leaves_nothing(tmp_path: Path, rng, monkeypatch) -> None:
    seen: list[Path] = []

    def crash(path, data, **kwargs):
        seen.append(Path(path))
        _crashing_tiff_writer(path, data, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", crash)
    with pytest.raises(WriterCrash):
        write_image(tmp_path / "out.tif", _image(rng))
    assert seen and seen[0].parent == tmp_path and seen[0].name.startswith(".out.tif.tmp-")
    assert seen[0].name.endswith(".tif")
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path: Path, rng, monkeypatch) -> None:
    old = write_image(tmp_path / "out.tif", _image(rng))
    before = old.read_bytes()
    monkeypatch.setattr(tifffile, "imwrite", _crashing_tiff_writer)
    with pytest.raises(WriterCrash):
        write_image(old, _image(rng), overwrite=True)
    assert old.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.tif"]


def test_failed_zarr_write_leaves_nothing(tmp_path: Path, rng, monkeypatch) -> None:
    def crash(self, selection, value):
        raise WriterCrash("interrupted while writing chunks")

    monkeypatch.setattr(zarr.Array, "__setitem__", crash)
    with pytest.raises(WriterCrash):
        write_image(tmp_path / "out.zarr", _image(rng))
    assert list(tmp_path.iterdir()) == []


def test_failed_npy_write_leaves_nothing(tmp_path: Path, rng, monkeypatch) -> None:
    def crash(handle, array, **kwargs):
        handle.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "out.npy", np.zeros((16, 16)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.tif", "out.zarr", "out.npy", "out.png"])
def test_existing_output_is_refused(tmp_path: Path, rng, name: str) -> None:
    data = rng.integers(0, 255, (16, 16)).astype(np.float32)
    path = write_image(tmp_path / name, data, dtype="uint8")
    with pytest.raises(
        OutputExistsError,
        match=r"exists; pass --overwrite to replace it or choose another output path\.",
    ):
        write_image(path, data + 1, dtype="uint8")
    np.testing.assert_array_equal(read_image(path).data, data)  # untouched
    write_image(path, data + 1, dtype="uint8", overwrite=True)
    np.testing.assert_array_equal(read_image(path).data, data + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_output_exists_error_is_a_file_exists_error(tmp_path: Path) -> None:
    path = write_image(tmp_path / "x.npy", np.zeros((8, 8)))
    with pytest.raises(FileExistsError):
        write_image(path, np.zeros((8, 8)))


def test_zarr_overwrite_replaces_the_whole_store(tmp_path: Path, rng) -> None:
    big = Image(rng.random((3, 32, 32), dtype=np.float32), "ZYX")
    path = write_image(tmp_path / "s.zarr", big)
    small = Image(rng.random((16, 16), dtype=np.float32), "YX")
    write_image(path, small, overwrite=True)
    back = read_image(path)
    assert back.axes == "YX"
    np.testing.assert_array_equal(back.data, small.data)
    assert [p.name for p in tmp_path.iterdir()] == ["s.zarr"]


def test_missing_output_directory_is_named(tmp_path: Path) -> None:
    target = tmp_path / "not" / "there" / "out.tif"
    with pytest.raises(InfocusInputError, match=r"Output directory '.*not/there' does not exist"):
        write_image(target, np.zeros((16, 16)))
    assert not (tmp_path / "not").exists()


def test_atomic_output_requires_the_writer_to_write(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no output"), atomic_output(tmp_path / "x.npy"):
        pass
    assert list(tmp_path.iterdir()) == []
