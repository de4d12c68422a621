"""The qc suite's `auto` part resumes image by image; the choice itself is stubbed out."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def qc(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.datasets import DatasetMissing
    from benchmarks.suites import _data, qc

    measured: list[float] = []

    def case(noisy: Any, clean: Any, peak: float, profile: Any) -> dict[str, Any]:
        measured.append(peak)
        return {"kept": "gaussian", "best": "gaussian", "given_up_db": 0.0,
                "true": {"gaussian": 30.0}, "estimate": {"gaussian": 30.5},
                "estimator": {"gaussian": "sure"}, "skipped": {}, "seconds": 1.0}

    def no_fmd(*args: Any, **kwargs: Any) -> Any:
        raise DatasetMissing("FMD is not here")

    monkeypatch.setattr(qc, "_auto_case", case)
    monkeypatch.setattr(_data, "fmd", no_fmd)
    qc.measured = measured
    return qc


def test_an_interrupted_auto_part_resumes_at_the_next_image(qc, tmp_path):
    from benchmarks.profiles import get_profile
    from benchmarks.runner import Context

    profile = dataclasses.replace(get_profile("tiny"), qc_parts=("auto",),
                                  qc_auto_photon_levels=(5.0, 20.0), qc_auto_scenes=2)
    saved: list[dict[str, Any]] = []

    def save(partial: dict[str, Any]) -> None:
        saved.append(json.loads(json.dumps(partial)))
        if len(saved) == 3:
            raise KeyboardInterrupt  # the machine went away after the third image

    context = Context(profile=profile, results_path=tmp_path / "r.json", log=lambda m: None,
                      save=save)
    with pytest.raises(KeyboardInterrupt):
        qc.run(context)
    assert len(qc.measured) == 3 and len(saved[-1]["auto_rows"]) == 3

    context = Context(profile=profile, results_path=tmp_path / "r.json", log=lambda m: None,
                      previous=saved[-1], save=saved.append)
    result = qc.run(context)
    assert len(qc.measured) == 4  # only the fourth image was measured again
    assert "auto_rows" not in result
    assert result["auto"]["simulated"]["5"]["cases"] == 2
    assert result["auto"]["simulated"]["20"]["cases"] == 2
    assert result["auto"]["fmd"] == {"skipped": "FMD is not here"}


def test_a_defect_is_visible_when_the_matched_test_would_find_it(qc):
    """oracle_z is the matched filter's mean z: a change of one noise SD on n pixels is √n."""
    import numpy as np

    camera = qc.CAMERA
    clean = np.full((64, 64), camera["offset"] + 50.0)
    sd = np.sqrt(camera["gain"] * 50.0 + camera["read_noise"] ** 2)
    change = np.zeros_like(clean)
    change[:4, :4] = sd
    assert qc.oracle_z(change, clean) == pytest.approx(4.0)


def test_a_flagged_region_holding_the_defect_is_not_a_flag_elsewhere(qc):
    """A flag elsewhere is a connected flagged region wholly away from the defect; one that
    holds the defect and reaches far (a large flagged object) is the defect's own flag."""
    import numpy as np

    clean = np.full((128, 128), qc.CAMERA["offset"] + 20.0)
    change = np.zeros_like(clean)
    change[60:64, 10:14] = 30.0

    class Report:
        flags = np.zeros(clean.shape, np.uint8)
        consistency = type("C", (), {"threshold": 5.0})

    Report.flags[55:70, 5:100] = 2  # the defect's object, reaching 80 px away
    case = qc._defect_case(Report, change, clean)
    assert case["hit"] and not case["elsewhere"]
    Report.flags[100:105, 100:105] = 1  # a separate region far away
    case = qc._defect_case(Report, change, clean)
    assert case["hit"] and case["elsewhere"]
    assert case["visible"] == (case["oracle_z"] >= 5.0 + qc.POWER_MARGIN)
