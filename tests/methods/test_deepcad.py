"""Temporal Noise2Noise: a frame is predicted from its neighbours and never from itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import infocus
from infocus._errors import InfocusInputError
from infocus.methods import create_scheme, neighbour_frames
from infocus.methods.config import default_config


@given(st.integers(2, 40).flatmap(lambda n: st.tuples(
    st.just(n), st.integers(0, n - 1), st.integers(1, n - 1))))
def test_neighbours_are_the_nearest_other_frames(case):
    length, frame, count = case
    chosen = neighbour_frames(frame, length, count)
    assert len(chosen) == len(set(chosen)) == count
    assert frame not in chosen and all(0 <= j < length for j in chosen)
    distances = [abs(j - frame) for j in chosen]
    assert distances == sorted(distances)
    left_out = [abs(j - frame) for j in range(length) if j != frame and j not in chosen]
    assert not left_out or min(left_out) >= max(distances)


def test_too_short_a_stack_is_refused():
    with pytest.raises(InfocusInputError, match="at least 4 frames"):
        neighbour_frames(0, 3, 3)


def test_a_training_input_never_holds_its_target_frame():
    scheme = create_scheme("deepcad", neighbours=3)
    # every pixel of frame t holds the value t, so the input shows which frames it came from
    frames = torch.arange(5, dtype=torch.float32)[None, None, :, None, None].expand(16, 2, 5, 8, 8)
    batch = scheme.prepare(frames.contiguous(), None, torch.Generator().manual_seed(0))
    assert batch.input.shape == (16, 6, 8, 8) and batch.target.shape == (16, 2, 8, 8)
    assert batch.mask is None
    for b in range(16):
        t = int(batch.target[b, 0, 0, 0])
        seen = batch.input[b, :, 0, 0].tolist()
        expected = neighbour_frames(t, 5, 3)
        assert seen == [float(j) for j in expected * 2]  # channel-major: C0's frames, then C1's
    assert len({int(v) for v in batch.target[:, 0, 0, 0]}) > 1  # the target frame varies


def _drifting_stack(rng, frames=6, shape=(64, 64), photons=20.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    clean = np.stack([
        1.0 + np.sin((xx + 0.5 * t) / 4.0) ** 2 * np.cos(yy / 6.0) ** 2 for t in range(frames)])
    return clean * photons, rng.poisson(clean * photons).astype(np.float32)


def _config(**changes):
    settings = {"steps": 60, "steps_per_epoch": 30, "patch_size": 32, "batch_size": 8,
                "validation_patches": 4, **changes}
    return default_config("deepcad").with_updates(**settings)


def test_it_learns_a_drifting_stack_and_tiles_along_time_exactly(rng):
    clean, noisy = _drifting_stack(rng, frames=9)
    model = infocus.train(noisy, method="deepcad", axes="TYX", config=_config(),
                          progress=False, log=lambda m: None)
    assert model.state["neighbours"] == 4
    whole = model.denoise(noisy, axes="TYX", backend="torch", pixel_fusion=False,
                          frame_averaging=False)
    assert whole.shape == noisy.shape
    assert np.mean((whole - clean) ** 2) < 0.5 * np.mean((noisy - clean) ** 2)
    # tiles along T (9 frames, overlap 2 * 4 + 1 raised as needed) equal the untiled result
    tiled = model.denoise(noisy, axes="TYX", backend="torch", pixel_fusion=False,
                          frame_averaging=False, tile_size=4, overlap=2)
    np.testing.assert_allclose(tiled, whole, rtol=1e-4, atol=1e-3 * float(np.ptp(whole)))


def test_pixel_fusion_moves_every_frame_towards_its_own_photons(rng):
    """One weight α in (0, 1) for the stack: fused = unfused + α (noisy - unfused). Whether it
    helps is measured in the benchmarks (context suite), not on 60 training steps."""
    _, noisy = _drifting_stack(rng, frames=4, photons=5.0)
    model = infocus.train(noisy, method="deepcad", axes="TYX", config=_config(),
                          progress=False, log=lambda m: None)
    assert model.state["neighbours"] == 3  # the shortest stack has 4 frames
    fused = model.denoise(noisy, axes="TYX", backend="torch", frame_averaging=False)
    unfused = model.denoise(noisy, axes="TYX", backend="torch", pixel_fusion=False,
                            frame_averaging=False)
    step, room = (fused - unfused).ravel(), (noisy - unfused).ravel()
    alpha = float(step @ room / (room @ room))
    assert 0.0 < alpha < 1.0
    np.testing.assert_allclose(step, alpha * room, atol=1e-3 * float(np.ptp(noisy)))


def test_it_refuses_data_without_time_and_stacks_shorter_than_its_window(rng):
    _, noisy = _drifting_stack(rng, frames=4)
    with pytest.raises(InfocusInputError, match="time axis"):
        infocus.train(noisy, method="deepcad", axes="ZYX", progress=False, log=lambda m: None,
                      config=_config(spatial="YX"))
    with pytest.raises(InfocusInputError, match="needs axis 'T'"):
        infocus.train(noisy, method="deepcad", axes="ZYX", progress=False, log=lambda m: None,
                      config=_config())
    with pytest.raises(InfocusInputError, match="at least 2 images along T"):
        infocus.train(noisy[:1], method="deepcad", axes="TYX", progress=False,
                      log=lambda m: None, config=_config())
    with pytest.raises(InfocusInputError, match="neighbours=3 or less"):
        infocus.train(noisy, method="deepcad", axes="TYX", progress=False, log=lambda m: None,
                      config=_config(scheme_options={"neighbours": 6}))
    model = infocus.train(noisy, method="deepcad", axes="TYX", progress=False,
                          log=lambda m: None, config=_config(steps=2))
    with pytest.raises(InfocusInputError, match="give at least 4 frames"):
        model.denoise(noisy[:3], axes="TYX")


def _estimates(rng, clean, error_std):
    """Estimates with independent errors, and a Poisson-like measurement (variance = signal)."""
    estimates = clean + rng.normal(0, error_std, clean.shape)
    noisy = clean + rng.normal(0, 1, clean.shape) * np.sqrt(clean)
    return estimates.astype(np.float32), noisy.astype(np.float32)


def test_unchanged_frames_are_averaged_and_moving_ones_are_not(rng):
    from infocus.methods.deepcad import average_unchanged
    from infocus.noise import NoiseParams

    noise = NoiseParams(gain=1.0, variance_intercept=0.0)
    yy, xx = np.mgrid[:64, :64]
    still = np.repeat((100 + 50 * np.sin(xx / 6.0))[None], 4, axis=0)
    estimates, noisy = _estimates(rng, still, error_std=2.0)
    averaged = average_unchanged(estimates, estimates, noisy, noise, 3)
    # four estimates with independent errors: the error variance drops towards a quarter
    assert np.mean((averaged - still) ** 2) < 0.4 * np.mean((estimates - still) ** 2)
    assert (averaged >= estimates.min(0) - 1e-3).all() and (averaged <= estimates.max(0) + 1e-3).all()
    moving = np.stack([100 + 50 * np.sin((xx + 6 * t) / 6.0) for t in range(4)])
    estimates, noisy = _estimates(rng, moving, error_std=2.0)
    averaged = average_unchanged(estimates, estimates, noisy, noise, 3)
    # averaging shifted structures would blur them; the moving estimates stay as they were
    assert np.mean((averaged - moving) ** 2) <= 1.05 * np.mean((estimates - moving) ** 2)


def test_time_lapses_of_multi_channel_volumes_run_end_to_end(rng):
    """TCZYX: deepcad reads neighbouring time points plane by plane; a 3-D network (n2v) takes
    each time point's volume; a volume thinner than the 3-D network's alignment is refused."""
    stack = rng.poisson(20, size=(4, 2, 8, 32, 32)).astype(np.float32)
    for method in ("deepcad", "n2v"):
        config = default_config(method).with_updates(
            steps=2, patch_size=16, batch_size=2, validation_patches=2)
        model = infocus.train(stack, method=method, axes="TCZYX", config=config, progress=False,
                              log=lambda m: None)
        assert model.spatial == ("TYX" if method == "deepcad" else "ZYX")
        denoised = model.denoise(stack, axes="TCZYX")
        assert denoised.shape == stack.shape and np.isfinite(denoised).all()
    with pytest.raises(InfocusInputError, match="3 planes .* --spatial YX"):
        infocus.train(stack[:, :, :3], method="n2v", axes="TCZYX", progress=False,
                      log=lambda m: None, config=default_config("n2v").with_updates(steps=2))


def test_the_blind_spot_variant_sees_its_frame_except_the_scored_pixels():
    scheme = create_scheme("deepcad", neighbours=2, own_frame="blind_spot")
    assert scheme.network_options(1)["in_channels"] == 3
    frames = torch.rand(4, 1, 5, 32, 32)
    batch = scheme.prepare(frames, None, torch.Generator().manual_seed(0))
    assert batch.input.shape == (4, 3, 32, 32) and batch.mask is not None
    own = batch.input[:, :1]
    assert bool(batch.mask.any())
    # the frame itself is the input outside the blind spots, and hidden at them
    assert torch.equal(own[~batch.mask], batch.target[~batch.mask])
    assert not torch.equal(own[batch.mask], batch.target[batch.mask])
    assert scheme.loss(batch.target, batch).item() == 0.0
    with pytest.raises(InfocusInputError, match="own_frame"):
        create_scheme("deepcad", own_frame="visible")


def test_the_blind_spot_variant_trains_and_predicts(rng):
    clean, noisy = _drifting_stack(rng, frames=5)
    config = _config(steps=40, scheme_options={"own_frame": "blind_spot"})
    model = infocus.train(noisy, method="deepcad", axes="TYX", config=config, progress=False,
                          log=lambda m: None)
    denoised = model.denoise(noisy, axes="TYX")
    assert denoised.shape == noisy.shape
    assert np.mean((denoised - clean) ** 2) < np.mean((noisy - clean) ** 2)


def test_a_wider_blind_spot_hides_the_pattern_around_each_scored_pixel():
    box = [[dy, dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    scheme = create_scheme("deepcad", neighbours=2, own_frame="blind_spot", blind_spot=box)
    frames = torch.rand(4, 1, 5, 32, 32)
    batch = scheme.prepare(frames, None, torch.Generator().manual_seed(0))
    own, mask = batch.input[:, :1], batch.mask
    assert bool(mask.any())
    # every pixel of the 3×3 around a scored pixel is hidden, and nothing further away
    near = torch.nn.functional.max_pool2d(mask[:, 0].float(), 3, 1, 1).bool()[:, None]
    assert not torch.isclose(own[near], batch.target[near]).any()
    assert torch.equal(own[~near], batch.target[~near])
    with pytest.raises(InfocusInputError, match="Unknown blind_spot"):
        create_scheme("deepcad", blind_spot="wide")


def test_the_frame_s_blind_spot_widens_for_correlated_noise_only(rng):
    from infocus.noise import add_correlated_noise

    clean, white = _drifting_stack(rng, frames=5, shape=(96, 96))
    correlated = add_correlated_noise(clean, sigma=4.0, kernel=np.ones((3, 3)), rng=2)
    patterns = {}
    for name, stack in (("white", white), ("correlated", correlated)):
        said: list[str] = []
        config = _config(steps=2, scheme_options={"own_frame": "blind_spot"})
        model = infocus.train(stack.astype(np.float32), method="deepcad", axes="TYX",
                              config=config, progress=False, log=said.append)
        patterns[name] = model.config.scheme_options["blind_spot"]
        assert any("blind spots hide" in line for line in said) == bool(patterns[name])
    assert patterns["white"] == []
    assert [0, 1] in patterns["correlated"] and [1, 1] in patterns["correlated"]
    # -p blind_spot=pixel keeps one-pixel blind spots whatever was measured
    config = _config(steps=2, scheme_options={"own_frame": "blind_spot", "blind_spot": "pixel"})
    model = infocus.train(correlated.astype(np.float32), method="deepcad", axes="TYX",
                          config=config, progress=False, log=lambda m: None)
    assert model.config.scheme_options["blind_spot"] == []


def test_context_maps_to_the_network_s_axes_and_refuses_what_the_data_lack(rng):
    from infocus.methods.config import TrainingConfig

    base = TrainingConfig(method="n2v")
    assert base.with_context("T").spatial == "TYX" and base.with_context("Z").spatial == "ZYX"
    assert base.with_context(["C"]).channels == "joint" and base.with_context(None) == base
    with pytest.raises(InfocusInputError, match="not both"):
        base.with_context("TZ")
    with pytest.raises(InfocusInputError, match="T, Z and C"):
        base.with_context("S")
    _, noisy = _drifting_stack(rng, frames=5)
    quick = {"steps": 2, "patch_size": 32, "batch_size": 2, "validation_patches": 2}
    with pytest.raises(InfocusInputError, match="need images with a C axis"):
        infocus.train(noisy, method="n2v", axes="TYX", progress=False, log=lambda m: None,
                      config=default_config("n2v").with_updates(**quick).with_context("C"))
    # deepcad along Z: each plane from its neighbouring planes
    model = infocus.train(noisy, method="deepcad", axes="ZYX", progress=False,
                          log=lambda m: None,
                          config=default_config("deepcad").with_updates(**quick).with_context("Z"))
    assert model.spatial == "ZYX"
    assert model.denoise(noisy, axes="ZYX").shape == noisy.shape


def _moving_blobs(speed: int, photons: float, seed: int, frames: int = 8, size: int = 96):
    """Poisson frames of 2-px blobs shifted by ``speed`` px per frame along X, and the scene."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    points = np.zeros((size, size + speed * frames))
    points[rng.integers(0, size, 150), rng.integers(0, points.shape[1], 150)] = 1.0
    scene = ndimage.gaussian_filter(points, 2.0)
    scene = scene / scene.max() + 0.1
    clean = np.stack([scene[:, speed * t : speed * t + size] for t in range(frames)]) * photons
    return rng.poisson(clean).astype(np.float32), clean


