"""Noise2Self: J-invariant grid masks and neighbour-mean replacement."""

from __future__ import annotations

import itertools

import pytest
import torch

from infocus._errors import InfocusInputError
from infocus.methods import Noise2Self, create_scheme, grid_mask, replace_neighbour_mean


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(("spatial", "grid"), [((16, 16), 4), ((12, 12, 12), 3), ((9, 10), 2)])
def test_grid_mask_is_one_phase_of_the_grid(spatial, grid):
    mask = grid_mask(spatial, grid, _gen(0), batch_shape=(50,))
    assert mask.shape == (50, *spatial) and mask.dtype == torch.bool
    phases = set()
    for instance in mask:
        coords = instance.nonzero()
        residues = {tuple(r) for r in (coords % grid).tolist()}
        assert len(residues) == 1  # every masked pixel has the same coordinates mod grid
        (phase,) = residues
        phases.add(phase)
        expected = 1
        for n, f in zip(spatial, phase, strict=True):
            expected *= len(range(f, n, grid))
        assert coords.shape[0] == expected  # and every pixel with that phase is masked
    assert len(phases) > 1  # the phase is random


def test_masked_fraction_is_one_over_grid_power():
    mask = grid_mask((16, 16, 16), 4, _gen(1), batch_shape=(3,))
    assert float(mask.float().mean()) == 1 / 64
    assert float(grid_mask((16, 16), 4, _gen(1)).float().mean()) == 1 / 16


def test_every_phase_occurs():
    mask = grid_mask((4, 4), 2, _gen(2), batch_shape=(200,))
    phases = {tuple(instance.nonzero()[0].tolist()) for instance in mask}
    assert phases == set(itertools.product(range(2), repeat=2))


@pytest.mark.parametrize(("neighbours", "count"), [("cross", 4), ("donut", 8)])
def test_replacement_is_the_neighbour_mean_2d(neighbours, count):
    x = torch.randn(1, 1, 7, 7, generator=_gen(3), dtype=torch.float64)
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[0, 0, 3, 3] = True
    mask[0, 0, 0, 0] = True  # corner: neighbours mirrored through the centre
    out = replace_neighbour_mean(x, mask, neighbours=neighbours)
    block = x[0, 0, 2:5, 2:5]
    expected = (
        (block.sum() - block[1, 1]) / 8
        if neighbours == "donut"
        else (block[0, 1] + block[2, 1] + block[1, 0] + block[1, 2]) / 4
    )
    assert float(out[0, 0, 3, 3]) == pytest.approx(float(expected), rel=1e-12)
    corner = x[0, 0, :2, :2]
    if neighbours == "cross":
        expected_corner = (2 * x[0, 0, 1, 0] + 2 * x[0, 0, 0, 1]) / 4
    else:
        expected_corner = (2 * corner[1, 0] + 2 * corner[0, 1] + 4 * corner[1, 1]) / 8
    assert float(out[0, 0, 0, 0]) == pytest.approx(float(expected_corner), rel=1e-12)
    assert torch.equal(out[~mask], x[~mask])
    assert count == (4 if neighbours == "cross" else 8)


@pytest.mark.parametrize(("neighbours", "count"), [("cross", 6), ("donut", 26)])
def test_replacement_is_the_neighbour_mean_3d(neighbours, count):
    x = torch.randn(1, 2, 5, 5, 5, generator=_gen(4), dtype=torch.float64)
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[0, 1, 2, 2, 2] = True
    out = replace_neighbour_mean(x, mask, neighbours=neighbours)
    offsets = [o for o in itertools.product((-1, 0, 1), repeat=3) if any(o)]
    if neighbours == "cross":
        offsets = [o for o in offsets if sum(map(abs, o)) == 1]
    assert len(offsets) == count
    expected = sum(float(x[0, 1, 2 + a, 2 + b, 2 + c]) for a, b, c in offsets) / count
    assert float(out[0, 1, 2, 2, 2]) == pytest.approx(expected, rel=1e-12)
    assert torch.equal(out[0, 0], x[0, 0])  # the other channel is untouched


def test_scheme_masks_and_scores_the_grid():
    scheme = create_scheme("n2s", grid=4, replacement="cross")
    assert isinstance(scheme, Noise2Self) and scheme.name == "n2s"
    noisy = torch.rand(3, 2, 16, 16, generator=_gen(5))
    batch = scheme.prepare(noisy, None, _gen(6))
    assert batch.mask is not None
    assert int(batch.mask.sum()) == 3 * 2 * 16
    assert torch.equal(batch.mask[:, 0], batch.mask[:, 1])  # joint by default
    independent = Noise2Self(channels="independent").prepare(noisy, None, _gen(6))
    assert independent.mask is not None
    assert not torch.equal(independent.mask[:, 0], independent.mask[:, 1])
    prediction = noisy.clone()
    prediction[batch.mask] += 0.5
    prediction[~batch.mask] += 100.0  # unmasked errors do not count
    assert scheme.loss(prediction, batch).item() == pytest.approx(0.25)


def test_argument_errors():
    with pytest.raises(InfocusInputError, match="integer >= 2"):
        Noise2Self(grid=1)
    with pytest.raises(InfocusInputError, match="Unknown replacement"):
        Noise2Self(replacement="ring")  # type: ignore[arg-type]
    with pytest.raises(InfocusInputError, match="Unknown neighbourhood"):
        replace_neighbour_mean(
            torch.rand(1, 1, 4, 4),
            torch.zeros(1, 1, 4, 4, dtype=torch.bool),
            neighbours="ring",  # type: ignore[arg-type]
        )
    adjacent = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    adjacent[0, 0, 1, 1] = adjacent[0, 0, 1, 2] = True
    with pytest.raises(InfocusInputError, match="within the replacement neighbourhood"):
        replace_neighbour_mean(torch.rand(1, 1, 4, 4), adjacent)
