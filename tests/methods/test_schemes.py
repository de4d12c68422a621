"""Every training scheme: registry, protocol, masked loss, and the blind spot being really blind."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from infocus._errors import InfocusInputError
from infocus.methods import (
    Batch,
    Noise2Self,
    Noise2Void,
    StructPattern,
    TrainingScheme,
    create_scheme,
    list_schemes,
    masked_loss,
)
from infocus.methods._base import check_batch_tensor
from infocus.methods._likelihood import UsesNoiseModel

SHAPES = {2: (2, 2, 24, 24), 3: (2, 2, 10, 12, 12)}

#: Blind-spot schemes under test; fractions high enough to mask many pixels in small patches.
BLIND = {
    "n2v": lambda: create_scheme("n2v", fraction=0.01),
    "n2v-joint": lambda: create_scheme("n2v", fraction=0.01, channels="joint"),
    "n2v2": lambda: create_scheme("n2v2", fraction=0.01),
    "structn2v": lambda: create_scheme("structn2v", fraction=0.01, struct_length=3),
    "structn2v-median-y-gauss": lambda: Noise2Void(
        fraction=0.01,
        replacement="median",
        struct=StructPattern.line(3, "Y"),
        struct_fill="gaussian",
        name="structn2v",
    ),
    "structn2v-joint": lambda: create_scheme(
        "structn2v", fraction=0.01, struct_length=3, channels="joint"
    ),
    "n2s": lambda: create_scheme("n2s"),
    "n2s-cross-independent": lambda: Noise2Self(
        grid=3, replacement="cross", channels="independent"
    ),
}


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _noisy(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=_generator(seed + 1000)) + 0.5


def _hidden(scheme: TrainingScheme, mask: torch.Tensor) -> torch.Tensor:
    """Masked pixels plus (structN2V) every in-bounds pattern pixel, computed pixel by pixel."""
    hidden = mask.clone()
    struct = getattr(scheme, "struct", None)
    if struct is None:
        return hidden
    offsets = struct.for_ndim(mask.ndim - 2)
    for b, c, *p in mask.nonzero().tolist():
        for o in offsets:
            q = [pi + oi for pi, oi in zip(p, o, strict=True)]
            if all(0 <= qi < n for qi, n in zip(q, mask.shape[2:], strict=True)):
                hidden[(b, c, *q)] = True
    return hidden


# --------------------------------------------------------------------------------------------
# registry and protocol
# --------------------------------------------------------------------------------------------


def test_registered_names():
    assert list_schemes() == ["care", "deconoising", "deepcad", "denoiseg", "divnoising", "n2n", "n2s", "n2v", "n2v2", "pn2v",
                              "structn2v"]


@pytest.mark.parametrize("name", list_schemes())
@pytest.mark.parametrize("ndim", [2, 3])
def test_every_scheme_prepares_and_scores(name, ndim):
    scheme = create_scheme(name)
    assert isinstance(scheme, TrainingScheme)
    assert scheme.name == name
    assert not (scheme.blind_spot and scheme.needs_target)
    if scheme.context_axis:  # frames in, one frame out: tests/methods/test_deepcad.py
        return
    noisy = _noisy((2, 1, 64, 64) if ndim == 2 else (2, 1, 16, 16, 16), seed=0)
    target = noisy + 1.0 if scheme.needs_target else None
    batch = scheme.prepare(noisy, target, _generator(0))
    assert isinstance(batch, Batch)
    assert batch.input.shape == noisy.shape
    assert batch.input.dtype == noisy.dtype
    assert batch.target.shape == noisy.shape
    if scheme.blind_spot:
        assert batch.mask is not None and batch.mask.dtype == torch.bool
        assert torch.equal(batch.target, noisy)
        assert bool(batch.mask.any())
    else:
        assert batch.mask is None
    if isinstance(scheme, UsesNoiseModel) or scheme.required_options or scheme.labels:
        # a likelihood loss (test_pn2v.py, test_divnoising.py) or one through a PSF fitted
        # on the data (test_deconoising.py), or a segmentation term (test_denoiseg.py)
        return
    assert scheme.loss(batch.target, batch).item() == 0.0
    loss = scheme.loss(batch.target + 2.0, batch)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(4.0)


def test_unknown_option_lists_accepted_ones():
    with pytest.raises(InfocusInputError, match=r"'fractoin'.*accepts: fraction, radius"):
        create_scheme("n2v", fractoin=0.01)


def test_unknown_scheme_lists_known_ones():
    with pytest.raises(InfocusInputError, match="n2v2"):
        create_scheme("noise2nothing")


def test_scheme_names_are_case_insensitive():
    assert create_scheme("N2V2").name == "n2v2"


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.zeros((1, 1, 8, 8), np.float32), "torch.Tensor"),
        (torch.zeros(8, 8), r"\(B, C, Y, X\)"),
        (torch.zeros(1, 1, 8, 8, dtype=torch.int64), "floating point"),
    ],
)
def test_batch_tensor_is_checked(value, match):
    with pytest.raises(InfocusInputError, match=match):
        check_batch_tensor(value)
    with pytest.raises(InfocusInputError, match=match):
        create_scheme("n2v").prepare(value, None, _generator(0))


# --------------------------------------------------------------------------------------------
# the masked loss
# --------------------------------------------------------------------------------------------


@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(["mse", "l1"]))
@settings(max_examples=30, deadline=None)
def test_masked_loss_matches_hand_computation(seed, kind):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(2, 3, 5, 6)).astype(np.float32)
    t = rng.normal(size=(2, 3, 5, 6)).astype(np.float32)
    m = rng.random((2, 3, 5, 6)) < 0.3
    m[0, 0, 0, 0] = True
    err = (p - t) ** 2 if kind == "mse" else np.abs(p - t)
    expected = sum(float(e) for e, keep in zip(err.ravel(), m.ravel(), strict=True) if keep)
    expected /= int(m.sum())
    got = masked_loss(torch.from_numpy(p), torch.from_numpy(t), torch.from_numpy(m), kind=kind)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    as_float = masked_loss(
        torch.from_numpy(p), torch.from_numpy(t), torch.from_numpy(m).float(), kind=kind
    )
    assert as_float.item() == pytest.approx(expected, rel=1e-5)
    everywhere = masked_loss(torch.from_numpy(p), torch.from_numpy(t), None, kind=kind)
    assert everywhere.item() == pytest.approx(float(err.mean()), rel=1e-5)


def test_masked_loss_of_an_empty_mask_is_zero_with_zero_gradient():
    p = torch.randn(1, 1, 4, 4, generator=_generator(0), requires_grad=True)
    loss = masked_loss(p, torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0
    assert p.grad is not None and not bool(p.grad.any())


def test_masked_loss_counts_only_masked_pixels():
    p = torch.zeros(1, 1, 4, 4)
    t = torch.full((1, 1, 4, 4), 1e6)
    m = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    m[0, 0, 1, 2] = True
    t[0, 0, 1, 2] = 3.0
    assert masked_loss(p, t, m).item() == 9.0


def test_masked_loss_rejects_shape_mismatch_and_unknown_kind():
    with pytest.raises(InfocusInputError, match="prediction has shape"):
        masked_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(InfocusInputError, match="Unknown loss"):
        masked_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), kind="huber")  # type: ignore[arg-type]


def test_batch_checks_mask_shape_and_moves():
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(InfocusInputError, match="loss mask has shape"):
        Batch(x, x, torch.zeros(1, 1, 4, 3, dtype=torch.bool))
    moved = Batch(x, x, torch.ones(1, 1, 4, 4, dtype=torch.bool)).to("cpu")
    assert moved.mask is not None and moved.input.device.type == "cpu"


# --------------------------------------------------------------------------------------------
# the blind spot is really blind
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(BLIND))
@pytest.mark.parametrize("ndim", [2, 3])
def test_changing_hidden_pixels_leaves_network_input_bit_identical(variant, ndim):
    scheme = BLIND[variant]()
    noisy = _noisy(SHAPES[ndim], seed=1)
    reference = scheme.prepare(noisy, None, _generator(7))
    assert reference.mask is not None
    hidden = _hidden(scheme, reference.mask)
    # the hidden set is non-trivial and the scheme really changed those pixels
    assert 0 < int(hidden.sum()) < hidden.numel() // 4
    assert bool((reference.input != noisy)[reference.mask].all())
    for values in (torch.full_like(noisy, -1e30), torch.rand_like(noisy) * 1e6, -noisy):
        changed = torch.where(hidden, values, noisy)
        again = scheme.prepare(changed, None, _generator(7))
        assert torch.equal(again.mask, reference.mask)
        assert torch.equal(again.input, reference.input)
        assert torch.equal(again.input[~hidden], reference.input[~hidden])
    # and the hidden pixels are all the network cannot see: changing any other pixel shows up
    visible = (~hidden).nonzero()[0]
    poked = noisy.clone()
    poked[tuple(visible)] += 1.0
    assert not torch.equal(scheme.prepare(poked, None, _generator(7)).input, reference.input)


@given(
    seed=st.integers(0, 2**31 - 1),
    variant=st.sampled_from(sorted(BLIND)),
    ndim=st.sampled_from([2, 3]),
    value=st.floats(-1e30, 1e30, allow_nan=False),
)
@settings(max_examples=40, deadline=None)
def test_blindness_for_any_seed_and_value(seed, variant, ndim, value):
    scheme = BLIND[variant]()
    noisy = _noisy(SHAPES[ndim], seed=seed % 1000)
    reference = scheme.prepare(noisy, None, _generator(seed))
    assert reference.mask is not None
    changed = torch.where(_hidden(scheme, reference.mask), torch.tensor(value), noisy)
    assert torch.equal(scheme.prepare(changed, None, _generator(seed)).input, reference.input)


def _tiny_net(ndim: int, channels: int) -> torch.nn.Module:
    conv = torch.nn.Conv2d if ndim == 2 else torch.nn.Conv3d
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return torch.nn.Sequential(
            conv(channels, 8, 3, padding=1),
            torch.nn.LeakyReLU(0.1),
            conv(8, 8, 3, padding=1),
            torch.nn.LeakyReLU(0.1),
            conv(8, channels, 3, padding=1),
        )


@pytest.mark.parametrize("variant", sorted(BLIND))
@pytest.mark.parametrize("ndim", [2, 3])
def test_prediction_at_masked_pixels_has_zero_gradient_wrt_their_noisy_values(variant, ndim):
    scheme = BLIND[variant]()
    net = _tiny_net(ndim, SHAPES[ndim][1])
    noisy = _noisy(SHAPES[ndim], seed=2).requires_grad_(True)
    batch = scheme.prepare(noisy, None, _generator(3))
    assert batch.mask is not None
    prediction = net(batch.input)
    # one masked pixel alone ...
    first = tuple(batch.mask.nonzero()[0].tolist())
    (grad_one,) = torch.autograd.grad(prediction[first], noisy, retain_graph=True)
    assert grad_one[first].item() == 0.0
    assert bool(grad_one.any())  # the prediction does depend on the neighbours
    # ... and all of them: no masked or pattern pixel reaches any masked prediction
    (grad_all,) = torch.autograd.grad(prediction[batch.mask].sum(), noisy)
    hidden = _hidden(scheme, batch.mask)
    assert not bool(grad_all[hidden].any())
    assert bool(grad_all[~hidden].any())


def test_gradient_check_detects_a_leaking_scheme():
    """The same check fails for an identity 'scheme', so it can fail."""
    net = _tiny_net(2, 1)
    noisy = _noisy((1, 1, 16, 16), seed=4).requires_grad_(True)
    prediction = net(noisy)
    (grad,) = torch.autograd.grad(prediction[0, 0, 8, 8], noisy)
    assert grad[0, 0, 8, 8].item() != 0.0


@pytest.mark.parametrize("variant", sorted(BLIND))
def test_prepare_is_deterministic_given_the_generator(variant):
    scheme = BLIND[variant]()
    noisy = _noisy(SHAPES[2], seed=5)
    a = scheme.prepare(noisy, None, _generator(11))
    b = scheme.prepare(noisy, None, _generator(11))
    c = scheme.prepare(noisy, None, _generator(12))
    assert a.mask is not None and b.mask is not None and c.mask is not None
    assert torch.equal(a.input, b.input) and torch.equal(a.mask, b.mask)
    assert not torch.equal(a.mask, c.mask)


@pytest.mark.parametrize("variant", sorted(BLIND))
def test_patches_without_a_blind_spot_give_zero_loss(variant):
    """Small patches often hold no masked pixel (expected 0.25 in 5x5 at fraction 0.01)."""
    scheme = BLIND[variant]()
    empty = 0
    for seed in range(20):
        noisy = _noisy((1, 1, 5, 5), seed=seed)
        batch = scheme.prepare(noisy, None, _generator(seed))
        assert batch.mask is not None
        prediction = (noisy + 1.0).requires_grad_(True)
        loss = scheme.loss(prediction, batch)
        loss.backward()
        assert prediction.grad is not None
        if not bool(batch.mask.any()):
            empty += 1
            assert torch.equal(batch.input, noisy)
            assert loss.item() == 0.0 and not bool(prediction.grad.any())
        else:
            assert loss.item() == pytest.approx(1.0)
    # Noise2Self masks a fixed share of every patch; the N2V family leaves some patches blank
    assert (empty == 0) if isinstance(scheme, Noise2Self) else (empty > 0)


@pytest.mark.parametrize("variant", sorted(BLIND))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_layout_and_dtype_are_respected(variant, dtype):
    scheme = BLIND[variant]()
    noisy = _noisy(SHAPES[2], seed=9).to(dtype)
    strided = noisy.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, other strides
    assert not strided.is_contiguous()
    a = scheme.prepare(noisy, None, _generator(1))
    b = scheme.prepare(strided, None, _generator(1))
    assert a.input.dtype == dtype
    assert torch.equal(a.input, b.input)


def test_blind_schemes_ignore_a_given_target():
    noisy = _noisy(SHAPES[2], seed=6)
    batch = create_scheme("n2v").prepare(noisy, noisy * 0.0, _generator(0))
    assert torch.equal(batch.target, noisy)


# --------------------------------------------------------------------------------------------
# documentation examples
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        "infocus.methods",
        "infocus.methods._base",
        "infocus.methods.supervised",
        "infocus.methods.blind_spot",
        "infocus.methods.noise2self",
    ],
)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
