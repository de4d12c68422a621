"""`infocus denoise --method auto`: the ranking table, the output kept, and refusals."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from infocus.cli import app
from infocus.io import read_image, write_image
from infocus.qc import choose as choose_module
from planted import spots

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def said(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture
def noisy(tmp_path, monkeypatch) -> Path:
    # Two quick classical candidates keep the test fast; the logic is the same for all.
    monkeypatch.setattr(choose_module, "CLASSICAL_CANDIDATES", ("wavelet", "gaussian"))
    path = tmp_path / "noisy.tif"
    write_image(path, spots((64, 64), photons=50, seed=2).noisy.astype(np.float32), axes="YX")
    return path


def test_auto_prints_the_ranking_and_writes_the_best(noisy, tmp_path):
    out = tmp_path / "best.tif"
    result = run("denoise", noisy, "-o", out, "--method", "auto", "--budget", "0s")
    assert result.exit_code == 0, result.output
    text = said(result)
    assert "Candidates ranked by estimated PSNR" in text
    assert "wavelet" in text and "gaussian" in text and "sure" in text
    assert "Skipped n2v: the budget leaves 0 s" in text
    found = re.search(r"Kept (\w+): the highest estimated PSNR", text)
    assert found is not None and found.group(1) in {"wavelet", "gaussian"}
    kept = found.group(1)
    assert re.search(rf"kept │ {kept} ", text)
    written = read_image(out)
    assert written.data.shape == (64, 64)
    expected = choose_module.choose_denoiser(read_image(noisy).data, candidates=[kept])
    np.testing.assert_allclose(written.data, expected.output, rtol=1e-6)


@pytest.mark.parametrize("budget", ["5 parsecs", "-1min"])
def test_bad_budget_is_one_sentence_and_writes_nothing(noisy, tmp_path, budget):
    out = tmp_path / "best.tif"
    result = run("denoise", noisy, "-o", out, "--method", "auto", "--budget", budget)
    assert result.exit_code == 2
    assert "is not a time; write a number with s, min or h" in said(result)
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "gaussian", "--budget", "5min"], "--budget applies to --method auto only"),
    (["--method", "auto", "-p", "sigma=2"], "-p sets one method's options"),
    (["--method", "auto", "--steps", "100"], "--steps sets one method's options"),
    (["--method", "auto", "--vst"], "--vst sets one method's options"),
])
def test_options_that_do_not_apply_are_refused(noisy, tmp_path, args, message):
    out = tmp_path / "best.tif"
    result = run("denoise", noisy, "-o", out, *args)
    assert result.exit_code == 2
    assert message in said(result)
    assert not out.exists()


def test_nothing_is_written_when_no_candidate_runs(noisy, tmp_path, monkeypatch):
    def missing(*_args):
        raise ImportError("needs: pip install 'infocus[bm3d]'")

    monkeypatch.setattr(choose_module, "_run_classical", missing)
    out = tmp_path / "best.tif"
    result = run("denoise", noisy, "-o", out, "--method", "auto", "--budget", "0s")
    assert result.exit_code == 2
    assert "No candidate could run" in said(result)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [noisy]


def test_an_existing_output_is_refused_before_any_work(noisy, tmp_path, monkeypatch):
    out = tmp_path / "best.tif"
    out.write_bytes(b"keep me")
    monkeypatch.setattr(choose_module, "choose_denoiser", None)  # would fail if reached
    result = run("denoise", noisy, "-o", out, "--method", "auto")
    assert result.exit_code == 2
    assert "already exists" in said(result)
    assert out.read_bytes() == b"keep me"
