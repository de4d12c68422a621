"""Bad input and faults, as a new user or a reliability check would meet them: each case ends in
one sentence and exit status 2, and no file is written or deleted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import blobs_image
from infocus.cli import app
from infocus.io import write_image

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def said(result) -> str:
    return " ".join(result.output.split())


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its content, to show that nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def noisy_tif(tmp_path: Path, rng) -> Path:
    path = tmp_path / "noisy.tif"
    clean = blobs_image((64, 64), rng)
    write_image(path, rng.poisson(clean / clean.max() * 40).astype(np.float32) + 100, axes="YX")
    return path


# -- noise options given as flags are checked like any other value -----------------------------
@pytest.mark.parametrize(("flags", "words"), [
    (["-m", "bm3d", "--sigma", "nan"], "sigma) must be a positive finite number, got nan"),
    (["-m", "gaussian", "--sigma", "-3"], "sigma) must be a positive finite number, got -3"),
    (["-m", "nl_means", "--gain", "-1", "--read-noise", "2"],
     "Noise gain must be zero or positive, got -1.0"),
    (["-m", "nl_means", "--gain", "1", "--read-noise", "-2"],
     "Noise read noise must be zero or positive, got -2.0"),
    (["-m", "tv", "--gain", "1", "--read-noise", "2", "--offset", "inf"],
     "Noise offset must be finite, got inf"),
])
def test_bad_noise_flags_are_refused(tmp_path, noisy_tif, flags, words):
    before = tree(tmp_path)
    result = run("denoise", noisy_tif, "-o", tmp_path / "out.tif", *flags)
    assert result.exit_code == 2, result.output
    assert words in said(result)
    assert tree(tmp_path) == before


# -- --overwrite replaces only what infocus wrote ----------------------------------------------
@pytest.fixture
def data_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "d.tif"
    folder.mkdir()
    (folder / "precious.txt").write_text("a week of imaging")
    (folder / "sub").mkdir()
    (folder / "sub" / "more.txt").write_text("and more")
    return folder


def test_overwrite_never_deletes_a_folder_of_data_for_an_image(tmp_path, noisy_tif, data_folder):
    before = tree(tmp_path)
    result = run("denoise", noisy_tif, "-o", data_folder, "-m", "gaussian", "--overwrite")
    assert result.exit_code == 2, result.output
    assert "is a folder that infocus did not write" in said(result)
    assert tree(tmp_path) == before


def test_overwrite_never_deletes_a_folder_of_data_for_a_model(tmp_path, noisy_tif, data_folder):
    before = tree(tmp_path)
    result = run("train", "n2v", noisy_tif, "-o", data_folder, "--overwrite", "--steps", 2,
                 "--batch-size", 2, "--patch-size", 32)
    assert result.exit_code == 2, result.output
    assert "is a folder that infocus did not write" in said(result)
    assert tree(tmp_path) == before


def test_overwrite_never_deletes_a_folder_of_data_for_the_demo(tmp_path, data_folder):
    before = tree(tmp_path)
    result = run("demo", "--output", data_folder, "--overwrite")
    assert result.exit_code == 2, result.output
    assert "is not a demo output" in said(result)
    assert tree(tmp_path) == before


def test_overwrite_replaces_a_zarr_store_infocus_wrote(tmp_path, noisy_tif):
    pytest.importorskip("zarr")
    out = tmp_path / "out.zarr"
    first = run("denoise", noisy_tif, "-o", out, "-m", "gaussian")
    assert first.exit_code == 0, first.output
    again = run("denoise", noisy_tif, "-o", out, "-m", "median", "--overwrite")
    assert again.exit_code == 0, again.output


def test_missing_output_folder_is_refused_before_the_work(tmp_path, noisy_tif):
    result = run("denoise", noisy_tif, "-o", tmp_path / "nowhere" / "out.tif", "-m", "bm3d")
    assert result.exit_code == 2
    assert "does not exist; create it first" in said(result)


@pytest.mark.parametrize(("method", "precision", "words"), [
    ("n2v", "fp16", "precision must be 'auto', 'float32' or 'bfloat16' (got 'fp16')"),
    ("divnoising", "bfloat16", "divnoising trains in float32 only; leave --precision at auto"),
])
def test_an_unusable_precision_is_refused_before_training(tmp_path, noisy_tif, method,
                                                          precision, words):
    result = run("train", method, noisy_tif, "-o", tmp_path / "model", "--steps", 2,
                 "--precision", precision)
    assert result.exit_code == 2, result.output
    assert words in said(result)
    assert not (tmp_path / "model").exists()


# -- a model that can only give NaN is refused -------------------------------------------------
def test_a_model_with_nan_weights_is_refused(tmp_path, noisy_tif):
    from safetensors.torch import load_file, save_file

    from conftest import passthrough_care_model

    model = passthrough_care_model({"alpha": 1.0, "beta": 0.0})
    folder = model.save(tmp_path / "model")
    weights = load_file(folder / "weights.safetensors")
    first = next(name for name, w in weights.items() if w.is_floating_point())
    weights[first][...] = float("nan")
    save_file(weights, folder / "weights.safetensors")
    before = tree(tmp_path)
    result = run("predict", folder, noisy_tif, "-o", tmp_path / "out.tif")
    assert result.exit_code == 2, result.output
    assert "contain NaN or infinite values" in said(result) and "retrain" in said(result)
    assert tree(tmp_path) == before


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # on the way to the refusal
def test_a_prediction_that_turns_nan_is_not_written():
    from conftest import passthrough_care_model
    from infocus._errors import InfocusInputError

    model = passthrough_care_model({"alpha": 1.0, "beta": 0.0})
    image = np.full((64, 64), 3e38, dtype=np.float32)  # finite, but overflows on the way
    with pytest.raises(InfocusInputError, match="produced NaN or infinite values"):
        model.denoise(image, axes="YX")


# -- training that diverges stops and says so --------------------------------------------------
def test_training_that_diverges_saves_nothing_and_says_why(tmp_path, noisy_tif):
    before = tree(tmp_path)
    result = run("train", "n2v", noisy_tif, "-o", tmp_path / "model", "--learning-rate", "1e6",
                 "--steps", 6, "--batch-size", 2, "--patch-size", 32)
    assert result.exit_code == 2, result.output
    assert "Training diverged at step" in said(result) and "lower --learning-rate" in said(result)
    assert tree(tmp_path) == before


def test_the_divergence_rule_allows_negative_losses_and_normal_noise():
    from infocus.training.loop import diverged

    assert diverged(float("nan"), 0.5) and diverged(float("inf"), 0.5)
    assert diverged(5e29, 0.9) and diverged(200.0, -1.5)
    assert not diverged(1.2, 0.9) and not diverged(-1.0, -1.5) and not diverged(3.0, float("inf"))


# -- evaluate: every prediction is scored, and the JSON is JSON --------------------------------
def test_evaluate_refuses_predictions_without_ground_truth(tmp_path, rng):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    image = blobs_image((32, 32), rng)
    for name in ("a.tif", "b.tif", "c.tif"):
        write_image(pred / name, image, axes="YX")
    write_image(gt / "a.tif", image, axes="YX")
    result = run("evaluate", pred, gt)
    assert result.exit_code == 2, result.output
    assert "2 file(s)" in said(result) and "b.tif, c.tif" in said(result)


def test_evaluate_names_the_file_of_a_wrong_shape_pair(tmp_path, rng):
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    write_image(pred / "a.tif", blobs_image((32, 32), rng), axes="YX")
    write_image(gt / "a.tif", blobs_image((32, 32), rng), axes="YX")
    write_image(pred / "b.tif", blobs_image((32, 32), rng), axes="YX")
    write_image(gt / "b.tif", blobs_image((40, 32), rng), axes="YX")
    result = run("evaluate", pred, gt)
    assert result.exit_code == 2, result.output
    assert "b.tif:" in said(result)


def test_evaluate_json_is_valid_for_identical_images(tmp_path, rng):
    import json

    path = tmp_path / "a.tif"
    write_image(path, blobs_image((32, 32), rng), axes="YX")
    result = run("evaluate", path, path, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(name))
    assert payload["mean"]["psnr"] is None and payload["mean"]["mse"] == 0.0


# -- pixels that float32 cannot hold, and images too small to predict --------------------------
def test_integers_beyond_float32_precision_are_refused(tmp_path, rng):
    import tifffile

    path = tmp_path / "big.tif"
    pixels = (2**40 + rng.poisson(20, (32, 32))).astype(np.uint64)
    tifffile.imwrite(path, pixels)
    before = tree(tmp_path)
    result = run("denoise", path, "-o", tmp_path / "out.tif", "-m", "gaussian")
    assert result.exit_code == 2, result.output
    assert "beyond the 16777216" in said(result) and "subtract the offset" in said(result)
    assert tree(tmp_path) == before


def test_a_model_refuses_an_image_smaller_than_8x8(tmp_path):
    from conftest import passthrough_care_model

    folder = passthrough_care_model({"alpha": 1.0, "beta": 0.0}).save(tmp_path / "model")
    image = tmp_path / "pixel.tif"
    write_image(image, np.full((1, 1), 5.0, np.float32), axes="YX")
    before = tree(tmp_path)
    result = run("predict", folder, image, "-o", tmp_path / "out.tif")
    assert result.exit_code == 2, result.output
    assert "smaller than the 8x8 minimum" in said(result)
    assert tree(tmp_path) == before


# -- what can be checked cheaply is checked before the work ------------------------------------
@pytest.mark.parametrize(("output", "extra", "words"), [
    ("out.png", [], "PNG stores only 8- or 16-bit integers, not float32"),
    ("out.jpg", [], "unsupported file type .jpg"),
    ("out.tif", ["--dtype", "int7"], "Output data type 'int7' is not supported"),
])
def test_output_problems_are_found_before_bm3d_runs(tmp_path, noisy_tif, output, extra, words,
                                                    monkeypatch):
    import infocus.classical

    def never(*args, **kwargs):
        raise AssertionError("denoising started before the output was checked")

    monkeypatch.setattr(infocus.classical, "get_denoiser", lambda name: never)
    before = tree(tmp_path)
    result = run("denoise", noisy_tif, "-o", tmp_path / output, "-m", "bm3d", *extra)
    assert result.exit_code == 2, result.output
    assert words in said(result)
    assert tree(tmp_path) == before


def test_an_unwritable_output_folder_is_refused_before_training(tmp_path, noisy_tif,
                                                                monkeypatch):
    import tempfile

    real = tempfile.TemporaryFile

    def read_only_here(*args, dir=None, **kwargs):  # as a read-only mount answers, even root
        if dir is not None and Path(dir) == tmp_path:
            raise OSError(30, "Read-only file system")
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only_here)
    result = run("train", "n2v", noisy_tif, "-o", tmp_path / "model", "--steps", 2)
    assert result.exit_code == 2, result.output
    assert "Cannot write to the output folder" in said(result)
    assert "Read-only file system" in said(result)


# -- faults: a full disk, a killed run's leftovers, SIGTERM -------------------------------------
@pytest.mark.parametrize("suffix", [".tif", ".npy", ".zarr"])
def test_a_full_disk_is_one_sentence_and_leaves_nothing(tmp_path, noisy_tif, monkeypatch,
                                                        suffix):
    import errno

    import infocus.io._api as io_api

    if suffix == ".zarr":
        pytest.importorskip("zarr")
    fmt = {".tif": "tiff", ".npy": "npy", ".zarr": "zarr"}[suffix]
    real = io_api._WRITERS[fmt]

    def full(path, image):
        real(path, image)  # part of the output is on disk when the disk fills up
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setitem(io_api._WRITERS, fmt, full)
    before = tree(tmp_path)
    result = run("denoise", noisy_tif, "-o", tmp_path / f"out{suffix}", "-m", "gaussian")
    assert result.exit_code == 2, result.output
    assert "The disk is full" in said(result) and "no output was written" in said(result)
    assert tree(tmp_path) == before and not list(tmp_path.glob(".out*"))


def test_leftovers_of_a_killed_run_are_removed_and_reported(tmp_path, noisy_tif):
    leftover = tmp_path / ".out.tif.tmp-0123abcd.tif"
    leftover.write_bytes(b"half an image")
    other = tmp_path / ".other.tif.tmp-0123abcd.tif"
    other.write_bytes(b"not ours")
    result = run("denoise", noisy_tif, "-o", tmp_path / "out.tif", "-m", "gaussian")
    assert result.exit_code == 0, result.output
    assert "Removed 1 temporary file(s)" in said(result)
    assert not leftover.exists() and other.exists() and (tmp_path / "out.tif").is_file()


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt  # what Ctrl-C, or SIGTERM through infocus.cli.main, raises


def test_an_interruption_before_the_output_is_written_says_nothing_was(tmp_path, noisy_tif,
                                                                       monkeypatch):
    import infocus.io

    monkeypatch.setattr(infocus.io, "read_image", _interrupt)
    result = run("denoise", noisy_tif, "-o", tmp_path / "out.tif", "-m", "gaussian")
    assert result.exit_code == 130, result.output
    assert "Interrupted; no output was written." in said(result)
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("learned", [False, True])
def test_an_interruption_after_the_output_is_written_says_so(tmp_path, noisy_tif, monkeypatch,
                                                             learned):
    import importlib

    import infocus.qc

    commands = importlib.import_module("infocus.cli.app")  # the package's `app` is the Typer
    monkeypatch.chdir(tmp_path)  # a short relative path: the message is not wrapped inside it
    if learned:  # during the preview, before the quality summary
        from conftest import tiny_model

        monkeypatch.setattr(commands, "write_file_preview", _interrupt)
        model = tiny_model().save(tmp_path / "model")
        result = run("predict", model, noisy_tif, "-o", "out.tif", "--preview", "before.png")
        unfinished = "the preview and the quality summary were not finished"
    else:  # during the quality summary
        monkeypatch.setattr(infocus.qc, "quality_check", _interrupt)
        result = run("denoise", noisy_tif, "-o", "out.tif", "-m", "gaussian")
        unfinished = "the quality summary was not finished"
    assert result.exit_code == 130, result.output
    assert f"Interrupted after out.tif was written; {unfinished}." in said(result)
    assert "no output was written" not in said(result)
    from infocus.io import read_image

    assert read_image(tmp_path / "out.tif").data.shape == (64, 64)


@pytest.mark.parametrize("checkpointed", [False, True])
def test_an_interrupted_training_says_whether_it_can_resume(tmp_path, noisy_tif, monkeypatch,
                                                             checkpointed):
    import infocus.training.loop as loop

    monkeypatch.chdir(tmp_path)

    def stopped(*args, output, **kwargs):
        if checkpointed:  # as after the first epoch
            folder = loop.checkpoint_dir_for(output)
            folder.mkdir()
            (folder / loop.CHECKPOINT_NAME).write_bytes(b"state")
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "train", stopped)
    result = run("train", "n2v", noisy_tif, "-o", "model.zip")
    assert result.exit_code == 130, result.output
    if checkpointed:
        assert ("Interrupted; model.zip was not written, but its last checkpoint is kept: run "
                "the same command with --resume to continue.") in said(result)
    else:
        assert "Interrupted; no output was written." in said(result)
    assert not (tmp_path / "model.zip").exists()


def test_an_interruption_after_the_model_is_saved_says_so(tmp_path, noisy_tif, monkeypatch):
    import infocus.training.loop as loop
    from conftest import tiny_model
    from infocus.predict.model import TrainedModel

    monkeypatch.chdir(tmp_path)

    def trained(*args, output, **kwargs):
        model = tiny_model()
        model.save(output)
        return model

    monkeypatch.setattr(loop, "train", trained)
    monkeypatch.setattr(TrainedModel, "predict", _interrupt)
    result = run("denoise", noisy_tif, "-o", "out.tif", "-m", "n2v", "--save-model", "m.zip")
    assert result.exit_code == 130, result.output
    assert "Interrupted after m.zip was written; the denoised image was not written." in said(
        result)
    assert (tmp_path / "m.zip").is_file() and not (tmp_path / "out.tif").exists()


# Run in the child process: the CLI as `python -m infocus.cli`, with the non-local-means filter
# slowed down so the signal always arrives mid-way (a fast CPU finished the real 120-frame job in
# under 15 s, before the signal). The filter announces through a file that denoising has begun.
_SLOW_CLI = """
import pathlib, runpy, sys, time
import infocus.classical.nlm as nlm
started = pathlib.Path(sys.argv.pop(1))
def slow_filter(block, **kwargs):
    started.touch()
    time.sleep(300)
    return block
