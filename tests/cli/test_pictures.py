"""Pictures the command line writes: the loss curve of `infocus train` and the before/after
`--preview` of `infocus denoise` and `infocus predict`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from conftest import blobs_image, tiny_model
from infocus.cli import app
from infocus.noise import simulate_poisson_gaussian
from infocus.predict.model import load_model

runner = CliRunner()
FAST = ["--steps", "4", "--batch-size", "2", "--patch-size", "32"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def said(result) -> str:
    return " ".join(result.output.split())


def assert_png(path: Path, min_width: int, min_height: int) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = imread(path).shape[:2]
    assert width >= min_width and height >= min_height


def leftovers(folder: Path) -> list[str]:
    """Hidden temporaries an interrupted or failed write would leave."""
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


@pytest.fixture
def noisy_npy(tmp_path: Path, rng) -> Path:
    clean = np.stack([blobs_image((128, 128), rng, n_blobs=20) for _ in range(3)])
    noisy, _ = simulate_poisson_gaussian(clean, photons=30, gain=2, offset=100, read_noise=3,
                                         rng=1)
    path = tmp_path / "noisy.npy"
    np.save(path, noisy)
    return path


def test_train_draws_the_loss_curve_inside_a_model_folder(tmp_path, noisy_npy):
    model = tmp_path / "model"
    result = run("train", "n2v", noisy_npy, "--axes", "SYX", "-o", model, *FAST)
    assert result.exit_code == 0, result.output
    assert f"Wrote the loss curve {model / 'loss.png'}" in said(result)
    assert_png(model / "loss.png", 600, 380)
    # The extra file does not disturb the model format.
    assert load_model(model).history[-1]["step"] == 4
    assert not leftovers(model)


def test_train_draws_the_loss_curve_beside_a_zip_model(tmp_path, noisy_npy):
    model = tmp_path / "care-like.zip"
    result = run("train", "n2v", noisy_npy, "--axes", "SYX", "-o", model, *FAST)
    assert result.exit_code == 0, result.output
    assert_png(tmp_path / "care-like.loss.png", 600, 380)
    load_model(model)  # the .zip holds the model format's files alone


def test_an_existing_loss_curve_beside_a_zip_is_refused_before_training(tmp_path, noisy_npy):
    mine = tmp_path / "model.loss.png"
    mine.write_bytes(b"mine")
    result = run("train", "n2v", noisy_npy, "--axes", "SYX", "-o", tmp_path / "model.zip",
                 *FAST)
    assert result.exit_code == 2
    assert "--overwrite" in said(result)
    assert not (tmp_path / "model.zip").exists() and mine.read_bytes() == b"mine"
    result = run("train", "n2v", noisy_npy, "--axes", "SYX", "-o", tmp_path / "model.zip",
                 *FAST, "--overwrite")
    assert result.exit_code == 0, result.output
    assert_png(mine, 600, 380)


def test_no_loss_curve_on_help_or_a_failed_training(tmp_path, noisy_npy, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run("train", "--help").exit_code == 0
    result = run("train", "n2v", noisy_npy, "--axes", "SYX", "-o", tmp_path / "m.zip", *FAST,
                 "-p", "no_such_option=1")
    assert result.exit_code == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noisy.npy"]


def test_denoise_preview_and_its_refusals(tmp_path, noisy_npy):
    preview = tmp_path / "before-after.png"
    args = ["denoise", noisy_npy, "--axes", "SYX", "-m", "gaussian", "--preview", preview]
    result = run(*args, "-o", tmp_path / "out.tif")
    assert result.exit_code == 0, result.output
    assert f"Wrote the preview {preview}" in said(result)
    assert_png(preview, 800, 800)  # full views and the zoomed row
    assert not leftovers(tmp_path)
    before = preview.read_bytes()
    result = run(*args, "-o", tmp_path / "again.tif")
    assert result.exit_code == 2 and "--overwrite" in said(result)
    assert not (tmp_path / "again.tif").exists() and preview.read_bytes() == before
    result = run(*args[:-1], tmp_path / "before-after.jpg", "-o", tmp_path / "again.tif")
    assert result.exit_code == 2 and "must end in .png" in said(result)
    result = run(*args, "-o", tmp_path / "out.tif", "--overwrite")
    assert result.exit_code == 0, result.output


def test_learned_denoise_keeps_a_model_with_its_curve_and_draws_the_preview(tmp_path,
                                                                             noisy_npy):
    result = run("denoise", noisy_npy, "--axes", "SYX", "-m", "n2v", "--steps", "3",
                 "-o", tmp_path / "out.tif", "--save-model", tmp_path / "model",
                 "--preview", tmp_path / "preview.png")
    assert result.exit_code == 0, result.output
    assert_png(tmp_path / "model" / "loss.png", 600, 380)
    assert_png(tmp_path / "preview.png", 800, 800)


@pytest.mark.parametrize("output", ["out.tif", "out.zarr"])
def test_predict_preview(tmp_path, noisy_npy, output):
    model = tiny_model().save(tmp_path / "model")
    preview = tmp_path / "preview.png"
    result = run("predict", model, noisy_npy, "--axes", "SYX", "-o", tmp_path / output,
                 "--preview", preview)
    assert result.exit_code == 0, result.output
    assert_png(preview, 800, 800)
    result = run("predict", model, noisy_npy, "--axes", "SYX", "-o", tmp_path / "other.tif",
                 "--preview", preview)
    assert result.exit_code == 2 and "--overwrite" in said(result)
    assert not (tmp_path / "other.tif").exists()
