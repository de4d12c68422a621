"""Tests for the training-data pipeline: lazy blocks, patch sampling, validation split, file loading."""

from __future__ import annotations

import tracemalloc
from collections import Counter

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import infocus.io
from infocus._errors import InfocusInputError
from infocus.training import data as train_data
from infocus.training.data import (
    LabelledShareSampler,
    LazyBlock,
    PatchSampler,
    fixed_validation_patches,
    load_inputs,
    sample_planes,
    split_validation,
    to_blocks,
)


def _ids(shape: tuple[int, ...], start: int = 0) -> np.ndarray:
    """An array whose every pixel holds a distinct integer (so pixels can be traced)."""
    return (start + np.arange(int(np.prod(shape)))).reshape(shape).astype(np.float32)


def _values(blocks) -> np.ndarray:
    return np.concatenate([np.asarray(b).ravel() for b in blocks])


def _dihedral(square: np.ndarray) -> set[bytes]:
    """The 8 symmetries of a square 2-D array, as bytes."""
    out = set()
    for flipped in (square, square[::-1]):
        for k in range(4):
            out.add(np.ascontiguousarray(np.rot90(flipped, k)).tobytes())
    return out


# --------------------------------------------------------------------------- to_blocks


def test_to_blocks_2d():
    data = _ids((40, 50)).astype(np.uint16)
    blocks = to_blocks(data, "YX")
    assert len(blocks) == 1
    assert blocks[0].shape == (1, 40, 50)
    read = np.asarray(blocks[0])
    assert read.dtype == np.uint16
    np.testing.assert_array_equal(read[0], data)


def test_to_blocks_3d_auto_uses_z():
    data = _ids((6, 32, 40))
    blocks = to_blocks(data, "ZYX")
    assert [b.shape for b in blocks] == [(1, 6, 32, 40)]
    np.testing.assert_array_equal(np.asarray(blocks[0])[0], data)
    # 2-D training on a volume: one block per Z plane.
    planes = to_blocks(data, "ZYX", spatial="YX")
    assert len(planes) == 6
    np.testing.assert_array_equal(np.asarray(planes[4])[0], data[4])


def test_to_blocks_time_as_third_dimension():
    data = _ids((7, 32, 36))
    frames = to_blocks(data, "TYX")
    assert len(frames) == 7
    assert all(b.shape == (1, 32, 36) for b in frames)
    np.testing.assert_array_equal(np.asarray(frames[3])[0], data[3])
    volume = to_blocks(data, "TYX", spatial="TYX")
    assert [b.shape for b in volume] == [(1, 7, 32, 36)]
    np.testing.assert_array_equal(np.asarray(volume[0])[0], data)


def test_to_blocks_channels_independent_vs_joint():
    data = _ids((32, 40, 3))  # channels last
    independent = to_blocks(data, "YXC")
    assert len(independent) == 3
    for c, block in enumerate(independent):
        assert block.shape == (1, 32, 40)
        assert block.channel == c
        np.testing.assert_array_equal(np.asarray(block)[0], data[..., c])
    joint = to_blocks(data, "YXC", channels="joint")
    assert len(joint) == 1
    assert joint[0].shape == (3, 32, 40)
    assert joint[0].channel is None
    np.testing.assert_array_equal(np.asarray(joint[0]), np.moveaxis(data, -1, 0))


def test_to_blocks_all_axes_in_any_order():
    data = _ids((2, 3, 2, 4, 16, 12))
    blocks = to_blocks(data, "STCZYX")
    assert len(blocks) == 2 * 3 * 2
    assert all(b.shape == (1, 4, 16, 12) for b in blocks)
    np.testing.assert_array_equal(np.asarray(blocks[5])[0], data[0, 2, 1])
    joint = to_blocks(data, "STCZYX", channels="joint")
    assert len(joint) == 6
    np.testing.assert_array_equal(np.asarray(joint[4]), data[1, 1])
    # The same data with scrambled axes gives the same blocks.
    scrambled = np.transpose(data, (5, 2, 0, 4, 3, 1))  # X C S Y Z T
    again = to_blocks(scrambled, "XCSYZT", channels="joint")
    np.testing.assert_array_equal(np.asarray(again[4]), data[1, 1])


