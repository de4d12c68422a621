"""RCAN: shapes in 2-D and 3-D, the local channel attention, an exact receptive radius,
tiled == untiled prediction, saving and loading, and ONNX."""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest
import torch

from infocus._errors import InfocusInputError
from infocus.intensity.normalize import Normalizer
from infocus.methods.config import default_config
from infocus.nets import (
    RCAN,
    channels_last,
    count_parameters,
    create_network,
    fused_for_inference,
    network_kind,
)
from infocus.nets import rcan as rcan_module
from infocus.nets.rcan import local_mean
from infocus.predict.backends import make_runner, onnx_available
from infocus.predict.model import TrainedModel, load_model

SMALL = {"num_channels": 8, "residual_groups": 2, "residual_blocks": 1, "attention_window": 5}


def rcan_model(ndim: int = 2, seed: int = 0, **options) -> TrainedModel:
    """An untrained Noise2Noise model with a small RCAN (random weights, so every layer
    matters)."""
    options = {**SMALL, **options}
    torch.manual_seed(seed)
    network = create_network("rcan", ndim=ndim, **options).eval()
    norm = Normalizer(mean=(100.0,), std=(20.0,))
    return TrainedModel(network=network, config=default_config("n2n").with_network("rcan", options),
                        spatial="ZYX" if ndim == 3 else "YX", input_norm=norm, target_norm=norm,
                        history=[{"epoch": 1}], provenance={"seed": 0})


def test_the_docstring_examples_run():
    assert doctest.testmod(rcan_module).failed == 0


@pytest.mark.parametrize(("ndim", "shape"), [(2, (2, 3, 37, 20)), (3, (1, 3, 5, 18, 11))])
def test_output_has_the_input_shape_for_any_size(ndim, shape):
    network = create_network("rcan", ndim=ndim, in_channels=3, out_channels=2, **SMALL)
    out = network(torch.rand(shape))
    assert out.shape == (shape[0], 2, *shape[2:])
    assert torch.isfinite(out).all()
    assert network.size_multiple == 1
    assert network_kind("rcan") == "image-to-image"


def test_config_rebuilds_the_same_network():
    network = create_network("rcan", ndim=3, num_channels=16, attention_window=9)
    again = create_network("rcan", **network.config)
    again.load_state_dict(network.state_dict())
    x = torch.rand(1, 1, 6, 12, 12)
    torch.testing.assert_close(again(x), network(x))
    assert again.config == network.config


def test_defaults_and_the_papers_sizes():
    default = RCAN()
    assert (default.config["residual_groups"], default.config["residual_blocks"],
            default.config["num_channels"]) == (3, 2, 32)
    assert default.receptive_radius == 3 + 3 * (2 * (2 + 15) + 1) == 108
    paper = RCAN(residual_groups=5, residual_blocks=3)
    assert paper.receptive_radius == 263
    assert paper.receptive_field == 2 * 263 + 1
    convs = 2 * 15 + 5 + 1  # block convs, group convs, the body's closing conv
    attention = 15 * (32 * 4 + 4 + 4 * 32 + 32)
    expected = (9 * 32 + 32) + convs * (9 * 32 * 32 + 32) + attention + (9 * 32 + 1)
    assert count_parameters(paper) == expected


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"attention_window": 32}, "odd"),
        ({"attention_window": 0}, "attention_window"),
        ({"residual_groups": 0}, "residual_groups"),
        ({"num_channels": 2.5}, "num_channels"),
        ({"residual_scaling": 0}, "residual_scaling"),
        ({"ndim": 1}, "ndim"),
        ({"base_filters": 16}, "no option 'base_filters'"),
    ],
)
def test_invalid_options_are_refused(options, match):
    with pytest.raises(InfocusInputError, match=match):
        create_network("rcan", **options)