@settings(max_examples=20, deadline=None)
@given(photons=st.floats(5.0, 1000.0), seed=st.integers(0, 2**16))
def test_motion_reads_about_zero_for_a_static_scene_and_high_for_a_moving_one(photons, seed):
    from infocus.methods.deepcad import frame_decorrelation

    static, _ = _moving_blobs(0, photons, seed)
    moving, _ = _moving_blobs(3, photons, seed)
    assert abs(frame_decorrelation(static)) < 0.1
    assert frame_decorrelation(moving) > 0.6


def test_motion_is_not_read_from_noise_correlated_between_pixels(rng):
    """Smoothing the noise (as resampling or some cameras do) changes no covariance between
    frames, so a static scene still reads static."""
    from scipy import ndimage

    from infocus.methods.deepcad import frame_decorrelation

    static, _ = _moving_blobs(0, 20.0, 1)
    correlated = ndimage.uniform_filter(static, size=(1, 3, 3))
    assert abs(frame_decorrelation(correlated)) < 0.1
    with pytest.raises(InfocusInputError, match="at least 3 frames"):
        frame_decorrelation(static[:2])
    # frames that share nothing: fully decorrelated
    assert frame_decorrelation(rng.poisson(20.0, (6, 64, 64))) == 1.0


@pytest.mark.parametrize(("speed", "choice", "in_channels"),
                         [(0, "hidden", 4), (2, "blind_spot", 5), (8, "alone", 1)])