def test_to_blocks_reads_nothing():
    class Exploding:
        shape = (3, 64, 64)
        dtype = np.dtype(np.uint16)

        def __getitem__(self, key):
            raise AssertionError("to_blocks must not read pixels")

    blocks = to_blocks(Exploding(), "TYX", spatial="TYX")
    assert blocks[0].shape == (1, 3, 64, 64)


@pytest.mark.parametrize(
    ("shape", "axes", "options", "match"),
    [
        ((32, 32), "YX", {"spatial": "ZYX"}, "needs a 'Z' axis"),
        ((4, 32, 32), "ZYX", {"spatial": "TYX"}, "needs a 'T' axis"),
        ((32, 32), "YX", {"spatial": "XY"}, "Unknown spatial layout"),
        ((32, 32), "YX", {"channels": "both"}, "Unknown channel mode"),
        ((32, 32), "ZYX", {}, "dimensions"),
    ],
)
def test_to_blocks_rejects_bad_options(shape, axes, options, match):
    with pytest.raises(InfocusInputError, match=match):
        to_blocks(np.zeros(shape), axes, **options)


def test_to_blocks_rejects_complex():
    with pytest.raises(InfocusInputError, match="dtype complex"):
        to_blocks(np.zeros((16, 16), np.complex64), "YX")


_index = st.one_of(
    st.integers(-3, 2),
    st.builds(
        slice,
        st.one_of(st.none(), st.integers(-6, 6)),
        st.one_of(st.none(), st.integers(-6, 6)),
        st.one_of(st.none(), st.sampled_from([1, 2, 3, -1, -2])),
    ),
)


@settings(max_examples=150, deadline=None)
@given(key=st.tuples(_index, _index, _index))
def test_lazy_block_indexing_matches_numpy(key):
    data = _ids((3, 4, 5, 6))  # T Y X C
    block = to_blocks(data, "TYXC", spatial="TYX")[2]  # channel 2, (1, 3, 4, 5)
    reference = np.transpose(data[..., 2], (0, 1, 2))[None]
    full = (slice(None),) + key
    np.testing.assert_array_equal(block[full], reference[full])
    np.testing.assert_array_equal(block[0, ...], reference[0])


def test_lazy_block_crop_is_a_view_of_the_window():
    data = _ids((20, 30))
    block = to_blocks(data, "YX")[0].crop(1, 5, 12).crop(2, 10, 30)
    assert block.shape == (1, 7, 20)
    np.testing.assert_array_equal(np.asarray(block)[0], data[5:12, 10:30])
    np.testing.assert_array_equal(block[0, 2:4, ::-3], data[7:9, 10:30][:, ::-3])


# --------------------------------------------------------------------------- PatchSampler


@pytest.mark.parametrize(
    ("shape", "axes", "kwargs", "patch", "channels"),
    [
        ((64, 80), "YX", {}, (32, 32), 1),
        ((10, 48, 40), "ZYX", {}, (8, 16, 24), 1),
        ((10, 48, 40), "TYX", {"spatial": "TYX"}, (4, 32, 32), 1),
        ((3, 48, 40), "CYX", {"channels": "joint"}, (16, 16), 3),
        ((3, 48, 40), "CYX", {}, (16, 16), 1),
    ],
)
def test_sampler_shapes_and_dtypes(shape, axes, kwargs, patch, channels, rng):
    data = rng.integers(0, 4000, shape).astype(np.uint16)
    blocks = to_blocks(data, axes, **kwargs)
    x, y = PatchSampler(blocks, patch_shape=patch, rng=rng).sample(5)
    assert x.shape == (5, channels, *patch)
    assert x.dtype == np.float32
    assert y is None
    assert x.flags.c_contiguous
    # Values are raw pixel values (no normalisation inside the sampler).
    assert x.max() <= 4000
    assert x.min() >= 0
    assert np.isin(x, data).all()
    x2, y2 = PatchSampler(blocks, blocks, patch_shape=patch, rng=rng).sample(3)
    assert y2 is not None
    assert y2.shape == x2.shape == (3, channels, *patch)
    assert y2.dtype == np.float32


