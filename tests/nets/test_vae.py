"""The DivNoising VAE: rebuilt from its config, translation equivariant, bounded field."""

from __future__ import annotations

import pytest
import torch

from infocus.nets import create_network


@pytest.mark.parametrize("ndim", [2, 3])
def test_rebuild_from_name_and_config_reproduces_the_mean_path(ndim):
    model = create_network("divnoising_vae", ndim=ndim, base_filters=4, latent_channels=3)
    again = create_network("divnoising_vae", **model.config)
    again.load_state_dict(model.state_dict())
    x = torch.randn(1, 1, *(8,) * ndim)
    with torch.no_grad():
        torch.testing.assert_close(model.decode(model.encode(x)[0]),
                                   again.decode(again.encode(x)[0]))


def test_receptive_field_bounds_a_perturbation_probe():
    """The deterministic path (decode the posterior mean) of an output pixel depends on no
    input farther than half the stated receptive field."""
    torch.manual_seed(0)
    model = create_network("divnoising_vae", base_filters=4, latent_channels=2).double().eval()
    width = 128
    x = torch.randn(1, 1, 8, width, dtype=torch.float64)
    with torch.no_grad():
        base = model.decode(model.encode(x)[0])
        changed = x.clone()
        changed[..., 64] += 10.0
        moved = model.decode(model.encode(changed)[0])
    reached = torch.nonzero((moved - base).abs().amax(dim=(0, 1, 2)) > 0).flatten()
    assert 0 < int(reached.max() - reached.min() + 1) <= model.receptive_field
    assert int((reached - 64).abs().max()) <= model.receptive_radius


def test_shift_by_a_multiple_of_four_commutes_on_the_mean_path():
    torch.manual_seed(0)
    model = create_network("divnoising_vae", base_filters=4, latent_channels=2).double().eval()
    x = torch.randn(1, 1, 16, 192, dtype=torch.float64)
    with torch.no_grad():
        out = model.decode(model.encode(x)[0])
        shifted = model.decode(model.encode(torch.roll(x, 8, dims=-1))[0])
    # Farther than the receptive radius (32) from both borders and from the wrapped seam.
    interior = (..., slice(4, 12), slice(72, 120))
    torch.testing.assert_close(shifted[interior], torch.roll(out, 8, dims=-1)[interior])
