"""bfloat16 mixed precision: when it is chosen, what it computes, and that results stay close."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infocus._errors import InfocusInputError
from infocus.methods.config import TrainingConfig, default_config
from infocus.metrics import psnr
from infocus.nets import create_network
from infocus.nets.precision import as_float32, autocast, native_bfloat16, resolve_precision
from infocus.training.loop import train


def test_auto_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert resolve_precision("auto", "cpu") == "bfloat16"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert resolve_precision("auto", "cpu") == "float32"
    assert not native_bfloat16("meta")
    # An explicit choice is kept whatever the hardware.
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    assert resolve_precision("float32", "cpu") == "float32"


def test_a_missing_cpu_query_means_float32(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert resolve_precision("auto", "cpu") == "float32"


@pytest.mark.parametrize("bad", ["fp16", "half", ""])
def test_unknown_precision_is_refused(bad):
    with pytest.raises(InfocusInputError, match="precision must be"):
        resolve_precision(bad, "cpu")
    with pytest.raises(InfocusInputError, match="precision must be"):
        TrainingConfig(method="n2v", precision=bad)


def test_autocast_runs_convolutions_in_bfloat16_and_hands_back_float32():
    network = create_network("unet", ndim=2, depth=2, base_filters=8).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.inference_mode():
        with autocast("bfloat16", "cpu"):
            low = network(x)
        with autocast("float32", "cpu"):
            full = network(x)
    assert low.dtype == torch.bfloat16 and full.dtype == torch.float32
    assert as_float32((low, {"a": low}))[1]["a"].dtype == torch.float32
    # bfloat16 keeps 8 mantissa bits: close to float32, but not equal.
    difference = (low.float() - full).abs().max() / full.abs().max()
    assert 0 < difference < 0.05


def _train(noisy, precision, steps=150):
    config = default_config("n2v").with_updates(
        network_options={"depth": 2, "base_filters": 8}, patch_size=32, batch_size=8,
        steps=steps, steps_per_epoch=50, validation_patches=4, learning_rate=4e-3,
        precision=precision)
    return train(noisy, axes="SYX", config=config, progress=False, log=lambda m: None)


@pytest.mark.slow  # where bfloat16 is emulated (no AMX) its 150 steps take minutes
def test_bfloat16_training_denoises_as_well_as_float32(noisy_stack):
    noisy, clean = noisy_stack
    scores = {}
    for precision in ("float32", "bfloat16"):
        model = _train(noisy, precision)
        assert model.provenance["precision"] == precision
        assert model.config.precision == precision
        out = model.denoise(noisy, axes="SYX")
        scores[precision] = np.mean([psnr(out[i], clean[i]) for i in range(3)])
    noisy_psnr = np.mean([psnr(noisy[i], clean[i]) for i in range(3)])
    assert scores["bfloat16"] > noisy_psnr + 5, scores
    assert abs(scores["bfloat16"] - scores["float32"]) < 0.5, scores


def test_bfloat16_training_is_reproducible(noisy_stack):
    noisy, _ = noisy_stack
    first, second = (_train(noisy, "bfloat16", steps=10) for _ in range(2))
    for name, value in first.network.state_dict().items():
        assert torch.equal(value, second.network.state_dict()[name]), name


def test_a_float32_only_method_refuses_bfloat16_and_resolves_auto_to_float32(noisy_stack):
    from infocus.methods import create_scheme
    from infocus.training.loop import _training_precision

    divnoising = create_scheme("divnoising")
    config = default_config("divnoising")
    assert _training_precision(config, divnoising, torch.device("cpu")) == "float32"
    with pytest.raises(InfocusInputError, match="divnoising trains in float32 only"):
        _training_precision(config.with_updates(precision="bfloat16"), divnoising,
                            torch.device("cpu"))
