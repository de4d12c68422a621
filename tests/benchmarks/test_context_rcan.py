"""The RCAN-against-U-Net parts of the context suite and their report; training is stubbed."""

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
    """The suite module, with training replaced by a stub that records what it was asked."""
    monkeypatch.syspath_prepend(str(REPO))
    import torch
    from benchmarks.suites import context

    import infocus.training.loop

    trained: list[dict[str, Any]] = []

    def train(images: Any, targets: Any = None, axes: str = "", method: str = "",
              **kwargs: Any) -> Any:
        config = kwargs["config"]
        trained.append({"method": method, "network": config.network, "seed": config.seed,
                        "steps": config.steps, "axes": axes, "spatial": config.spatial,
                        "batch": config.batch_size, "shape": images.shape})
        # The "denoised" image is the clean one plus a seed- and network-dependent offset.
        shift = config.seed + (0.5 if config.network == "rcan" else 0.0)
        return SimpleNamespace(config=config, network=torch.nn.Linear(3, 2),
                               denoise=lambda x, axes: x * 0 + shift,
                               provenance={"precision": "bfloat16"})

    monkeypatch.setattr(infocus.training.loop, "train", train)
    monkeypatch.setattr(context, "interleaved_cost",
                        lambda ndim, **kw: trained.append({"cost": ndim, **kw}) or {"ndim": ndim})
    context.trained = trained
    return context


def _context(tmp_path, profile: str = "full"):
    from benchmarks.profiles import get_profile
    from benchmarks.runner import Context

    saved: list[dict[str, Any]] = []
    return Context(profile=get_profile(profile), results_path=tmp_path / "r.json",
                   log=lambda m: None,
                   save=lambda partial: saved.append(json.loads(json.dumps(partial)))), saved


def test_rcan_runs_both_networks_per_seed_back_to_back_and_resumes(context_suite, tmp_path):
    context, saved = _context(tmp_path)
    result: dict[str, Any] = {"runs": {"0": {"unet": {"psnr": 30.0}}}}
    context_suite.rcan(context, result, lambda: context.save(dict(result)))
    # seed 0's U-Net was kept; then each seed's pair in turn, U-Net first
    assert [(t["seed"], t["network"]) for t in context_suite.trained[:-1]] == [
        (0, "rcan"), (1, "unet"), (1, "rcan"), (2, "unet"), (2, "rcan")]
    # after the seeds
    assert context_suite.trained[-1] == {"cost": 2, "rounds": 5, "steps": 3, "size": None}
    assert {t["steps"] for t in context_suite.trained[:-1]} == {300}
    assert context_suite.trained[0]["shape"] == (3, 256, 256)  # three quadrants
    assert result["runs"]["0"]["unet"] == {"psnr": 30.0}
    run = result["runs"]["2"]["rcan"]
    assert run["parameters"] == 8 and run["seed"] == 2 and run["predict_shape"] == [256, 256]
    assert run["steps_per_second"] == pytest.approx(300 / run["train_seconds"])
    assert np.isfinite(run["psnr"]) and run["load_average_before"] >= 0
    assert run["precision"] == "bfloat16"
    assert len(saved) == 6  # every run reaches the file at once, then the timing
    assert result["interleaved"] == {"ndim": 2}

    with pytest.raises(SystemExit, match="measured with other steps"):
        context_suite.rcan(context, {"steps": 1000}, lambda: None)


def test_rcan3d_trains_3d_networks_with_the_2d_pixels_per_step(context_suite, tmp_path):
    context, _ = _context(tmp_path, "tiny")
    result: dict[str, Any] = {}
    context_suite.rcan3d(context, result, lambda: None)
    assert [(t["network"], t["axes"], t["spatial"]) for t in context_suite.trained[:2]] == [
        ("unet", "SZYX", "ZYX"), ("rcan", "SZYX", "ZYX")]
    assert context_suite.trained[2] == {"cost": 3, "rounds": 1, "steps": 1, "size": 64}
    assert context_suite.trained[0]["batch"] * 16 == 16  # one 16×64×64 patch: 16 planes
    assert context_suite.trained[0]["shape"] == (10, 32, 64, 64)  # the tiny crop
    assert result["shape"] == [32, 64, 64] and set(result["runs"]["0"]) == {"unet", "rcan"}


def _run(seed: int, network: str, psnr: float, speed: float, predict: float) -> dict[str, Any]:
    return {"network": network, "seed": seed, "psnr": psnr, "steps_per_second": speed,
            "predict_seconds": predict, "parameters": 100 if network == "unet" else 200,
            "load_average_before": 3.0, "load_average_after": 4.5}


def _report(tmp_path, rcan: dict[str, Any], rcan3d: dict[str, Any] | None = None) -> str:
    from benchmarks import report

    path = tmp_path / "2026-01-01-quick.json"
    path.write_text(json.dumps({
        "date": "2026-01-01", "profile": {"name": "quick"}, "machine": {"cpu": "test CPU"},
        "suites": {"context": {"complete": True, "result": {
            "rcan": rcan, **({"rcan3d": rcan3d} if rcan3d else {})}}}}))
    return report.write(path, tmp_path / "docs" / "benchmarks.md").read_text()


