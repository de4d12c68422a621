"""The command line end to end: each command, its JSON, and one clear error per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from conftest import blobs_image
from infocus.cli import app
from infocus.io import read_image, write_image

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def said(result) -> str:
    """Output with rich's line wrapping undone, for matching whole sentences."""
    return " ".join(result.output.split())


@pytest.fixture
def clean_tif(tmp_path: Path, rng) -> Path:
    path = tmp_path / "clean.tif"
    write_image(path, blobs_image((96, 96), rng), axes="YX")
    return path


@pytest.fixture
def noisy_tif(tmp_path: Path, clean_tif: Path) -> Path:
    path = tmp_path / "noisy.tif"
    result = run("simulate", clean_tif, "-o", path, "--photons", 50, "--gain", 2, "--offset",
                 100, "--read-noise", 2, "--seed", 1)
    assert result.exit_code == 0, result.output
    return path


def test_simulate_scales_to_photons_and_is_reproducible(tmp_path, clean_tif, noisy_tif):
    noisy = read_image(noisy_tif).data
    # Mean of x = gain * photons * clean/max + offset.
    clean = read_image(clean_tif).data
    expected = 2 * 50 * clean / clean.max() + 100
    assert abs(float(noisy.mean() - expected.mean())) < 1.0
    again = tmp_path / "again.tif"
    run("simulate", clean_tif, "-o", again, "--photons", 50, "--gain", 2, "--offset", 100,
        "--read-noise", 2, "--seed", 1)
    np.testing.assert_array_equal(read_image(again).data, noisy)


def test_estimate_noise_json(noisy_tif):
    result = run("estimate-noise", noisy_tif, "--json", "--offset", 100)
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)
    assert set(params) >= {"gain", "variance_intercept", "offset", "read_noise"}
    assert params["gain"] == pytest.approx(2.0, rel=0.25)
    # Simulated camera noise is white: no correlation with the next pixel.
    assert abs(params["correlation_x"]) < 0.15 and abs(params["correlation_y"]) < 0.15
    assert params["per_pixel_gain"] == params["gain"]
    assert params["per_pixel_variance_intercept"] == params["variance_intercept"]


def test_estimate_noise_reports_the_per_pixel_variance_of_correlated_noise(tmp_path):
    from infocus.noise import add_correlated_noise

    path = tmp_path / "correlated.tif"
    tifffile.imwrite(path, add_correlated_noise(np.full((256, 256), 100.0), sigma=5.0,
                                                kernel=np.ones((2, 2)), rng=1))
    result = run("estimate-noise", path, "--json")
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)
    assert params["correlation_x"] > 0.3
    assert params["variance_intercept"] < 0.6 * 25.0
    assert 0.7 * 25.0 < params["per_pixel_variance_intercept"] < 1.2 * 25.0


def test_denoise_then_evaluate_improves(tmp_path, clean_tif, noisy_tif):
    out = tmp_path / "denoised.tif"
    result = run("denoise", noisy_tif, "-o", out, "--method", "gaussian")
    assert result.exit_code == 0, result.output
    clean = tmp_path / "clean_units.tif"
    data = read_image(clean_tif).data
    write_image(clean, 2 * 50 * data / data.max() + 100, axes="YX")
    before = json.loads(run("evaluate", noisy_tif, clean, "--json").stdout)
    after = json.loads(run("evaluate", out, clean, "--json").stdout)
    assert set(after["mean"]) == {"mse", "psnr", "ssim", "si_psnr"}
    assert after["mean"]["psnr"] > before["mean"]["psnr"] + 3


def test_denoise_method_options_are_checked(tmp_path, noisy_tif):
    out = tmp_path / "out.tif"
    ok = run("denoise", noisy_tif, "-o", out, "-m", "gaussian", "-p", "sigma=1.5")
    assert ok.exit_code == 0, ok.output
    bad = run("denoise", noisy_tif, "-o", tmp_path / "b.tif", "-m", "gaussian", "-p", "sigmaa=1")
    assert bad.exit_code == 2
    assert "has no option 'sigmaa'" in said(bad)
    assert not (tmp_path / "b.tif").exists()


def test_methods_lists_registry():
    result = run("methods")
    assert result.exit_code == 0
    for name in ("gaussian", "median", "nl_means", "tv", "wavelet", "bm3d", "bm4d"):
        assert name in result.output


