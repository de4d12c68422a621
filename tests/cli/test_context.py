"""Neighbouring time points as context from the command line: a TCZYX stack end to end, and
the quality summary of a long stack from a bounded sample of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from conftest import blobs_image
from infocus.cli import _common, app
from infocus.io import read_image
from infocus.noise import simulate_poisson_gaussian

runner = CliRunner()
SHAPE = (8, 2, 2, 32, 32)  # T, C, Z, Y, X


def in_order(path: Path, axes: str) -> np.ndarray:
    """The image at ``path`` with its axes in the order ``axes`` (files store Y X last)."""
    image = read_image(path)
    return np.transpose(image.data, [image.axes.index(a) for a in axes])


@pytest.fixture
def stack(tmp_path: Path, rng) -> Path:
    planes = np.stack([blobs_image(SHAPE[-2:], rng, n_blobs=6) for _ in range(4)])
    clean = np.broadcast_to(planes.reshape(SHAPE[1:]), SHAPE)
    noisy, _ = simulate_poisson_gaussian(clean, photons=30, gain=2, offset=100, read_noise=3,
                                         rng=1)
    path = tmp_path / "tczyx.npy"
    np.save(path, noisy.astype(np.float32))
    return path


def test_a_tczyx_stack_is_denoised_with_neighbouring_time_points(tmp_path, stack):
    import infocus

    out, kept = tmp_path / "out.tif", tmp_path / "model"
    result = runner.invoke(app, ["denoise", str(stack), "-o", str(out), "-m", "n2v", "--axes",
                                 "TCZYX", "--context", "T", "--steps", "2", "--save-model",
                                 str(kept)])
    assert result.exit_code == 0, result.output
    denoised = in_order(out, "TCZYX")
    assert denoised.shape == SHAPE and np.isfinite(denoised).all()
    model = infocus.load_model(kept)
    assert model.spatial == "TYX" and model.network.ndim == 3
    # Each output frame depends on its neighbours (a 2-D network's would not): change frame 5
    # and frame 4 changes too.
    noisy = np.load(stack)
    changed = noisy.copy()
    changed[5] += 50
    before = model.denoise(noisy, axes="TCZYX")
    after = model.denoise(changed, axes="TCZYX")
    assert np.abs(after[4] - before[4]).max() > 1e-3


def test_summary_selection_thins_the_outer_axes_to_the_budget():
    assert _common.summary_selection((8, 2, 16, 64, 64), "TCZYX", budget=10**9) == {}
    assert _common.summary_selection((32, 2, 16, 128, 128), "TCZYX", budget=2_000_000) == {
        "T": [0, 16, 31]}
    # One time point exceeds the budget: one is kept and its planes are thinned.
    assert _common.summary_selection((4, 16, 256, 256), "TZYX", budget=300_000) == {
        "T": [0], "Z": [0, 5, 10, 15]}


class Recording:
    """An array that records which time points were read."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.read = data, data.shape, set()

    def __getitem__(self, index: tuple) -> np.ndarray:
        self.read.update(range(*index[0].indices(self.shape[0])))
        return self.data[index]


def test_the_summary_of_a_long_stack_reads_only_its_sample(monkeypatch, rng, capsys):
    planes = np.stack([blobs_image((48, 48), rng, n_blobs=8) for _ in range(12)])
    noisy, _ = simulate_poisson_gaussian(planes[:, None], photons=30, gain=2, offset=100,
                                         read_noise=3, rng=2)
    noisy = noisy.astype(np.float32)
    smoothed = ndimage.gaussian_filter(noisy, (0, 0, 1, 1))
    monkeypatch.setattr(_common, "QC_SUMMARY_PIXELS", 4 * 48 * 48)
    lazy_noisy, lazy_denoised = Recording(noisy), Recording(smoothed)
    _common.report_quality(lazy_noisy, lazy_denoised, "TCYX")
    said = " ".join(capsys.readouterr().err.split())
    assert "Quality (no ground truth, 4 of 12 time points)" in said
    assert lazy_noisy.read == lazy_denoised.read == {0, 4, 7, 11}
