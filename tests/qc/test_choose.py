"""`choose_denoiser`: the ranking by estimated PSNR, the budget, and the candidates it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from infocus._errors import InfocusInputError
from infocus.noise import NoiseParams
from infocus.qc import choose as choose_module
from infocus.qc import choose_denoiser, parse_budget
from planted import spots


@pytest.fixture(scope="module")
def scene():
    return spots((96, 96), photons=100, seed=3)


def true_psnr(output: np.ndarray, clean: np.ndarray, peak: float) -> float:
    return float(10 * np.log10(peak**2 / np.mean((output - clean) ** 2)))


def test_the_better_of_two_candidates_is_kept(scene):
    outputs: dict[str, np.ndarray] = {}
    choice = choose_denoiser(scene.noisy, candidates=[("gaussian", {"sigma": 6.0}), "nl_means"],
                             on_output=outputs.__setitem__)
    # The truth is clear: a 6-pixel blur erases spots that NL-means keeps.
    truths = {name: true_psnr(out, scene.expected, choice.data_range)
              for name, out in outputs.items()}
    assert truths["nl_means"] > truths["gaussian sigma=6"] + 3
    assert choice.method == "nl_means"
    assert [r.method for r in choice.ranking] == ["nl_means", "gaussian sigma=6"]
    assert choice.ranking[0].psnr > choice.ranking[1].psnr
    assert all(r.estimator == "sure" and r.seconds > 0 for r in choice.ranking)
    np.testing.assert_array_equal(choice.output, outputs["nl_means"])
    assert choice.output.dtype == np.float32
    assert "Kept nl_means" in choice.reason()
    summary = choice.to_dict()
    assert summary["method"] == "nl_means" and len(summary["ranking"]) == 2


def test_the_estimates_share_one_peak(scene):
    choice = choose_denoiser(scene.noisy, candidates=["gaussian"], data_range=50.0)
    entry = choice.ranking[0]
    assert choice.data_range == 50.0
    assert entry.psnr == pytest.approx(10 * np.log10(50.0**2 / entry.mse))


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90.0), ("5min", 300.0), ("1.5h", 5400.0),
                                               ("45", 45.0), (" 2 m ", 120.0), ("0s", 0.0)])
def test_budget_text(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["5 parsecs", "-3s", "soon", "", "1e3s", "nan"])
def test_bad_budget_is_one_sentence(text):
    with pytest.raises(InfocusInputError, match="is not a time; write a number with s, min or h"):
        parse_budget(text)


def test_a_trained_candidate_waits_for_the_budget(scene, monkeypatch):
    def no_probe(*_args):
        raise AssertionError("a budget this small must not time the network")

    monkeypatch.setattr(choose_module, "_timing_probe", no_probe)
    choice = choose_denoiser(scene.noisy, candidates=["wavelet", "n2v"], budget="0s")
    assert [r.method for r in choice.ranking] == ["wavelet"]
    assert [s.method for s in choice.skipped] == ["n2v"]
    assert "budget leaves 0 s" in choice.skipped[0].reason


def test_training_steps_are_cut_to_fit_the_budget(monkeypatch):
    from infocus.methods import create_scheme

    monkeypatch.setattr(choose_module, "_timing_probe", lambda *_args: (0.1, 1e-6))
    scheme = create_scheme("n2v")
    steps, _ = choose_module._steps_within("n2v", scheme, (256, 256), "YX", 60.0, probes=2)
    assert steps == int((60.0 - 4 * 256 * 256 * 1e-6) / 0.1)
    steps, why = choose_module._steps_within("n2v", scheme, (256, 256), "YX", 29.0, probes=2)
    assert steps is None and "training is considered from 30 s" in why
    monkeypatch.setattr(choose_module, "_timing_probe", lambda *_args: (0.2, 1e-6))
    steps, why = choose_module._steps_within("n2v", scheme, (256, 256), "YX", 50.0, probes=2)
    assert steps is None and "300 training steps and 4 predictions would take about 60 s" in why
    steps, _ = choose_module._steps_within("n2v", scheme, (64, 64), "YX", 1e6, probes=2)
    assert steps == 1200  # never more than the method's default


def test_a_missing_package_is_skipped_with_its_hint(scene, monkeypatch):
    real = choose_module._run_classical

    def run(name, *args):
        if name == "bm3d":
            raise ImportError("bm3d needs: pip install 'infocus[bm3d]'")
        return real(name, *args)

    monkeypatch.setattr(choose_module, "_run_classical", run)
    choice = choose_denoiser(scene.noisy, candidates=["bm3d", "wavelet"])
    assert choice.method == "wavelet"
    assert "pip install 'infocus[bm3d]'" in choice.skipped[0].reason
    monkeypatch.setattr(choose_module, "CLASSICAL_CANDIDATES", ("bm3d",))
    with pytest.raises(InfocusInputError, match="No candidate could run"):
        choose_denoiser(scene.noisy, candidates=["bm3d"])


@pytest.mark.parametrize(("candidates", "message"), [
    (["nope"], "Unknown candidate 'nope'"),
    (["care"], "needs pairs of images"),
    ([], "No candidates were given"),
    ([("gaussian", {"width": 2})], "has no option 'width'"),
])
def test_refused_candidates(scene, candidates, message):
    with pytest.raises(InfocusInputError, match=message):
        choose_denoiser(scene.noisy, candidates=candidates)


def test_default_candidates_follow_the_axes():
    plane = choose_module._candidates(None, "YX")
    volume = choose_module._candidates(None, "ZYX")
    assert ("bm4d", {}) not in plane and ("bm4d", {}) in volume
    assert plane[-1] == ("n2v", {})


def test_known_noise_is_used(scene):
    noise = NoiseParams.from_camera(gain=2.0, offset=100.0, read_noise=3.0)
    choice = choose_denoiser(scene.noisy, noise=noise, candidates=["gaussian"])
    assert np.isfinite(choice.ranking[0].mse)


def test_a_trained_candidate_is_scored_with_its_weights_fixed(monkeypatch):
    # A probe that makes steps dear, so that the budget allows a few steps only.
    monkeypatch.setattr(choose_module, "_timing_probe", lambda *_args: (10.0, 1e-6))
    monkeypatch.setattr(choose_module, "MIN_TRAINED_STEPS", 2)
    scene = spots((64, 64), photons=50, seed=5)
    choice = choose_denoiser(scene.noisy, candidates=["n2v"], budget="40s")
    entry = choice.ranking[0]
    assert entry.method == "n2v" and entry.kind == "trained"
    assert entry.estimator == "sure, weights fixed"
    assert entry.note.startswith("trained ") and entry.note.endswith(" steps on this image")
    assert int(entry.note.split()[1]) <= 4  # 40 s at 10 s a step
    assert choice.output.shape == (64, 64)
    np.testing.assert_allclose(choice.denoiser(scene.noisy), choice.output, rtol=1e-5,
                               atol=1e-3)


def test_correlated_noise_is_said_beside_the_choice(scene):
    """Noise correlated between pixels makes the estimates unreliable: the verdict says so,
    and white noise gets no such warning."""
    from scipy import ndimage

    white = choose_denoiser(scene.noisy, candidates=["gaussian"])
    assert not white.correlated_noise and "correlated" not in white.reason()
    rng = np.random.default_rng(4)
    smooth = ndimage.gaussian_filter(rng.normal(0, 6, scene.expected.shape), 1.0) * 3.0
    correlated = choose_denoiser(scene.expected + smooth, candidates=["gaussian"])
    assert correlated.correlated_noise and correlated.to_dict()["correlated_noise"]
    assert "correlated between neighbouring pixels" in correlated.reason()