def test_wrong_input_is_refused():
    network = create_network("rcan", **SMALL)
    with pytest.raises(InfocusInputError, match="input channel"):
        network(torch.rand(1, 2, 16, 16))
    with pytest.raises(InfocusInputError, match=r"\(B, C, H, W\)"):
        network(torch.rand(16, 16))


@pytest.mark.parametrize(("shape", "window"), [((2, 3, 9, 14), 5), ((1, 2, 4, 7, 6), 3),
                                              ((1, 1, 3, 5, 4), 31)])
def test_local_mean_is_the_box_mean_inside_the_image(shape, window):
    x = torch.rand(shape, dtype=torch.float64)
    half = window // 2
    expected = torch.empty_like(x)
    for position in itertools.product(*(range(n) for n in shape[2:])):
        box = tuple(slice(max(0, p - half), p + half + 1) for p in position)
        expected[(..., *position)] = x[(..., *box)].mean(dim=tuple(range(2, x.ndim)))
    torch.testing.assert_close(local_mean(x, window), expected)


def _changed_reach(network: torch.nn.Module, shape: tuple[int, ...], where: tuple[int, ...]
                   ) -> int:
    """Farthest output pixel (Chebyshev distance) that changes when the input pixel ``where``
    changes."""
    x = torch.rand(1, 1, *shape, dtype=torch.float64)
    bumped = x.clone()
    bumped[(0, 0, *where)] += 5.0
    with torch.no_grad():
        changed = (network(bumped) != network(x))[0, 0]
    positions = torch.nonzero(changed)
    return int((positions - torch.tensor(where)).abs().max(dim=1).values.max())


