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
