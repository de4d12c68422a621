"""Tiled prediction: plans cover the image, stitching is exact, alignment matters, memory is bounded."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from infocus._errors import InfocusInputError
from infocus.predict import (
    Tile,
    auto_tile_shape,
    available_memory,
    blend_weights,
    padded_shape,
    plan_tiles,
    tiled_apply,
)

# ---------------------------------------------------------------------------------------------
# Operators standing in for a network; all map (B, C, *tile) -> (B, C, *tile).


def identity(batch: np.ndarray) -> np.ndarray:
    return batch


def box_filter(batch: np.ndarray, size: int = 5) -> np.ndarray:
    """Mean over a size^d box with zero padding: receptive radius size // 2, shift-equivariant."""
    spatial = batch.ndim - 2
    return ndimage.uniform_filter(batch, size=(1, 1) + (size,) * spatial, mode="constant")


def pool_box(batch: np.ndarray, factor: int = 2) -> np.ndarray:
    """factor^d average pool, nearest upsampling, 3^d box: equivariant only to shifts by factor.

    Receptive radius: ``factor`` (the box reaches one pooled cell, which spans ``factor``).
    """
    b, c, *spatial = batch.shape
    split = [b, c]
    for n in spatial:
        split += [n // factor, factor]
    pooled = batch.reshape(split).mean(axis=tuple(range(3, 2 * len(spatial) + 2, 2)))
    for axis in range(2, pooled.ndim):
        pooled = pooled.repeat(factor, axis=axis)
    return box_filter(pooled, 3)


def end_pad(image: np.ndarray, multiple: int) -> np.ndarray:
    """Independent reference of the padding: reflect at the far end, symmetric if too small."""
    out = image
    for axis in range(1, image.ndim):
        n = image.shape[axis]
        pad = -n % multiple
        width = [(0, 0)] * image.ndim
        width[axis] = (0, pad)
        out = np.pad(out, width, mode="reflect" if pad < n else "symmetric")
    return out


def positive_image(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(0.5, 1.5, size=shape).astype(np.float32)


def max_relative_error(result: np.ndarray, reference: np.ndarray) -> float:
    return float(np.max(np.abs(result.astype(np.float64) - reference) / np.abs(reference)))


# ---------------------------------------------------------------------------------------------
# plan_tiles


@st.composite
def plan_cases(draw: st.DrawFn) -> tuple:
    ndim = draw(st.sampled_from([2, 3]))
    max_size = 160 if ndim == 2 else 40
    shape = tuple(draw(st.integers(1, max_size)) for _ in range(ndim))
    overlap = draw(st.integers(0, 12))
    tile = draw(st.integers(max(4, 2 * overlap), 64))
    multiple = draw(st.sampled_from([1, 2, 4, 8, 16]))
    return shape, tile, overlap, multiple


@settings(max_examples=300, deadline=None)
@given(plan_cases())
def test_plan_covers_image_with_aligned_overlapping_tiles(case):
    shape, tile, overlap, multiple = case
    tiles = plan_tiles(shape, tile, overlap, multiple=multiple)
    padded = padded_shape(shape, multiple)
    # Minimal padding up to a multiple.
    assert all(
        p >= n and p % multiple == 0 and p - n < multiple
        for p, n in zip(padded, shape, strict=True)
    )
    sizes = tiles[0].shape
    for d, (size, p) in enumerate(zip(sizes, padded, strict=True)):
        assert size % multiple == 0 and 0 < size <= p
        # The tile is the requested size rounded up, unless the image is smaller.
        assert size >= min(tile, p)
        origins = sorted({t.origin[d] for t in tiles})
        assert all(o % multiple == 0 for o in origins)
        assert origins[0] == 0 and origins[-1] + size == p  # covers the padded image
        steps = np.diff(origins)
        assert np.all(steps > 0)
        assert np.all(size - steps >= overlap)  # consecutive tiles overlap by >= overlap
    # Grid: every combination of per-axis origins, all tiles the same shape, row-major order.
    assert len({t.origin for t in tiles}) == len(tiles)
    assert all(t.shape == sizes for t in tiles)
    assert [t.index for t in tiles] == sorted(t.index for t in tiles)
    coverage = np.zeros(padded, dtype=np.int32)
    for t in tiles:
        coverage[t.slices] += 1
    assert coverage.min() >= 1


def test_plan_small_image_is_one_padded_tile():
    tiles = plan_tiles((5, 3), 64, 8, multiple=8)
    assert len(tiles) == 1
    assert tiles[0].shape == (8, 8)  # padded to the multiple, not to the requested tile
    assert tiles[0].at_border == ((True, True), (True, True))


def test_plan_spreads_tiles_evenly():
    # 100 px, tile 48, overlap 16, multiple 8 -> padded 104, three tiles, overlaps 24 and 16.
    origins = [t.origin[0] for t in plan_tiles((100,), 48, 16, multiple=8)]
    assert origins == [0, 24, 56]


def test_tile_is_hashable_and_frozen():
    tile = plan_tiles((20, 20), 8, 2)[0]
    assert isinstance(tile, Tile)
    assert tile in {tile}
    with pytest.raises(AttributeError):
        tile.origin = (1, 1)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("tile", "overlap", "multiple", "match"),
    [
        (16, 9, 1, "twice the overlap"),
        (0, 0, 1, "tile_shape"),
        ((16, -2), 0, 1, "tile_shape"),
        (16, -1, 1, "overlap"),
        (16, 2, 0, "multiple"),
        ((16, 16, 16), 2, 1, "one per spatial axis"),
        (16.5, 2, 1, "tile_shape"),
    ],
)
def test_plan_rejects_bad_sizes(tile, overlap, multiple, match):
    with pytest.raises(InfocusInputError, match=match):
        plan_tiles((40, 40), tile, overlap, multiple=multiple)


def test_plan_rejects_empty_image():
    with pytest.raises(InfocusInputError, match="positive"):
        plan_tiles((0, 40), 16, 2)


# ---------------------------------------------------------------------------------------------
# blend_weights


def test_blend_weights_ramp_only_inner_sides():
    w = blend_weights((32, 24), 8, ((True, False), (False, True)))
    assert w.shape == (32, 24)
    # Axis 0 touches the border at its start: no ramp there; axis 1 at its end.
    assert np.all(w[:8, 8:] == 1.0)
    assert np.all(w[-2:, :] == 0.0)  # default margin 8 // 4 = 2 at the inner end of axis 0
    assert np.all(w[:, :2] == 0.0)  # and at the inner start of axis 1
    assert np.all(w[:-2, 2:] > 0)  # strictly positive away from the margins
    assert np.all(w[:24, 8:] == 1.0)  # interior untouched


def test_blend_weights_partition_of_unity_at_exact_overlap():
    overlap = 12
    left = blend_weights((40,), overlap, ((True, False),))
    right = blend_weights((40,), overlap, ((False, True),))
    total = np.zeros(40 + 40 - overlap)
    total[:40] += left
    total[40 - overlap :] += right
    np.testing.assert_allclose(total, 1.0, rtol=1e-12)
    # The cross-fade is smooth and monotone.
    ramp = right[:overlap]
    assert np.all(np.diff(ramp) >= 0) and ramp[-1] == 1.0


def test_blend_weights_zero_margin_is_strictly_positive():
    w = blend_weights((16, 16), 6, None, margin=0)
    assert w.min() > 0 and w.min() < 0.01 and w.max() == 1.0


def test_blend_weights_rejects_margin_too_large():
    with pytest.raises(InfocusInputError, match="margin"):
        blend_weights((16,), 4, margin=2)


# ---------------------------------------------------------------------------------------------
# tiled_apply: exactness


@settings(max_examples=40, deadline=None)
@given(
    shape=st.one_of(
        st.tuples(st.integers(1, 90), st.integers(1, 90)),
        st.tuples(st.integers(1, 20), st.integers(1, 30), st.integers(1, 30)),
    ),
    tile=st.integers(4, 40),
    multiple=st.sampled_from([1, 2, 4, 8]),
    batch_size=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_identity_is_exact(shape, tile, multiple, batch_size, seed):
    overlap = tile // 2 // 2  # any overlap the tile allows
    image = np.random.default_rng(seed).normal(size=(2, *shape)).astype(np.float32)
    result = tiled_apply(
        image, identity, tile_shape=tile, overlap=overlap, multiple=multiple, batch_size=batch_size
    )
    assert result.dtype == np.float32 and result.shape == image.shape
    assert np.array_equal(result, image)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.one_of(
        st.tuples(st.integers(1, 100), st.integers(1, 100)),
        st.tuples(st.integers(1, 28), st.integers(1, 36), st.integers(1, 36)),
    ),
    overlap=st.integers(8, 14),
    extra=st.integers(0, 20),
    seed=st.integers(0, 2**16),
)
def test_box_filter_tiled_equals_untiled(shape, overlap, extra, seed):
    # Receptive radius 2 <= default margin overlap // 4: tiled must equal untiled.
    image = positive_image(np.random.default_rng(seed), (1, *shape))
    tile = 2 * overlap + extra
    result = tiled_apply(image, box_filter, tile_shape=tile, overlap=overlap, batch_size=3)
    assert max_relative_error(result, box_filter(image[None])[0]) < 1e-4


@pytest.mark.parametrize(
    ("shape", "tile", "overlap", "expected_tiles"),
    [
        ((7, 9), 32, 10, 1),  # smaller than one tile
        ((32, 32), 32, 10, 1),  # exactly one tile
        ((33, 31), 32, 10, 2),  # one pixel too many on one axis
        ((257, 131), 24, 10, None),  # many tiles, odd sizes
        ((1, 200), 20, 5, None),  # a single row
        ((9, 40, 41), 16, 5, None),  # 3-D, Z smaller than a tile
        ((30, 30, 30), 12, 5, None),  # 3-D, many tiles
    ],
)
def test_box_filter_with_explicit_margin(rng, shape, tile, overlap, expected_tiles):
    image = positive_image(rng, (1, *shape))
    reference = box_filter(image[None])[0]
    if expected_tiles is not None:
        assert len(plan_tiles(shape, tile, overlap)) == expected_tiles
    result = tiled_apply(image, box_filter, tile_shape=tile, overlap=overlap, margin=2)
    assert max_relative_error(result, reference) < 1e-4


def test_margin_smaller_than_receptive_radius_shows_seams(rng):
    # The counter-check: weight on predictions that saw the tile edge spoils the result.
    image = positive_image(rng, (1, 90, 90))
    result = tiled_apply(image, box_filter, tile_shape=24, overlap=8, margin=0)
    assert max_relative_error(result, box_filter(image[None])[0]) > 1e-3


@pytest.mark.parametrize(
    ("shape", "factor", "tile", "overlap"),
    [
        ((45, 61), 2, 24, 8),  # odd sizes: padded to even
        ((100, 100), 2, 24, 10),
        ((50, 77), 4, 32, 16),
        ((13, 22, 35), 2, 16, 8),
    ],
)
def test_pooling_operator_exact_when_tiles_aligned(rng, shape, factor, tile, overlap):
    image = positive_image(rng, (1, *shape))
    padded = end_pad(image, factor)
    reference = pool_box(padded[None], factor)[0][(slice(None), *[slice(0, n) for n in shape])]
    tiles = plan_tiles(shape, tile, overlap, multiple=factor)
    assert len(tiles) > 1 and all(o % factor == 0 for t in tiles for o in t.origin)
    result = tiled_apply(
        image, lambda b: pool_box(b, factor), tile_shape=tile, overlap=overlap, multiple=factor
    )
    assert max_relative_error(result, reference) < 1e-4


def test_pooling_operator_wrong_when_tiles_misaligned(rng):
    # Same operator, multiple=1: some tiles start at odd offsets and see another pooling grid.
    shape, tile, overlap = (50, 50), 16, 8
    origins = {o for t in plan_tiles(shape, tile, overlap, multiple=1) for o in t.origin}
    assert any(o % 2 for o in origins)
    image = positive_image(rng, (1, *shape))
    reference = pool_box(image[None])[0]
    aligned = tiled_apply(image, pool_box, tile_shape=tile, overlap=overlap, multiple=2)
    misaligned = tiled_apply(image, pool_box, tile_shape=tile, overlap=overlap, multiple=1)
    assert max_relative_error(aligned, reference) < 1e-4
    assert max_relative_error(misaligned, reference) > 1e-2


def test_channels_in_and_out_differ(rng):
    image = positive_image(rng, (2, 70, 45))
    mixing = np.array([[1.0, 0.5], [0.0, 2.0], [0.3, 0.3]], dtype=np.float32)

    def network(batch):  # (B, 2, ...) -> (B, 3, ...)
        return box_filter(np.einsum("oc,bc...->bo...", mixing, batch))

    reference = box_filter(np.einsum("oc,c...->o...", mixing, image)[None])[0]
    result = tiled_apply(image, network, tile_shape=24, overlap=8, out_channels=3)
    assert result.shape == (3, 70, 45)
    assert max_relative_error(result, reference) < 1e-4
    with pytest.raises(RuntimeError, match="expected"):
        tiled_apply(image, network, tile_shape=24, overlap=8, out_channels=2)


def test_batch_size_does_not_change_result(rng):
    image = positive_image(rng, (1, 83, 71))
    results = [
        tiled_apply(image, box_filter, tile_shape=20, overlap=8, batch_size=b)
        for b in (1, 2, 3, 7, 1000)
    ]
    assert all(np.array_equal(results[0], r) for r in results[1:])


def test_integer_source_and_progress(rng):
    image = rng.integers(0, 4000, size=(1, 60, 50), dtype=np.uint16)
    calls = []
    n_tiles = len(plan_tiles((60, 50), 16, 4))
    result = tiled_apply(
        image,
        identity,
        tile_shape=16,
        overlap=4,
        batch_size=4,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert np.array_equal(result, image.astype(np.float32))
    assert calls[-1] == (n_tiles, n_tiles)
    assert len(calls) == -(-n_tiles // 4)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_function_returning_wrong_shape_is_caught(rng):
    image = positive_image(rng, (1, 40, 40))
    with pytest.raises(RuntimeError, match="function returned shape"):
        tiled_apply(image, lambda b: b[..., :-1], tile_shape=16, overlap=4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tile_shape": 8, "overlap": 5}, "twice the overlap"),
        ({"tile_shape": -8, "overlap": 0}, "tile_shape"),
        ({"tile_shape": 16, "overlap": 4, "batch_size": 0}, "batch_size"),
        ({"tile_shape": 16, "overlap": 4, "out": np.zeros((1, 40, 41), np.float32)}, "out"),
        ({"tile_shape": 16, "overlap": 4, "margin": 2}, "margin"),
        ({"tile_shape": (16, 16, 16), "overlap": 4}, "one per spatial axis"),
    ],
)
def test_tiled_apply_rejects_bad_input(rng, kwargs, match):
    with pytest.raises(InfocusInputError, match=match):
        tiled_apply(positive_image(rng, (1, 40, 40)), identity, **kwargs)


def test_source_without_channel_axis_is_rejected():
    with pytest.raises(InfocusInputError, match="channel axis"):
        tiled_apply(np.zeros(40, np.float32), identity, tile_shape=16, overlap=4)


# ---------------------------------------------------------------------------------------------
# tiled_apply: array-likes and memory


def test_zarr_and_memmap_in_and_out_match_in_memory(rng, tmp_path):
    image = positive_image(rng, (2, 150, 97))
    expected = tiled_apply(image, box_filter, tile_shape=32, overlap=8)
    source = zarr.create_array(
        tmp_path / "in.zarr", shape=image.shape, chunks=(1, 40, 40), dtype="f4"
    )
    source[:] = image
    out = zarr.create_array(
        tmp_path / "out.zarr", shape=image.shape, chunks=(2, 48, 32), dtype="f4"
    )
    returned = tiled_apply(source, box_filter, tile_shape=32, overlap=8, out=out)
    assert returned is out
    assert np.array_equal(out[:], expected)
    mapped = np.lib.format.open_memmap(tmp_path / "out.npy", "w+", np.float32, image.shape)
    tiled_apply(image, box_filter, tile_shape=32, overlap=8, out=mapped)
    assert np.array_equal(np.asarray(mapped), expected)


def _peak_traced(function) -> int:
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_a_strip_not_the_image(tmp_path):
    # A 2048 x 2048 float32 image (16 MiB) streamed from and to zarr stores with 64 px tiles.
    width, tile, overlap = 2048, 64, 16
    peaks = {}
    for height in (32, 512, 2048):  # the first run only warms zarr up
        data = np.broadcast_to(np.linspace(0, 1, width, dtype=np.float32), (1, height, width))
        store = {"shape": data.shape, "chunks": (1, 128, 256), "dtype": "f4", "compressors": None}
        source = zarr.create_array(tmp_path / f"in{height}.zarr", **store)
        source[:] = data
        out = zarr.create_array(tmp_path / f"out{height}.zarr", **store)
        peaks[height] = _peak_traced(
            lambda source=source, out=out: tiled_apply(
                source, identity, tile_shape=tile, overlap=overlap, out=out
            )
        )
        if height == 2048:
            assert np.array_equal(out[:], data)
    image_bytes = 2048 * 2048 * 4
    assert peaks[2048] < image_bytes / 2
    # Four times the image, (nearly) the same peak: memory is O(strip), not O(image).
    assert peaks[2048] < 1.1 * peaks[512]


def test_numpy_source_is_not_copied_whole(rng):
    # A float32 NumPy source is sliced in place: peak memory is a few strips, not the image.
    image = rng.random((1, 2048, 2048), dtype=np.float32)
    out = np.empty_like(image)  # allocated outside the trace
    peak = _peak_traced(lambda: tiled_apply(image, identity, tile_shape=64, overlap=16, out=out))
    assert peak < image.nbytes / 4
    assert np.array_equal(out, image)


# ---------------------------------------------------------------------------------------------
# auto_tile_shape and available_memory


@pytest.mark.parametrize(
    ("shape", "multiple", "bytes_per_voxel", "budget", "batch"),
    [
        ((4096, 4096), 16, 400.0, 2 * 1024**3, 1),
        ((4096, 4096), 16, 400.0, 2 * 1024**3, 4),
        ((300, 5000), 8, 1000.0, 50 * 1024**2, 2),
        ((64, 2048, 2048), 4, 2000.0, 1024**3, 1),
        ((10, 20), 8, 10.0, 1024**3, 1),
    ],
)
def test_auto_tile_shape_is_largest_aligned_fit(shape, multiple, bytes_per_voxel, budget, batch):
    tile = auto_tile_shape(
        shape,
        multiple=multiple,
        bytes_per_voxel=bytes_per_voxel,
        memory_budget=budget,
        batch_size=batch,
    )
    padded = padded_shape(shape, multiple)
    cap = 1024 if len(shape) == 2 else 128
    assert len(tile) == len(shape)
    assert all(t % multiple == 0 and t <= p and t <= cap for t, p in zip(tile, padded, strict=True))
    assert bytes_per_voxel * np.prod(tile) * batch <= budget
    side = max(tile)
    assert all(
        t == min(side, p) for t, p in zip(tile, padded, strict=True)
    )  # a square/cube, clipped
    bigger = tuple(min(side + multiple, p) for p in padded)
    if side < cap and bigger != tile:  # the next aligned size must not fit
        assert bytes_per_voxel * np.prod(bigger) * batch > budget


def test_auto_tile_shape_rejects_hopeless_budget():
    with pytest.raises(InfocusInputError, match="memory budget"):
        auto_tile_shape((512, 512), multiple=16, bytes_per_voxel=1e6, memory_budget=1e6)


def test_available_memory_is_plausible():
    free = available_memory()
    assert isinstance(free, int) and 2**20 < free < 2**50