def test_auto_chooses_from_the_motion_and_the_model_file_keeps_the_choice(
        tmp_path, speed, choice, in_channels):
    from infocus.predict.model import load_model

    noisy, _ = _moving_blobs(speed, 20.0, 0, frames=6, size=64)
    said: list[str] = []
    model = infocus.train(noisy, method="deepcad", axes="TYX", config=_config(steps=2),
                          progress=False, log=said.append)
    assert model.config.scheme_options["own_frame"] == choice
    motion = model.state["motion"]
    assert (motion["threshold"], motion["alone_threshold"]) == (0.1, 0.7)
    assert (motion["decorrelation"] > 0.1) == (choice != "hidden")
    assert (motion["decorrelation"] > 0.7) == (choice == "alone")
    assert any(f"own_frame={choice}" in line for line in said)
    loaded = load_model(model.save(tmp_path / "model"))
    assert loaded.config.scheme_options["own_frame"] == choice
    assert loaded.state["motion"] == model.state["motion"]
    # the network sees the neighbours unless the frame is alone, and the frame itself unless
    # it is hidden
    assert loaded.network.config["in_channels"] == in_channels
    assert loaded.denoise(noisy, axes="TYX").shape == noisy.shape


def _choice(stacks, say=lambda m: None):
    from infocus.methods._base import FitData
    from infocus.methods.deepcad import _choose_own_frame

    data = FitData(inputs=[stack[None] for stack in stacks], targets=None, ndim=2,
                   spatial="TYX", options={}, seed=0, say=say, planes=None)
    return _choose_own_frame(data, "T")