def test_sampler_never_loads_a_large_zarr(tmp_path):
    shape = (4096, 4096)
    z = zarr.create_array(tmp_path / "big.zarr", shape=shape, chunks=(256, 256), dtype="uint16")
    z[:] = np.random.default_rng(1).integers(0, 1000, shape, dtype=np.uint16)
    array_bytes = int(np.prod(shape)) * 2  # 32 MiB
    reopened = zarr.open_array(tmp_path / "big.zarr", mode="r")
    blocks = to_blocks(reopened, "YX")
    tracemalloc.start()
    try:
        sampler = PatchSampler(blocks, patch_shape=(64, 64), rng=0)
        x, _ = sampler.sample(100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert x.shape == (100, 1, 64, 64)
    assert x.std() > 100  # real pixels were read
    # The batch itself (1.6 MiB) plus a few decoded 128 KiB chunks; never the 32 MiB array.
    assert peak - x.nbytes < 2 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert peak < array_bytes / 8


@pytest.mark.parametrize(
    ("shape", "axes", "patch"),
    [((48, 48), "YX", (16, 16)), ((40, 56), "YX", (16, 24)), ((12, 40, 40), "ZYX", (6, 16, 16))],
)
def test_pairs_get_identical_crops_and_augmentations(shape, axes, patch, rng):
    image = rng.normal(100.0, 20.0, shape).round().astype(np.float32)
    target = image + 7.0
    sampler = PatchSampler(
        to_blocks(image, axes), to_blocks(target, axes), patch_shape=patch, rng=rng
    )
    x, y = sampler.sample(64)
    assert y is not None
    np.testing.assert_array_equal(y - x, np.full_like(x, 7.0))
    # Different crops were drawn (the test would be trivial otherwise).
    assert len({p.tobytes() for p in x}) > 50


def test_augmentation_draws_all_eight_symmetries_uniformly(rng):
    square = _ids((8, 8))
    sampler = PatchSampler([square[None]], patch_shape=(8, 8), rng=rng)
    x, _ = sampler.sample(800)
    counts = Counter(p[0].tobytes() for p in x)
    assert set(counts) == _dihedral(square)
    # Expected 100 each; the standard deviation of a count is 9.4.
    assert min(counts.values()) > 60
    assert max(counts.values()) < 140


def test_augmentation_without_rotation_keeps_shape_for_non_square_patches(rng):
    rect = _ids((8, 12))
    x, _ = PatchSampler([rect[None]], patch_shape=(8, 12), rng=rng).sample(200)
    expected = {
        np.ascontiguousarray(a).tobytes()
        for a in (rect, rect[::-1], rect[:, ::-1], rect[::-1, ::-1])
    }
    assert {p[0].tobytes() for p in x} == expected


def test_augmentation_can_keep_the_row_direction(rng):
    """rotate=False (noise correlated along X only): flips, never a 90° turn."""
    square = _ids((8, 8))
    x, _ = PatchSampler([square[None]], patch_shape=(8, 8), rotate=False, rng=rng).sample(200)
    expected = {
        np.ascontiguousarray(a).tobytes()
        for a in (square, square[::-1], square[:, ::-1], square[::-1, ::-1])
    }
    assert {p[0].tobytes() for p in x} == expected


def test_sample_planes_reads_central_crops_of_evenly_spread_planes():
    stack = np.arange(10 * 40 * 50, dtype=np.float32).reshape(10, 40, 50)
    planes = sample_planes(to_blocks(stack, "ZYX", spatial="YX"), size=16, max_planes=4)
    assert planes.shape == (1, 4, 16, 16) and planes.dtype == np.float64
    np.testing.assert_array_equal(planes[0, 0], stack[0, 12:28, 17:33])
    np.testing.assert_array_equal(planes[0, -1], stack[9, 12:28, 17:33])
    two = sample_planes(to_blocks(np.zeros((2, 3, 20, 20)), "CZYX", channels="joint"))
    assert two.shape == (2, 3, 20, 20)
    with pytest.raises(InfocusInputError, match="No blocks"):
        sample_planes([])


def test_augmentation_in_3d_rotates_only_in_yx(rng):
    volume = _ids((3, 6, 6))
    x, _ = PatchSampler([volume[None]], patch_shape=(3, 6, 6), rng=rng).sample(400)
    allowed = set()
    for v in (volume, volume[::-1]):
        for flipped in (v, v[:, ::-1]):
            for k in range(4):
                allowed.add(np.ascontiguousarray(np.rot90(flipped, k, axes=(1, 2))).tobytes())
    assert len(allowed) == 16
    assert {p[0].tobytes() for p in x} == allowed


def test_no_augmentation_returns_plain_windows(rng):
    image = _ids((30, 40))
    x, _ = PatchSampler([image[None]], patch_shape=(10, 12), augment=False, rng=rng).sample(50)
    # A plain window of image[y, x] = 40 y + x differs from its corner by 40 r + c.
    offsets = 40 * np.arange(10)[:, None] + np.arange(12)[None, :]
    np.testing.assert_array_equal(x[:, 0] - x[:, 0, :1, :1], np.broadcast_to(offsets, (50, 10, 12)))


def test_sampler_is_deterministic_with_a_seed(rng):
    blocks = to_blocks(rng.normal(size=(4, 40, 40)).astype(np.float32), "TYX")
    a, _ = PatchSampler(blocks, patch_shape=(16, 16), rng=5).sample(8)
    b, _ = PatchSampler(blocks, patch_shape=(16, 16), rng=5).sample(8)
    c, _ = PatchSampler(blocks, patch_shape=(16, 16), rng=6).sample(8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_blocks_are_drawn_in_proportion_to_their_size(rng):
    small = np.zeros((1, 32, 32), np.float32)
    large = np.ones((1, 32, 96), np.float32)
    sampler = PatchSampler([small, large], patch_shape=(16, 16), rng=rng)
    assert sampler.n_pixels == 32 * 32 + 32 * 96
    assert sampler.patches_per_epoch == 16
    x, _ = sampler.sample(2000)
    share = float(x[:, 0, 0, 0].mean())
    # Expected 0.75; the standard deviation of the share is 0.0097.
    assert abs(share - 0.75) < 0.04


def test_patch_larger_than_image_names_the_fix():
    blocks = to_blocks(np.zeros((30, 100)), "YX")
    with pytest.raises(
        InfocusInputError,
        match=r"Image of shape \(30, 100\) is smaller than the patch size \(64, 64\); use --patch-size N ≤ 30",
    ):
        PatchSampler(blocks, patch_shape=(64, 64))


def test_sampler_rejects_mismatched_pairs():
    inputs = to_blocks(np.zeros((64, 64)), "YX")
    with pytest.raises(
        InfocusInputError, match=r"has shape \(1, 64, 64\) but its target has shape \(1, 64, 60\)"
    ):
        PatchSampler(inputs, to_blocks(np.zeros((64, 60)), "YX"), patch_shape=(32, 32))
    with pytest.raises(InfocusInputError, match="each input needs exactly one target"):
        PatchSampler(inputs, inputs * 2, patch_shape=(32, 32))


@pytest.mark.parametrize(
    ("blocks", "patch", "match"),
    [
        ([], (8, 8), "No training images"),
        ([np.zeros((1, 32, 32)), np.zeros((2, 32, 32))], (8, 8), "different numbers of channels"),
        ([np.zeros((1, 32, 32)), np.zeros((1, 4, 32, 32))], (8, 8), "mix 2-D and 3-D"),
        ([np.zeros((1, 32, 32))], (4, 8, 8), "one patch size per spatial axis"),
        ([np.zeros((1, 32, 32))], (0, 8), "positive"),
        (np.zeros((1, 32, 32)), (8, 8), "list of blocks"),
    ],
)
def test_sampler_rejects_bad_blocks(blocks, patch, match):
    with pytest.raises(InfocusInputError, match=match):
        PatchSampler(blocks, patch_shape=patch)


@pytest.mark.parametrize("where", ["input", "target"])
def test_nan_in_a_sampled_patch_is_reported(where):
    clean = np.ones((1, 16, 16), np.float32)
    dirty = clean.copy()
    dirty[0, 3, 5] = np.nan
    inputs, targets = ([dirty], [clean]) if where == "input" else ([clean], [dirty])
    sampler = PatchSampler(inputs, targets, patch_shape=(16, 16), rng=0)
    with pytest.raises(InfocusInputError, match=f"A patch of {where} block 0 contains NaN"):
        sampler.sample(1)


def test_batch_size_must_be_positive():
    sampler = PatchSampler([np.ones((1, 16, 16))], patch_shape=(8, 8))
    with pytest.raises(InfocusInputError, match="Batch size"):
        sampler.sample(0)


# --------------------------------------------------------------------------- validation


def test_split_holds_out_whole_blocks_when_there_are_many(rng):
    inputs = [_ids((1, 20, 20), start=1000 * i) for i in range(12)]
    targets = [b + 0.5 for b in inputs]
    tr_x, tr_y, va_x, va_y = split_validation(
        inputs, targets, fraction=0.2, patch_shape=(8, 8), rng=rng
    )
    assert len(va_x) == round(0.2 * 12) == len(va_y)
    assert len(tr_x) == 12 - len(va_x) == len(tr_y)
    train, val = _values(tr_x), _values(va_x)
    assert not np.intersect1d(train, val).size
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), _values(inputs))
    for x, y in zip(tr_x + va_x, tr_y + va_y, strict=True):
        np.testing.assert_array_equal(np.asarray(y) - np.asarray(x), 0.5)
    # At least one block is held out, and at least one is kept for training.
    few = [_ids((1, 20, 20))] * 5
    assert len(split_validation(few, fraction=0.01, patch_shape=(8, 8))[2]) == 1
    assert len(split_validation(few, fraction=0.99, patch_shape=(8, 8))[0]) == 1


