"""UNet and its blocks: shapes, gradients, rebuilds, N2V2 switches, equivariance, receptive field."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from infocus._errors import InfocusInputError
from infocus.nets import UNet, create_network, list_networks
from infocus.nets.blocks import BlurPool, MaxBlurPool, dense_max, max_pool

#: Tiny networks keep the suite fast; the architecture logic is the same at any width.
TINY = {"depth": 2, "base_filters": 8}
SHAPES = {2: (32, 32), 3: (16, 32, 32)}
CASES = [(name, ndim) for name in list_networks() if name.startswith("unet") for ndim in (2, 3)]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(20261125)


def _tiny(name: str, ndim: int, **kwargs) -> UNet:
    model = create_network(name, ndim=ndim, **{**TINY, **kwargs})
    assert isinstance(model, UNet)
    return model


def _calibrated(model: UNet, x: torch.Tensor) -> UNet:
    """Set every batch norm to the exact statistics of ``x`` and switch to evaluation mode.

    A freshly initialised network in evaluation mode shrinks its signal by ~1000x (unit running
    variances, default initialisation); calibrated, its output varies on the order of 0.3, so an
    absolute tolerance of 1e-5 is a real constraint.
    """
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d | nn.BatchNorm3d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one pass gives the exact statistics
    model.train()
    with torch.no_grad():
        model(x)
    return model.eval()


def _convs(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Conv3d)]


# --- shapes, gradients, rebuilding ---------------------------------------------------------


@pytest.mark.parametrize(("name", "ndim"), CASES)
def test_output_shape_finite_and_gradients_reach_every_parameter(name, ndim):
    model = _tiny(name, ndim, in_channels=2, out_channels=3)
    x = torch.rand(2, 2, *SHAPES[ndim])
    y = model(x)
    assert y.shape == (2, 3, *SHAPES[ndim])
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    for pname, param in model.named_parameters():
        assert param.grad is not None, pname
        assert torch.isfinite(param.grad).all(), pname
        assert param.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("ndim", [2, 3])
def test_without_batch_norm_there_are_no_norm_layers_and_gradients_flow(ndim):
    model = _tiny("unet", ndim, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm2d | nn.BatchNorm3d) for m in model.modules())
    assert isinstance(model.encoder[0].norm1, nn.Identity)
    assert isinstance(model.decoder[0].norm2, nn.Identity)
    model(torch.rand(1, 1, *SHAPES[ndim])).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize(("name", "ndim"), CASES)
def test_rebuild_from_name_and_config_reproduces_outputs(name, ndim):
    model = _tiny(name, ndim)
    x = torch.rand(2, 1, *SHAPES[ndim])
    model(x)  # one training-mode pass moves the batch-norm running statistics
    model.eval()
    again = create_network(name, **model.config)
    assert again.config == model.config
    again.load_state_dict(model.state_dict())
    again.eval()
    with torch.inference_mode():
        assert torch.equal(model(x), again(x))
    # a fresh network is initialised differently, so the equality above is not vacuous
    with torch.inference_mode():
        assert not torch.equal(create_network(name, **model.config).eval()(x), model(x))


def test_config_is_a_copy():
    model = _tiny("unet", 2)
    config = model.config
    config["depth"] = 5
    assert model.config["depth"] == 2


# --- residual ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "ndim"), CASES)
def test_residual_network_with_zeroed_head_is_the_identity(name, ndim):
    model = _tiny(name, ndim, residual=True, in_channels=2, out_channels=2).eval()
    plain = _tiny(name, ndim, residual=False, in_channels=2, out_channels=2).eval()
    x = torch.rand(1, 2, *SHAPES[ndim])
    with torch.no_grad():
        for net in (model, plain):
            net.head.weight.zero_()
            net.head.bias.zero_()
        assert torch.equal(model(x), x)
        assert torch.equal(plain(x), torch.zeros_like(x))


def test_residual_needs_equal_channel_counts():
    with pytest.raises(InfocusInputError, match=r"in_channels \(1\) must equal out_channels \(2\)"):
        UNet(residual=True, in_channels=1, out_channels=2)


# --- input checks --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "ndim"), CASES)
def test_spatial_size_not_a_multiple_is_refused_with_the_fix(name, ndim):
    model = _tiny(name, ndim)
    shape = list(SHAPES[ndim])
    shape[-1] += 2
    with pytest.raises(InfocusInputError, match="multiple of 4.*pad.*tiled prediction"):
        model(torch.rand(1, 1, *shape))


def test_dimensionality_and_channel_mismatch_are_refused():
    model_2d, model_3d = _tiny("unet", 2), _tiny("unet", 3)
    with pytest.raises(InfocusInputError, match=r"\(B, C, H, W\)"):
        model_2d(torch.rand(1, 1, 8, 32, 32))
    with pytest.raises(InfocusInputError, match=r"\(B, C, D, H, W\)"):
        model_3d(torch.rand(1, 1, 32, 32))
    with pytest.raises(InfocusInputError, match=r"\(B, C, H, W\)"):
        model_2d(torch.rand(32, 32))
    with pytest.raises(InfocusInputError, match="1 input channel"):
        model_2d(torch.rand(1, 3, 32, 32))


@settings(max_examples=25, deadline=None)
@given(height=st.integers(1, 24), width=st.integers(1, 24))
def test_accepts_exactly_the_multiples_of_size_multiple(height, width):
    model = UNet(depth=2, base_filters=2).eval()
    assert model.size_multiple == 4
    x = torch.rand(1, 1, height, width)
    if height % 4 or width % 4:
        with pytest.raises(InfocusInputError, match="multiple of 4"):
            model(x)
    else:
        with torch.inference_mode():
            assert model(x).shape == x.shape


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_size_multiple_is_two_to_the_depth(depth):
    assert UNet(depth=depth, base_filters=2).size_multiple == 2**depth


# --- N2V2 switches -------------------------------------------------------------------------


@pytest.mark.parametrize("ndim", [2, 3])
def test_skip_top_false_removes_the_full_resolution_skip(ndim):
    seen: dict[str, int] = {}

    def record(name):
        def hook(module, inputs):
            seen[name] = inputs[0].shape[1]

        return hook

    base = TINY["base_filters"]
    for name in ("unet", "unet_n2v2"):
        model = _tiny(name, ndim)
        model.decoder[0].register_forward_pre_hook(record(name))
        model(torch.rand(2, 1, *SHAPES[ndim]))
        assert model.decoder[0].in_channels == seen[name]
    assert seen == {"unet": 2 * base, "unet_n2v2": base}
    # the deeper skip connection is kept in both
    assert _tiny("unet", ndim).decoder[1].in_channels == 4 * base
    assert _tiny("unet_n2v2", ndim).decoder[1].in_channels == 4 * base


def test_skip_top_false_makes_the_output_independent_of_the_top_encoder_features():
    # Without the top skip, the top encoder block reaches the output only through pooling; so
    # a perturbation of its output that pooling ignores (a non-maximal value) changes nothing.
    model = UNet(depth=1, base_filters=4, skip_top=False, batch_norm=False).eval()
    with_skip = UNet(depth=1, base_filters=4, skip_top=True, batch_norm=False).eval()
    x = torch.rand(1, 1, 16, 16)
    outputs = {}
    for label, net in (("no_skip", model), ("skip", with_skip)):
        features = net.encoder[0](x)
        pooled_argmax = nn.functional.max_pool2d(features, 2, return_indices=True)[1]
        mask = torch.ones_like(features).flatten(2)
        mask.scatter_(2, pooled_argmax.flatten(2), 0.0)
        handle = net.encoder[0].register_forward_hook(
            lambda module, inputs, out, mask=mask: out - 0.5 * mask.view_as(out) * out.abs()
        )
        with torch.no_grad():
            perturbed = net(x)
        handle.remove()
        with torch.no_grad():
            clean = net(x)
        outputs[label] = ((clean - perturbed).abs().max() / clean.std()).item()
    assert outputs["no_skip"] == 0.0
    assert outputs["skip"] > 0.05  # relative to the output's own spread


def test_blur_pool_switch_selects_max_blur_pooling():
    assert all(isinstance(p, MaxBlurPool) for p in UNet(blur_pool=True).pools)
    assert all(isinstance(p, nn.MaxPool2d) for p in UNet(blur_pool=False).pools)
    assert all(isinstance(p, nn.MaxPool3d) for p in UNet(ndim=3, base_filters=2).pools)


# --- BlurPool ------------------------------------------------------------------------------


@pytest.mark.parametrize("ndim", [2, 3])
def test_blur_kernel_is_a_normalised_binomial_buffer(ndim):
    pool = BlurPool(ndim)
    kernel = pool.kernel
    assert kernel.shape == (1, 1) + (3,) * ndim
    assert kernel.sum().item() == pytest.approx(1.0, abs=1e-7)
    taps = torch.tensor([1.0, 2.0, 1.0]) / 4
    expected = taps[:, None] * taps if ndim == 2 else taps[:, None, None] * taps[:, None] * taps
    assert torch.allclose(kernel[0, 0], expected)
    assert list(pool.parameters()) == []
    assert "kernel" in dict(pool.named_buffers())
    assert pool.state_dict() == {}


@settings(max_examples=30, deadline=None)
@given(
    ndim=st.sampled_from([2, 3]),
    half=st.lists(st.integers(1, 6), min_size=3, max_size=3),
    value=st.floats(-1e3, 1e3, allow_nan=False),
    mode=st.sampled_from(["reflect", "replicate"]),
)
def test_blur_pool_halves_even_sizes_and_preserves_constants(ndim, half, value, mode):
    shape = tuple(2 * h for h in half[:ndim])
    x = torch.full((2, 3, *shape), value, dtype=torch.float64)
    for pool in (BlurPool(ndim, padding_mode=mode), MaxBlurPool(ndim, padding_mode=mode)):
        y = pool(x)
        assert y.shape == (2, 3, *half[:ndim])
        assert torch.allclose(y, torch.full_like(y, value), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("ndim", [2, 3])
def test_blur_pool_with_known_channels_gives_the_same_output(ndim):
    """A pre-built per-channel kernel (exportable to ONNX) changes nothing, and other channel
    counts still work."""
    x = torch.rand(2, 4, *([8] * ndim), dtype=torch.float64)
    known = BlurPool(ndim, channels=4)
    assert known.kernel.shape == (4, 1) + (3,) * ndim and known.state_dict() == {}
    assert torch.equal(known(x), BlurPool(ndim)(x))
    assert torch.equal(known(x[:, :3]), BlurPool(ndim)(x[:, :3]))


def test_blur_pool_is_the_filtered_signal_at_even_positions():
    x = torch.rand(1, 2, 12, 10, dtype=torch.float64)
    taps = torch.tensor([1.0, 2.0, 1.0], dtype=torch.float64) / 4
    padded = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    blurred = sum(
        taps[i] * taps[j] * padded[..., i : i + 12, j : j + 10] for i in range(3) for j in range(3)
    )
    assert torch.allclose(BlurPool(2)(x), blurred[..., ::2, ::2])


def _shift_change(pool: nn.Module, image: torch.Tensor) -> float:
    """Relative change of the pooled map when the input moves by one pixel along x."""
    width = image.shape[-1] - 1
    a, b = pool(image[..., :width]), pool(image[..., 1 : width + 1])
    a, b = a[..., 2:-2, 2:-2], b[..., 2:-2, 2:-2]
    return float((a - b).norm() / (a - a.mean()).norm())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blur_pooling_moves_less_than_max_pooling_under_a_one_pixel_shift(seed):
    # White noise holds every frequency, so aliasing is at its worst. For a [1, 2, 1] blur the
    # expected relative change is sqrt(2 (1 - 4/6)) ~ 0.82; for 2x max-pooling ~ 1.1.
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(4, 1, 64, 65, generator=generator)
    change_max = _shift_change(max_pool(2), image)
    change_blur = _shift_change(BlurPool(2), image)
    change_max_blur = _shift_change(MaxBlurPool(2), image)
    assert change_blur < 0.9 * change_max
    assert change_max_blur < 0.9 * change_max
    assert change_blur == pytest.approx(np.sqrt(2 * (1 - 4 / 6)), rel=0.05)


def test_blur_pool_refuses_unknown_padding():
    with pytest.raises(InfocusInputError, match="reflect"):
        BlurPool(2, padding_mode="zeros")  # type: ignore[arg-type]


# --- translation equivariance (seamless tiling) --------------------------------------------


def _take(tensor: torch.Tensor, axis: int, start: int, stop: int) -> torch.Tensor:
    index = [slice(None)] * tensor.ndim
    index[axis] = slice(start, stop)
    return tensor[tuple(index)]


@pytest.mark.parametrize(("name", "ndim"), CASES)
def test_shift_by_multiples_of_size_multiple_commutes_with_the_network(name, ndim):
    # Two windows of one image, the second starting `shift` pixels later along one axis (same
    # extent along the others, so their borders there match): away from the borders along that
    # axis, output_b[i] must equal output_a[i + shift]. This is what seamless tiling relies on.
    model = _tiny(name, ndim)
    margin = model.receptive_field // 2 + 1
    length = 2 * margin + 24 + 3 * model.size_multiple  # >= 24 comparable pixels per shift
    length += -length % model.size_multiple
    for axis in range(2, 2 + ndim):
        shape = [1, 1] + [8] * ndim
        shape[axis] = length + 3 * model.size_multiple
        image = torch.rand(*shape)
        _calibrated(model, image)
        for shift in (model.size_multiple, 3 * model.size_multiple, 1):
            with torch.inference_mode():
                out_a = model(_take(image, axis, 0, length))
                out_b = model(_take(image, axis, shift, shift + length))
            stop = length - shift - margin
            difference = (
                _take(out_a, axis, margin + shift, stop + shift) - _take(out_b, axis, margin, stop)
            ).abs()
            assert difference.numel() >= 8 * 24
            assert out_a.std() > 0.1
            if shift % model.size_multiple == 0:
                assert difference.max() <= 1e-5, (axis, shift)
            else:  # a one-pixel shift changes the pooling phase: not equivariant
                assert difference.max() > 0.1, (axis, shift)


# --- receptive field -----------------------------------------------------------------------


def test_receptive_field_values_for_the_registered_defaults():
    assert UNet().receptive_field == 52
    assert create_network("unet_n2v2").receptive_field == 58
    assert UNet(depth=3, base_filters=2).receptive_field == 116
    assert UNet(depth=1, base_filters=2).receptive_field == 20


@pytest.mark.parametrize(("name", "ndim"), CASES)
def test_receptive_field_matches_a_perturbation_probe(name, ndim):
    # With non-negative weights, zero biases and a zero input, every activation is zero except
    # downstream of a lit input pixel, where it is strictly positive: the non-zero outputs are
    # exactly the pixels that depend on it. Batch element c lights input column c.
    model = create_network(name, ndim=ndim, depth=2, base_filters=4).double().eval()
    with torch.no_grad():
        for layer in _convs(model):
            layer.weight.abs_()
            layer.bias.zero_()
    width = 128
    x = torch.zeros((width, 1) + (4,) * (ndim - 1) + (width,), dtype=torch.float64)
    for column in range(width):
        x[column, ..., column] = 1.0
    with torch.no_grad():
        depends = (model(x)[:, 0] != 0).reshape(width, -1, width).any(dim=1)  # [input, output]
    widths, reaches = [], []
    for output in range(40, 88):  # interior: farther than the field from both borders
        inputs = torch.nonzero(depends[:, output]).flatten()
        assert len(inputs) == inputs.max() - inputs.min() + 1  # one contiguous window
        widths.append(int(inputs.max() - inputs.min() + 1))
        reaches.append(int(max(output - inputs.min(), inputs.max() - output)))
    assert max(widths) == model.receptive_field
    assert max(reaches) == model.receptive_radius


@pytest.mark.parametrize("ndim", [2, 3])
def test_dense_max_equals_stride_one_max_pooling(ndim):
    x = torch.randn((2, 3) + (7, 6, 5)[:ndim])
    pool = nn.MaxPool2d(2, stride=1) if ndim == 2 else nn.MaxPool3d(2, stride=1)
    assert torch.equal(dense_max(x), pool(x))
