"""The command line reads vendor files (here a Zeiss CZI) like any other input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import blobs_image
from infocus.cli import app
from infocus.io import read_image

pytest.importorskip("bioio", reason="the formats extra (bioio) is not installed")


def test_denoise_reads_czi_and_keeps_its_metadata(tmp_path: Path, rng) -> None:
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    source = tmp_path / "cells.czi"
    with pyczi.create_czi(str(source), exist_ok=True) as czi:
        for c in range(2):
            noisy = 1000 * blobs_image((64, 64), rng) + rng.normal(0, 20, (64, 64)) + 200
            czi.write(noisy.astype(np.uint16), plane={"C": c}, scene=0)
        czi.write_metadata(channel_names={0: "DAPI", 1: "GFP"}, scale_x=0.1e-6, scale_y=0.1e-6)
    out = tmp_path / "denoised.tif"
    result = CliRunner().invoke(app, ["denoise", str(source), "-o", str(out), "-m", "gaussian"])
    assert result.exit_code == 0, result.output
    denoised = read_image(out)
    assert denoised.axes == "CYX"
    assert denoised.pixel_sizes == pytest.approx({"Y": 0.1, "X": 0.1})
    assert denoised.channel_names == ["DAPI", "GFP"]
    assert denoised.data.std() < read_image(source).data.astype(np.float32).std()
