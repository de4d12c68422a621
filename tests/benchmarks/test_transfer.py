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
