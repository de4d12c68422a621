"""The network registry: names, options, errors and parameter counts."""

from __future__ import annotations

import pytest
from torch import nn

from infocus._errors import InfocusInputError
from infocus._registry import Registry
from infocus.nets import (
    NETWORKS,
    UNet,
    count_parameters,
    create_network,
    list_networks,
    network_options,
)


def _unet_parameter_count(depth: int, f: int, *, ndim: int = 2, skip_top: bool = True) -> int:
    """Closed-form parameter count of the CARE / CAREamics U-Net layout with batch norm."""
    k = 3**ndim

    def conv(cin: int, cout: int) -> int:
        return k * cin * cout + cout + 2 * cout  # weights, bias, batch-norm scale and shift

    total, cin = 0, 1
    for level in range(depth):
        total += conv(cin, f * 2**level) + conv(f * 2**level, f * 2**level)
        cin = f * 2**level
    total += conv(cin, f * 2**depth) + conv(f * 2**depth, f * 2 ** (depth - 1))
    for level in range(depth):
        skip = level > 0 or skip_top
        total += conv(f * 2**level * (2 if skip else 1), f * 2**level)
        total += conv(f * 2**level, f * 2 ** max(level - 1, 0))
    return total + f + 1  # 1x1 head to one channel


def test_both_unets_are_registered():
    assert {"unet", "unet_n2v2"} <= set(list_networks())
    assert list_networks() == sorted(list_networks())
    assert "UNet" in NETWORKS  # names are case-insensitive


def test_create_network_builds_the_registered_defaults():
    plain, n2v2 = create_network("unet"), create_network("UNet_N2V2")
    assert isinstance(plain, UNet) and isinstance(n2v2, UNet)
    assert plain.config == network_options("unet")
    assert n2v2.config == network_options("unet_n2v2")
    assert (plain.config["blur_pool"], plain.config["skip_top"]) == (False, True)
    assert (n2v2.config["blur_pool"], n2v2.config["skip_top"], n2v2.config["residual"]) == (
        True,
        False,
        False,
    )


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(InfocusInputError, match="unet_n2v2"):
        create_network("resnet")


def test_unknown_option_is_refused_and_the_accepted_ones_are_listed():
    with pytest.raises(InfocusInputError, match=r"'filters'.*base_filters.*batch_norm"):
        create_network("unet", filters=16)
    with pytest.raises(InfocusInputError, match=r"options 'a', 'b'"):
        create_network("unet_n2v2", a=1, b=2)


def test_duplicate_registration_raises_and_keeps_the_original():
    with pytest.raises(ValueError, match="already registered"):
        NETWORKS.register("unet")(nn.Identity)
    with pytest.raises(ValueError, match="already registered"):
        NETWORKS.register("UNET_N2V2")(nn.Identity)
    assert NETWORKS.get("unet") is UNet
    fresh: Registry[type[nn.Module]] = Registry("network")
    fresh.register("net")(nn.Identity)
    with pytest.raises(ValueError, match="already registered"):
        fresh.register("Net")(nn.Linear)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ndim": 4}, "ndim"),
        ({"depth": 0}, "depth"),
        ({"base_filters": 2.5}, "base_filters"),
        ({"in_channels": True}, "in_channels"),
        ({"residual": 1}, "residual"),
        ({"residual": True, "in_channels": 2, "out_channels": 1}, "in_channels .* out_channels"),
    ],
)
def test_invalid_option_values_raise(kwargs, match):
    with pytest.raises(InfocusInputError, match=match):
        create_network("unet", **kwargs)


def test_default_2d_unet_has_careamics_parameter_count():
    # CAREamics' default 2-D UNet (depth 2, 32 filters, batch norm) has 333,729 parameters.
    assert count_parameters(create_network("unet")) == 333_729
    assert count_parameters(create_network("unet")) == _unet_parameter_count(2, 32)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize(("depth", "base_filters"), [(1, 4), (2, 8), (3, 16)])
def test_parameter_count_matches_closed_form(ndim, depth, base_filters):
    for name, skip_top in [("unet", True), ("unet_n2v2", False)]:
        model = create_network(name, ndim=ndim, depth=depth, base_filters=base_filters)
        expected = _unet_parameter_count(depth, base_filters, ndim=ndim, skip_top=skip_top)
        assert count_parameters(model) == expected


def test_count_parameters_trainable_only_skips_frozen_and_buffers():
    model = create_network("unet", depth=1, base_filters=4)
    total = count_parameters(model)
    assert total == sum(p.numel() for p in model.parameters())
    model.head.weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == total - model.head.weight.numel()
    assert count_parameters(model) == total
    # batch-norm running statistics are buffers, not parameters
    assert sum(b.numel() for b in model.buffers()) > 0
    assert count_parameters(nn.BatchNorm2d(3)) == 6
    assert count_parameters(nn.Module()) == 0
