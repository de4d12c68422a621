"""Training in several processes (torch.distributed, gloo on the CPU): two real processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import blobs_image
from infocus._errors import InfocusInputError
from infocus.methods.config import default_config
from infocus.metrics import psnr
from infocus.noise import simulate_poisson_gaussian
from infocus.predict.model import load_model
from infocus.training.distributed import Distributed
from infocus.training.loop import TrainingProgress, checkpoint_dir_for, train

TINY = {"depth": 2, "base_filters": 8}


def tiny(**changes):
    settings = {"network_options": TINY, "patch_size": 32, "batch_size": 4, "steps": 6,
                "steps_per_epoch": 2, "validation_patches": 4}
    return default_config("n2v").with_updates(**{**settings, **changes})


@pytest.fixture
def data(rng):
    clean = np.stack([blobs_image((96, 96), rng, n_blobs=30) for _ in range(3)])
    noisy, _ = simulate_poisson_gaussian(clean, photons=20, gain=2, offset=100, read_noise=3,
                                         rng=1)
    return noisy, clean * 40 + 100


def _weights(model):
    return {k: v.clone() for k, v in model.network.state_dict().items()}


def test_two_processes_train_one_model_and_report_progress(tmp_path, data):
    noisy, _ = data
    output = tmp_path / "model"
    heard: list[TrainingProgress] = []
    messages: list[str] = []
    model = train(noisy, axes="SYX", config=tiny(), output=output, processes=2,
                  progress=heard.append, log=messages.append)
    assert model.provenance["processes"] == 2
    assert [h["step"] for h in load_model(output).history] == [2, 4, 6]
    # One model, no checkpoint series left, nothing else written beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert [p.step for p in heard] == list(range(1, 7))  # the first process's steps, once each
    assert any("noise correlation" in m for m in messages)
    assert model.denoise(noisy[0]).shape == noisy[0].shape


def test_the_batch_must_be_shared_equally(data):
    with pytest.raises(InfocusInputError, match="multiple of 2"):
        train(data[0], axes="SYX", config=tiny(batch_size=3), processes=2, progress=False)


def test_one_process_shares_nothing():
    dist = Distributed(torch.device("cpu"))
    assert (dist.world_size, dist.rank, dist.share(5), dist.gather("x")) == (1, 0, 5, ["x"])


@pytest.mark.parametrize("processes", [0, 65, 1.5])
def test_bad_process_counts_are_refused(data, processes):
    with pytest.raises(InfocusInputError, match="processes must be a whole number"):
        train(data[0], axes="SYX", config=tiny(), processes=processes, progress=False)


@pytest.mark.slow
def test_interrupted_run_resumes_as_if_never_stopped(tmp_path, data):
    """Stopped after epoch 2 (a callback raising, as Ctrl-C does); --resume continues from the
    checkpoint with each process's own random stream and ends on the uninterrupted weights."""
    noisy, _ = data
    config = tiny(steps=60)
    reference = train(noisy, axes="SYX", config=config, processes=2, progress=False,
                      log=lambda m: None)
    output = tmp_path / "model"

    def stop_after_epoch_two(message: str) -> None:
        if message.startswith("epoch 2"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(noisy, axes="SYX", config=config, output=output, processes=2,
              log=stop_after_epoch_two)
    assert not output.exists()
    assert (checkpoint_dir_for(output) / "checkpoint.pt").is_file()
    with pytest.raises(InfocusInputError, match="resume with --processes 2"):
        train(noisy, axes="SYX", config=config, output=output, resume=True, progress=False)
    messages: list[str] = []
    resumed = train(noisy, axes="SYX", config=config, output=output, resume=True, processes=2,
                    log=messages.append)
    assert any(m.startswith("Resuming n2v from step") for m in messages)
    for key, value in _weights(reference).items():
        torch.testing.assert_close(_weights(resumed)[key], value, rtol=1e-5, atol=1e-6)
    assert not checkpoint_dir_for(output).exists()


@pytest.mark.slow
def test_two_processes_denoise_like_one_within_the_seed_spread(data):
    noisy, clean = data
    config = tiny(steps=120, steps_per_epoch=40, batch_size=8, learning_rate=4e-3)

    def score(model):
        return np.mean([psnr(model.denoise(n), c) for n, c in zip(noisy, clean, strict=True)])

    single = [score(train(noisy, axes="SYX", config=config.with_updates(seed=seed),
                          progress=False)) for seed in (0, 1, 2)]
    double = score(train(noisy, axes="SYX", config=config, processes=2, progress=False,
                         log=lambda m: None))
    spread = max(single) - min(single)
    assert np.mean(single) > psnr(noisy[0], clean[0]) + 3  # the runs did learn
    assert min(single) - spread <= double <= max(single) + spread, (single, double)
