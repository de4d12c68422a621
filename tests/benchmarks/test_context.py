"""The context suite's drift over scenes: what it trains, what it resumes, and its report;
training is stubbed out."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def context_suite(monkeypatch):
    """The suite module, with training replaced by a stub that records what it was asked and
    whose output is the clean scene plus a method's fixed error."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.suites import context as suite

    import infocus.training.loop

    trained: list[dict[str, Any]] = []

    def train(noisy: np.ndarray, method: str = "", axes: str = "", **kwargs: Any) -> Any:
        config = kwargs["config"]
        options = dict(config.scheme_options)
        trained.append({"method": method, "axes": axes, "seed": config.seed,
                        "steps": config.steps, **options})
        state = {}
        if method == "deepcad":
            options["own_frame"] = "alone"
            state["motion"] = {"decorrelation": 1.0, "error": 0.0}
        return SimpleNamespace(denoise=lambda x, axes: np.asarray(x, np.float32), state=state,
                               config=SimpleNamespace(scheme_options=options))

    monkeypatch.setattr(infocus.training.loop, "train", train)
    suite.trained = trained
    return suite


def _context(previous: dict[str, Any] | None = None, profile: str = "full"):
    from benchmarks.profiles import get_profile
    from benchmarks.runner import Context

    saved: list[dict[str, Any]] = []
    context = Context(profile=get_profile(profile), results_path=Path("r.json"),
                      previous=previous or {}, log=lambda m: None,
                      save=lambda partial: saved.append(json.loads(json.dumps(partial))))
    return context, saved


def test_drift_seeds_trains_each_scene_with_its_own_seed_and_resumes(context_suite):
    context, _ = _context()
    done = {"n2v": 20.0, "deepcad_auto": 20.1, "auto_choice": "alone"}
    result: dict[str, Any] = {"scenes": {"1": {"4": dict(done)}}}
    context_suite.drift_seeds(context, result, lambda: None)
    trained = [(t["method"], t["seed"], t.get("own_frame")) for t in context_suite.trained]
    every = [("n2v", None), ("deepcad", "hidden"), ("deepcad", "blind_spot"),
             ("deepcad", "auto")]
    speeds = context.profile.context_drift_seed_speeds
    # every variant of the curve at every speed, seed = scene; scene 1 at 4 px/frame had N2V
    # and auto already, so only the two fixed variants are trained there
    expected = [(method, scene, own_frame)
                for scene in (1, 2) for speed in speeds for method, own_frame in every
                if not (scene == 1 and speed == 4 and own_frame in (None, "auto"))]
    assert trained == expected
    assert {k: result["scenes"]["1"]["4"][k] for k in done} == done
    assert {"deepcad", "deepcad_blind_spot"} <= set(result["scenes"]["1"]["4"])
    assert set(result["scenes"]) == {"1", "2"}
    assert set(result["scenes"]["2"]) == {f"{s:g}" for s in speeds}
    assert result["scenes"]["2"]["8"]["auto_choice"] == "alone"
    assert {t["steps"] for t in context_suite.trained} == {context.profile.context_drift_steps}


def test_the_drift_curve_is_scene_zero_with_training_seed_zero(context_suite):
    context, _ = _context()
    context_suite.drift(context, {"speeds": {"0": {}}}, lambda: None)
    assert {t["seed"] for t in context_suite.trained} == {0}
    assert len(context_suite.trained) == 4 * len(context.profile.context_drift_speeds)


def _report(tmp_path: Path, drift_seeds: dict[str, Any]) -> str:
    from benchmarks import report

    drift = {"steps": 400, "speeds": {
        "4": {"noisy": 9.0, "n2v": 22.8, "deepcad_auto": 23.2, "auto_choice": "alone"},
        "8": {"noisy": 8.0, "n2v": 20.75, "deepcad_auto": 20.6, "auto_choice": "alone"}}}
    path = tmp_path / "2026-01-01-full.json"
    path.write_text(json.dumps({
        "date": "2026-01-01", "profile": {"name": "full"}, "machine": {"cpu": "test CPU"},
        "suites": {"context": {"complete": True, "result": {
            "drift": drift, "drift_seeds": drift_seeds}}}}))
    return report.write(path, tmp_path / "docs" / "benchmarks.md").read_text()


def test_report_gives_auto_minus_n2v_per_scene_its_mean_and_an_honest_verdict(tmp_path):
    scenes = {"1": {"4": {"n2v": 22.0, "deepcad_auto": 22.1, "auto_choice": "alone"},
                    "8": {"n2v": 21.0, "deepcad_auto": 20.9, "auto_choice": "alone"}},
              "2": {"4": {"n2v": 23.0, "deepcad_auto": 23.3, "auto_choice": "alone"},
                    "8": {"n2v": 21.5, "deepcad_auto": 21.45, "auto_choice": "alone"}}}
    text = _report(tmp_path, {"steps": 400, "scenes": scenes})
    assert "### Over scenes and seeds" in text
    # 4 px/frame: +0.40, +0.10, +0.30 -> mean 0.27 ± 0.15, held in every scene
    assert "| 4 | 0.40 | 0.10 | 0.30 | 0.27 ± 0.15 | yes on the mean; 3 of 3 scenes | alone |" in text
    # 8 px/frame: -0.15, -0.10, -0.05 -> below N2V, said so
    assert "| 8 | -0.15 | -0.10 | -0.05 | -0.10 ± 0.05 | **no** on the mean; 0 of 3 scenes |" in text


def test_report_leaves_out_a_curve_measured_with_other_steps(tmp_path):
    scenes = {"1": {"8": {"n2v": 21.0, "deepcad_auto": 21.2}},
              "2": {"8": {"n2v": 21.0, "deepcad_auto": 21.1}}}
    text = _report(tmp_path, {"steps": 300, "scenes": scenes})
    assert "| motion (px/frame) | scene 1 | scene 2 |" in text
    assert "| 8 | 0.20 | 0.10 | 0.15 ± 0.07 | yes on the mean; 2 of 2 scenes | – |" in text
    assert "### Over scenes and seeds" not in _report(tmp_path, {})


@pytest.mark.parametrize("speed, seed", [(0.0, 0), (8.0, 0), (4.0, 2)])
def test_the_drift_truth_is_the_expectation_of_the_noisy_stack(speed, seed, monkeypatch):
    """The simulation scales the stack's brightest pixel to the peak photons; the truth
    must too (the scene's own maximum mostly lies outside the crop)."""
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.suites._data import CAMERA
    from benchmarks.suites.context import DRIFT_PHOTONS, drifting_stack

    noisy, clean = drifting_stack(speed, seed)
    signal = (clean - CAMERA["offset"]) / CAMERA["gain"]
    assert signal.max() == pytest.approx(DRIFT_PHOTONS, rel=1e-5)
    # the noise is zero-mean about the truth: within 4 standard errors of the mean
    variance = CAMERA["gain"] * (clean - CAMERA["offset"]) + CAMERA["read_noise"] ** 2
    standard_error = np.sqrt(variance.mean() / noisy.size)
    assert abs(float((noisy - clean).mean())) < 4 * standard_error
