"""Trained-model format and prediction: round trips, refusals, seamless tiling, streaming."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import tiny_model
from infocus._errors import InfocusInputError, OutputExistsError
from infocus.io import read_image, write_image
from infocus.nets import create_network
from infocus.predict.model import load_model
from infocus.predict.stream import predict_file


@pytest.fixture
def image(rng):
    return (rng.poisson(30, (90, 77)) * 2 + 100).astype(np.float32)


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_save_load_round_trip_is_exact(tmp_path, image, suffix):
    model = tiny_model()
    path = model.save(tmp_path / f"model{suffix}")
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.denoise(image), model.denoise(image))
    assert loaded.history == model.history
    assert loaded.config == model.config


def test_save_refuses_existing_and_is_atomic(tmp_path):
    model = tiny_model()
    model.save(tmp_path / "m")
    with pytest.raises(OutputExistsError):
        model.save(tmp_path / "m")
    model.save(tmp_path / "m", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_pickle_files_are_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"a": torch.zeros(1)}, path)
    with pytest.raises(InfocusInputError, match="pickle"):
        load_model(path)


def test_foreign_zip_is_refused(tmp_path):
    model = tiny_model()
    good = model.save(tmp_path / "m.zip")
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        dst.writestr("payload.pkl", b"cos\nsystem\n")
    with pytest.raises(InfocusInputError, match="not an infocus model"):
        load_model(bad)


def test_wrong_format_and_corrupt_weights(tmp_path):
    model = tiny_model()
    folder = model.save(tmp_path / "m")
    weights = folder / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(InfocusInputError, match="corrupt or truncated"):
        load_model(folder)
    config = json.loads((folder / "config.json").read_text())
    config["format"] = "something-else/9"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(InfocusInputError, match="format"):
        load_model(folder)
    with pytest.raises(InfocusInputError, match="No such model"):
        load_model(tmp_path / "missing")


def wide_model(ndim: int, depth: int):
    """A model whose every output pixel is a positive average over its whole receptive field,
    so that any tile that cuts into the field changes the result visibly."""
    model = tiny_model(ndim=ndim)
    model.network = create_network("unet", ndim=ndim, in_channels=1, out_channels=1,
                                   depth=depth, base_filters=4).eval()
    model.config = model.config.with_updates(network_options={"depth": depth, "base_filters": 4})
    with torch.no_grad():
        for module in model.network.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Conv3d,
                                   torch.nn.ConvTranspose2d, torch.nn.ConvTranspose3d)):
                weight = module.weight.abs()
                module.weight.copy_(weight / weight.sum(dim=tuple(range(1, weight.ndim)),
                                                       keepdim=True))
                if module.bias is not None:
                    module.bias.zero_()
    return model


SETTINGS = st.tuples(st.integers(1, 200), st.none() | st.integers(0, 120))


@settings(max_examples=30, deadline=None)
@given(shape=st.tuples(st.integers(8, 230), st.integers(8, 230)), setting=SETTINGS,
       depth=st.sampled_from([1, 2]))
def test_tiled_equals_untiled_for_any_tile_size_and_overlap_2d(shape, setting, depth):
    model = wide_model(2, depth)
    image = np.random.default_rng(sum(shape)).poisson(30, shape).astype(np.float32) * 2 + 100
    whole = model.denoise(image, tile_size=1024, backend="torch")
    tiled = model.denoise(image, tile_size=setting[0], overlap=setting[1], backend="torch")
    assert np.abs(tiled - whole).max() <= 1e-5 * (whole.max() - whole.min())


@settings(max_examples=10, deadline=None)
@given(shape=st.tuples(st.integers(4, 40), st.integers(8, 90), st.integers(8, 90)),
       setting=SETTINGS)
def test_tiled_equals_untiled_for_any_tile_size_and_overlap_3d(shape, setting):
    model = wide_model(3, 1)
    image = np.random.default_rng(sum(shape)).poisson(30, shape).astype(np.float32) * 2 + 100
    whole = model.denoise(image, axes="ZYX", tile_size=1024, backend="torch")
    tiled = model.denoise(image, axes="ZYX", tile_size=setting[0], overlap=setting[1],
                          backend="torch")
    assert np.abs(tiled - whole).max() <= 1e-5 * (whole.max() - whole.min())


def test_tiles_that_cut_into_the_receptive_field_would_change_the_result(rng):
    # The check above can fail: the same model, tiled with a blending margin below its
    # receptive radius (as a user's small overlap gave before it was raised), differs.
    from infocus.predict.tiling import tiled_apply

    model = wide_model(2, 2)
    image = (rng.poisson(30, (200, 131)) * 2 + 100).astype(np.float32)[None]
    network = model.network

    def run(batch):
        with torch.no_grad():
            return network(torch.from_numpy(batch)).numpy()

    whole = run(np.pad(image, ((0, 0), (0, 0), (0, 1)), mode="reflect")[None])[0, :, :, :131]
    cut = tiled_apply(image, run, tile_shape=64, overlap=16, multiple=4, margin=7)
    assert np.abs(cut - whole).max() > 1e-3 * (whole.max() - whole.min())


def test_raised_tile_size_is_reported(rng):
    model = tiny_model()
    image = (rng.poisson(30, (200, 131)) * 2 + 100).astype(np.float32)
    model.denoise(image, tile_size=16, overlap=4)
    (line,) = model.report()
    assert "tile size from 16" in line and "overlap from 4" in line
    model.denoise(image)
    assert model.report() == []


def test_stack_axes_and_channels(rng):
    model = tiny_model()
    stack = (rng.poisson(30, (3, 2, 40, 48)) * 2 + 100).astype(np.float32)
    out = model.denoise(stack, axes="TCYX")
    assert out.shape == stack.shape and out.dtype == np.float32
    np.testing.assert_allclose(out[1, 0], model.denoise(stack[1, 0]), rtol=1e-5, atol=1e-3)


def test_joint_channels_need_matching_count(rng):
    model = tiny_model(channels=2, joint=True)
    image = (rng.poisson(30, (2, 40, 40)) * 2 + 100).astype(np.float32)
    assert model.denoise(image, axes="CYX").shape == image.shape
    with pytest.raises(InfocusInputError, match="expects 2 channels"):
        model.denoise(np.concatenate([image, image[:1]]), axes="CYX")


def test_tta_is_symmetric(rng):
    model = tiny_model()
    image = (rng.poisson(30, (64, 64)) * 2 + 100).astype(np.float32)
    out = model.denoise(image, tta=True)
    flipped = model.denoise(image[:, ::-1].copy(), tta=True)
    np.testing.assert_allclose(flipped[:, ::-1], out, rtol=1e-4, atol=1e-3)
    # N2V's default predicts once (the method's default, prediction_tta, is off)
    np.testing.assert_array_equal(model.denoise(image), model.denoise(image, tta=False))
    assert np.abs(model.denoise(image) - out).max() > 0


def test_tta_keeps_the_row_direction_for_a_model_trained_without_turns(rng):
    """A model that hid a line along X was trained without 90° turns: TTA averages the four
    flips only, so a transposed image is *not* treated like the original."""
    model = tiny_model()
    model.config = model.config.with_updates(
        scheme_options={"blind_spot": [[0, -1], [0, 1]], "fraction": 0.02}
    )
    assert not model.rotation_invariant
    image = (rng.poisson(30, (64, 64)) * 2 + 100).astype(np.float32)
    out = model.denoise(image, tta=True)
    flips = [(), (0,), (1,), (0, 1)]
    expected = np.mean(
        [np.flip(model.denoise(np.flip(image, f).copy()), f) for f in flips], axis=0
    )
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-3)
    rotated = model.denoise(image.T.copy(), tta=True)
    assert np.abs(rotated.T - out).max() > 1e-2


def test_bad_inputs(rng):
    model = tiny_model()
    bad = np.ones((40, 40), np.float32)
    bad[2, 2] = np.nan
    with pytest.raises(InfocusInputError, match="NaN"):
        model.denoise(bad)
    with pytest.raises(InfocusInputError, match="lack"):
        tiny_model(ndim=3).denoise(np.ones((40, 40), np.float32), axes="YX")


def test_zarr_streaming_equals_in_memory(tmp_path, rng):
    model = tiny_model()
    stack = (rng.poisson(30, (4, 70, 90)) * 2 + 100).astype(np.float32)
    source = write_image(tmp_path / "in.zarr", stack, axes="TYX")
    out = predict_file(model, source, tmp_path / "out.zarr")
    streamed = read_image(out)
    assert streamed.axes == "TYX"
    np.testing.assert_allclose(streamed.data, model.denoise(stack, axes="TYX"), rtol=1e-6)


def test_streaming_failure_leaves_nothing(tmp_path, rng, monkeypatch):
    model = tiny_model()
    stack = (rng.poisson(30, (3, 40, 40)) * 2 + 100).astype(np.float32)
    source = write_image(tmp_path / "in.zarr", stack, axes="TYX")
    calls = {"n": 0}
    original = model.network.forward

    def dies_on_second_block(x):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        return original(x)

    monkeypatch.setattr(model.network, "forward", dies_on_second_block)
    with pytest.raises(KeyboardInterrupt):
        predict_file(model, source, tmp_path / "out.zarr", backend="torch")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.zarr"]


def test_inference_network_is_reused_until_the_weights_change(rng):
    model = tiny_model()
    image = (rng.poisson(30, (40, 48)) * 2 + 100).astype(np.float32)
    first = model.denoise(image, backend="torch")
    folded = model._inference_cache[1]
    again = model.denoise(image, backend="torch")
    assert model._inference_cache[1] is folded
    np.testing.assert_array_equal(again, first)
    with torch.no_grad():  # an in-place update, as an optimizer step makes
        next(model.network.parameters()).add_(0.5)
    changed = model.denoise(image, backend="torch")
    assert model._inference_cache[1] is not folded
    assert not np.array_equal(changed, first)


def test_inference_network_is_rebuilt_when_a_module_setting_changes(rng):
    model = tiny_model()
    image = (rng.poisson(30, (40, 48)) * 2 + 100).astype(np.float32)
    first = model.denoise(image, backend="torch")
    folded = model._inference_cache[1]
    convolution = next(m for m in model.network.modules() if isinstance(m, torch.nn.Conv2d))
    convolution.padding_mode = "reflect"  # not a tensor: the weights are untouched
    changed = model.denoise(image, backend="torch")
    assert model._inference_cache[1] is not folded
    assert not np.array_equal(changed, first)


def test_automatic_tiles_share_the_memory_budget_only_with_tiles_of_the_same_batch():
    from infocus.predict.model import _bytes_per_voxel, _tiling

    network = create_network("unet", ndim=2, depth=2, base_filters=16)
    # Memory for one 1024² tile in the batch budget (an eighth of it), not for four.
    memory = 8 * _bytes_per_voxel(network) * 1024**2
    tile, overlaps, _, notes = _tiling(network, (1024, 1024), tile_size=None, overlap=None,
                                       batch_size=4, memory=memory)
    assert tile == (1024, 1024) and overlaps == (0, 0) and notes == []
    # A larger image needs several tiles; four of them then share the budget.
    tile, overlaps, _, _ = _tiling(network, (4096, 4096), tile_size=None, overlap=None,
                                   batch_size=4, memory=memory)
    assert max(tile) <= 512 and min(overlaps) > 0


def test_a_given_tile_size_never_measures_memory():
    from infocus.predict.model import _tiling

    def memory():
        raise AssertionError("free memory was read although the tile size was given")

    network = create_network("unet", ndim=2, depth=2, base_filters=8)
    tile, _, _, _ = _tiling(network, (300, 300), tile_size=128, overlap=None, batch_size=4,
                            memory=memory)
    assert tile == (128, 128)
