"""The joint suite resumes per photon level and per label count; training is stubbed out."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


@pytest.fixture
def joint(monkeypatch, repo_on_path):
    """The suite module, with training replaced by a stub that records what it was asked."""
    from benchmarks.suites import joint

    import infocus.training.loop

    trained: list[dict[str, Any]] = []

    def train(images: Any, targets: Any = None, method: str = "", **kwargs: Any) -> Any:
        config = kwargs["config"]
        trained.append({"method": method, "images": len(images),
                        "alpha": config.scheme_options.get("alpha"), "steps": config.steps})

        def predict(x: np.ndarray, also: tuple[str, ...] = ()) -> Any:
            return SimpleNamespace(extras={"labels": np.zeros(x.shape, int)})

        def denoise(x: np.ndarray) -> np.ndarray:  # one square: a quick watershed
            square = np.zeros(x.shape)
            square[10:30, 10:30] = 1.0
            return square

        return SimpleNamespace(predict=predict, denoise=denoise)

    monkeypatch.setattr(infocus.training.loop, "train", train)
    joint.trained = trained
    return joint


def _context(tmp_path, previous: dict[str, Any] | None = None, profile: str = "quick"):
    from benchmarks.profiles import get_profile
    from benchmarks.runner import Context

    saved: list[dict[str, Any]] = []
    context = Context(profile=get_profile(profile), results_path=tmp_path / "r.json",
                      previous=previous or {}, log=lambda m: None,
                      save=lambda partial: saved.append(json.loads(json.dumps(partial))))
    return context, saved


def _stored_curve(**extra: Any) -> dict[str, Any]:
    """The denoiseg part as an earlier run left it: two counts and N2V + watershed."""
    return {"steps": 200, "seed": 0, "train_images": 20, "test_images": 10, "scenes": 0,
            "scheme_options": {"labelled_fraction": 0.9, "border_weight": 5.0,
                               "threshold": 0.5},
            "n2v_watershed": 0.54, "n2v_psnr": 25.0, "unmeasured_counts": ["5", "10"],
            "1": {"denoiseg": 0.58, "segmentation_only": 0.5},
            "2": {"denoiseg": 0.59, "segmentation_only": 0.53}, **extra}


def test_denoiseg_trains_only_the_missing_counts_and_saves_each(joint, tmp_path):
    context, saved = _context(tmp_path)
    result = _stored_curve()
    joint.denoiseg(context, result, lambda: context.save(dict(result)))

    # N2V and counts 1, 2 were kept; 5 and 10 trained DenoiSeg and segmentation only
    assert [(t["method"], t["alpha"], t["images"]) for t in joint.trained] == [
        ("denoiseg", 0.5, 20), ("denoiseg", 0.0, 5), ("denoiseg", 0.5, 20),
        ("denoiseg", 0.0, 10)]
    assert result["n2v_watershed"] == 0.54 and result["1"] == {"denoiseg": 0.58,
                                                               "segmentation_only": 0.5}
    assert set(result["5"]) == set(result["10"]) == {"denoiseg", "denoiseg_psnr",
                                                     "segmentation_only"}
    assert result["counts"] == ["1", "2", "5", "10"] and "unmeasured_counts" not in result
    assert result["steps"] == 200 and result["seed"] == 0  # the recorded settings stay
    # each count reaches the file as soon as it is measured
    assert [sorted(k for k in s if k.isdigit()) for s in saved] == [["1", "2", "5"],
                                                                   ["1", "10", "2", "5"]]


def test_denoiseg_keeps_a_stored_baseline_and_trains_only_the_missing_network(joint, tmp_path):
    context, _ = _context(tmp_path)
    result = _stored_curve(**{"5": {"segmentation_only": 0.57},
                              "10": {"denoiseg": 0.61, "segmentation_only": 0.6}})
    del result["1"]["denoiseg"]
    joint.denoiseg(context, result, lambda: None)
    assert [(t["alpha"], t["images"]) for t in joint.trained] == [(0.5, 20), (0.5, 20)]
    assert result["1"]["segmentation_only"] == 0.5 and result["5"]["segmentation_only"] == 0.57
    assert 0.0 <= result["1"]["denoiseg"] <= 1.0 and 0.0 <= result["5"]["denoiseg"] <= 1.0
    assert np.isfinite(result["5"]["denoiseg_psnr"])  # its denoised image, scored


def test_denoiseg_measures_n2v_once_when_missing_and_refuses_other_settings(joint, tmp_path):
    context, _ = _context(tmp_path)
    result = _stored_curve(**{"5": {"denoiseg": 0.6, "segmentation_only": 0.57},
                              "10": {"denoiseg": 0.61, "segmentation_only": 0.6}})
    del result["n2v_watershed"]
    joint.denoiseg(context, result, lambda: None)
    assert [t["method"] for t in joint.trained] == ["n2v"]
    assert 0.0 <= result["n2v_watershed"] <= 1.0 and np.isfinite(result["n2v_psnr"])

    with pytest.raises(SystemExit, match="measured with other steps"):
        joint.denoiseg(context, _stored_curve(steps=1000), lambda: None)


def test_run_keeps_finished_parts_of_an_earlier_run(joint, tmp_path):
    levels = {"10": {"denoise_psnr_n2v": 20.0}, "50": {"denoise_psnr_n2v": 26.0}}
    done = {**_stored_curve(), "5": {"denoiseg": 0.6, "segmentation_only": 0.57},
            "10": {"denoiseg": 0.61, "segmentation_only": 0.6}}
    previous = {"deconoising": {"steps": 300, "images": 4, "levels": levels},
                "denoiseg": done,
                **{f"denoiseg_seed{k}": {**done, "complete": True} for k in (1, 2, 3)},
                "denoiseg_dsb": {**done, "complete": True},
                **{f"deconoising_seed{k}": {"steps": 300, "images": 4, "levels": levels,
                                            "complete": True} for k in (1, 2, 3)}}
    context, _ = _context(tmp_path, previous)
    result = joint.run(context)
    assert joint.trained == []  # nothing measured again
    assert result["deconoising"]["levels"] == levels and result["deconoising"]["complete"]
    assert result["denoiseg"]["complete"] and "unmeasured_counts" not in result["denoiseg"]


def test_report_names_the_counts_still_missing(tmp_path, repo_on_path):
    from benchmarks import report

    def text_of(denoiseg: dict[str, Any], seed1: dict[str, Any]) -> str:
        path = tmp_path / "2026-01-01-quick.json"
        path.write_text(json.dumps({
            "date": "2026-01-01", "profile": {"name": "quick"}, "machine": {"cpu": "test CPU"},
            "suites": {"joint": {"complete": False, "result": {
                "denoiseg": denoiseg, "denoiseg_seed1": seed1}}}}))
        return report.write(path, tmp_path / "docs" / "benchmarks.md").read_text()

    # an earlier run's marker, the profile's curve, and the counts the part recorded
    assert "Not measured with these settings yet: 5, 10 labelled images" in text_of(
        _stored_curve(), {})
    unmarked = _stored_curve()
    del unmarked["unmeasured_counts"]
    assert "Not measured with these settings yet: 5, 10 labelled images" in text_of(
        unmarked, {})
    partial = {**_stored_curve(counts=["1", "2", "5", "10"]),
               "5": {"denoiseg": 0.6, "segmentation_only": 0.57}}
    del partial["unmeasured_counts"]
    text = text_of(partial, {})
    assert "Not measured with these settings yet: 10 labelled images" in text
    assert "| 5 | 0.600 | 0.570 | 0.540 |" in text
    assert "(part denoiseg_seed1): 1, 2, 5, 10 labelled images" in text  # not silently missing

    complete = {**partial, "10": {"denoiseg": 0.61, "segmentation_only": 0.6}}
    text = text_of(complete, {**complete, "seed": 1})
    assert "Not measured" not in text and "another training seed (1)" in text
    assert text.index("| 2 | 0.590") < text.index("| 5 | 0.600") < text.index("| 10 | 0.610")


def test_report_gives_the_deconoising_mean_over_scene_sets(tmp_path, repo_on_path):
    from benchmarks import report

    def level(deco: float, rl30: float) -> dict[str, float]:
        values = {"deconv_psnr_deconoising": deco, "deconv_psnr_n2v_rl30": rl30,
                  "deconv_psnr_n2v_rl_oracle": rl30 + 0.1, "fwhm_deconoising": 3.0,
                  "fwhm_n2v_rl30": 3.5, "denoise_psnr_deconoising": 33.0,
                  "denoise_psnr_n2v": 32.5}
        return {**values, **{k + "_tta": v + 0.1 for k, v in values.items()}}

    def part(deco: float, rl30: float) -> dict[str, Any]:
        return {"steps": 300, "images": 4, "optics": {"na": 1.0, "wavelength": 520.0,
                                                      "pixel_size": 0.06},
                "levels": {"10": level(deco, rl30), "50": level(deco + 2, rl30)}}

    path = tmp_path / "2026-01-01-quick.json"
    path.write_text(json.dumps({
        "date": "2026-01-01", "profile": {"name": "quick"}, "machine": {"cpu": "test CPU"},
        "suites": {"joint": {"complete": True, "result": {
            "deconoising": part(27.0, 27.5), "deconoising_seed1": part(28.0, 27.0)}}}}))
    text = report.write(path, tmp_path / "docs" / "benchmarks.md").read_text()
    assert "Mean over 2 scene sets (4 scenes each" in text
    # means: 27.5 against 27.25 at 10 photons; DecoNoising ahead in one set of two there
    assert "| deconvolved PSNR (dB): DecoNoising | 27.50 | 27.60 | 29.50 | 29.60 |" in text
    assert "| DecoNoising better than N2V + RL 30 (PSNR), sets of 2 | 1 | 1 | 2 | 2 |" in text
    assert "| DecoNoising better than N2V + RL 30 (FWHM), sets of 2 | 2 | 2 | 2 | 2 |" in text
    # the verdict reads DecoNoising's default (TTA) against N2V + RL with TTA
    assert ("✓ at 10 photons DecoNoising's default output is closer to the truth than N2V + "
            "RL: PSNR +0.25 dB against 30 iterations, +0.15 dB against the oracle's count; "
            "bead FWHM -0.50 px") in text


def test_report_gives_the_real_nuclei_curve_or_why_it_is_missing(tmp_path, repo_on_path):
    from benchmarks import report

    def text_of(dsb: dict[str, Any]) -> str:
        path = tmp_path / "2026-01-01-quick.json"
        path.write_text(json.dumps({
            "date": "2026-01-01", "profile": {"name": "quick"}, "machine": {"cpu": "test CPU"},
            "suites": {"joint": {"complete": True, "result": {"denoiseg_dsb": dsb}}}}))
        return report.write(path, tmp_path / "docs" / "benchmarks.md").read_text()

    curve = {**_stored_curve(), "train_images": 12, "test_images": 4, "photons": 30.0,
             "1": {"denoiseg": 0.7, "segmentation_only": 0.5, "denoiseg_psnr": 24.5}}
    text = text_of(curve)
    assert "12 for training and 4 for testing" in text
    assert "| 1 | 0.700 | 0.500 | 0.540 | -0.50 |" in text
    assert "✓ with 1 labelled tile DenoiSeg (0.700)" in text
    assert "not measured: stardist_dsb2018_nuclei not found" in text_of(
        {"skipped": "stardist_dsb2018_nuclei not found in /x; skipping it."})


def test_the_real_nuclei_curve_is_skipped_with_a_reason_without_the_shared_data(
        joint, tmp_path, monkeypatch):
    import benchmarks.datasets

    monkeypatch.setattr(benchmarks.datasets, "SHARED_DATA", tmp_path / "nowhere")
    context, _ = _context(tmp_path)
    result: dict[str, Any] = {}
    joint.denoiseg(context, result, lambda: None, real=True)
    assert "stardist_dsb2018_nuclei not found" in result["skipped"] and joint.trained == []


@pytest.mark.shared_data
def test_the_real_nuclei_curve_trains_on_twelve_tiles_and_tests_on_four(joint, tmp_path):
    import benchmarks.datasets

    if not (benchmarks.datasets.SHARED_DATA / "stardist_dsb2018_nuclei").is_dir():
        pytest.skip("../shared/data/stardist_dsb2018_nuclei is absent")
    tiles = joint.dsb_tiles()
    assert len(tiles) == 16 and all(x.shape == (128, 128) for _, x, _ in tiles)
    assert sum(len(np.unique(labels)) - 1 for labels, _, _ in tiles) >= 125  # cut nuclei
    context, _ = _context(tmp_path, profile="tiny")
    result: dict[str, Any] = {}
    joint.denoiseg(context, result, lambda: None, real=True)
    assert result["train_images"] == 12 and result["test_images"] == 4
    assert [t["images"] for t in joint.trained] == [12, 12, 1]  # N2V, DenoiSeg, seg only
