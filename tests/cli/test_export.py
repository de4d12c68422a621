"""`infocus export` and `infocus predict` with a bioimage.io package."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import tiny_model
from infocus.cli import app
from infocus.io import read_image, write_image

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def said(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture
def model_zip(tmp_path):
    return tiny_model(2).save(tmp_path / "n2v.zip")


def test_export_writes_each_format_from_the_ending(model_zip, tmp_path):
    for name in ("m.onnx", "m.pt"):
        result = run("export", model_zip, "-o", tmp_path / name)
        assert result.exit_code == 0, result.output
        assert "Pixel fusion is left out" in said(result)
        assert (tmp_path / name).stat().st_size > 1000
    result = run("export", model_zip, "-o", tmp_path / "m.onnx")
    assert result.exit_code == 2 and "--overwrite" in said(result)
    result = run("export", model_zip, "-o", tmp_path / "m.h5")
    assert result.exit_code == 2 and "Cannot tell the export format from 'm.h5'" in said(result)
    result = run("export", model_zip, "-o", tmp_path / "x.onnx", "--author", "Me")
    assert result.exit_code == 2 and "describe a bioimage.io package" in said(result)


def test_bioimageio_round_trip_through_the_cli(model_zip, tmp_path, rng):
    pytest.importorskip("bioimageio.core", reason="needs the bioimageio extra")
    sample = tmp_path / "sample.tif"
    write_image(sample, rng.poisson(100, (160, 160)).astype(np.float32), axes="YX")
    package = tmp_path / "pkg.zip"
    result = run("export", model_zip, "-o", package, "--sample", sample, "--no-check")
    assert result.exit_code == 0, result.output
    image = tmp_path / "image.tif"
    write_image(image, rng.poisson(100, (140, 120)).astype(np.float32), axes="YX")
    result = run("predict", package, image, "-o", tmp_path / "out.tif", "--preview",
                 tmp_path / "before-after.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "before-after.png").read_bytes()[:4] == b"\x89PNG"
    assert "run by bioimageio.core" in said(result)
    out = read_image(tmp_path / "out.tif").data
    ours = tiny_model(2).denoise(read_image(image).data, axes="YX", pixel_fusion=False)
    assert out.shape == (140, 120)
    inner = (slice(26, -26), slice(26, -26))
    np.testing.assert_allclose(out[inner], ours[inner], atol=1e-3)
    result = run("predict", package, image, "-o", tmp_path / "o2.tif", "--tta")
    assert result.exit_code == 2 and "--tta needs an infocus model" in said(result)
    assert not (tmp_path / "o2.tif").exists()


def test_predict_runs_a_careamics_package(tmp_path):
    """A package CAREamics exported (tests/data/bioimageio) gives CAREamics' prediction."""
    pytest.importorskip("bioimageio.core", reason="needs the bioimageio extra")
    fixtures = Path(__file__).parents[1] / "data" / "bioimageio"
    image = tmp_path / "image.tif"
    write_image(image, np.load(fixtures / "input.npy"), axes="YX")
    result = run("predict", fixtures / "careamics-n2v-tiny.zip", image, "-o", tmp_path / "out.tif")
    assert result.exit_code == 0, result.output
    assert "careamics-n2v-tiny" in said(result) and "tiles of exactly 64x64" in said(result)
    out = read_image(tmp_path / "out.tif").data
    np.testing.assert_allclose(out, np.load(fixtures / "careamics_prediction.npy"), atol=0.01)
