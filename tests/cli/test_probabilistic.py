"""The probabilistic methods from the command line: noise-model fit/show, train pn2v and
divnoising, predict with --uncertainty and --samples, sample; and their clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import blobs_image
from infocus.cli import app
from infocus.io import read_image
from infocus.noise import simulate_poisson_gaussian

runner = CliRunner()
FAST = ["--steps", "4", "--batch-size", "2", "--patch-size", "32"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def said(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture
def stack(tmp_path: Path, rng) -> tuple[Path, np.ndarray]:
    clean = np.stack([blobs_image((64, 64), rng, n_blobs=20) for _ in range(3)])
    noisy, _ = simulate_poisson_gaussian(clean, photons=30, gain=2, offset=100, read_noise=3,
                                         rng=1)
    path = tmp_path / "noisy.npy"
    np.save(path, noisy)
    return path, clean * 60 + 100


@pytest.fixture
def calibration(tmp_path: Path, rng) -> Path:
    clean = blobs_image((64, 64), rng, n_blobs=20) * 60 + 100
    captures = rng.poisson(np.broadcast_to(clean - 100, (12, 64, 64))) * 2 + 100.0
    path = tmp_path / "calibration.npy"
    np.save(path, captures.astype(np.float32))
    return path


@pytest.fixture(scope="module")
def camera(tmp_path_factory) -> Path:
    """A histogram noise model of the calibration camera (fast to fit), as a file."""
    from infocus.noise.models import calibration_pairs, fit_pairs, save_noise_model

    rng = np.random.default_rng(7)
    clean = blobs_image((64, 64), rng, n_blobs=20) * 60 + 100
    captures = rng.poisson(np.broadcast_to(clean - 100, (12, 64, 64))) * 2 + 100.0
    model = fit_pairs(*calibration_pairs(captures), "histogram")
    return save_noise_model(model, tmp_path_factory.mktemp("camera") / "camera.json")


def test_noise_model_fit_from_calibration_and_show(tmp_path, calibration):
    model = tmp_path / "camera.json"
    result = run("noise-model", "fit", calibration, "--axes", "TYX", "--calibration",
                 "-o", model)
    assert result.exit_code == 0, result.output
    assert "gmm noise model (calibration captures)" in said(result)
    assert json.loads(model.read_text())["model"]["kind"] == "gmm"
    figure = tmp_path / "camera.png"
    result = run("noise-model", "show", model, "--data", calibration, "--axes", "TYX",
                 "--calibration", "-o", figure)
    assert result.exit_code == 0, result.output
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_noise_model_fit_refuses_a_moving_calibration_stack(tmp_path, rng):
    clean = blobs_image((64, 64), rng, n_blobs=20) * 60 + 100
    moving = np.stack([rng.poisson(np.roll(clean, k, axis=1)) for k in range(12)])
    np.save(tmp_path / "moving.npy", moving.astype(np.float32))
    result = run("noise-model", "fit", tmp_path / "moving.npy", "--axes", "TYX",
                 "--calibration", "-o", tmp_path / "nm.json")
    assert result.exit_code == 2 and "not static" in said(result)
    assert not (tmp_path / "nm.json").exists()


def test_noise_model_fit_bootstrapped_and_parametric(tmp_path, stack):
    path, _ = stack
    for kind in ("histogram", "poisson_gaussian"):
        out = tmp_path / f"{kind}.json"
        result = run("noise-model", "fit", path, "--axes", "SYX", "--kind", kind, "--steps",
                     "4", "-o", out)
        assert result.exit_code == 0, result.output
        assert json.loads(out.read_text())["model"]["kind"] == kind


def test_pn2v_trains_with_a_noise_model_file_and_predicts_its_uncertainty(tmp_path, stack,
                                                                          camera):
    path, _ = stack
    model = tmp_path / "pn2v.zip"
    result = run("train", "pn2v", path, "--axes", "SYX", "-o", model, "-p",
                 f"noise_model={camera}", "-p", "samples=8", *FAST)
    assert result.exit_code == 0, result.output
    assert "Noise model: file" in said(result)
    out, std = tmp_path / "out.tif", tmp_path / "std.tif"
    result = run("predict", model, path, "--axes", "SYX", "-o", out, "--uncertainty", std)
    assert result.exit_code == 0, result.output
    assert read_image(out).data.shape == read_image(std).data.shape == (3, 64, 64)
    assert (read_image(std).data >= 0).all()
    # pn2v has no posterior samples to draw, and no --samples option.
    result = run("sample", model, path, "--axes", "SYX", "-o", tmp_path / "s.tif")
    assert result.exit_code == 2 and "cannot draw posterior samples" in said(result)
    result = run("predict", model, path, "--axes", "SYX", "-o", tmp_path / "x.tif",
                 "--samples", "5")
    assert result.exit_code == 2 and "has no prediction option 'samples'" in said(result)


def test_divnoising_samples_and_mmse_from_the_command_line(tmp_path, stack):
    path, _ = stack
    image = tmp_path / "one.npy"
    np.save(image, np.load(path)[0])
    model = tmp_path / "dn"
    result = run("train", "divnoising", path, "--axes", "SYX", "-o", model, *FAST)
    assert result.exit_code == 0, result.output
    out, std = tmp_path / "mmse.tif", tmp_path / "std.tif"
    result = run("predict", model, image, "-o", out, "--samples", "6", "--uncertainty", std)
    assert result.exit_code == 0, result.output
    samples = tmp_path / "samples.tif"
    result = run("sample", model, image, "-n", "5", "-o", samples)
    assert result.exit_code == 0, result.output
    drawn = read_image(samples)
    assert drawn.axes == "SYX" and drawn.data.shape == (5, 64, 64)
    assert np.ptp(drawn.data, axis=0).mean() > 0  # the samples differ


def test_uncertainty_of_a_method_that_has_none_is_refused_before_writing(tmp_path, stack):
    path, _ = stack
    model = tmp_path / "n2v"
    assert run("train", "n2v", path, "--axes", "SYX", "-o", model, *FAST).exit_code == 0
    result = run("predict", model, path, "--axes", "SYX", "-o", tmp_path / "o.tif",
                 "--uncertainty", tmp_path / "u.tif")
    assert result.exit_code == 2 and "no uncertainty" in said(result)
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "u.tif").exists()


def test_a_model_whose_noise_model_is_missing_is_refused(tmp_path, stack, camera):
    path, _ = stack
    model = tmp_path / "pn2v"
    assert run("train", "pn2v", path, "--axes", "SYX", "-o", model, "-p",
               f"noise_model={camera}", "-p", "samples=4", *FAST).exit_code == 0
    config = json.loads((model / "config.json").read_text())
    del config["state"]["noise_model"]
    (model / "config.json").write_text(json.dumps(config))
    result = run("predict", model, path, "--axes", "SYX", "-o", tmp_path / "o.tif")
    assert result.exit_code == 2 and "has no noise model" in said(result)
    config["state"]["noise_model"] = {"kind": "gmm", "low": 1.0, "high": 0.0}
    (model / "config.json").write_text(json.dumps(config))
    result = run("predict", model, path, "--axes", "SYX", "-o", tmp_path / "o.tif")
    assert result.exit_code == 2 and "malformed" in said(result)
    assert not (tmp_path / "o.tif").exists()


def test_an_image_outside_the_noise_models_range_is_refused(tmp_path, stack, camera):
    path, _ = stack
    model = tmp_path / "pn2v"
    assert run("train", "pn2v", path, "--axes", "SYX", "-o", model, "-p",
               f"noise_model={camera}", "-p", "samples=4", *FAST).exit_code == 0
    bright = tmp_path / "bright.npy"
    np.save(bright, np.load(path) * 20)
    result = run("predict", model, bright, "--axes", "SYX", "-o", tmp_path / "o.tif")
    assert result.exit_code == 2 and "The noise model covers signals" in said(result)
    assert not (tmp_path / "o.tif").exists()