@pytest.mark.parametrize(
    ("shape", "axes", "patch", "val_shape"),
    [
        ((100, 80), "YX", (16, 16), (1, 16, 80)),  # the band is one patch high
        ((400, 80), "YX", (16, 16), (1, 40, 80)),  # ... or 10 % of the rows
        ((12, 64, 64), "ZYX", (8, 16, 16), (1, 12, 16, 64)),  # Z too short: split along Y
        ((32, 64, 64), "ZYX", (8, 16, 16), (1, 8, 64, 64)),
    ],
)
def test_split_band_never_overlaps_training(shape, axes, patch, val_shape, rng):
    inputs = [b for i in range(2) for b in to_blocks(_ids(shape, start=10**7 * i), axes)]
    targets = [b for i in range(2) for b in to_blocks(_ids(shape, start=10**7 * i) - 3.0, axes)]
    tr_x, tr_y, va_x, va_y = split_validation(
        inputs, targets, fraction=0.1, patch_shape=patch, rng=rng
    )
    assert [v.shape for v in va_x] == [val_shape, val_shape]
    train, val = _values(tr_x), _values(va_x)
    assert not np.intersect1d(train, val).size
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.sort(_values(inputs)))
    for x, y in zip(tr_x + va_x, tr_y + va_y, strict=True):
        np.testing.assert_array_equal(np.asarray(x) - np.asarray(y), 3.0)
    # Patches drawn for training never contain a validation pixel, and vice versa.
    x, _ = PatchSampler(tr_x, tr_y, patch_shape=patch, rng=rng).sample(64)
    assert not np.isin(x, val).any()
    v, _ = fixed_validation_patches(va_x, va_y, patch_shape=patch, n=16, rng=1)
    assert not np.isin(v, train).any()


