"""Tests for the per-channel mean/std normaliser."""

from __future__ import annotations

import json
import math
import tracemalloc

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from infocus._errors import InfocusInputError
from infocus.intensity import Normalizer
from infocus.training import to_blocks


class CountingArray:
    """An array-like that counts how many elements are read from it."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.elements_read = 0

    def __getitem__(self, key):
        out = self.data[key]
        self.elements_read += np.size(out)
        return out


def _three_channels(rng: np.random.Generator, shape=(20, 30)) -> np.ndarray:
    means, stds = [100.0, 2000.0, -5.0], [3.0, 400.0, 0.01]
    return np.stack([rng.normal(m, s, shape) for m, s in zip(means, stds, strict=True)]).astype(
        np.float32
    )


def test_fit_matches_numpy_per_channel(rng):
    blocks = [
        _three_channels(rng),
        _three_channels(rng, (12, 7)),
        _three_channels(rng, (5, 9, 11))[:, 0],
    ]
    norm = Normalizer.fit(blocks)
    assert norm.n_channels == 3
    pooled = np.concatenate([b.reshape(3, -1) for b in blocks], axis=1).astype(np.float64)
    np.testing.assert_allclose(norm.mean, pooled.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(norm.std, pooled.std(axis=1), rtol=1e-10)
    assert all(isinstance(v, float) for v in norm.mean + norm.std)


def test_fit_on_independent_channel_blocks_pools_channels(rng):
    data = _three_channels(rng)
    norm = Normalizer.fit(to_blocks(data, "CYX"))
    assert norm.n_channels == 1
    assert norm.mean[0] == pytest.approx(float(data.astype(np.float64).mean()), rel=1e-12)
    assert norm.std[0] == pytest.approx(float(data.astype(np.float64).std()), rel=1e-10)


def test_normalized_training_data_has_zero_mean_unit_std(rng):
    data = _three_channels(rng)
    norm = Normalizer.fit([data])
    out = norm.normalize(data)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.reshape(3, -1).mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.reshape(3, -1).std(axis=1), 1.0, rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    mean=st.lists(st.floats(-1e4, 1e5), min_size=1, max_size=4),
    log_std=st.floats(-2.0, 4.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_is_exact_within_float32(mean, log_std, seed):
    n = len(mean)
    norm = Normalizer(mean=tuple(mean), std=tuple(10**log_std * (1 + c) for c in range(n)))
    g = np.random.default_rng(seed)
    # A batch (B, C, Y, X), with values far outside the fitted range: nothing is clipped.
    x = (np.array(mean)[None, :, None, None] + g.normal(0, 10**log_std * 50, (2, n, 5, 6))).astype(
        np.float32
    )
    back = norm.denormalize(norm.normalize(x, channel_axis=1), channel_axis=1)
    assert back.dtype == np.float32
    scale = np.abs(x).max() + 10**log_std
    np.testing.assert_allclose(back, x, rtol=0, atol=4 * np.finfo(np.float32).eps * scale)


def test_normalize_uses_each_channel_own_statistics():
    norm = Normalizer(mean=(100.0, 0.0), std=(10.0, 2.0))
    x = np.array([[110.0, 90.0], [4.0, -2.0]])
    np.testing.assert_array_equal(norm.normalize(x), [[1.0, -1.0], [2.0, -1.0]])
    np.testing.assert_array_equal(norm.normalize(x.T, channel_axis=-1), [[1.0, 2.0], [-1.0, -1.0]])
    np.testing.assert_array_equal(norm.denormalize([[1.0], [2.0]]), [[110.0], [4.0]])


def test_offset_is_added_back_exactly():
    # Camera data: offset 100, little signal; the prediction returns in camera units.
    norm = Normalizer(mean=(100.0,), std=(2.0,))
    assert (
        norm.denormalize(np.zeros((1, 3, 3), np.float32)).tolist()
        == np.full((1, 3, 3), 100.0).tolist()
    )


def test_single_channel_applies_to_any_shape():
    norm = Normalizer(mean=(1.0,), std=(2.0,))
    np.testing.assert_array_equal(norm.normalize(np.full((4, 5, 6), 3.0), channel_axis=1), 1.0)
    np.testing.assert_array_equal(norm.normalize(np.full((5, 6), 3.0), channel_axis=None), 1.0)


def test_channel_count_mismatch_is_reported():
    norm = Normalizer(mean=(0.0, 0.0), std=(1.0, 1.0))
    with pytest.raises(InfocusInputError, match="fitted on 2 channels"):
        norm.normalize(np.zeros((3, 8, 8)))
    with pytest.raises(InfocusInputError, match="channel axis of the array must be given"):
        norm.normalize(np.zeros((2, 8, 8)), channel_axis=None)


def test_dict_round_trip_through_json(rng):
    norm = Normalizer.fit([_three_channels(rng)])
    again = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert again == norm
    assert set(norm.to_dict()) == {"mean", "std"}


@pytest.mark.parametrize(
    "bad",
    [
        None,
        {"mean": [1.0]},
        {"mean": [1.0], "std": [1.0, 2.0]},
        {"mean": ["a"], "std": [1.0]},
        {"mean": [], "std": []},
        {"mean": [0.0], "std": [-1.0]},
        {"mean": [math.nan], "std": [1.0]},
    ],
)
def test_from_dict_rejects_malformed(bad):
    with pytest.raises(InfocusInputError):
        Normalizer.from_dict(bad)


def test_constant_image_cannot_be_trained_on(rng):
    with pytest.raises(InfocusInputError, match="Channel 0 .* constant .* cannot be trained on"):
        Normalizer.fit([np.full((1, 32, 32), 500, np.uint16)])
    data = _three_channels(rng)
    data[1] = 7.0
    with pytest.raises(InfocusInputError, match="Channel 1 of the training images is constant"):
        Normalizer.fit([data])
    with pytest.raises(InfocusInputError, match="constant"):
        Normalizer.fit([np.zeros((1, 16, 16))])


def test_fit_rejects_nan_and_bad_blocks():
    data = np.ones((1, 16, 16))
    data[0, 0, :8] = 2.0
    data[0, 3, 3] = np.nan
    with pytest.raises(InfocusInputError, match="NaN or infinite"):
        Normalizer.fit([data])
    with pytest.raises(InfocusInputError, match="No training images"):
        Normalizer.fit([])
    with pytest.raises(InfocusInputError, match="different numbers of channels"):
        Normalizer.fit([np.ones((1, 8, 8)), np.ones((2, 8, 8))])
    with pytest.raises(InfocusInputError, match=r"\(C, \*spatial\)"):
        Normalizer.fit([np.ones((8, 8))])


def test_fit_on_a_large_lazy_array_reads_only_samples(rng):
    truth = rng.gamma(4.0, 25.0, (2000, 2000)).astype(np.float32) + 100.0
    source = CountingArray(truth)
    norm = Normalizer.fit(to_blocks(source, "YX"), max_pixels=100_000, rng=rng)
    assert source.elements_read < 100_000 + 128 * 128
    assert source.elements_read >= 100_000
    t = truth.astype(np.float64)
    assert norm.mean[0] == pytest.approx(t.mean(), rel=0.01)
    assert norm.std[0] == pytest.approx(t.std(), rel=0.02)
    # Seeded fits are reproducible.
    assert Normalizer.fit([truth[None]], max_pixels=50_000, rng=3) == Normalizer.fit(
        [truth[None]], max_pixels=50_000, rng=3
    )


def test_fit_on_zarr_stays_small_in_memory(tmp_path):
    shape = (8, 1024, 1024)  # ZYX, 32 MiB as float32
    z = zarr.create_array(tmp_path / "v.zarr", shape=shape, chunks=(1, 256, 256), dtype="float32")
    g = np.random.default_rng(0)
    for i in range(shape[0]):
        z[i] = g.normal(1000.0 + i, 50.0, shape[1:]).astype(np.float32)
    blocks = to_blocks(zarr.open_array(tmp_path / "v.zarr", mode="r"), "ZYX")
    tracemalloc.start()
    try:
        norm = Normalizer.fit(blocks, max_pixels=200_000, rng=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20 / 8
    assert norm.mean[0] == pytest.approx(1003.5, abs=1.0)
    # Between-plane spread adds (8^2 - 1) / 12 to the variance.
    assert norm.std[0] == pytest.approx(math.sqrt(50.0**2 + 63 / 12), rel=0.01)