def test_stack_denoised_frame_by_frame(tmp_path, rng):
    stack = np.stack([blobs_image((64, 64), rng) * 100 for _ in range(3)])
    noisy = stack + rng.normal(0, 5, stack.shape)
    src = tmp_path / "stack.npy"
    np.save(src, noisy.astype(np.float32))
    out = tmp_path / "stack_out.tif"
    result = run("denoise", src, "-o", out, "-m", "gaussian", "--axes", "TYX", "--sigma", 5)
    assert result.exit_code == 0, result.output
    written = read_image(out)
    assert written.axes == "TYX" and written.data.shape == noisy.shape


# --- bad input: one sentence, exit status 2, nothing written ------------------------------


def _nan_tif(tmp_path: Path) -> Path:
    data = np.ones((32, 32), np.float32)
    data[3, 3] = np.nan
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, data)
    return path


def _corrupt_tif(tmp_path: Path, clean_tif: Path) -> Path:
    path = tmp_path / "corrupt.tif"
    path.write_bytes(clean_tif.read_bytes()[:500])
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("nan", "NaN or infinite"),
        ("missing", "No such file"),
        ("corrupt", "corrupt or truncated"),
        ("wrong_axes", "axes"),
        ("tiny", "smaller than the"),
        ("unknown_method", "Unknown denoiser 'bm5d'"),
        ("existing_output", "--overwrite"),
        ("empty", "empty"),
    ],
)
def test_denoise_bad_input(tmp_path, clean_tif, case, message):
    out = tmp_path / "out.tif"
    method = "gaussian"
    extra: list[str] = []
    if case == "nan":
        src = _nan_tif(tmp_path)
    elif case == "missing":
        src = tmp_path / "nope.tif"
    elif case == "corrupt":
        src = _corrupt_tif(tmp_path, clean_tif)
    elif case == "wrong_axes":
        src, extra = clean_tif, ["--axes", "ZYX"]
    elif case == "tiny":
        src = tmp_path / "tiny.npy"
        np.save(src, np.ones((4, 4), np.float32))
    elif case == "unknown_method":
        src, method = clean_tif, "bm5d"
    elif case == "existing_output":
        src = clean_tif
        out.write_bytes(b"keep me")
    else:
        src = tmp_path / "empty.npy"
        np.save(src, np.ones((0, 16), np.float32))
    result = run("denoise", src, "-o", out, "-m", method, *extra)
    assert result.exit_code == 2, result.output
    text = said(result)
    assert message in text, text
    assert text.startswith("Error:") and text.count("Error:") == 1
    if case == "existing_output":
        assert out.read_bytes() == b"keep me"
    else:
        assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_evaluate_shape_mismatch(tmp_path, clean_tif):
    other = tmp_path / "other.npy"
    np.save(other, np.zeros((50, 60), np.float32))
    result = run("evaluate", other, clean_tif)
    assert result.exit_code == 2
    assert "differs from ground-truth shape" in said(result)


def test_simulate_refuses_negative_clean(tmp_path):
    src = tmp_path / "neg.npy"
    np.save(src, -np.ones((32, 32), np.float32))
    result = run("simulate", src, "-o", tmp_path / "x.tif", "--photons", 10)
    assert result.exit_code == 2
    assert not (tmp_path / "x.tif").exists()


def test_help_has_examples():
    for command in ("simulate", "estimate-noise", "denoise", "evaluate", "demo"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "infocus " + command in said(result)


@pytest.mark.shared_data
def test_evaluate_reproduces_fmd_raw_psnr(shared_data):
    """FMD test_mix raw vs ground truth: 27.22 dB at peak 255 (the FMD paper's figure)."""
    folder = shared_data / "fmd_test_mix"
    result = run("evaluate", folder / "raw", folder / "gt", "--data-range", 255, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n_images"] == 48
    assert report["mean"]["psnr"] == pytest.approx(27.22, abs=0.005)


def test_predict_restores_large_scales_for_joint_channels_unless_told_not_to(tmp_path, rng):
    from conftest import tiny_model

    model = tiny_model(channels=2, joint=True)
    model.state = {"channels_together": 2}
    saved = model.save(tmp_path / "joint")
    image = tmp_path / "two.tif"
    write_image(image, rng.poisson(100, (2, 48, 48)).astype(np.float32), axes="CYX")
    outputs = {}
    for flag in ("--large-scales", "--no-large-scales"):
        out = tmp_path / f"{flag.strip('-')}.tif"
        result = run("predict", str(saved), str(image), "-o", str(out), "--axes", "CYX", flag)
        assert result.exit_code == 0, result.output
        outputs[flag] = read_image(out).data
    assert not np.allclose(outputs["--large-scales"], outputs["--no-large-scales"])
