"""Fine-tuning (transfer learning): a trained model is the start of training on new data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from infocus._errors import InfocusInputError
from infocus.methods.config import default_config
from infocus.training.loop import fine_tuning_config, train


def tiny(**changes):
    base = {"steps": 4, "steps_per_epoch": 2, "patch_size": 32, "batch_size": 4,
            "validation_patches": 4, "network_options": {"depth": 2, "base_filters": 8}}
    return default_config("n2v").with_updates(**{**base, **changes})


@pytest.fixture(scope="module")
def stacks():
    rng = np.random.default_rng(0)
    first = rng.poisson(rng.uniform(20, 60, (4, 64, 64))).astype(np.float32)
    second = rng.poisson(rng.uniform(100, 300, (4, 64, 64))).astype(np.float32)
    return first, second


@pytest.fixture(scope="module")
def base(stacks):
    return train(stacks[0], axes="SYX", config=tiny(), progress=False, log=lambda m: None)


def _parameters(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.network.named_parameters()}


def test_defaults_are_a_quarter_of_the_steps_and_a_tenth_of_the_rate(base):
    config = fine_tuning_config(default_config("n2v"), base)
    assert config.steps == 300 and config.learning_rate == pytest.approx(2e-4)
    assert config.network == base.config.network
    assert config.network_options == base.config.network_options


def test_training_starts_from_the_given_weights(base, stacks):
    tuned = train(stacks[1], axes="SYX", init=base, config=tiny(), learning_rate=1e-30,
                  progress=False, log=lambda m: None)
    before, after = _parameters(base), _parameters(tuned)
    assert before.keys() == after.keys()
    for key in before:
        torch.testing.assert_close(after[key], before[key], rtol=0, atol=1e-6)
    assert tuned.provenance["fine_tuned_from"]["method"] == "n2v"
    fresh = train(stacks[1], axes="SYX", config=tiny(), learning_rate=1e-30, seed=5,
                  progress=False, log=lambda m: None)
    assert any(not torch.equal(fresh_value, before[key])
               for key, fresh_value in _parameters(fresh).items())


def test_a_frozen_encoder_stays_as_it_was(base, stacks, tmp_path):
    tuned = train(stacks[1], axes="SYX", init=base, freeze="encoder", config=tiny(),
                  learning_rate=1e-2, output=tmp_path / "tuned", progress=False,
                  log=lambda m: None)
    before, after = _parameters(base), _parameters(tuned)
    encoder = [k for k in before if k.startswith("encoder.")]
    rest = [k for k in before if not k.startswith("encoder.")]
    assert encoder and rest
    assert all(torch.equal(after[k], before[k]) for k in encoder)
    assert any(not torch.equal(after[k], before[k]) for k in rest)
    from infocus.predict.model import load_model

    assert load_model(tmp_path / "tuned").provenance["fine_tuned_from"]["frozen"] == "encoder"


def test_what_cannot_be_fine_tuned_is_refused(base, stacks):
    with pytest.raises(InfocusInputError, match="does not fit these data"):
        train(stacks[1], method="pn2v", axes="SYX", init=base, steps=2, progress=False,
              log=lambda m: None)
    with pytest.raises(InfocusInputError, match="give the model to start from with --init"):
        train(stacks[1], axes="SYX", freeze="encoder", steps=2, progress=False)
    with pytest.raises(InfocusInputError, match="no part 'backbone' to freeze; its parts are"):
        train(stacks[1], axes="SYX", init=base, freeze="backbone", config=tiny(),
              progress=False, log=lambda m: None)


def test_fine_tuning_from_the_command_line(base, stacks, tmp_path):
    from typer.testing import CliRunner

    from infocus.cli import app
    from infocus.io import write_image

    folder = base.save(tmp_path / "base")
    data = tmp_path / "new.tif"
    write_image(data, stacks[1], axes="SYX")
    result = CliRunner().invoke(app, ["train", "n2v", str(data), "-o", str(tmp_path / "tuned"),
                                      "--init", str(folder), "--steps", "2", "--batch-size",
                                      "2", "--patch-size", "32"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "tuned" / "weights.safetensors").is_file()
