"""CARE and Noise2Noise: supervised training on pairs."""

from __future__ import annotations

import pytest
import torch

from infocus._errors import InfocusInputError
from infocus.methods import Supervised, create_scheme


def _pair(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(2, 1, 8, 8, generator=generator), torch.rand(2, 1, 8, 8, generator=generator)


@pytest.mark.parametrize("name", ["care", "n2n"])
def test_prepare_is_the_identity_on_the_pair(name):
    scheme = create_scheme(name)
    assert isinstance(scheme, Supervised) and scheme.name == name
    assert scheme.needs_target and not scheme.blind_spot
    noisy, target = _pair()
    batch = scheme.prepare(noisy, target, torch.Generator().manual_seed(0))
    assert batch.input is noisy and batch.target is target and batch.mask is None


@pytest.mark.parametrize("name", ["care", "n2n"])
def test_missing_target_raises(name):
    noisy, _ = _pair()
    with pytest.raises(InfocusInputError, match=rf"'{name}' needs --target"):
        create_scheme(name).prepare(noisy, None, torch.Generator())


def test_target_shape_must_match():
    noisy, target = _pair()
    with pytest.raises(InfocusInputError, match="target batch has shape"):
        Supervised().prepare(noisy, target[:, :, :4], torch.Generator())


@pytest.mark.parametrize("kind", ["mse", "l1"])
def test_loss_over_every_pixel(kind):
    noisy, target = _pair(1)
    scheme = create_scheme("care", loss=kind)
    batch = scheme.prepare(noisy, target, torch.Generator())
    prediction = target + torch.linspace(-1, 1, target.numel()).view_as(target)
    error = (prediction - target).view(-1).tolist()
    expected = sum(e * e if kind == "mse" else abs(e) for e in error) / len(error)
    assert scheme.loss(prediction, batch).item() == pytest.approx(expected, rel=1e-6)


def test_invalid_options():
    with pytest.raises(InfocusInputError, match="choose 'care' or 'n2n'"):
        Supervised("n2v")  # type: ignore[arg-type]
    with pytest.raises(InfocusInputError, match="Unknown loss"):
        create_scheme("n2n", loss="huber")