nlm.denoise_nl_means = slow_filter
runpy.run_module("infocus.cli", run_name="__main__")
"""


@pytest.mark.slow
def test_sigterm_cleans_up_like_ctrl_c(tmp_path):
    """A real `infocus denoise` stopped with SIGTERM mid-way leaves no temporary output."""
    import os
    import signal
    import subprocess
    import sys
    import time

    work = tmp_path / "work"
    work.mkdir()
    started = tmp_path / "started"
    source = work / "stack.tif"
    rng = np.random.default_rng(0)
    write_image(source, rng.poisson(30, (4, 64, 64)).astype(np.float32), axes="TYX")
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_CLI, str(started), "denoise", str(source), "-o",
         str(work / "out.tif"), "-m", "nl_means", "--axes", "TYX"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
    deadline = time.monotonic() + 120
    while not started.exists():
        assert process.poll() is None, process.communicate()[0].decode()
        assert time.monotonic() < deadline, "denoising did not start within 120 s"
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0].decode()
    assert process.returncode == 130, output
    assert "Interrupted; no output was written." in " ".join(output.split())
    assert sorted(p.name for p in work.iterdir()) == ["stack.tif"]


# -- damaged model folders and files -----------------------------------------------------------
@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    from conftest import passthrough_care_model

    return passthrough_care_model({"alpha": 1.0, "beta": 0.0}).save(tmp_path / "model")


def _edit_config(folder: Path, change) -> None:
    import json

    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(("change", "words"), [
    (lambda c: c.pop("training"), "its 'training' section is missing or malformed"),
    (lambda c: c.pop("normalization"), "its 'normalization' section is missing or malformed"),
    (lambda c: c["normalization"].pop("input"), "its normalisation is missing or malformed"),
    (lambda c: c["network"]["config"].update(depth=50), "network description does not build"),
    (lambda c: c["network"]["config"].update(base_filters=100000),
     "do not fit its network description"),
    (lambda c: c.update(spatial="XYT"), "spatial axes 'XYT' are not YX, ZYX or TYX"),
])
def test_a_damaged_config_is_named_as_such(tmp_path, noisy_tif, model_folder, change, words):
    import resource

    _edit_config(model_folder, change)
    before = tree(tmp_path)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run("predict", model_folder, noisy_tif, "-o", tmp_path / "out.tif")
    assert result.exit_code == 2, result.output
    assert words in said(result) and "image" not in said(result).split("damaged")[0]
    # Nothing the size of the described network was allocated (100000 filters: > 300 GB).
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 500_000  # KiB
    assert tree(tmp_path) == before


def test_a_broken_history_and_a_link_out_of_the_folder_are_refused(tmp_path, noisy_tif,
                                                                   model_folder):
    (model_folder / "history.json").write_text("{not json")
    result = run("predict", model_folder, noisy_tif, "-o", tmp_path / "out.tif")
    assert result.exit_code == 2 and "history.json" in said(result)
    (model_folder / "history.json").unlink()
    (model_folder / "history.json").symlink_to("/etc/passwd")
    result = run("predict", model_folder, noisy_tif, "-o", tmp_path / "out.tif")
    assert result.exit_code == 2 and "outside the model folder" in said(result)
    assert not (tmp_path / "out.tif").exists()


def test_a_zip_is_read_within_caps_and_never_extracted(tmp_path, model_folder, monkeypatch):
    import zipfile

    import infocus.predict.model as model_module

    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("config.json", "weights.safetensors"):
            zf.write(model_folder / name, name)
        zf.writestr("history.json", b"[" + b" " * (32 * 2**20) + b"]")  # 32 MiB of blanks
    result = run("predict", archive, tmp_path / "x.tif", "-o", tmp_path / "out.tif")
    assert result.exit_code == 2
    assert "history.json" in said(result) and "more than the 16 MiB" in said(result)
    monkeypatch.setitem(model_module.MAX_MODEL_BYTES, "history.json", 64 * 2**20)
    with zipfile.ZipFile(archive, "a") as zf, pytest.warns(UserWarning, match="Duplicate"):
        zf.writestr("config.json", b"{}")
    result = run("predict", archive, tmp_path / "x.tif", "-o", tmp_path / "out.tif")
    assert result.exit_code == 2 and "holds the same entry twice" in said(result)


# -- damaged checkpoints -----------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated", "pickled code", "foreign"])
def test_a_damaged_checkpoint_is_refused_on_resume(tmp_path, noisy_tif, damage):
    import pickle

    import torch

    from infocus.training.loop import checkpoint_dir_for

    output = tmp_path / "model"
    checkpoint = checkpoint_dir_for(output) / "checkpoint.pt"
    checkpoint.parent.mkdir()
    if damage == "truncated":
        torch.save({"model": {}, "step": 3}, checkpoint)
        checkpoint.write_bytes(checkpoint.read_bytes()[:50])
    elif damage == "pickled code":
        checkpoint.write_bytes(pickle.dumps(Path("run-me")))  # any object pickle must construct
    else:
        torch.save({"step": 3}, checkpoint)
    result = run("train", "n2v", noisy_tif, "-o", output, "--resume", "--steps", 2)
    assert result.exit_code == 2, result.output
    assert "start afresh with --overwrite instead of --resume" in said(result)
    assert not output.exists()


# -- simulate: seeds and photon counts numpy cannot take ---------------------------------------
@pytest.mark.parametrize(("flags", "words"), [
    (["--photons", "10", "--seed", "-1"], "seed must be a whole number >= 0"),
    (["--photons", "1e30"], "photons must be at most 1e+15"),
])
def test_simulate_refuses_what_numpy_cannot_draw(tmp_path, noisy_tif, flags, words):
    before = tree(tmp_path)
    result = run("simulate", noisy_tif, "-o", tmp_path / "s.tif", *flags)
    assert result.exit_code == 2, result.output
    assert words in said(result)
    assert tree(tmp_path) == before


# -- messages that misled ----------------------------------------------------------------------
def test_messages_say_what_is_wrong_where_it_is_wrong(tmp_path, rng):
    import tifffile

    nan = rng.poisson(30, (64, 64)).astype(np.float32)
    nan[3, 3] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", nan)
    result = run("estimate-noise", tmp_path / "nan.tif")
    assert result.exit_code == 2 and "before denoising" not in said(result)
    assert "1 NaN or infinite pixel(s)" in said(result)

    tifffile.imwrite(tmp_path / "mask.tif", rng.uniform(size=(64, 64)) > 0.5)
    result = run("estimate-noise", tmp_path / "mask.tif")
    assert result.exit_code == 2 and "The image is boolean" in said(result)

    write_image(tmp_path / "cyx.tif", rng.poisson(30, (3, 64, 64)).astype(np.float32),
                axes="CYX")
    write_image(tmp_path / "yx.tif", rng.poisson(30, (64, 64)).astype(np.float32), axes="YX")
    result = run("evaluate", tmp_path / "cyx.tif", tmp_path / "yx.tif")
    assert result.exit_code == 2 and "were given" not in said(result)
    assert "cyx.tif is CYX (3, 64, 64) but its ground truth yx.tif is YX (64, 64)" in said(result)


def test_estimate_noise_reports_each_channel_of_an_rgb_image(tmp_path, rng):
    import json

    import imageio.v3 as iio

    levels = np.array([40.0, 80.0, 120.0])
    rgb = rng.normal(levels, np.sqrt(levels) * [1, 2, 3], (96, 96, 3)).clip(0, 255)
    iio.imwrite(tmp_path / "rgb.png", rgb.astype(np.uint8))
    result = run("estimate-noise", tmp_path / "rgb.png", "--json")
    assert result.exit_code == 0, result.output
    channels = json.loads(result.stdout)
    assert len(channels) == 3
    spread = [channels[name]["variance_intercept"] + channels[name]["gain"] * level
              for name, level in zip(channels, levels, strict=True)]
    assert spread[0] < spread[1] < spread[2]  # each channel measured on its own


def test_brackets_in_a_message_survive_the_console():
    import typer

    from infocus._errors import InfocusInputError
    from infocus.cli._common import console, reports_errors

    @reports_errors
    def fails():
        raise InfocusInputError("use estimate_noise(image[c], axes='YX') on [0, 1] data")

    with console.capture() as captured, pytest.raises(typer.Exit):
        fails()
    assert "image[c]" in captured.get() and "[0, 1]" in captured.get()
