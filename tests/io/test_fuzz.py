"""Damaged files: random bytes, truncations and bit flips of every format infocus reads.

Each damaged file must be read or refused with :class:`InfocusInputError` (one sentence), within
a time bound and without a memory blow-up: the process's peak resident memory may grow by at
most ``MEMORY_CAP_MIB`` over the whole run. The loop is seeded, so a failure reproduces.
"""

from __future__ import annotations

import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from infocus._errors import InfocusInputError
from infocus.io import read_image, write_image

#: Damaged copies per format and kind of damage.
CASES = 12
#: Seconds one read may take (the intact files read in milliseconds).
TIME_LIMIT = 10.0
#: Peak memory the whole run may add (the intact files hold a few hundred KiB).
MEMORY_CAP_MIB = 512


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _damaged(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    if kind == "random":
        return rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()
    if kind == "truncated":
        return data[: int(rng.integers(0, len(data)))]
    flipped = bytearray(data)
    # Most flips in the first KiB, where headers and sizes live.
    for _ in range(int(rng.integers(1, 9))):
        position = int(rng.integers(0, min(len(data), 1024) if rng.random() < 0.8 else len(data)))
        flipped[position] ^= 1 << int(rng.integers(0, 8))
    return bytes(flipped)


def _check(read: Callable[[], object], label: str) -> None:
    started = time.perf_counter()
    try:
        read()
    except InfocusInputError as error:
        assert str(error).strip(), f"{label}: an empty message"
    seconds = time.perf_counter() - started
    assert seconds < TIME_LIMIT, f"{label}: {seconds:.1f} s"


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:
    from conftest import passthrough_care_model

    folder = tmp_path_factory.mktemp("originals")
    image = np.random.default_rng(0).poisson(30, (2, 48, 64)).astype(np.float32)
    paths = {}
    for suffix in (".tif", ".ome.tif", ".npy", ".png"):
        path = folder / f"image{suffix}"
        data = image[0].astype(np.uint16) if suffix == ".png" else image
        write_image(path, data, axes="YX" if suffix == ".png" else "TYX",
                    dtype="uint16" if suffix == ".png" else "float32")
        paths[suffix] = path
    pytest.importorskip("zarr")
    paths[".zarr"] = write_image(folder / "image.zarr", image, axes="TYX")
    model = passthrough_care_model({"alpha": 1.0, "beta": 0.0})
    paths[".zip"] = model.save(folder / "model.zip")
    return paths


@pytest.mark.parametrize("kind", ["random", "truncated", "flipped"])
@pytest.mark.parametrize("suffix", [".tif", ".ome.tif", ".npy", ".png"])
def test_damaged_image_files_are_read_or_refused(tmp_path, originals, suffix, kind):
    rng = np.random.default_rng(abs(hash((suffix, kind))) % 2**32)
    data = originals[suffix].read_bytes()
    peak = _peak_mib()
    for case in range(CASES):
        path = tmp_path / f"case{case}{suffix}"
        path.write_bytes(_damaged(data, kind, rng))
        _check(lambda p=path: read_image(p), f"{kind} {suffix} case {case}")
    assert _peak_mib() - peak < MEMORY_CAP_MIB


@pytest.mark.parametrize("kind", ["random", "truncated", "flipped"])
def test_damaged_zarr_stores_are_read_or_refused(tmp_path, originals, kind):
    rng = np.random.default_rng({"random": 1, "truncated": 2, "flipped": 3}[kind])
    store = originals[".zarr"]
    files = sorted(p for p in store.rglob("*") if p.is_file())
    peak = _peak_mib()
    for case in range(CASES):
        copy = tmp_path / f"case{case}.zarr"
        shutil.copytree(store, copy)
        target = copy / files[case % len(files)].relative_to(store)
        target.write_bytes(_damaged(target.read_bytes(), kind, rng))
        _check(lambda p=copy: read_image(p), f"{kind} zarr {target.name} case {case}")
    assert _peak_mib() - peak < MEMORY_CAP_MIB


@pytest.mark.parametrize("kind", ["random", "truncated", "flipped"])
@pytest.mark.parametrize("member", ["zip", "config.json", "weights.safetensors"])
def test_damaged_models_are_loaded_or_refused(tmp_path, originals, member, kind):
    import zipfile

    from infocus.predict.model import load_model

    rng = np.random.default_rng(abs(hash((member, kind))) % 2**32)
    archive = originals[".zip"]
    with zipfile.ZipFile(archive) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    peak = _peak_mib()
    for case in range(CASES):
        if member == "zip":
            path = tmp_path / f"case{case}.zip"
            path.write_bytes(_damaged(archive.read_bytes(), kind, rng))
        else:
            path = tmp_path / f"case{case}"
            path.mkdir()
            for name, data in members.items():
                (path / name).write_bytes(_damaged(data, kind, rng) if name == member else data)
        _check(lambda p=path: load_model(p), f"{kind} {member} case {case}")
    assert _peak_mib() - peak < MEMORY_CAP_MIB
