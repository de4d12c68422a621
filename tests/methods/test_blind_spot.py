"""Noise2Void / N2V2 / structN2V masking functions and the Noise2Void scheme."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from infocus._errors import InfocusInputError
from infocus.methods import (
    Noise2Void,
    StructPattern,
    apply_struct_mask,
    create_scheme,
    replace_median,
    replace_uniform,
    stratified_mask,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _distinct(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """A batch whose pixel values are all different, so a value identifies its pixel."""
    n = math.prod(shape)
    return torch.randperm(n, generator=_gen(seed)).float().view(shape)


def _mirrored(p: list[int], o: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(
        pi + oi if 0 <= pi + oi < n else pi - oi for pi, oi, n in zip(p, o, shape, strict=True)
    )


# --------------------------------------------------------------------------------------------
# stratified_mask
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spatial", "fraction"),
    [
        ((64, 64), 0.002),
        ((64, 64), 0.02),
        ((37, 53), 0.05),
        ((16, 16, 16), 0.01),
        ((9, 40, 40), 0.002),
    ],
)
def test_masked_fraction_matches_request(spatial, fraction):
    mask = stratified_mask(spatial, fraction, _gen(0), batch_shape=(400,))
    expected = fraction * mask.numel()
    # binomial-like spread at most; 5 standard deviations of a Poisson count
    assert abs(int(mask.sum()) - expected) < 5 * math.sqrt(expected)


def test_every_pixel_is_equally_likely_to_be_masked():
    fraction, draws = 0.04, 20000
    mask = stratified_mask((20, 20), fraction, _gen(1), batch_shape=(draws,))
    counts = mask.sum(0).double()
    expected = fraction * draws
    # each count is at most binomial(draws, fraction): 5 sigma covers 400 pixels comfortably
    assert float((counts - expected).abs().max()) < 5 * math.sqrt(expected)
    # corners and centre alike (no border bias)
    assert abs(float(counts[0, 0] - counts[10, 10])) < 7 * math.sqrt(expected)


@given(
    seed=st.integers(0, 2**31 - 1),
    ndim=st.sampled_from([2, 3]),
    radius=st.integers(1, 3),
    struct_length=st.sampled_from([None, 3, 5, 7]),
    density=st.floats(0.2, 1.0),
)
@settings(max_examples=60, deadline=None)
def test_masked_pixels_are_far_enough_apart(seed, ndim, radius, struct_length, density):
    struct = None if struct_length is None else StructPattern.line(struct_length, "X")
    reach = struct.reach(ndim) if struct is not None else (0,) * ndim
    separation = np.array([radius + 1 + e for e in reach])
    densest = float(max(separation)) ** -ndim
    spatial = (24, 24) if ndim == 2 else (12, 12, 12)
    mask = stratified_mask(
        spatial, densest * density, _gen(seed), radius=radius, struct=struct, batch_shape=(3,)
    )
    for instance in mask:
        coords = instance.nonzero().numpy()
        gaps = np.abs(coords[:, None, :] - coords[None, :, :])
        far = (gaps >= separation).any(-1)
        np.fill_diagonal(far, True)
        assert far.all()


def test_densest_allowed_fraction_gives_a_regular_grid():
    mask = stratified_mask((30, 30), 1 / 9, _gen(2), radius=2)
    coords = mask.nonzero()
    assert coords.shape[0] == 100
    assert len({tuple(c) for c in (coords % 3).tolist()}) == 1  # one phase for the whole patch


@pytest.mark.parametrize(
    ("fraction", "radius", "struct", "match"),
    [
        (0.2, 2, None, r"every 2\.24 pixels.*at most 0\.1111"),
        (0.05, 2, StructPattern.line(9, "X"), "struct pattern"),
        (0.0, 2, None, r"in \(0, 1\)"),
        (1.5, 2, None, r"in \(0, 1\)"),
    ],
)
def test_too_dense_or_invalid_fraction_raises(fraction, radius, struct, match):
    with pytest.raises(InfocusInputError, match=match):
        stratified_mask((64, 64), fraction, _gen(0), radius=radius, struct=struct)


def test_mask_is_deterministic_and_independent_per_instance():
    a = stratified_mask((32, 32), 0.02, _gen(3), batch_shape=(4, 2))
    b = stratified_mask((32, 32), 0.02, _gen(3), batch_shape=(4, 2))
    c = stratified_mask((32, 32), 0.02, _gen(4), batch_shape=(4, 2))
    assert a.shape == (4, 2, 32, 32) and a.dtype == torch.bool
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    flat = a.view(8, -1)
    assert all(not torch.equal(flat[i], flat[j]) for i, j in itertools.combinations(range(8), 2))


# --------------------------------------------------------------------------------------------
# replace_uniform / replace_median
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("radius", [1, 2])
def test_uniform_replacement_comes_from_the_neighbourhood(ndim, radius):
    shape = (2, 3, 40, 40) if ndim == 2 else (2, 3, 14, 14, 14)
    x = _distinct(shape)
    mask = stratified_mask(shape[2:], 0.02, _gen(5), radius=radius, batch_shape=shape[:2])
    out = replace_uniform(x, mask, radius, _gen(6))
    assert torch.equal(out[~mask], x[~mask])  # nothing else changes
    assert not torch.equal(out, x)
    position = {int(v): i for i, v in enumerate(x.view(-1).tolist())}
    used = set()
    for b, c, *p in mask.nonzero().tolist():
        source = np.unravel_index(position[int(out[(b, c, *p)])], shape)
        assert (int(source[0]), int(source[1])) == (b, c)  # same sample and channel
        offset = tuple(int(s) - pi for s, pi in zip(source[2:], p, strict=True))
        assert any(offset) and max(map(abs, offset)) <= radius
        used.add(offset)
    assert len(used) > 1


def test_uniform_offsets_cover_the_neighbourhood_evenly():
    radius, shape = 2, (64, 1, 48, 48)
    x = _distinct(shape, seed=1)
    mask = stratified_mask(shape[2:], 0.02, _gen(7), radius=radius, batch_shape=shape[:2])
    out = replace_uniform(x, mask, radius, _gen(8))
    position = {int(v): i for i, v in enumerate(x.view(-1).tolist())}
    counts: dict[tuple[int, int], int] = {}
    for b, c, y, xx in mask.nonzero().tolist():
        if not (radius <= y < shape[2] - radius and radius <= xx < shape[3] - radius):
            continue  # mirrored at the border: tested separately
        _, _, sy, sx = np.unravel_index(position[int(out[b, c, y, xx])], shape)
        counts[(int(sy) - y, int(sx) - xx)] = counts.get((int(sy) - y, int(sx) - xx), 0) + 1
    assert set(counts) == {o for o in itertools.product(range(-2, 3), repeat=2) if any(o)}
    n = sum(counts.values())
    expected = n / 24
    assert max(abs(k - expected) for k in counts.values()) < 5 * math.sqrt(expected)


def test_border_pixels_never_copy_themselves():
    x = _distinct((1, 1, 5, 5), seed=2)
    for corner in [(0, 0), (0, 4), (4, 0), (4, 4), (1, 1), (0, 2)]:
        mask = torch.zeros(1, 1, 5, 5, dtype=torch.bool)
        mask[(0, 0, *corner)] = True
        for seed in range(40):
            out = replace_uniform(x, mask, 2, _gen(seed))
            value = out[(0, 0, *corner)]
            allowed = {
                float(x[(0, 0, *_mirrored(list(corner), o, (5, 5)))])
                for o in itertools.product(range(-2, 3), repeat=2)
                if any(o)
            }
            assert float(value) in allowed
            assert float(value) != float(x[(0, 0, *corner)])
        assert float(replace_median(x, mask, 2)[(0, 0, *corner)]) != float(x[(0, 0, *corner)])


@pytest.mark.parametrize("ndim", [2, 3])
def test_median_replacement_is_the_lower_median_without_the_centre(ndim):
    shape = (2, 2, 30, 30) if ndim == 2 else (2, 2, 12, 12, 12)
    x = torch.randn(shape, generator=_gen(9))
    mask = stratified_mask(shape[2:], 0.02, _gen(10), radius=2, batch_shape=shape[:2])
    out = replace_median(x, mask, 2)
    assert torch.equal(out[~mask], x[~mask])
    offsets = [o for o in itertools.product(range(-2, 3), repeat=ndim) if any(o)]
    for b, c, *p in mask.nonzero().tolist():
        values = sorted(float(x[(b, c, *_mirrored(p, o, shape[2:]))]) for o in offsets)
        assert float(out[(b, c, *p)]) == values[(len(values) - 1) // 2]


def test_joint_channels_use_one_offset_for_all_channels():
    base = _distinct((2, 1, 32, 32), seed=3)
    x = torch.cat([base, base + 10_000, base + 20_000], dim=1)
    mask = stratified_mask((32, 32), 0.02, _gen(11), batch_shape=(2, 1)).expand_as(x)
    out = replace_uniform(x, mask, 2, _gen(12), channels="joint")
    assert torch.equal(out[:, 1] - out[:, 0], torch.full_like(out[:, 0], 10_000))
    assert torch.equal(out[:, 2] - out[:, 0], torch.full_like(out[:, 0], 20_000))
    independent = replace_uniform(x, mask, 2, _gen(12), channels="independent")
    assert not torch.equal(independent[:, 1] - independent[:, 0], out[:, 1] - out[:, 0])


def test_joint_channels_need_a_shared_mask():
    x = torch.rand(1, 2, 32, 32)
    mask = stratified_mask((32, 32), 0.02, _gen(13), batch_shape=(1, 2))
    with pytest.raises(InfocusInputError, match="same mask in every channel"):
        replace_uniform(x, mask, 2, _gen(0), channels="joint")


def test_replacement_refuses_masks_that_are_too_dense():
    x = torch.rand(1, 1, 16, 16)
    mask = torch.zeros(1, 1, 16, 16, dtype=torch.bool)
    mask[0, 0, 8, 8] = mask[0, 0, 8, 9] = True
    with pytest.raises(InfocusInputError, match="within the replacement neighbourhood"):
        replace_median(x, mask, 1)
    with pytest.raises(InfocusInputError, match="within the replacement neighbourhood"):
        # some seed picks the other masked pixel
        for seed in range(50):
            replace_uniform(x, mask, 1, _gen(seed))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda x, m: replace_uniform(x, m, 0, _gen(0)), "radius must be an integer >= 1"),
        (lambda x, m: replace_median(x, m, 3), "at least 7"),
        (lambda x, m: replace_uniform(x, m[..., :4], 1, _gen(0)), "batch's shape"),
        (lambda x, m: replace_uniform(x, m, 1, _gen(0), channels="mixed"), "channel mode"),
    ],
)
def test_replacement_argument_errors(call, match):
    x = torch.rand(1, 1, 6, 6)
    with pytest.raises(InfocusInputError, match=match):
        call(x, torch.zeros(1, 1, 6, 6, dtype=torch.bool))


# --------------------------------------------------------------------------------------------
# structN2V
# --------------------------------------------------------------------------------------------


def test_struct_pattern_line_and_validation():
    assert StructPattern.line(5, "x").offsets == ((-2,), (-1,), (1,), (2,))
    assert StructPattern.line(3, "Z").for_ndim(3) == ((-1, 0, 0), (1, 0, 0))
    assert StructPattern(((0, 0), (0, 1), (0, -1))).offsets == ((0, -1), (0, 1))  # centre dropped
    assert StructPattern.line(7, "Y").reach(3) == (0, 3, 0)
    with pytest.raises(InfocusInputError, match="odd integer"):
        StructPattern.line(4)
    with pytest.raises(InfocusInputError, match="Unknown struct axis"):
        StructPattern.line(5, "T")
    with pytest.raises(InfocusInputError, match="not symmetric"):
        StructPattern(((0, 1), (0, 2), (0, -1)))
    with pytest.raises(InfocusInputError, match="same, non-zero number of axes"):
        StructPattern(((1,), (0, 1)))
    with pytest.raises(InfocusInputError, match="no pixel besides the centre"):
        StructPattern(((0, 0),))
    with pytest.raises(InfocusInputError, match="Z needs 3-D data"):
        StructPattern.line(3, "Z").for_ndim(2)


@pytest.mark.parametrize("fill", ["uniform", "gaussian"])
def test_struct_mask_replaces_exactly_the_line(fill):
    x = _distinct((1, 1, 12, 20), seed=4)
    mask = torch.zeros_like(x, dtype=torch.bool)
    mask[0, 0, 5, 10] = True
    mask[0, 0, 2, 1] = True  # line clipped at the left border
    out = apply_struct_mask(x, mask, StructPattern.line(5, "X"), _gen(14), fill=fill)
    changed = {tuple(p) for p in (out != x)[0, 0].nonzero().tolist()}
    assert changed == {(5, 8), (5, 9), (5, 11), (5, 12), (2, 0), (2, 2), (2, 3)}
    if fill == "uniform":
        low, high = float(x.min()), float(x.max())
        assert all(low <= float(out[(0, 0, *p)]) <= high for p in changed)


def test_struct_fill_statistics_follow_the_untouched_pixels():
    x = 3.0 + 2.0 * torch.randn(1, 2, 64, 64, generator=_gen(15))
    x[:, 1] = x[:, 1] * 10 + 100  # a second channel with another range
    mask = stratified_mask(
        (64, 64), 0.02, _gen(16), struct=StructPattern.line(7), batch_shape=(1, 2)
    )
    pattern = StructPattern.line(7)
    uniform = apply_struct_mask(x, mask, pattern, _gen(17))
    gaussian = apply_struct_mask(x, mask, pattern, _gen(17), fill="gaussian")
    changed = (uniform != x) & ~mask
    for c in range(2):
        keep = ~changed[0, c] & ~mask[0, c]
        values = uniform[0, c][changed[0, c]]
        assert float(values.min()) >= float(x[0, c][keep].min())
        assert float(values.max()) <= float(x[0, c][keep].max())
        draws = gaussian[0, c][changed[0, c]]
        mean, std = float(x[0, c][keep].mean()), float(x[0, c][keep].std())
        assert abs(float(draws.mean()) - mean) < 5 * std / math.sqrt(draws.numel())
        assert 0.7 * std < float(draws.std()) < 1.3 * std


@pytest.mark.parametrize(("axis", "dim"), [("X", -1), ("Y", -2)])
def test_structn2v_hides_the_whole_line(axis, dim):
    scheme = create_scheme("structn2v", fraction=0.01, struct_length=5, struct_axis=axis)
    noisy = _distinct((2, 1, 40, 40), seed=5)
    batch = scheme.prepare(noisy, None, _gen(18))
    assert batch.mask is not None
    changed = batch.input != noisy
    expected = batch.mask.clone()
    for b, c, y, x in batch.mask.nonzero().tolist():
        for t in (-2, -1, 1, 2):
            q = [y, x]
            q[dim] += t
            if 0 <= q[0] < 40 and 0 <= q[1] < 40:
                expected[b, c, q[0], q[1]] = True
    assert torch.equal(changed, expected)


def test_structn2v_centre_never_copies_a_line_pixel():
    scheme = Noise2Void(fraction=0.01, radius=2, struct=StructPattern.line(5, "X"))
    noisy = _distinct((8, 1, 40, 40), seed=6)
    batch = scheme.prepare(noisy, None, _gen(19))
    assert batch.mask is not None
    position = {int(v): i for i, v in enumerate(noisy.view(-1).tolist())}
    for b, c, y, x in batch.mask.nonzero().tolist():
        _, _, sy, sx = np.unravel_index(position[int(batch.input[b, c, y, x])], noisy.shape)
        assert int(sy) != y  # same row = a line pixel (or the centre)


_BOX = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


@pytest.mark.parametrize("name", ["n2v", "n2v2"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_measured_blind_spot_is_blind_to_its_whole_pattern(name, ndim):
    """A wider blind spot: the network input does not depend on the masked pixel or on any
    pixel of the hidden 3x3 block around it."""
    scheme = create_scheme(name, fraction=0.01, blind_spot=_BOX)
    assert scheme.struct is not None and scheme.radius == 2 and scheme.name == name
    shape = (2, 1, *([12] * (ndim - 2)), 32, 32)
    noisy = _distinct(shape, seed=7)
    batch = scheme.prepare(noisy, None, _gen(3))
    assert batch.mask is not None and batch.mask.any()
    hidden = batch.mask.clone()
    for b, c, *p in batch.mask.nonzero().tolist():
        for dy, dx in _BOX:
            q = [*p[:-2], p[-2] + dy, p[-1] + dx]
            if all(0 <= v < n for v, n in zip(q, shape[2:], strict=True)):
                hidden[(b, c, *q)] = True
    # Perturb only the hidden pixels: with the same generator state, the input is unchanged.
    perturbed = torch.where(hidden, noisy + 1000.0, noisy)
    again = scheme.prepare(perturbed, None, _gen(3))
    assert torch.equal(again.mask, batch.mask)
    assert torch.equal(again.input, batch.input)


def test_blind_spot_radius_grows_past_a_wide_pattern_and_fraction_bound_matches_the_mask():
    from infocus.methods.blind_spot import max_fraction

    wide = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if (dy, dx) != (0, 0)]
    scheme = create_scheme("n2v", fraction=0.01, blind_spot=wide)
    assert scheme.radius == 3
    bound = max_fraction(3, scheme.struct, 2)
    assert bound == pytest.approx(1 / 36)
    stratified_mask((64, 64), bound, _gen(0), radius=3, struct=scheme.struct)
    with pytest.raises(InfocusInputError, match="masked pixels every"):
        stratified_mask((64, 64), bound * 1.05, _gen(0), radius=3, struct=scheme.struct)
    assert create_scheme("n2v", blind_spot=[]).struct is None
    # 'auto' and 'pixel' build a one-pixel scheme until training resolves them from the data.
    assert create_scheme("n2v", blind_spot="auto").struct is None
    with pytest.raises(InfocusInputError, match="Unknown blind_spot"):
        create_scheme("n2v", blind_spot="wide")


def test_rotation_invariance_of_the_hidden_pattern():
    assert create_scheme("n2v").rotation_invariant
    assert create_scheme("n2v", fraction=0.01, blind_spot=_BOX).rotation_invariant
    assert not create_scheme("n2v", fraction=0.01, blind_spot=[(0, -1), (0, 1)]).rotation_invariant
    assert not create_scheme("structn2v").rotation_invariant


# --------------------------------------------------------------------------------------------
# the Noise2Void scheme
# --------------------------------------------------------------------------------------------


def test_scheme_variants_and_defaults():
    n2v, n2v2, struct = (create_scheme(n) for n in ("n2v", "n2v2", "structn2v"))
    assert (n2v.fraction, n2v.radius, n2v.replacement, n2v.struct) == (0.002, 2, "uniform", None)
    assert n2v2.replacement == "median" and n2v2.name == "n2v2"
    assert struct.struct == StructPattern.line(5, "X") and struct.replacement == "uniform"
    assert n2v.channels == "independent"


def test_independent_and_joint_channel_masks():
    noisy = torch.rand(2, 3, 40, 40, generator=_gen(20))
    independent = Noise2Void(fraction=0.01).prepare(noisy, None, _gen(21)).mask
    joint = Noise2Void(fraction=0.01, channels="joint").prepare(noisy, None, _gen(21)).mask
    assert independent is not None and joint is not None
    assert not torch.equal(independent[:, 0], independent[:, 1])
    assert torch.equal(joint[:, 0], joint[:, 1]) and torch.equal(joint[:, 0], joint[:, 2])


def test_scheme_errors_are_raised_early():
    with pytest.raises(InfocusInputError, match="masked pixels every"):
        Noise2Void(fraction=0.2)
    with pytest.raises(InfocusInputError, match="Unknown replacement"):
        Noise2Void(replacement="mean")  # type: ignore[arg-type]
    with pytest.raises(InfocusInputError, match="struct must be a StructPattern"):
        Noise2Void(struct=5)  # type: ignore[arg-type]
    # fine in 2-D (box 4.5 >= 3) but too dense in 3-D (box 2.7 < 3)
    scheme = Noise2Void(fraction=0.05)
    scheme.prepare(torch.rand(1, 1, 16, 16), None, _gen(0))
    with pytest.raises(InfocusInputError, match="masked pixels every 2.71"):
        scheme.prepare(torch.rand(1, 1, 16, 16, 16), None, _gen(0))
    with pytest.raises(InfocusInputError, match="at least 5"):
        scheme.prepare(torch.rand(1, 1, 4, 16), None, _gen(0))


# --------------------------------------------------------------------------------------------
# learning sanity check
# --------------------------------------------------------------------------------------------


@pytest.mark.slow  # about 2 s on an idle 2-core machine, far more under load
def test_n2v_learns_to_denoise(blobs_2d, rng):
    """A tiny conv net trained with N2V on noisy patches beats the noisy input (MSE to clean)."""
    clean = torch.from_numpy(blobs_2d)[None, None]
    noise = torch.from_numpy(rng.normal(0.0, 0.2, clean.shape).astype(np.float32))
    noisy = clean + noise
    scheme = create_scheme("n2v", fraction=0.04)
    generator = _gen(22)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 1, 3, padding=1),
        )
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        corner = torch.randint(0, 128 - 32, (16, 2), generator=generator)
        patches = torch.cat([noisy[..., y : y + 32, x : x + 32] for y, x in corner.tolist()])
        batch = scheme.prepare(patches, None, generator)
        loss = scheme.loss(net(batch.input), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        denoised = net(noisy)
    noisy_mse = float((noisy - clean).square().mean())
    denoised_mse = float((denoised - clean).square().mean())
    # observed: about 0.05 x the noisy MSE after 100 steps; an untrained or identity net gives >= 1x
    assert denoised_mse < 0.25 * noisy_mse


# --------------------------------------------------------------------------------------------
# channels denoised together: the measured large scales are restored
# --------------------------------------------------------------------------------------------


def _fit_data(channels: int):
    from infocus.methods import FitData

    return FitData(inputs=[np.zeros((channels, 32, 32), np.float32)], targets=None, ndim=2,
                   spatial="YX", options={}, seed=0, say=lambda line: None,
                   planes=lambda *args, **kwargs: np.zeros((channels, 1, 32, 32)))


def test_a_network_on_several_channels_is_recorded_and_its_export_says_what_is_lost():
    from infocus.methods.blind_spot import LARGE_SCALES_LOST

    scheme = Noise2Void()
    assert scheme.fit(_fit_data(2)).state == {"channels_together": 2}
    assert "channels_together" not in scheme.fit(_fit_data(1)).state
    assert LARGE_SCALES_LOST in scheme.export_limits({"channels_together": 2})
    assert LARGE_SCALES_LOST not in scheme.export_limits({})


def test_joint_channel_prediction_keeps_the_measured_large_scales():
    from scipy.ndimage import gaussian_filter

    from conftest import tiny_model

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:64, :64]
    blob = 200 * np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / (2 * 8.0**2))
    image = np.stack([rng.poisson(20 + blob), rng.poisson(20 + 0.5 * blob)]).astype(np.float32)
    model = tiny_model(channels=2, joint=True)

    def large_scale_error(output: np.ndarray) -> float:
        return float(np.abs(gaussian_filter(image - output, (0, 8, 8))).mean())

    plain = model.denoise(image, axes="CYX", pixel_fusion=False)
    assert np.array_equal(plain, model.denoise(image, axes="CYX", pixel_fusion=False,
                                               large_scales=False))
    model.state = {"channels_together": 2}
    restored = model.denoise(image, axes="CYX", pixel_fusion=False)
    assert np.array_equal(restored, model.denoise(image, axes="CYX", pixel_fusion=False,
                                                  large_scales=True))
    assert large_scale_error(restored) < 0.2 * large_scale_error(plain)


def test_fit_stores_the_training_noise_model_for_the_pixel_fusion(rng):
    from infocus.methods import FitData
    from infocus.methods.blind_spot import fusion_noise
    from infocus.noise import estimate_noise

    planes = (rng.poisson(30, (2, 3, 128, 128)) * np.array([2.0, 5.0])[:, None, None, None]
              + 100).astype(np.float32)
    data = FitData(inputs=[planes[:, 0]], targets=None, ndim=2, spatial="YX", options={},
                   seed=0, say=lambda line: None, planes=lambda *args, **kwargs: planes)
    stored = fusion_noise(Noise2Void().fit(data).state)
    for c in range(2):
        expected = estimate_noise(planes[c], axes="SYX")
        assert stored[c].gain == pytest.approx(expected.gain)
        assert stored[c].variance_intercept == pytest.approx(expected.variance_intercept)
    # Methods that predict without the fusion, and wide blind spots, store nothing.
    assert "fusion_noise" not in create_scheme("structn2v").fit(data).state
    assert fusion_noise({}) is None
