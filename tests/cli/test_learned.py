"""Learned methods from the command line: train, predict, denoise --method n2v, resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import blobs_image, passthrough_care_model
from infocus.cli import app
from infocus.io import read_image
from infocus.noise import simulate_poisson_gaussian
from infocus.training.loop import checkpoint_dir_for

runner = CliRunner()
FAST = ["--steps", "4", "--batch-size", "2", "--patch-size", "32"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def said(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture
def noisy_npy(tmp_path: Path, rng) -> Path:
    clean = np.stack([blobs_image((64, 64), rng, n_blobs=20) for _ in range(3)])
    noisy, _ = simulate_poisson_gaussian(clean, photons=30, gain=2, offset=100, read_noise=3,
                                         rng=1)
    path = tmp_path / "noisy.npy"
    np.save(path, noisy)
    return path


def test_train_then_predict(tmp_path, noisy_npy):
    model = tmp_path / "model.zip"
    result = run("train", "n2v", noisy_npy, "--axes", "SYX", "-o", model, *FAST)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out.tif"
    result = run("predict", model, noisy_npy, "--axes", "SYX", "-o", out)
    assert result.exit_code == 0, result.output
    assert read_image(out).data.shape == (3, 64, 64)
    assert "Raised" not in result.output
    tiled = tmp_path / "tiled.tif"
    result = run("predict", model, noisy_npy, "--axes", "SYX", "-o", tiled, "--tile-size", "8",
                 "--overlap", "2")
    assert result.exit_code == 0, result.output
    assert "Raised the tile size from 8 to 64" in said(result)
    np.testing.assert_allclose(read_image(tiled).data, read_image(out).data, rtol=0, atol=1e-3)


def test_train_n2n_with_target_folder(tmp_path, rng):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    for i in range(2):
        clean = blobs_image((64, 64), rng) * 50 + 10
        np.save(tmp_path / "a" / f"{i}.npy", rng.poisson(clean).astype(np.float32))
        np.save(tmp_path / "b" / f"{i}.npy", rng.poisson(clean).astype(np.float32))
    result = run("train", "n2n", tmp_path / "a", "--target", tmp_path / "b", "-o",
                 tmp_path / "m", *FAST)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "weights.safetensors").is_file()


def test_denoise_with_deepcad_learns_from_neighbouring_frames(tmp_path, noisy_npy):
    out = tmp_path / "out.tif"
    result = run("denoise", noisy_npy, "-o", out, "-m", "deepcad", "--axes", "TYX", "--steps", "3")
    assert result.exit_code == 0, result.output
    assert "predicted from the other 2" in said(result)
    assert read_image(out).data.shape == (3, 64, 64)  # one denoised frame per frame
    result = run("train", "deepcad", noisy_npy, "--axes", "SYX", "-o", tmp_path / "m", *FAST)
    assert result.exit_code != 0 and "needs axis 'T'" in said(result)
    assert not (tmp_path / "m").exists()
    result = run("denoise", noisy_npy, "-o", tmp_path / "z.tif", "-m", "n2v", "--axes", "TYX",
                 "--context", "Z", "--steps", "2")
    assert result.exit_code != 0 and "drop --context Z" in said(result)
    result = run("denoise", noisy_npy, "-o", tmp_path / "g.tif", "-m", "gaussian", "--axes",
                 "TYX", "--context", "T")
    assert result.exit_code != 0 and "--context" in said(result)
    assert not (tmp_path / "g.tif").exists()


def test_denoise_with_n2v_trains_on_the_image(tmp_path, noisy_npy):
    out = tmp_path / "out.tif"
    result = run("denoise", noisy_npy, "-o", out, "-m", "n2v", "--axes", "SYX", "--steps", "3",
                 "--save-model", tmp_path / "kept")
    assert result.exit_code == 0, result.output
    assert read_image(out).data.shape == (3, 64, 64)
    assert (tmp_path / "kept" / "config.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "n3v", "{noisy}", "-o", "{m}"], "Unknown training method 'n3v'"),
        (["train", "care", "{noisy}", "--axes", "SYX", "-o", "{m}"], "--target"),
        (["train", "n2v", "{noisy}", "-o", "{m}"], "axes"),
        (["train", "n2v", "{noisy}", "--axes", "SYX", "-o", "{m}", "--steps", "5", "--epochs",
          "1"], "either --steps or --epochs"),
        (["predict", "{noisy}", "{noisy}", "-o", "{out}"], "neither an infocus model"),
        (["denoise", "{noisy}", "-o", "{out}", "-m", "care"], "learns from pairs"),
        (["denoise", "{noisy}", "-o", "{out}", "-m", "n2v", "--axes", "SYX", "--sigma", "3"],
         "learns its own noise model"),
    ],
)
def test_learned_bad_input(tmp_path, noisy_npy, args, message):
    names = {"noisy": noisy_npy, "m": tmp_path / "m", "out": tmp_path / "out.tif"}
    result = run(*[a.format(**names) for a in args])
    assert result.exit_code == 2, result.output
    assert message in said(result)
    assert not (tmp_path / "m").exists() and not (tmp_path / "out.tif").exists()


@pytest.mark.slow
def test_killed_training_resumes(tmp_path, noisy_npy):
    """SIGKILL a real `infocus train` process after its first checkpoint, then --resume."""
    model = tmp_path / "model"
    command = [sys.executable, "-m", "infocus.cli", "train", "n2v", str(noisy_npy), "--axes",
               "SYX", "-o", str(model), "--steps", "400", "--epochs", "4", "--batch-size", "2",
               "--patch-size", "32"]
    command.remove("--steps")
    command.remove("400")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    checkpoint = checkpoint_dir_for(model) / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert checkpoint.exists(), "no checkpoint was written"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not model.exists()
    result = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "Resuming n2v from step" in " ".join(result.stderr.split())
    assert (model / "weights.safetensors").is_file()


def test_blind_spot_option(tmp_path, noisy_npy):
    model = tmp_path / "model"
    result = run("train", "n2v", noisy_npy, "--axes", "SYX", "-o", model, "--blind-spot", "pixel",
                 *FAST)
    assert result.exit_code == 0, result.output
    from infocus.predict.model import load_model

    assert load_model(model).config.scheme_options["blind_spot"] == []
    # The default measures the noise correlation and says what it found.
    result = run("denoise", noisy_npy, "--axes", "SYX", "-o", tmp_path / "o.tif", "-m", "n2v",
                 "--steps", "2")
    assert result.exit_code == 0, result.output
    assert "noise correlation" in said(result)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["denoise", "{x}", "-o", "{o}", "-m", "gaussian", "--blind-spot", "pixel"],
         "apply to learned methods only"),
        (["denoise", "{x}", "-o", "{o}", "-m", "n2s", "--blind-spot", "pixel"],
         "applies to deconoising, deepcad, denoiseg, n2v, n2v2, pn2v only"),
        (["train", "n2v", "{x}", "-o", "{o}", "--blind-spot", "wide"], "Unknown blind_spot"),
    ],
)
def test_blind_spot_option_errors(tmp_path, noisy_npy, args, message):
    filled = [a.format(x=noisy_npy, o=tmp_path / "out.tif") for a in args]
    result = run(*filled, "--axes", "SYX")
    assert result.exit_code == 2
    assert message in said(result)
    assert not (tmp_path / "out.tif").exists()


def test_predict_reports_the_intensity_calibration(tmp_path, rng):
    model = passthrough_care_model({"alpha": 1.0, "beta": 0.0}).save(tmp_path / "care")
    image = tmp_path / "x.npy"
    np.save(image, (rng.poisson(blobs_image((64, 64), rng) * 100 + 20)).astype(np.float32))
    result = run("predict", model, image, "-o", tmp_path / "out.tif")
    assert result.exit_code == 0, result.output
    assert "Intensity calibration over 1 image(s): gain 0.769" in said(result)
    np.testing.assert_allclose(read_image(tmp_path / "out.tif").data, np.load(image), atol=0.05)
    result = run("predict", model, image, "-o", tmp_path / "raw.tif", "--no-calibrate")
    assert result.exit_code == 0, result.output
    assert "Intensity calibration" not in said(result)


def test_deconoising_from_the_command_line(tmp_path, noisy_npy):
    psf = np.zeros((5, 5), np.float32)
    psf[2, 2], psf[2, 1], psf[2, 3], psf[1, 2], psf[3, 2] = 4, 1, 1, 1, 1
    np.save(tmp_path / "psf.npy", psf)
    model = tmp_path / "model"
    result = run("train", "deconoising", noisy_npy, "--axes", "SYX", "-o", model, "--psf",
                 tmp_path / "psf.npy", *FAST)
    assert result.exit_code == 0, result.output
    out, deconvolved = tmp_path / "out.tif", tmp_path / "deconvolved.tif"
    result = run("predict", model, noisy_npy, "--axes", "SYX", "-o", out, "--deconvolved",
                 deconvolved)
    assert result.exit_code == 0, result.output
    assert read_image(out).data.shape == read_image(deconvolved).data.shape == (3, 64, 64)
    result = run("denoise", noisy_npy, "--axes", "SYX", "-o", tmp_path / "d.tif", "-m",
                 "deconoising", "--psf-model", "gaussian", "--na", "1.2", "--wavelength", "520",
                 "--pixel-size", "0.1", "--steps", "2", "--deconvolved", tmp_path / "dd.tif")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dd.tif").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "n2v", "{noisy}", "--axes", "SYX", "-o", "{m}", "--psf", "{noisy}"],
         "--psf applies to deconoising only"),
        (["train", "deconoising", "{noisy}", "--axes", "SYX", "-o", "{m}"],
         "needs the microscope's PSF"),
        (["denoise", "{noisy}", "-o", "{m}", "-m", "gaussian", "--deconvolved", "{m}"],
         "apply to learned methods only"),
        (["denoise", "{noisy}", "--axes", "SYX", "-o", "{m}.tif", "-m", "n2v", "--deconvolved",
          "{m}2.tif"], "--deconvolved applies to methods that give a deconvolved image"),
    ],
)
def test_psf_options_are_refused_where_they_do_not_apply(tmp_path, noisy_npy, args, message):
    args = [a.format(noisy=noisy_npy, m=tmp_path / "m") for a in args]
    result = run(*args, *(FAST if args[0] == "train" else []))
    assert result.exit_code == 2, result.output
    assert message in said(result)


def test_denoiseg_trains_on_a_folder_with_a_few_masks_and_segments(tmp_path, rng):
    from infocus.io import Image, write_image

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(3):
        labels = np.zeros((64, 64), np.uint16)
        labels[10:30, 10:30], labels[35:55, 30:50] = 1, 2
        noisy = rng.poisson(np.where(labels > 0, 40.0, 5.0)).astype(np.float32)
        write_image(images / f"cell{i}.tif", Image(noisy, "YX"))
        if i == 0:
            write_image(masks / f"cell{i}.tif", Image(labels, "YX"))
    model = tmp_path / "model"
    result = run("train", "denoiseg", images, "--labels", masks, "-o", model, *FAST)
    assert result.exit_code == 0, result.output
    out, seg, fg = tmp_path / "out.tif", tmp_path / "seg.tif", tmp_path / "fg.tif"
    result = run("predict", model, images / "cell1.tif", "-o", out, "--labels-out", seg,
                 "--foreground", fg)
    assert result.exit_code == 0, result.output
    assert read_image(seg).data.dtype == np.uint16 and read_image(fg).data.shape == (64, 64)
    result = run("evaluate", seg, masks / "cell0.tif", "--labels", "--json")
    assert result.exit_code == 0, result.output
    assert '"ap_0.5"' in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "n2v", "{noisy}", "--axes", "SYX", "-o", "{m}", "--labels", "{noisy}"],
         "--labels applies to denoiseg only"),
        (["denoise", "{noisy}", "--axes", "SYX", "-o", "{m}.tif", "-m", "denoiseg"],
         "learns from label images"),
        (["train", "denoiseg", "{noisy}", "--axes", "SYX", "-o", "{m}"],
         "give instance masks for some images"),
    ],
)
def test_segmentation_options_are_refused_where_they_do_not_apply(tmp_path, noisy_npy, args,
                                                                  message):
    args = [a.format(noisy=noisy_npy, m=tmp_path / "m") for a in args]
    result = run(*args, *(FAST if args[0] == "train" else []))
    assert result.exit_code == 2, result.output
    assert message in said(result)


def test_train_care_with_the_rcan_network(tmp_path, noisy_npy):
    clean = tmp_path / "clean.npy"
    np.save(clean, np.load(noisy_npy).astype(np.float32))  # any target will do for 4 steps
    model = tmp_path / "rcan-model"
    result = run("train", "care", noisy_npy, "--target", clean, "--axes", "SYX", "-o", model,
                 "--network", "rcan", "--network-option", "num_channels=8",
                 "--network-option", "residual_groups=1", *FAST)
    assert result.exit_code == 0, result.output
    saved = (model / "config.json").read_text()
    assert '"name": "rcan"' in saved and '"num_channels": 8' in saved
    out = tmp_path / "out.tif"
    result = run("predict", model, noisy_npy, "--axes", "SYX", "-o", out)
    assert result.exit_code == 0, result.output
    assert read_image(out).data.shape == (3, 64, 64)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["care", "--target", "{noisy}", "--network", "divnoising_vae"],
         "Method 'care' trains an image-to-image network, but 'divnoising_vae' is a vae "
         "network; choose one of: rcan, unet, unet_n2v2."),
        (["divnoising", "--network", "rcan"],
         "Method 'divnoising' trains a vae network, but 'rcan' is an image-to-image network; "
         "choose one of: divnoising_vae."),
        (["care", "--target", "{noisy}", "--network", "resnet"], "Unknown network 'resnet'"),
        (["care", "--target", "{noisy}", "--network", "rcan", "--network-option",
          "base_filters=8"], "Network 'rcan' has no option 'base_filters'"),
        (["care", "--target", "{noisy}", "--network-option", "depth"],
         "Network option 'depth' is not NAME=VALUE; write e.g. --network-option"),
        (["n2v", "--network", "rcan", "--init", "{noisy}"],
         "Fine-tuning (--init) keeps the model's network"),
    ],
)
def test_network_choices_that_cannot_train_are_refused(tmp_path, noisy_npy, args, message):
    names = {"noisy": noisy_npy}
    result = run("train", args[0], noisy_npy, "--axes", "SYX", "-o", tmp_path / "m",
                 *[a.format(**names) for a in args[1:]])
    assert result.exit_code == 2, result.output
    assert message in said(result)
    assert not (tmp_path / "m").exists()


def test_train_help_names_every_image_to_image_network():
    from infocus.nets import list_networks, network_kind

    result = runner.invoke(app, ["train", "--help"], terminal_width=200)
    shown = said(result)
    for name in list_networks():
        if network_kind(name) == "image-to-image":
            assert name in shown