def test_report_says_whether_rcan_is_within_the_seed_spread(context_suite, tmp_path):
    def part(rcan_psnrs: list[float]) -> dict[str, Any]:
        return {"steps": 300, "photons": 30.0, "psnr_noisy": 20.2, "seeds": [0, 1, 2],
                "runs": {str(s): {"unet": _run(s, "unet", u, 4.0, 0.1),
                                  "rcan": _run(s, "rcan", r, 1.0, 0.4)}
                         for s, u, r in zip((0, 1, 2), (32.0, 32.4, 32.2), rcan_psnrs,
                                            strict=True)}}

    text = _report(tmp_path, part([32.1, 32.0, 32.2]))
    assert "## Context: 3D-RCAN against CARE's U-Net" in text
    assert "| 0 | 32.00 | 32.10 | 0.10 | 4.00 | 1.00 | 0.100 | 0.400 | 3.0–4.5 | 3.0–4.5 |" in text
    assert "| **mean** | **32.20** | **32.10** | **-0.10** |" in text
    assert "| **SD** | **0.20** |" in text
    assert ("✓ RCAN within the U-Net's seed spread or better: the mean of RCAN (32.10 dB) "
            "minus the mean of the U-Net (32.20 dB) is -0.10 dB against the U-Net's seed "
            "standard deviation of 0.20 dB") in text
    assert "within the U-Net's seed spread." in text
    assert "RCAN trains at 0.25× the U-Net's steps per second" in text
    assert "takes 4.0× its prediction time" in text and "with 2.0× its parameters" in text
    assert "### In 3-D" not in text and "Not measured yet" not in text

    assert "Timed in alternation" not in text  # not measured: not claimed

    text = _report(tmp_path, part([31.6, 31.7, 31.8]))
    assert "✗ **does not hold:** RCAN within the U-Net's seed spread" in text
    assert "below the U-Net's seed spread." in text


def test_report_names_missing_seeds_and_adds_the_3d_case(context_suite, tmp_path):
    partial = {"steps": 300, "photons": 30.0, "psnr_noisy": 20.2, "seeds": [0, 1, 2],
               "runs": {"0": {"unet": _run(0, "unet", 32.0, 4.0, 0.1),
                              "rcan": _run(0, "rcan", 32.3, 1.0, 0.4)},
                        "1": {"unet": _run(1, "unet", 32.1, 4.0, 0.1)}}}
    volume = {"steps": 150, "shape": [32, 128, 128], "photons": 8.0, "training_volumes": 10,
              "psnr_noisy": 18.0, "seeds": [0],
              "runs": {"0": {"unet": _run(0, "unet", 28.0, 1.0, 2.0),
                             "rcan": _run(0, "rcan", 28.5, 0.2, 10.0)}},
              "interleaved": {"unet": {"step_seconds": [0.1, 0.2, 0.3]},
                              "rcan": {"step_seconds": [0.5, 0.9, 1.0]}, "rounds": 3,
                              "steps_per_round": 2, "batch": [1, 1, 16, 64, 64],
                              "predict_shape": [32, 128, 128], "step_time_ratio": 4.5,
                              "predict_time_ratio": 3.25, "load_average_before": 2.0,
                              "load_average_after": 2.5}}
    text = _report(tmp_path, partial, volume)
    assert "Not measured yet: seed 1, 2." in text
    assert "| 1 | 32.10 | – | – |" in text
    assert "One seed per network: no seed spread to compare with." in text
    assert "### In 3-D" in text and "(32×128×128," in text
    assert "| 0 | 28.00 | 28.50 | 0.50 | 1.00 | 0.20 | 2.000 | 10.000 |" in text
    assert "RCAN trains at 0.20× the U-Net's steps per second" in text
    assert ("Timed in alternation instead (3 rounds of 2 steps of each network in turn, so "
            "both see the same load; load 2.0–2.5): one training step (forward, backward and "
            "Adam on a 1×1×16×64×64 batch in float32; no data sampling or validation) takes 4.5× the "
            "U-Net's time, one forward pass on 32×128×128 3.2× (medians of the per-round "
            "ratios; U-Net 0.200 s per step, RCAN 0.900 s).") in text


def test_interleaved_cost_times_both_networks_round_by_round(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.suites.context import interleaved_cost

    cost = interleaved_cost(2, rounds=2, steps=1, size=96)
    for name in ("unet", "rcan"):
        assert len(cost[name]["step_seconds"]) == len(cost[name]["predict_seconds"]) == 2
        assert all(t > 0 for t in cost[name]["step_seconds"])
    ratios = [r / u for r, u in zip(cost["rcan"]["step_seconds"], cost["unet"]["step_seconds"],
                                    strict=True)]
    assert cost["step_time_ratio"] == pytest.approx(float(np.median(ratios)))
    assert cost["batch"] == [16, 1, 64, 64] and cost["predict_shape"] == [96, 96]
