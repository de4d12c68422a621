"""The benchmark runner and report, on the tiny profile, so neither can rot."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks.profiles import get_profile

    from benchmarks import report, runner

    return runner, report, get_profile


@pytest.mark.slow  # about a minute on 2 cores: every suite once, with tiny budgets
@pytest.mark.shared_data
def test_tiny_profile_runs_every_suite_and_writes_the_report(shared_data, tmp_path, bench):
    runner, report, get_profile = bench
    results = tmp_path / "results" / "2026-01-01-tiny.json"
    docs = tmp_path / "docs" / "benchmarks.md"
    runner.run(get_profile("tiny"), path=results, log=lambda m: None)
    data = json.loads(results.read_text())
    assert set(data["suites"]) == set(runner.SUITES)
    assert all(entry["complete"] for entry in data["suites"].values())
    assert data["profile"]["name"] == "tiny" and data["machine"]["cpu_count"] >= 1
    learned = data["suites"]["learned"]["result"]
    assert learned["fmd"]["n2v"]["runs"]["WideField_BPAE_G"]["blind_spot"]  # 3x3 measured
    assert not learned["fmd"]["n2v"]["runs"]["Confocal_BPAE_B"]["blind_spot"]
    scaling = data["suites"]["scaling"]["result"]
    assert scaling["out_of_core"]["exit_status"] == 0

    report.write(results, docs)
    text = docs.read_text()
    for heading in ("## FMD test_mix", "## Simulated", "## BSD68", "## W2S", "## Convallaria",
                    "## Trust without ground truth", "## Side by side with CAREamics",
                    "## Fine-tuning a trained model", "## Published numbers",
                    "## Prediction speed against the hardware limit", "## Scaling"):
        assert heading in text, heading
    for image in re.findall(r"\(images/(bench-[a-z-]+\.png)\)", text):
        assert (docs.parent / "images" / image).stat().st_size > 1000, image
    assert str(tmp_path) not in text and "/work/" not in text  # no machine paths in docs

    # Resuming skips what is complete and keeps the numbers.
    messages: list[str] = []
    runner.run(get_profile("tiny"), path=results, resume=True, log=messages.append)
    assert all("skipped" in m for m in messages)
    assert json.loads(results.read_text())["suites"]["learned"] == data["suites"]["learned"]


def test_newest_results_prefers_full_runs(tmp_path, bench):
    _, report, _ = bench
    for name in ("2026-01-01-full", "2026-02-01-quick", "2026-01-15-tiny", "notes"):
        (tmp_path / f"{name}.json").write_text("{}")
    assert report.newest_results(tmp_path).name == "2026-01-01-full.json"
    (tmp_path / "2026-01-01-full.json").unlink()
    assert report.newest_results(tmp_path).name == "2026-02-01-quick.json"


def test_unknown_suite_and_profile_are_refused(tmp_path, bench):
    runner, _, get_profile = bench
    with pytest.raises(SystemExit, match="Unknown suite"):
        runner.run(get_profile("tiny"), ("classical", "speed"), path=tmp_path / "r.json")
    with pytest.raises(SystemExit, match="Unknown profile"):
        get_profile("huge")


def test_a_results_file_of_another_profile_is_not_mixed_in(tmp_path, bench):
    runner, _, get_profile = bench
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"profile": {"name": "full"}, "suites": {}}))
    with pytest.raises(SystemExit, match="holds a 'full' run"):
        runner.run(get_profile("tiny"), ("classical",), path=path)


def test_command_line_help_runs(bench):
    import subprocess

    done = subprocess.run([sys.executable, "-m", "benchmarks", "run", "--help"], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "--profile" in done.stdout


def _fmd_entry(psnr: float, per_config: dict[str, float], **extra) -> dict:
    return {"psnr": psnr, "ssim": 0.8, "per_configuration_psnr": per_config, **extra}


def test_report_states_where_we_lose_from_the_numbers(tmp_path, bench):
    _, report, _ = bench
    configs = {"Confocal_A": 30.0, "WideField_B": 25.0}
    results = {
        "date": "2026-01-01", "profile": {"name": "quick"}, "machine": {"cpu": "test CPU"},
        "suites": {
            "classical": {"complete": True, "result": {"fmd": {
                "noisy input": _fmd_entry(24.0, {"Confocal_A": 26.0, "WideField_B": 22.0},
                                          n_images=2),
                "best Gaussian (oracle σ)": _fmd_entry(30.5, configs),
                "bm3d": _fmd_entry(32.0, {"Confocal_A": 34.0, "WideField_B": 30.0}),
            }}},
            "learned": {"complete": False, "result": {"fmd": {
                "n2v": _fmd_entry(30.8, {"Confocal_A": 33.0, "WideField_B": 28.6}, runs={
                    "WideField_B": {"blind_spot": [[0, 1]], "log": ["Measured noise xyz"]},
                    "Confocal_A": {"blind_spot": [], "log": []}}),
                "care": {**_fmd_entry(33.0, {"Confocal_A": 35.0, "WideField_B": 31.0}),
                         "psnr_uncalibrated": 32.5},
            }, "fmd-halves": {
                "care": {"psnr": 31.5, "per_configuration_psnr": {"Confocal_A": 31.5}},
                "n2n": {"psnr": 31.0, "per_configuration_psnr": {"Confocal_A": 31.0}},
            }}},
        },
    }
    path = tmp_path / "2026-01-01-quick.json"
    path.write_text(json.dumps(results))
    text = report.write(path, tmp_path / "docs" / "benchmarks.md").read_text()
    assert "**partial**" in text  # the learned suite did not finish
    assert "✗ **does not hold:** N2V (30.80) within 1 dB of BM3D-VST (32.00)" in text
    assert "✓ CARE (33.00) beats the best Gaussian filter (30.50)" in text
    assert "✓ N2V (30.80) beats the best Gaussian filter" in text
    assert "BM3D-VST beats N2V by 1.20 dB on the mean" in text
    assert "N2V trails it on 2 of 2 configurations" in text
    assert "| WideField_B † |" in text and "- WideField_B: Measured noise xyz" in text
    assert "CARE > Noise2Noise" not in text  # no Noise2Noise result: no claim either way
    assert "without → with: CARE 32.50 → 33.00 dB" in text
    assert "With the same data CARE is 0.50 dB above Noise2Noise" in text
    assert "| **mean** | **31.50** | 31.00 |" in text
    assert "Why:" in text and "N2V hides a 5×5 block" in text  # N2V is below BM3D-VST here


def test_report_draws_the_denoiseg_curve_and_says_where_it_wins(tmp_path, bench):
    _, report, _ = bench

    def curve(joint: list[float], alone: list[float], n2v: float, seed: int) -> dict:
        return {"steps": 10, "train_images": 20, "test_images": 10, "seed": seed,
                "scheme_options": {"labelled_fraction": 0.5, "border_weight": 5.0,
                                   "threshold": 0.5},
                "n2v_watershed": n2v,
                **{str(k): {"denoiseg": j, "segmentation_only": a}
                   for k, j, a in zip((1, 2), joint, alone, strict=True)}}

    results = {
        "date": "2026-01-01", "profile": {"name": "quick"}, "machine": {"cpu": "test CPU"},
        "suites": {"joint": {"complete": True, "result": {
            "denoiseg": curve([0.6, 0.62], [0.5, 0.63], 0.55, 0),
            "denoiseg_seed1": curve([0.58, 0.6], [0.52, 0.55], 0.5, 1),
            "denoiseg_seed2": curve([0.62, 0.64], [0.54, 0.6], 0.52, 2)}}},
    }
    path = tmp_path / "2026-01-01-quick.json"
    path.write_text(json.dumps(results))
    text = report.write(path, tmp_path / "docs" / "benchmarks.md").read_text()
    assert "| 1 | 0.600 | 0.500 | 0.550 |" in text and "| 2 | 0.600 | 0.550 | 0.500 |" in text
    assert "draws 0.5 of every batch from the labelled images" in text
    assert ("✓ with 1 labelled image DenoiSeg (0.600) beats segmentation only (0.500) and "
            "N2V + watershed (0.550)") in text
    assert "✗ **does not hold:** with 2 labelled images DenoiSeg (0.620)" in text
    assert "another training seed (1)" in text and "another training seed (2)" in text
    # the mean over the three curves, and on how many each count wins
    assert "| 1 | 0.600 | 0.520 | 0.523 | 3 of 3 |" in text
    assert "| 2 | 0.620 | 0.593 | 0.523 | 2 of 3 |" in text
    assert "✓ on the mean, with 2 labelled images DenoiSeg (0.620)" in text
    assert "The denoised image" not in text  # not scored in these curves: no table


def test_report_compares_denoisegs_denoised_image_with_n2vs(tmp_path, bench):
    _, report, _ = bench
    curve = {"steps": 10, "train_images": 20, "test_images": 10, "seed": 0,
             "n2v_watershed": 0.5, "n2v_psnr": 30.0,
             "1": {"denoiseg": 0.6, "segmentation_only": 0.5, "denoiseg_psnr": 29.5},
             "2": {"denoiseg": 0.6, "segmentation_only": 0.5}}
    results = {"date": "2026-01-01", "profile": {"name": "quick"},
               "machine": {"cpu": "test CPU"},
               "suites": {"joint": {"complete": True, "result": {"denoiseg": curve}}}}
    path = tmp_path / "2026-01-01-quick.json"
    path.write_text(json.dumps(results))
    text = report.write(path, tmp_path / "docs" / "benchmarks.md").read_text()
    assert "| 1 | 29.50 | 30.00 | -0.50 |" in text
    assert "| 2 | " not in text.split("The denoised image")[1]  # unscored count left out


def _ratio_entry(true_error: float, standard_error: float, coverage: float) -> dict:
    return {"objects": 53, "rms_true_relative_error": true_error,
            "mean_true_relative_error": 0.003, "rms_reported_relative_change": 0.01,
            "mean_reported_relative_change": 0.0, "correlation": -0.1,
            "rms_relative_standard_error": standard_error, "coverage": coverage,
            "shrinkage_slope": -0.01, "psnr": 30.0}


def test_the_ratio_section_checks_what_the_issue_expects(tmp_path, bench):
    _, report, _ = bench
    text = _report_text(tmp_path, report, {"context": {"complete": True, "result": {"ratio": {
        "steps": 400, "nominal_coverage": 0.95,
        "independent": _ratio_entry(0.038, 0.039, 0.92),
        "joint": _ratio_entry(0.034, 0.039, 0.75),
        "joint_without_large_scales": _ratio_entry(0.045, 0.039, 0.92),
    }}}})
    assert "| true error inside the reported interval | 0.92 | 0.75 | 0.92 |" in text
    assert "✓ joint channels keep the ratios at least as well as independent ones" in text
    assert "✓ independent: the reported interval held the true error for 92 %" in text
    assert "✗ **does not hold:** joint: the reported interval held the true error for 75 %" \
        in text


def _precision_row(seeds: dict[str, tuple[float, float]], speed: float = 2.0) -> dict:
    first = seeds["0"]
    mean = {p: sum(v[i] for v in seeds.values()) / len(seeds)
            for i, p in enumerate(("float32", "bfloat16"))}
    return {"method": "n2v", "steps": 1200,
            "float32": {"score": first[0], "train_seconds": 2 * speed, "load_average": 1.0},
            "bfloat16": {"score": first[1], "train_seconds": 2.0, "load_average": 1.0},
            "seeds": {k: {"float32": v[0], "bfloat16": v[1]} for k, v in seeds.items()},
            "mean": mean, "difference": mean["bfloat16"] - mean["float32"],
            "speed_ratio": speed}


def test_the_precision_verdict_weighs_a_loss_against_its_seed_spread(tmp_path, bench):
    _, report, _ = bench
    rows = {
        "steady": _precision_row({"0": (30.0, 29.98)}),
        "unstable": _precision_row({"0": (31.7, 30.2), "1": (29.4, 32.1), "2": (27.1, 24.8)}),
        "worse": _precision_row({"0": (30.0, 29.0), "1": (30.1, 29.1), "2": (29.9, 28.9)}),
    }
    results = {"date": "2026-01-01", "profile": {"name": "full"},
               "machine": {"cpu": "test CPU"},
               "suites": {"precision": {"complete": True, "result": {
                   "native_bfloat16": True, "fmd": {"rows": rows, "complete": True}}}}}
    path = tmp_path / "2026-01-01-full.json"
    path.write_text(json.dumps(results))
    text = " ".join(report.write(path, tmp_path / "benchmarks.md").read_text().split())
    assert "which has bfloat16 units (AMX)" in text
    assert "| FMD steady | n2v | 1200 | 30.00 | 29.98 | -0.020 |" in text
    # a loss far inside its seeds' spread is said to be unresolved, a steady one to be outside
    assert "FMD unstable -0.37 dB, within two standard errors of its seeds" in text
    assert "FMD worse -1.00 dB, **outside** the tolerance" in text
    assert "steady" not in text.split("Within the stated tolerance")[1]
    assert "0: 31.70 / 30.20; 1: 29.40 / 32.10; 2: 27.10 / 24.80" in text


def test_the_qc_section_says_which_good_outputs_truly_changed_the_intensity(tmp_path, bench):
    _, report, _ = bench
    planted = {kind: {"rate": 0.5, "elsewhere": 0.1, "cases": 4}
               for kind in ("added", "erased", "scaled", "good blur", "good bm3d")}
    planted["added"].update(visible=3, visible_found=2, threshold=5.17)
    good = {"bm3d": {"median_relative_change": 0.052, "beyond_noise": 4, "cases": 4},
            "blur": {"median_relative_change": 0.0004, "beyond_noise": 0, "cases": 4},
            "noisy": {"median_relative_change": -0.001, "beyond_noise": 0, "cases": 4}}
    row = {"image": 0, "denoiser": "bm3d", "true": 30.0,
           "sure": {"estimate": 30.5, "low": 29.0, "high": 32.0}, "bounds": {}}
    simulated = {"cases": 1, "within_1db": 1.0, "median_abs_error_db": 0.5,
                 "interval_coverage": 1.0, "ranking": 1.0, "bounds_coverage": 1.0,
                 "bounds_low_gap_db": 2.0, "median_error_db": {"bm3d": 0.5}, "rows": [row]}
    text = _report_text(tmp_path, report, {"qc": {"complete": True, "result": {
        "budget": {}, "planted": {"5.0": planted},
        "good_outputs": {"visible_z": 3.2, "5.0": good},
        "simulated": {"5.0": simulated}}}})
    assert "| BM3D output | +5.2 % (4 of 4) |" in text
    # found among the defects the measurement can show; where unmeasured, a dash
    assert "| spot added | 2 of 3 |" in text and "| object erased | – |" in text
    assert "threshold (median 5.17 on 256²)" in text
    assert "| 0.7 px blur of truth | +0.0 % (0 of 4) |" in text
    # the interval's half-width: (32.0 - 29.0) / 2
    assert "| simulated, 5 photons | 1 | 100 % | 0.50 | 1.50 | 100 % |" in text


def _report_text(tmp_path: Path, report, suites: dict) -> str:
    """The report written from a results file holding ``suites`` (a quick profile)."""
    results = {"date": "2026-01-01", "profile": {"name": "quick"},
               "machine": {"cpu": "test CPU"}, "suites": suites}
    path = tmp_path / "2026-01-01-quick.json"
    path.write_text(json.dumps(results))
    return report.write(path, tmp_path / "docs" / "benchmarks.md").read_text()