def test_split_works_on_zarr_without_reading(tmp_path):
    z = zarr.create_array(tmp_path / "a.zarr", shape=(64, 48), chunks=(16, 16), dtype="float32")
    z[:] = _ids((64, 48))
    tr, _, va, _ = split_validation(to_blocks(z, "YX"), patch_shape=(16, 16))
    assert isinstance(tr[0], LazyBlock)
    assert tr[0].shape == (1, 48, 48)
    assert va[0].shape == (1, 16, 48)
    np.testing.assert_array_equal(np.asarray(va[0])[0], _ids((64, 48))[48:])


def test_split_rejects_blocks_too_small_for_a_band():
    with pytest.raises(InfocusInputError, match="too small to hold out a validation band"):
        split_validation([np.zeros((1, 24, 24))], patch_shape=(16, 16))
    with pytest.raises(InfocusInputError, match="between 0 and 1"):
        split_validation([np.zeros((1, 64, 64))], patch_shape=(16, 16), fraction=1.0)


def test_fixed_validation_patches_are_fixed(rng):
    blocks = to_blocks(rng.normal(size=(2, 40, 40)).astype(np.float32), "TYX")
    targets = [np.asarray(b) * 2 for b in blocks]
    a, ay = fixed_validation_patches(blocks, targets, patch_shape=(16, 16), n=10, rng=3)
    b, by = fixed_validation_patches(blocks, targets, patch_shape=(16, 16), n=10, rng=3)
    assert a.shape == (10, 1, 16, 16)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ay, by)
    np.testing.assert_array_equal(ay, 2 * a)
    c, _ = fixed_validation_patches(blocks, None, (16, 16), 10, 4)
    assert not np.array_equal(a, c)


