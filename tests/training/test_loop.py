"""The training engine: learning, determinism, resume after a kill, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import blobs_image
from infocus._errors import InfocusInputError, OutputExistsError
from infocus.methods.config import TrainingConfig, default_config
from infocus.metrics import psnr
from infocus.noise import simulate_poisson_gaussian
from infocus.predict.model import load_model
from infocus.training.loop import checkpoint_dir_for, train

TINY = {"depth": 2, "base_filters": 8}


def tiny(method: str = "n2v", **changes) -> TrainingConfig:
    settings = {"network_options": TINY, "patch_size": 32, "batch_size": 4, "steps": 6,
                "steps_per_epoch": 2, "validation_patches": 4}
    return default_config(method).with_updates(**{**settings, **changes})


def _weights(model):
    return {k: v.clone() for k, v in model.network.state_dict().items()}


def test_n2v_learns(noisy_stack):
    noisy, clean = noisy_stack
    config = tiny(steps=150, steps_per_epoch=50, batch_size=8, learning_rate=4e-3,
                  scheme_options={"fraction": 0.02})
    model = train(noisy, axes="SYX", config=config, progress=False)
    out = model.denoise(noisy, axes="SYX")
    before = np.mean([psnr(noisy[i], clean[i]) for i in range(3)])
    after = np.mean([psnr(out[i], clean[i]) for i in range(3)])
    assert after > before + 5, (before, after)
    assert [h["step"] for h in model.history] == [50, 100, 150]


@pytest.mark.parametrize("method", ["n2v2", "structn2v", "n2s"])
def test_each_self_supervised_scheme_trains(noisy_stack, method):
    noisy, _ = noisy_stack
    config = tiny(method)
    model = train(noisy, axes="SYX", config=config, progress=False)
    assert np.isfinite(model.denoise(noisy[0])).all()
    assert model.network.config["blur_pool"] == (method == "n2v2")


@pytest.mark.parametrize("method", ["care", "n2n"])
def test_supervised_schemes_train_on_pairs(noisy_stack, method):
    noisy, clean = noisy_stack
    model = train(noisy, targets=clean, axes="SYX", config=tiny(method), progress=False)
    if method == "care":  # separate target statistics
        assert model.target_norm != model.input_norm
    assert model.denoise(noisy[0]).shape == noisy[0].shape


@pytest.fixture
def correlated_stack(rng):
    """Noise correlated with the next pixel along X and Y (as FMD's widefield camera's)."""
    from infocus.noise import add_correlated_noise

    clean = np.stack([blobs_image((96, 96), rng, n_blobs=20) for _ in range(3)]) * 60 + 100
    return add_correlated_noise(clean, sigma=6.0, kernel=np.ones((3, 3)), rng=2)


def test_n2v_widens_its_blind_spot_where_the_noise_is_correlated(tmp_path, correlated_stack,
                                                                  noisy_stack):
    messages: list[str] = []
    box = [[dy, dx] for dy in range(-2, 3) for dx in range(-2, 3) if (dy, dx) != (0, 0)]
    model = train(correlated_stack, axes="SYX", config=tiny(), progress=False,
                  output=tmp_path / "m", log=messages.append)
    options = model.config.scheme_options
    assert options["blind_spot"] == box
    # radius 3 + reach 2 + 1: blind spots 6 pixels apart, fewer than the default 4 % fit
    assert options["fraction"] == pytest.approx(1 / 36)
    assert any("5×5 block" in m for m in messages)
    assert model.state["noise_correlation"]["correlated"]
    image = correlated_stack[0]
    # No fusion with the noisy pixel by default: it is not independent of its neighbours here.
    np.testing.assert_array_equal(model.denoise(image), model.denoise(image, pixel_fusion=False))
    # The measured pattern is stored with the model and used again after loading.
    assert load_model(tmp_path / "m").config.scheme_options["blind_spot"] == box
    # White noise: the classic blind spot and the default masked fraction.
    white = train(noisy_stack[0], axes="SYX", config=tiny(), progress=False)
    assert white.config.scheme_options == {"blind_spot": []}
    assert not white.state["noise_correlation"]["correlated"]
    image = noisy_stack[0][0]
    assert not np.array_equal(white.denoise(image), white.denoise(image, pixel_fusion=False))
    # The user decides: 'pixel' keeps the classic one; explicit offsets are used as given.
    pixel = tiny(scheme_options={"blind_spot": "pixel"})
    assert train(correlated_stack, axes="SYX", config=pixel,
                 progress=False).config.scheme_options == {"blind_spot": []}
    line = tiny("n2v2", scheme_options={"blind_spot": [[0, -1], [0, 1]], "fraction": 0.02})
    lined = train(correlated_stack, axes="SYX", config=line, progress=False)
    assert lined.config.scheme_options == {"blind_spot": [[0, -1], [0, 1]], "fraction": 0.02}
    assert not lined.rotation_invariant
    # A pattern given explicitly that still fits the default fraction keeps it.
    small = [[dy, dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    kept = train(correlated_stack, axes="SYX", progress=False,
                 config=tiny(scheme_options={"blind_spot": small}))
    assert kept.config.scheme_options["fraction"] == 0.04
    with pytest.raises(InfocusInputError, match="Unknown blind_spot"):
        train(correlated_stack, axes="SYX", config=tiny(scheme_options={"blind_spot": "wide"}),
              progress=False)


def test_noise2self_warns_about_correlated_noise(correlated_stack, noisy_stack):
    messages: list[str] = []
    train(correlated_stack, axes="SYX", config=tiny("n2s"), progress=False, log=messages.append)
    assert any(m.startswith("Warning: measured noise correlation") and "n2v" in m
               for m in messages)
    quiet: list[str] = []
    train(noisy_stack[0], axes="SYX", config=tiny("n2s"), progress=False, log=quiet.append)
    assert not any("Warning" in m for m in quiet)


def test_resume_with_a_measured_blind_spot(tmp_path, correlated_stack):
    """The measured pattern is part of the checkpointed settings; resuming measures it again
    (deterministically) and continues bit-identically."""
    reference = train(correlated_stack, axes="SYX", config=tiny(), progress=False)
    output = tmp_path / "model"

    def killed_after_epoch_two(message: str) -> None:
        if message.startswith("epoch 2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(correlated_stack, axes="SYX", config=tiny(), output=output,
              log=killed_after_epoch_two)
    resumed = train(correlated_stack, axes="SYX", config=tiny(), output=output, resume=True,
                    log=lambda m: None)
    assert len(resumed.config.scheme_options["blind_spot"]) == 24
    for key, value in _weights(reference).items():
        assert torch.equal(value, _weights(resumed)[key]), key


def test_same_seed_same_weights(noisy_stack):
    noisy, _ = noisy_stack
    a = train(noisy, axes="SYX", config=tiny(), progress=False)
    b = train(noisy, axes="SYX", config=tiny(), progress=False)
    c = train(noisy, axes="SYX", config=tiny(seed=1), progress=False)
    for key, value in _weights(a).items():
        assert torch.equal(value, _weights(b)[key]), key
    assert any(not torch.equal(v, _weights(c)[k]) for k, v in _weights(a).items())


def test_resume_after_kill_matches_uninterrupted_run(tmp_path, noisy_stack):
    noisy, _ = noisy_stack
    reference = train(noisy, axes="SYX", config=tiny(), progress=False)
    output = tmp_path / "model"

    def killed_after_epoch_two(message: str) -> None:
        if message.startswith("epoch 2"):
            raise KeyboardInterrupt  # as if the process died after the epoch-2 log line

    with pytest.raises(KeyboardInterrupt):
        train(noisy, axes="SYX", config=tiny(), output=output, log=killed_after_epoch_two)
    assert not output.exists()
    assert (checkpoint_dir_for(output) / "checkpoint.pt").is_file()
    messages: list[str] = []
    resumed = train(noisy, axes="SYX", config=tiny(), output=output, resume=True,
                    log=messages.append)
    assert any("Resuming" in m and "step 2" in m for m in messages)
    for key, value in _weights(reference).items():
        assert torch.equal(value, _weights(resumed)[key]), key
    assert output.is_dir() and not checkpoint_dir_for(output).exists()
    assert [h["step"] for h in load_model(output).history] == [2, 4, 6]


def _interrupt_after_epoch_two(noisy: np.ndarray, output) -> None:
    """A run writing ``output`` that dies after logging epoch 2, leaving its checkpoint."""

    def die(message: str) -> None:
        if message.startswith("epoch 2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(noisy, axes="SYX", config=tiny(), output=output, log=die)


def test_resume_with_other_settings_is_refused(tmp_path, noisy_stack):
    noisy, _ = noisy_stack
    output = tmp_path / "model"
    _interrupt_after_epoch_two(noisy, output)
    with pytest.raises(InfocusInputError, match="other training settings"):
        train(noisy, axes="SYX", config=tiny(batch_size=2), output=output, resume=True)


def test_resume_on_other_data_and_a_forgotten_checkpoint_are_refused(tmp_path, noisy_stack):
    noisy, _ = noisy_stack
    output = tmp_path / "model"
    _interrupt_after_epoch_two(noisy, output)
    with pytest.raises(InfocusInputError, match="other training data"):
        train(noisy[:, ::-1].copy(), axes="SYX", config=tiny(), output=output, resume=True)
    with pytest.raises(InfocusInputError, match="pass --resume to continue it, or --overwrite"):
        train(noisy, axes="SYX", config=tiny(), output=output)
    assert (checkpoint_dir_for(output) / "checkpoint.pt").is_file()  # kept for --resume
    train(noisy, axes="SYX", config=tiny(), output=output, overwrite=True, log=lambda m: None)
    assert output.is_dir() and not checkpoint_dir_for(output).exists()


def test_early_stopping_keeps_best(noisy_stack):
    noisy, _ = noisy_stack
    # With a vanishing learning rate only the batch-norm statistics move; improvement stalls.
    config = tiny(steps=40, steps_per_epoch=2, patience=1, learning_rate=1e-30)
    messages: list[str] = []
    model = train(noisy, axes="SYX", config=config, log=messages.append)
    assert any("Early stop" in m for m in messages)
    assert len(model.history) < 20


def test_3d_training(rng):
    clean = blobs_image((16, 48, 48), rng, n_blobs=10)
    noisy, _ = simulate_poisson_gaussian(clean, photons=30, rng=2)
    config = tiny(patch_size=16, steps=2)
    model = train(noisy, axes="ZYX", config=config, progress=False)
    assert model.spatial == "ZYX"
    assert model.denoise(noisy, axes="ZYX").shape == noisy.shape


def test_time_as_third_dimension(rng):
    noisy = rng.poisson(20, (16, 48, 48)).astype(np.float32)
    model = train(noisy, axes="TYX", config=tiny(spatial="TYX", patch_size=16, steps=2),
                  progress=False)
    assert model.spatial == "TYX"
    assert model.denoise(noisy, axes="TYX").shape == noisy.shape


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("care_without_target", "learns from pairs"),
        ("n2v_with_target", "self-supervised"),
        ("smaller_than_patch", "patch-size"),
        ("constant", "constant"),
        ("nan", "NaN"),
        ("target_shape", "same shape"),
        ("unknown_method", "Unknown method"),
        ("bad_patch", "multiple of 4"),
    ],
)
def test_bad_training_input(noisy_stack, case, message):
    noisy, clean = noisy_stack
    kwargs: dict = {"axes": "SYX", "progress": False}
    config = tiny()
    if case == "care_without_target":
        config = tiny("care")
    elif case == "n2v_with_target":
        kwargs["targets"] = clean
    elif case == "smaller_than_patch":
        noisy = noisy[:, :20, :20]
    elif case == "constant":
        noisy = np.full_like(noisy, 7.0)
    elif case == "nan":
        noisy = noisy.copy()
        noisy[:, 5, 5] = np.nan
    elif case == "target_shape":
        config = tiny("care")
        kwargs["targets"] = clean[:, :, :40]
    elif case == "unknown_method":
        config = tiny().with_updates(method="n3v")
    else:
        config = tiny(patch_size=30)
    with pytest.raises(InfocusInputError, match=message):
        train(noisy, config=config, **kwargs)


def test_existing_output_is_refused_before_training(tmp_path, noisy_stack):
    noisy, _ = noisy_stack
    (tmp_path / "model").mkdir()
    with pytest.raises(OutputExistsError):
        train(noisy, axes="SYX", config=tiny(), output=tmp_path / "model")


def test_a_progress_callback_that_raises_stops_training_at_once(noisy_stack):
    """How an interface cancels a run (a Cancel button): its callback raises; no step follows."""
    noisy, _ = noisy_stack

    class Cancelled(Exception):
        pass

    heard: list[int] = []

    def cancel_at_step_three(progress) -> None:
        heard.append(progress.step)
        if progress.step == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        train(noisy, axes="SYX", config=tiny(steps=50), progress=cancel_at_step_three)
    assert heard == [1, 2, 3]


def test_engine_draws_the_schemes_labelled_share_only_when_some_images_are_unlabelled():
    from infocus.methods import create_scheme
    from infocus.training.data import LabelledShareSampler, PatchSampler
    from infocus.training.loop import _sampler

    inputs = [np.zeros((1, 32, 32), np.float32) for _ in range(4)]
    labelled = np.zeros((1, 32, 32), np.float32)
    unlabelled = np.full((1, 32, 32), -1.0, np.float32)
    options = {"patch_shape": (16, 16), "rng": 0}
    scheme = create_scheme("denoiseg", labelled_fraction=0.75)
    few = _sampler(scheme, inputs, [labelled] + [unlabelled] * 3, **options)
    assert isinstance(few, LabelledShareSampler) and few.share == 0.75
    assert type(_sampler(scheme, inputs, [labelled] * 4, **options)) is PatchSampler
    assert type(_sampler(create_scheme("n2v"), inputs, None, **options)) is PatchSampler
