"""The report folder: the overview figure's panels and the page that shows them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.image import imread

import infocus
from infocus.qc import quality_check
from infocus.qc.page import _shown_plane, write_report
from planted import good_output, spots


@pytest.fixture(scope="module")
def scene():
    return spots((64, 64), photons=30, seed=5)


def test_the_overview_gains_a_disagreement_panel_when_the_check_ran(scene, tmp_path):
    output = good_output(scene)
    reference = infocus.denoise(scene.noisy, "gaussian", axes="YX", noise=scene.noise)
    without = quality_check(scene.noisy, output, noise=scene.noise)
    compared = quality_check(scene.noisy, output, noise=scene.noise, reference=reference,
                             reference_method="gaussian")
    plain = write_report(without, scene.noisy, output, tmp_path / "plain")
    full = write_report(compared, scene.noisy, output, tmp_path / "full")
    # One panel of equal width each: five against four.
    ratio = imread(full / "overview.png").shape[1] / imread(plain / "overview.png").shape[1]
    assert ratio == pytest.approx(5 / 4, rel=0.02)
    page = (full / "report.html").read_text()
    assert 'alt="noisy, denoised, consistency map, objects and disagreement map against ' \
           'gaussian"' in page
    assert "gaussian's output with automatic parameters" in page
    assert "disagreement" not in (plain / "report.html").read_text().lower()
    assert json.loads((full / "qc.json").read_text())["files"]["disagreement"] == \
        "disagreement.tif"


def test_a_sampled_reference_shows_a_compared_plane(scene, tmp_path):
    stack = np.stack([scene.noisy] * 4)
    output = np.stack([good_output(scene)] * 4)
    reference = np.stack([infocus.denoise(scene.noisy, "gaussian", axes="YX",
                                          noise=scene.noise)] * 4)
    reference[[0, 2, 3]] = np.nan  # the middle plane (2) was not compared
    report = quality_check(stack, output, axes="ZYX", noise=scene.noise, reference=reference)
    assert not report.flags.any()
    assert _shown_plane(report) == 1
    folder = write_report(report, stack, output, tmp_path / "report")
    assert "of the 1 of 4 planes compared" in (folder / "report.html").read_text()