# --------------------------------------------------------------------------- load_inputs


class _FakeImage:
    def __init__(self, data, axes):
        self.data, self.axes = data, axes


@pytest.fixture
def fake_io(monkeypatch):
    """Record which reader load_inputs uses for which file."""
    calls: list[tuple[str, str, str | None]] = []

    def read_image(path, axes=None):
        calls.append(("eager", path.name, axes))
        return _FakeImage(np.zeros((16, 16)), axes or "YX")

    def open_image_lazy(path, axes=None):
        calls.append(("lazy", path.name, axes))
        return _FakeImage(np.zeros((16, 16)), axes or "YX")

    monkeypatch.setattr(infocus.io, "read_image", read_image, raising=False)
    monkeypatch.setattr(infocus.io, "open_image_lazy", open_image_lazy, raising=False)
    return calls


def test_load_inputs_reads_folders_sorted_and_zarr_lazily(tmp_path, fake_io, monkeypatch):
    folder = tmp_path / "train"
    folder.mkdir()
    for name in ["b.tif", "a.npy", "c.png", "notes.txt", ".hidden.tif"]:
        (folder / name).write_bytes(b"x" * 100)
    zarr.create_array(folder / "d.zarr", shape=(16, 16), chunks=(16, 16), dtype="uint8")
    (folder / "subfolder").mkdir()
    single = tmp_path / "single.tif"
    single.write_bytes(b"x" * 100)
    images = load_inputs([folder, str(single)], axes="YX")
    assert len(images) == 5
    assert all(axes == "YX" for _, axes in images)
    assert fake_io == [
        ("eager", "a.npy", "YX"),
        ("eager", "b.tif", "YX"),
        ("eager", "c.png", "YX"),
        ("lazy", "d.zarr", "YX"),
        ("eager", "single.tif", "YX"),
    ]
    # A file above the size threshold stays on disk.
    fake_io.clear()
    monkeypatch.setattr(train_data, "LAZY_READ_BYTES", 50)
    load_inputs(single)
    assert fake_io == [("lazy", "single.tif", None)]


def test_load_inputs_errors(tmp_path, fake_io):
    with pytest.raises(InfocusInputError, match="does not exist"):
        load_inputs(tmp_path / "missing.tif")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images")
    with pytest.raises(InfocusInputError, match="holds no image files"):
        load_inputs(empty)
    assert fake_io == []


