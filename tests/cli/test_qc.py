"""`infocus qc`: the report folder, the JSON contract, and one sentence for each bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from infocus.classical import get_denoiser
from infocus.cli import app
from infocus.io import write_image
from planted import added_spot, good_output, spots

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def said(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("qc")
    scene = spots((96, 96), photons=30, seed=7)
    output = good_output(scene)
    defect = output + added_spot(output.shape, (30, 60), 40.0)
    paths = {name: folder / f"{name}.tif" for name in ("noisy", "good", "defect", "gt",
                                                       "smooth", "small")}
    write_image(paths["noisy"], scene.noisy.astype(np.float32), axes="YX")
    write_image(paths["good"], output.astype(np.float32), axes="YX")
    write_image(paths["defect"], defect.astype(np.float32), axes="YX")
    write_image(paths["gt"], scene.expected.astype(np.float32), axes="YX")
    smooth = get_denoiser("gaussian")(scene.noisy.astype(np.float32), axes="YX", sigma=1.0)
    write_image(paths["smooth"], smooth, axes="YX")
    write_image(paths["small"], output[:64].astype(np.float32), axes="YX")
    return paths


def test_json_contract_and_report_folder(files, tmp_path):
    report = tmp_path / "report"
    result = run("qc", files["noisy"], files["defect"], "-o", report, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["flagged"] is True
    assert isinstance(summary["psnr_estimate"], float)
    assert {c["name"] for c in summary["checks"]} >= {"consistency", "intensity"}
    assert sorted(p.name for p in report.iterdir()) == [
        "consistency.tif", "flags.tif", "objects.tif", "overview.png", "qc.json", "report.html"]
    flags = tifffile.imread(report / "flags.tif")
    assert flags.shape == (96, 96) and flags[28:33, 58:63].any()
    assert json.loads((report / "qc.json").read_text())["flagged"] is True
    page = (report / "report.html").read_text()
    assert "overview.png" in page and "FAILED" in page


def test_a_good_output_passes_and_the_table_says_so(files):
    result = run("qc", files["noisy"], files["good"])
    assert result.exit_code == 0, result.output
    text = said(result)
    assert "passed" in text and "FAILED" not in text and "at least" in text


def test_method_gives_a_sure_estimate_whose_interval_holds_the_truth(files):
    result = run("qc", files["noisy"], files["smooth"], "-m", "gaussian", "-p", "sigma=1.0",
                 "--gt", files["gt"], "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["estimate_method"] == "sure"
    low, high = summary["psnr_interval"]
    assert low <= summary["ground_truth"]["psnr"] <= high


def test_an_existing_report_needs_overwrite_and_other_folders_are_never_replaced(files, tmp_path):
    report = tmp_path / "report"
    assert run("qc", files["noisy"], files["good"], "-o", report).exit_code == 0
    again = run("qc", files["noisy"], files["good"], "-o", report)
    assert again.exit_code == 2 and "--overwrite" in said(again)
    assert run("qc", files["noisy"], files["good"], "-o", report, "--overwrite").exit_code == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    refused = run("qc", files["noisy"], files["good"], "-o", mine, "--overwrite")
    assert refused.exit_code == 2 and (mine / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize(("args", "message"), [
    (["small"], "same size"),
    (["good", "-m", "n2v"], "--model instead"),
    (["good", "-m", "gaussian", "--model", "x"], "not both"),
    (["good", "-p", "sigma=1"], "give the method too"),
    (["smooth", "-m", "gaussian", "-p", "sigma=3"], "does not reproduce"),
])
def test_bad_input_is_one_sentence_and_writes_nothing(files, tmp_path, args, message):
    report = tmp_path / "report"
    first, *rest = args
    result = run("qc", files["noisy"], files[first], *rest, "-o", report)
    assert result.exit_code == 2, result.output
    assert message in said(result)
    assert not report.exists()
    assert not list(tmp_path.glob(".report*"))


def test_a_normalised_output_is_recognised(files, tmp_path):
    output = tifffile.imread(files["good"])
    path = tmp_path / "normalised.tif"
    write_image(path, (output - output.min()) / np.ptp(output), axes="YX")
    result = run("qc", files["noisy"], path)
    assert result.exit_code == 2 and "units" in said(result)


# -- the summary where the user already is: denoise and predict -------------------------------
def test_denoise_prints_the_summary_and_writes_the_report_with_qc(files, tmp_path):
    output, report = tmp_path / "out.tif", tmp_path / "report"
    result = run("denoise", files["noisy"], "-o", output, "-m", "gaussian", "-p", "sigma=1",
                 "--qc", report)
    assert result.exit_code == 0, result.output
    assert "Quality (no ground truth): Estimated PSNR" in said(result)
    summary = json.loads((report / "qc.json").read_text())
    assert summary["estimate_method"] == "sure"
    np.testing.assert_array_equal(tifffile.imread(output).shape, summary["shape"])


def test_denoise_without_qc_prints_bounds_and_writes_no_report(files, tmp_path):
    result = run("denoise", files["noisy"], "-o", tmp_path / "out.tif", "-m", "gaussian")
    assert result.exit_code == 0, result.output
    assert "Quality (no ground truth): PSNR at least" in said(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_predict_reports_quality_or_says_why_not(files, tmp_path):
    from conftest import passthrough_care_model

    model = passthrough_care_model({"alpha": 1.0, "beta": 0.0}).save(tmp_path / "model")
    report = tmp_path / "report"
    result = run("predict", model, files["noisy"], "-o", tmp_path / "a.tif", "--qc", report)
    assert result.exit_code == 0, result.output
    assert "Quality (no ground truth)" in said(result) and (report / "report.html").is_file()
    # Without calibration this model's output is 1.3 x + 7: in other units than the input.
    result = run("predict", model, files["noisy"], "-o", tmp_path / "b.tif", "--no-calibrate")
    assert result.exit_code == 0, result.output
    assert "Quality check skipped" in said(result) and "units" in said(result)
    assert (tmp_path / "b.tif").is_file()


def test_with_ground_truth_the_report_shows_the_true_values_and_a_profile(files, tmp_path):
    report = tmp_path / "report"
    result = run("qc", files["noisy"], files["defect"], "--gt", files["gt"], "-o", report)
    assert result.exit_code == 0, result.output
    assert (report / "profile.png").stat().st_size > 1000
    summary = json.loads((report / "qc.json").read_text())
    assert summary["ground_truth"]["psnr"] > 0 and summary["files"]["profile"] == "profile.png"
    assert "Against the ground truth" in (report / "report.html").read_text()


def test_with_a_model_the_output_is_compared_with_a_classical_reference(files, tmp_path):
    from conftest import tiny_model
    from infocus.io import read_image
    from infocus.predict.model import load_model

    model = tiny_model().save(tmp_path / "model")
    noisy = read_image(files["noisy"]).data
    output = tmp_path / "out.tif"
    write_image(output, load_model(model).denoise(noisy, axes="YX"), axes="YX")
    report = tmp_path / "report"
    result = run("qc", files["noisy"], output, "--model", model, "--reference", "wavelet",
                 "-o", report, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    check = next(c for c in summary["checks"] if c["name"] == "disagreement")
    written = json.loads((report / "qc.json").read_text())
    assert written["files"]["disagreement"] == "disagreement.tif"
    disagreement = tifffile.imread(report / "disagreement.tif")
    flags = tifffile.imread(report / "flags.tif")
    assert disagreement.shape == noisy.shape and disagreement.dtype == np.float32
    assert check["passed"] == (not (flags & 8).any())
    # Bit 8 marks exactly where a window of the map went beyond the threshold.
    assert np.all(np.abs(disagreement[(flags & 8) > 0]) > check["threshold"])
    assert "Disagreement" in (report / "report.html").read_text()


def test_reference_none_skips_the_comparison_and_a_learned_reference_is_refused(files, tmp_path):
    result = run("qc", files["noisy"], files["good"], "--reference", "none", "--json")
    assert result.exit_code == 0, result.output
    assert "disagreement" not in [c["name"] for c in json.loads(result.stdout)["checks"]]
    result = run("qc", files["noisy"], files["good"], "--reference", "n2v")
    assert result.exit_code != 0 and "learned method" in said(result)


# -- predict --qc and learned denoise --qc compare with a classical reference -----------------
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from conftest import tiny_model

    return tiny_model().save(tmp_path_factory.mktemp("model") / "model")


def test_predict_with_qc_compares_with_wavelet_and_shows_the_map(files, tiny, tmp_path):
    report = tmp_path / "report"
    result = run("predict", tiny, files["noisy"], "-o", tmp_path / "out.tif", "--qc", report)
    assert result.exit_code == 0, result.output
    summary = json.loads((report / "qc.json").read_text())
    check = next(c for c in summary["checks"] if c["name"] == "disagreement")
    assert check["reference"] == "wavelet" and check["planes_compared"] == check["planes"] == 1
    assert summary["files"]["disagreement"] == "disagreement.tif"
    assert tifffile.imread(report / "disagreement.tif").shape == (96, 96)
    # The summary line gives the comparison's result, passed or not.
    assert "classical reference (wavelet)" in said(result)
    assert "disagreement map against wavelet" in (report / "report.html").read_text()


def test_predict_qc_reference_none_skips_the_comparison(files, tiny, tmp_path):
    report = tmp_path / "report"
    result = run("predict", tiny, files["noisy"], "-o", tmp_path / "out.tif", "--qc", report,
                 "--qc-reference", "none")
    assert result.exit_code == 0, result.output
    summary = json.loads((report / "qc.json").read_text())
    assert "disagreement" not in [c["name"] for c in summary["checks"]]
    assert "disagreement" not in summary["files"] and not (report / "disagreement.tif").exists()
    assert "classical reference" not in said(result)


def test_predict_qc_reference_without_qc_adds_the_comparison_to_the_summary(files, tiny,
                                                                            tmp_path):
    result = run("predict", tiny, files["noisy"], "-o", tmp_path / "out.tif",
                 "--qc-reference", "gaussian")
    assert result.exit_code == 0, result.output
    assert "classical reference (gaussian)" in said(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]
    result = run("predict", tiny, files["noisy"], "-o", tmp_path / "plain.tif")
    assert result.exit_code == 0 and "classical reference" not in said(result)


@pytest.mark.parametrize(("command", "message"), [
    (["predict", "{model}", "{noisy}", "--qc-reference", "n2v"], "--qc-reference 'n2v' is a "
     "learned method"),
    (["predict", "{model}", "{noisy}", "--qc-reference", "nonexistent"], "nonexistent"),
    (["denoise", "{noisy}", "-m", "gaussian", "--qc-reference", "wavelet"],
     "apply to learned methods only"),
    (["denoise", "{noisy}", "-m", "auto", "--qc-reference", "wavelet"], "--qc-reference sets"),
])
def test_a_bad_qc_reference_is_refused_before_any_work(files, tiny, tmp_path, command, message):
    values = {"{model}": tiny, "{noisy}": files["noisy"]}
    result = run(*[values.get(a, a) for a in command], "-o", tmp_path / "out.tif")
    assert result.exit_code == 2, result.output
    assert message in said(result)
    assert not list(tmp_path.iterdir())


def test_learned_denoise_with_qc_compares_with_the_reference(files, tmp_path):
    report = tmp_path / "report"
    result = run("denoise", files["noisy"], "-o", tmp_path / "out.tif", "-m", "n2v",
                 "--steps", 2, "--qc", report,
                 "--qc-reference", "gaussian")
    assert result.exit_code == 0, result.output
    summary = json.loads((report / "qc.json").read_text())
    check = next(c for c in summary["checks"] if c["name"] == "disagreement")
    assert check["reference"] == "gaussian"
    assert (report / "disagreement.tif").is_file()
