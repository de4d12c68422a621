"""The demo job writes its outputs atomically and its numbers make sense."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from infocus.cli import app
from infocus.demo import load_sample, run_demo


def test_sample_is_embedded():
    sample = load_sample()
    assert sample.shape == (512, 512) and sample.max() > 0


def test_demo_outputs_and_improvement(tmp_path):
    out = tmp_path / "demo"
    results = run_demo(out, methods=["gaussian", "wavelet"])
    for name in ("clean.tif", "noisy.tif", "gaussian.tif", "wavelet.tif", "comparison.png",
                 "metrics.md", "metrics.json"):
        assert (out / name).is_file(), name
    assert results["wavelet"]["psnr"] > results["noisy input"]["psnr"] + 5
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["results"]["gaussian"]["psnr"] == pytest.approx(results["gaussian"]["psnr"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_demo_refuses_existing_output(tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    result = CliRunner().invoke(app, ["demo", "--output", str(out)])
    assert result.exit_code == 2
    assert "--overwrite" in " ".join(result.output.split())
    assert (out / "mine.txt").read_text() == "keep"


def test_demo_failure_leaves_previous_output(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    run_demo(out, methods=["gaussian"])
    import infocus.demo as demo

    def explode(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(demo, "_figure", explode)
    with pytest.raises(RuntimeError):
        run_demo(out, methods=["gaussian"], overwrite=True)
    assert (out / "comparison.png").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_full_demo_command(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--output", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "d" / "metrics.json").read_text())["results"]
    assert metrics["bm3d"]["psnr"] > max(metrics["gaussian"]["psnr"], metrics["median"]["psnr"])