@pytest.mark.parametrize(("speed", "choice"), [(0, "hidden"), (1, "blind_spot"), (2, "blind_spot"),
                                               (4, "alone"), (12, "alone")])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_variant_follows_the_motion_from_static_to_sharing_nothing(speed, choice, seed):
    """Blobs of 2 px read about 0 static, 0.18 at 1 px/frame, 0.56 at 2 and above 0.7 from 3
    on: the frame is hidden while the scene is static, also shown once it changes measurably,
    then shown alone as the neighbours share less of it."""
    noisy, _ = _moving_blobs(speed, 20.0, seed)
    chosen, motion = _choice([noisy])
    assert chosen == choice
    assert motion["error"] < 0.1


def test_a_figure_too_uncertain_to_place_the_scene_shows_frame_and_neighbours(monkeypatch):
    """The figure's interval (two standard errors) decides: one that reaches both the static
    and the alone side, a ratio of two small noisy covariances, picks the variant that sees
    both; one that reaches zero counts as static."""
    from infocus.methods import deepcad

    frames = np.zeros((5, 16, 16))
    cases = {(0.0, 0.5): "blind_spot", (0.0, 0.11): "hidden", (0.25, 0.12): "blind_spot",
             (0.25, 0.13): "hidden", (0.08, 0.01): "hidden", (0.12, 0.01): "blind_spot",
             (0.9, 0.05): "alone", (0.9, 0.3): "alone", (0.5, 0.4): "blind_spot",
             (-0.5, 0.7): "blind_spot"}
    for (value, error), choice in cases.items():
        monkeypatch.setattr(deepcad, "measure_decorrelation", lambda _, v=value, e=error: (v, e))
        said: list[str] = []
        chosen, motion = _choice([frames], said.append)
        assert chosen == choice, (value, error)
        assert motion["error"] == error and f"own_frame={choice}" in said[0]
        assert ("too uncertain" in said[0]) == (value - 2 * error <= 0.1 < 0.7 < value + 2 * error)