@pytest.mark.parametrize(("ndim", "options", "shape"), [
    (2, SMALL, (48, 45)),
    (2, {**SMALL, "residual_groups": 1, "residual_blocks": 2, "attention_window": 7}, (40, 40)),
    (3, {**SMALL, "residual_groups": 1, "attention_window": 3}, (16, 17, 15)),
])
def test_receptive_radius_is_exact(ndim, options, shape):
    # Farther than the radius nothing changes; at the radius something does (it is tight).
    torch.manual_seed(1)
    network = create_network("rcan", ndim=ndim, **options).double().eval()
    with torch.no_grad():  # keep the attention's ReLU open so every path carries a change
        for module in network.modules():
            if isinstance(module, rcan_module.LocalChannelAttention):
                module.reduce.bias.fill_(1.0)
    radius = network.receptive_radius
    assert all(n >= 2 * radius + 2 for n in shape)  # the change can reach past the radius
    assert _changed_reach(network, shape, tuple(n // 2 for n in shape)) == radius


@pytest.mark.parametrize(("shape", "tile_size", "overlap"), [
    ((100, 83), 54, None),
    ((100, 83), 1, 0),  # raised to the minimum that keeps the result exact
    ((130, 61), 60, 40),
])
def test_tiled_equals_untiled_2d(rng, shape, tile_size, overlap):
    model = rcan_model(2)
    image = (rng.poisson(30, shape) * 2 + 100).astype(np.float32)
    whole = model.denoise(image, tile_size=1024, backend="torch")
    tiled = model.denoise(image, tile_size=tile_size, overlap=overlap, backend="torch")
    assert np.abs(tiled - whole).max() <= 1e-5 * (whole.max() - whole.min())
    if tile_size == 1:
        assert "Raised the tile size" in " ".join(model.report())


def test_tiled_equals_untiled_3d(rng):
    model = rcan_model(3, residual_groups=1, attention_window=3)
    image = (rng.poisson(30, (20, 40, 37)) * 2 + 100).astype(np.float32)
    whole = model.denoise(image, axes="ZYX", tile_size=1024, backend="torch")
    tiled = model.denoise(image, axes="ZYX", tile_size=16, backend="torch")
    assert "Raised" in " ".join(model.report())  # tiles of 2 * (2r + 1) = 26 at least
    assert np.abs(tiled - whole).max() <= 1e-5 * (whole.max() - whole.min())


def test_global_attention_would_depend_on_the_tile(rng):
    # Why the attention is local: with a window covering the whole image (as the paper's
    # global pooling does) but the radius of a small window declared, tiling changes the result.
    model = rcan_model(2)
    # a dim half and a bright half: tiles see other averages than the whole image
    image = (rng.poisson(np.where(np.arange(90) < 45, 10, 200), (120, 90)) * 2 + 100
             ).astype(np.float32)
    with torch.no_grad():  # a gate that reacts more to its input than a random one does
        for module in model.network.modules():
            if isinstance(module, rcan_module.LocalChannelAttention):
                module.reduce.weight.mul_(5.0)
                module.expand.weight.mul_(5.0)
    whole = model.denoise(image, tile_size=1024, backend="torch")
    for module in model.network.modules():
        if isinstance(module, rcan_module.LocalChannelAttention):
            module.window = 2 * 120 + 1  # every pixel averages the whole tile
    whole_global = model.denoise(image, tile_size=1024, backend="torch")
    tiled_global = model.denoise(image, tile_size=60, backend="torch")
    assert np.abs(whole_global - whole).max() > 0
    # ten times what exact tiling allows (the tests above)
    assert np.abs(tiled_global - whole_global).max() > 1e-4 * (whole.max() - whole.min())


@pytest.mark.parametrize("suffix", ["", ".zip"])
def test_save_load_round_trip(tmp_path, rng, suffix):
    model = rcan_model(2)
    image = (rng.poisson(30, (50, 41)) * 2 + 100).astype(np.float32)
    loaded = load_model(model.save(tmp_path / f"rcan{suffix}"))
    assert isinstance(loaded.network, RCAN)
    assert loaded.network.config == model.network.config
    assert loaded.config.network == "rcan"
    np.testing.assert_array_equal(loaded.denoise(image, backend="torch"),
                                  model.denoise(image, backend="torch"))


@pytest.mark.parametrize("ndim", [2, 3])
def test_fused_and_channels_last_give_the_same_output(ndim):
    network = create_network("rcan", ndim=ndim, **SMALL).eval()
    x = torch.rand(2, 1, *((6,) if ndim == 3 else ()), 20, 19)
    with torch.no_grad():
        expected = network(x)
        fused = channels_last(fused_for_inference(network), ndim)
        got = fused(channels_last(x, ndim))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


needs_onnx = pytest.mark.skipif(not onnx_available(), reason="onnx/onnxruntime not installed "
                                "(pip install 'infocus[onnx]')")


@needs_onnx
@pytest.mark.parametrize(("ndim", "shape"), [(2, (2, 1, 45, 38)), (3, (1, 1, 4, 21, 18))])
def test_onnxruntime_runs_rcan_like_torch(ndim, shape):
    # Sizes other than the traced one, and a 3-D axis shorter than the attention window.
    network = create_network("rcan", ndim=ndim, **SMALL).eval()
    run, used = make_runner(network, device=torch.device("cpu"), ndim=ndim,
                            backend="onnxruntime")
    assert used == "onnxruntime"
    batch = np.random.default_rng(0).random(shape, dtype=np.float32)
    with torch.no_grad():
        expected = network(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(run(batch), expected, rtol=1e-4, atol=1e-5)


@needs_onnx
def test_export_to_onnx_gives_the_prediction(tmp_path, rng):
    import onnxruntime as ort

    from infocus.export import EXPORT_TOLERANCE, export_model

    model = rcan_model(2)
    image = (rng.poisson(30, (48, 40)) * 2 + 100).astype(np.float32)
    expected = model.denoise(image, backend="torch")
    export_model(model, tmp_path / "rcan.onnx")
    session = ort.InferenceSession((tmp_path / "rcan.onnx").read_bytes(),
                                   providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": image[None, None]})[0][0, 0]
    np.testing.assert_allclose(got, expected, rtol=0,
                               atol=EXPORT_TOLERANCE * float(np.abs(expected).max()))
