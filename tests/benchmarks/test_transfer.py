"""The fine-tuning comparison's figures: when a curve first reaches a level, and how the
report words it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def modules(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.suites import transfer

    from benchmarks import report

    return transfer, report


def test_the_first_validated_step_at_or_above_the_level_is_reported(modules):
    transfer, _ = modules
    curve = [[50, 30.0], [100, 31.5], [150, 31.2], [200, 32.0]]
    assert transfer.first_step_reaching(curve, 31.5) == 100
    assert transfer.first_step_reaching(curve, 31.9) == 200
    assert transfer.first_step_reaching(curve, 32.1) is None
    assert transfer.first_step_reaching([], 0.0) is None


def test_the_report_gives_the_share_of_the_scratch_steps(modules):
    _, report = modules
    assert report._reached(150, 1200) == "step 150 (12% of scratch's steps)"
    assert report._reached(None, 1200) == "not within its steps"


def test_the_report_says_when_a_longer_fine_tuning_reaches_scratch(modules, tmp_path):
    import json

    _, report = modules

    def run(psnr: float, steps: int, reached: int | None = None) -> dict:
        return {"psnr": psnr, "steps": steps, "learning_rate": 0.0, "train_seconds": 60.0,
                "load_average": 1.0, "reaches_scratch_at": reached,
                "curve": [[50, psnr - 1.0], [steps, psnr]]}

    row = {"noisy": 28.0, "zero_shot": 32.0, "scratch": run(33.0, 1200),
           "fine_tuned": run(32.5, 300), "fine_tuned_long": run(33.1, 1200, 800)}
    path = tmp_path / "2026-01-01-quick.json"
    path.write_text(json.dumps({
        "date": "2026-01-01", "profile": {"name": "quick"}, "machine": {"cpu": "test CPU"},
        "suites": {"transfer": {"complete": True, "result": {"fine_tune": {
            "method": "n2v", "steps": 1200, "epoch_steps": 50,
            "pairs": {"A -> B": row}}}}}}))
    text = report.write(path, tmp_path / "docs" / "benchmarks.md").read_text()
    assert ("A → B, fine-tuned with the defaults but as many steps as from scratch (1200): "
            "33.10 dB against scratch's 33.00; its curve reaches scratch's final PSNR at step "
            "800 (67% of scratch's steps).") in text