def test_the_error_counts_blocks_not_pixels(rng):
    """The products of a smooth scene are correlated between nearby pixels: the standard error
    comes from block means, so scenes that share nothing read 1 with no error, and a static
    scene reads about 0 within a few of its standard errors."""
    from infocus.methods.deepcad import measure_decorrelation

    assert measure_decorrelation(rng.poisson(20.0, (6, 64, 64))) == (1.0, 0.0)
    # frames of smooth, independent scenes: the products are smooth too, and standard errors
    # over pixels (3 of these 10 sets reach 9 of them) would read a chance covariance as
    # shared structure
    for first in range(0, 60, 6):
        independent = np.stack([_moving_blobs(0, 1000.0, seed)[1][0]
                                for seed in range(first, first + 6)])
        assert measure_decorrelation(independent) == (1.0, 0.0)
    for seed in range(5):
        static, _ = _moving_blobs(0, 20.0, seed)
        value, error = measure_decorrelation(static)
        assert 0.0 < error < 0.1 and abs(value) < 4 * error


def test_the_alone_variant_sees_its_frame_and_no_neighbour(rng):
    scheme = create_scheme("deepcad", neighbours=2, own_frame="alone")
    assert scheme.network_options(2)["in_channels"] == 2
    assert scheme.patch_shape((5, 32, 32), (9, 64, 64)) == (1, 32, 32)
    frames = torch.rand(4, 2, 1, 32, 32)
    batch = scheme.prepare(frames, None, torch.Generator().manual_seed(0))
    assert batch.input.shape == (4, 2, 32, 32) and batch.mask is not None
    assert torch.equal(batch.input[~batch.mask], batch.target[~batch.mask])
    assert not torch.equal(batch.input[batch.mask], batch.target[batch.mask])
    clean, noisy = _drifting_stack(rng, frames=5)
    model = infocus.train(noisy, method="deepcad", axes="TYX", progress=False,
                          log=lambda m: None,
                          config=_config(steps=40, scheme_options={"own_frame": "alone"}))
    denoised = model.denoise(noisy, axes="TYX")
    assert np.mean((denoised - clean) ** 2) < np.mean((noisy - clean) ** 2)
    # each frame alone: a stack shorter than the neighbours' window is denoised too
    assert model.denoise(noisy[:2], axes="TYX").shape == (2, *noisy.shape[1:])


def test_a_given_variant_is_kept_and_two_frames_are_too_few_to_measure(rng):
    noisy, _ = _moving_blobs(3, 20.0, 0, frames=6, size=64)
    model = infocus.train(noisy, method="deepcad", axes="TYX", progress=False,
                          log=lambda m: None,
                          config=_config(steps=2, scheme_options={"own_frame": "hidden"}))
    assert model.config.scheme_options["own_frame"] == "hidden" and "motion" not in model.state
    said: list[str] = []
    model = infocus.train(noisy[:2], method="deepcad", axes="TYX", progress=False,
                          log=said.append, config=_config(steps=2))
    assert model.config.scheme_options["own_frame"] == "hidden"
    assert any("needs 3 images along T" in line for line in said)
    with pytest.raises(InfocusInputError, match="choose 'auto'"):
        create_scheme("deepcad", own_frame="moving")


@pytest.mark.parametrize("copy", [True, False])
def test_a_frame_saved_twice_is_said(rng, copy):
    _, noisy = _drifting_stack(rng, frames=4)
    if copy:
        noisy[1] = noisy[0]
    said: list[str] = []
    infocus.train(noisy, method="deepcad", axes="TYX", config=_config(steps=2, steps_per_epoch=2),
                  progress=False, log=said.append)
    assert any("identical" in line for line in said) is copy
