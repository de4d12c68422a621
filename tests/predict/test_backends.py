"""Prediction backends: ONNX Runtime gives PyTorch's output, falls back cleanly, is cached."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infocus._errors import InfocusInputError
from infocus.intensity.normalize import Normalizer
from infocus.methods.config import default_config
from infocus.nets import create_network, fused_for_inference
from infocus.predict import backends
from infocus.predict.backends import make_runner, onnx_available, tta
from infocus.predict.model import TrainedModel

needs_onnx = pytest.mark.skipif(not onnx_available(), reason="onnx/onnxruntime not installed "
                                "(pip install 'infocus[onnx]')")


def _model(name: str = "unet", ndim: int = 2) -> TrainedModel:
    torch.manual_seed(0)
    network = create_network(name, ndim=ndim, depth=2, base_filters=8)
    with torch.no_grad():  # non-trivial batch-norm statistics, folded at prediction
        for module in network.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    network.eval()
    norm = Normalizer(mean=(100.0,), std=(20.0,))
    return TrainedModel(network=network, config=default_config("n2v"),
                        spatial="ZYX" if ndim == 3 else "YX", input_norm=norm, target_norm=norm)


@needs_onnx
@pytest.mark.parametrize(("name", "ndim", "shape", "axes"), [
    ("unet", 2, (70, 93), "YX"),
    ("unet_n2v2", 2, (64, 80), "YX"),  # blur pooling exports too
    ("unet", 3, (12, 40, 36), "ZYX"),
])
def test_onnxruntime_matches_torch(rng, name, ndim, shape, axes):
    model = _model(name, ndim)
    image = (rng.poisson(30, shape) * 2 + 100).astype(np.float32)
    reference = model.denoise(image, axes=axes, backend="torch")
    assert model.last_backend == "torch"
    fast = model.denoise(image, axes=axes, backend="onnxruntime")
    assert model.last_backend == "onnxruntime"
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-3)
    model.denoise(image, axes=axes)  # auto: small images are faster without the export
    assert model.last_backend == "torch"


@needs_onnx
def test_auto_uses_onnxruntime_for_large_inputs(monkeypatch, rng):
    monkeypatch.setattr("infocus.predict.model.ONNX_MIN_PIXELS", 64 * 64)
    model = _model()
    model.denoise((rng.poisson(30, (64, 64)) * 2 + 100).astype(np.float32))
    assert model.last_backend == "onnxruntime"
    model.denoise((rng.poisson(30, (32, 64)) * 2 + 100).astype(np.float32))
    assert model.last_backend == "torch"


@needs_onnx
def test_the_exported_session_is_reused_until_the_weights_change(rng, monkeypatch):
    model = _model()
    image = (rng.poisson(30, (48, 48)) * 2 + 100).astype(np.float32)
    built = []
    original = backends._onnx_runner

    def counting(*args, **kwargs):
        built.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(backends, "_onnx_runner", counting)
    first = model.denoise(image, backend="onnxruntime")
    model.denoise(image, backend="onnxruntime")
    assert len(built) == 1
    with torch.no_grad():  # e.g. one more optimizer step
        next(model.network.parameters()).add_(0.5)
    second = model.denoise(image, backend="onnxruntime")
    assert len(built) == 2
    assert np.abs(second - first).max() > 1e-3


def test_auto_falls_back_to_torch_when_the_export_fails(rng, monkeypatch):
    model = _model()
    image = (rng.poisson(30, (48, 48)) * 2 + 100).astype(np.float32)

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(backends, "_onnx_runner", broken)
    monkeypatch.setattr(backends, "onnx_available", lambda: True)
    monkeypatch.setattr("infocus.predict.model.ONNX_MIN_PIXELS", 1)
    with pytest.warns(RuntimeWarning, match="predicting with PyTorch"):
        model.denoise(image)
    assert model.last_backend == "torch"
    model._runner_cache = None
    with pytest.raises(InfocusInputError, match="could not be exported"):
        model.denoise(image, backend="onnxruntime")


def test_backend_errors(monkeypatch):
    network = fused_for_inference(create_network("unet", ndim=2, base_filters=8))
    with pytest.raises(InfocusInputError, match="Unknown backend"):
        make_runner(network, device=torch.device("cpu"), ndim=2, backend="tensorrt")
    monkeypatch.setattr(backends, "onnx_available", lambda: False)
    with pytest.raises(InfocusInputError, match=r"pip install 'infocus\[onnx\]'"):
        make_runner(network, device=torch.device("cpu"), ndim=2, backend="onnxruntime")
    _, used = make_runner(network, device=torch.device("cpu"), ndim=2, backend="auto")
    assert used == "torch"


def test_tta_averages_the_symmetries_it_is_told_to():
    batch = np.arange(2 * 1 * 6 * 6, dtype=np.float32).reshape(2, 1, 6, 6)

    def transpose_only(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.swapaxes(x, -1, -2))  # not equivariant to turns

    eight = tta(transpose_only, batch)
    four = tta(transpose_only, batch, rotations=False)
    # Flips and the 180° turn map the transpose to the anti-transpose and back: mean of the two.
    # (the conjugates of a diagonal reflection in the square's group are the two diagonal
    # reflections, four times each, so the 8-fold mean is the same here).
    anti = np.ascontiguousarray(np.rot90(np.swapaxes(batch, -1, -2), 2, axes=(-2, -1)))
    expected = (np.swapaxes(batch, -1, -2) + anti) / 2
    np.testing.assert_allclose(four, expected)
    np.testing.assert_allclose(eight, expected)
    identity = tta(lambda x: x.copy(), batch)
    np.testing.assert_array_equal(identity, batch)


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("Failed to allocate memory")])
def test_running_out_of_memory_is_one_clear_error(rng, monkeypatch, error):
    model = _model()
    image = (rng.poisson(30, (48, 48)) * 2 + 100).astype(np.float32)

    def exhausted(*args, **kwargs):
        def run(batch):
            raise error
        return run, "torch"

    monkeypatch.setattr("infocus.predict.model.make_runner", exhausted)
    with pytest.raises(InfocusInputError, match="Out of memory predicting .* smaller --tile-size"):
        model.denoise(image)