@pytest.mark.shared_data
def test_load_inputs_on_real_folder(shared_data):
    if not hasattr(infocus.io, "read_image"):
        pytest.skip("infocus.io.read_image is not available")
    images = load_inputs(shared_data / "fmd_test_mix" / "raw")
    assert len(images) == 48
    blocks = [b for data, axes in images for b in to_blocks(data, axes)]
    x, _ = PatchSampler(blocks, patch_shape=(64, 64), rng=0).sample(4)
    assert x.shape[0] == 4
    assert x.shape[2:] == (64, 64)
    assert x.std() > 0


def test_load_inputs_keeps_large_tiff_and_zarr_on_disk(tmp_path, monkeypatch):
    tifffile = pytest.importorskip("tifffile")
    image = _ids((5, 64, 48)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", image, imagej=True, metadata={"axes": "TYX"})
    small = tmp_path / "b.npy"
    np.save(small, image[0])
    z = zarr.create_array(tmp_path / "c.zarr", shape=(64, 48), chunks=(32, 32), dtype="uint16")
    z[:] = image[1]
    monkeypatch.setattr(train_data, "LAZY_READ_BYTES", 5000)  # a.tif (30 KiB) counts as large
    loaded = load_inputs(tmp_path, axes=None)
    assert [axes for _, axes in loaded] == ["TYX", "YX", "YX"]
    tiff_data, tiff_axes = loaded[0]
    assert not isinstance(tiff_data, np.ndarray)  # lazy view, not read
    assert isinstance(loaded[2][0], zarr.Array)
    blocks = to_blocks(tiff_data, tiff_axes)
    assert len(blocks) == 5
    np.testing.assert_array_equal(np.asarray(blocks[2])[0], image[2])
    x, _ = PatchSampler(blocks, patch_shape=(32, 32), rng=0).sample(4)
    assert np.isin(x, image).all()


def _one_labelled_of_twenty() -> tuple[list[np.ndarray], list[np.ndarray], list[bool]]:
    inputs = [np.full((1, 32, 32), float(i), np.float32) for i in range(20)]
    targets = [np.ones((1, 32, 32), np.float32)] + [np.full((1, 32, 32), -1.0, np.float32)] * 19
    return inputs, targets, [True] + [False] * 19


def test_labelled_share_sampler_puts_half_the_batch_on_the_labelled_image():
    inputs, targets, labelled = _one_labelled_of_twenty()
    sampler = LabelledShareSampler(inputs, targets, labelled, share=0.5, patch_shape=(16, 16),
                                   rng=0)
    carrying = []
    for _ in range(50):
        x, y = sampler.sample(16)
        assert x.shape == y.shape == (16, 1, 16, 16)
        per_patch = (y >= 0).all(axis=(1, 2, 3))
        assert per_patch[:8].all()  # the labelled part, exactly round(0.5 * 16)
        assert (x[:8] == 0).all()  # drawn from the labelled image
        carrying.append(per_patch.mean())
    # 8 of 16 from the labelled image, plus 1 in 20 of the other 8 drawn from all images.
    assert np.mean(carrying) == pytest.approx(0.5 + 0.5 / 20, abs=0.02)
    uniform = PatchSampler(inputs, targets, patch_shape=(16, 16), rng=0)
    assert np.mean([(uniform.sample(16)[1] >= 0).all(axis=(1, 2, 3)).mean()
                    for _ in range(50)]) < 0.15


@pytest.mark.parametrize("share", [1.5, -0.5, float("nan"), "half"])
def test_labelled_share_sampler_refuses_a_bad_share(share):
    inputs, targets, labelled = _one_labelled_of_twenty()
    with pytest.raises(InfocusInputError, match="labelled share"):
        LabelledShareSampler(inputs, targets, labelled, share=share, patch_shape=(16, 16))


@pytest.mark.parametrize("labelled", [[True] * 20, [False] * 20, [True]])
def test_labelled_share_sampler_needs_both_kinds_of_image(labelled):
    inputs, targets, _ = _one_labelled_of_twenty()
    with pytest.raises(InfocusInputError, match="both labelled and unlabelled"):
        LabelledShareSampler(inputs, targets, labelled, share=0.5, patch_shape=(16, 16))
