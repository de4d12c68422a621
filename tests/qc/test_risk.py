"""The ground-truth-free MSE estimate against the true MSE."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, median_filter, uniform_filter

from conftest import blobs_image
from infocus._errors import InfocusInputError
from infocus.noise import NoiseParams, simulate_poisson_gaussian
from infocus.qc import estimate_mse, estimated_psnr

CAMERA = {"gain": 2.0, "offset": 100.0, "read_noise": 3.0}

DENOISERS = {
    "gaussian 1": lambda x: gaussian_filter(x, 1.0),
    "gaussian 2.5": lambda x: gaussian_filter(x, 2.5),
    "box 5": lambda x: uniform_filter(x, 5),
    "median 3": lambda x: median_filter(x, 3),
}


def _scene(photons: float, seed: int):
    rng = np.random.default_rng(seed)
    clean = blobs_image((192, 192), rng, n_blobs=40)
    noisy, noise = simulate_poisson_gaussian(clean, photons=photons, rng=seed, **CAMERA)
    expected = clean / clean.max() * photons * CAMERA["gain"] + CAMERA["offset"]
    return noisy.astype(np.float64), expected, noise


def test_the_estimate_is_within_1_db_of_the_true_psnr_in_most_cases():
    """The issue's criterion (80 % of cases within 1 dB), over 4 denoisers x 3 photon levels.

    Where it misses: heavy smoothing at 5 photons, whose true MSE (about 0.2) is 1 % of the
    noise variance; the estimate's spread (a few tenths) is then larger than the MSE itself.
    """
    within, covered, cases = 0, 0, 0
    for photons in (5.0, 20.0, 100.0):
        noisy, expected, noise = _scene(photons, seed=int(photons))
        peak = float(expected.max() - expected.min())
        for denoise in DENOISERS.values():
            denoised = denoise(noisy)
            estimate = estimate_mse(noisy, denoised, noise, denoiser=denoise)
            true = float(np.mean((denoised - expected) ** 2))
            assert estimate.method == "sure"
            error = estimated_psnr(estimate, peak)[0] - 10 * math.log10(peak**2 / true)
            within += abs(error) < 1.0
            covered += estimate.low <= true <= estimate.high
            cases += 1
    assert within >= 0.8 * cases
    assert covered >= 0.8 * cases


def test_the_estimate_ranks_denoisers_as_the_truth_does():
    noisy, expected, noise = _scene(20.0, seed=3)
    true, estimated = {}, {}
    for name, denoise in DENOISERS.items():
        denoised = denoise(noisy)
        true[name] = float(np.mean((denoised - expected) ** 2))
        estimated[name] = estimate_mse(noisy, denoised, noise, denoiser=denoise).mse
    assert sorted(true, key=true.get) == sorted(estimated, key=estimated.get)


def test_the_interval_covers_the_truth_over_noise_draws():
    denoise = DENOISERS["gaussian 1"]
    covered = 0
    for seed in range(20):
        noisy, expected, noise = _scene(20.0, seed=100 + seed)
        denoised = denoise(noisy)
        estimate = estimate_mse(noisy, denoised, noise, denoiser=denoise, seed=seed)
        covered += estimate.low <= float(np.mean((denoised - expected) ** 2)) <= estimate.high
    assert covered >= 16  # a 95 % interval; 16 of 20 leaves room for chance


def test_without_the_denoiser_the_mse_is_bracketed():
    noisy, expected, noise = _scene(20.0, seed=4)
    for denoise in DENOISERS.values():
        denoised = denoise(noisy)
        estimate = estimate_mse(noisy, denoised, noise)
        true = float(np.mean((denoised - expected) ** 2))
        assert estimate.method == "bounds" and estimate.low <= true <= estimate.high


def test_a_second_capture_estimates_the_mse_without_the_denoiser():
    rng = np.random.default_rng(7)
    clean = blobs_image((192, 192), rng, n_blobs=40)
    first, noise = simulate_poisson_gaussian(clean, photons=20.0, rng=1, **CAMERA)
    second, _ = simulate_poisson_gaussian(clean, photons=20.0, rng=2, **CAMERA)
    expected = clean / clean.max() * 20.0 * CAMERA["gain"] + CAMERA["offset"]
    for denoise in DENOISERS.values():
        denoised = denoise(first.astype(np.float64))
        estimate = estimate_mse(first, denoised, noise, capture=second)
        true = float(np.mean((denoised - expected) ** 2))
        assert estimate.method == "second capture"
        assert estimate.low <= true <= estimate.high
        assert abs(estimate.mse - true) < 0.25 * true + 0.3
    with pytest.raises(InfocusInputError, match="second capture has shape"):
        estimate_mse(first, first, noise, capture=second[:-1])


def _captures(photons: float, brightness: tuple[float, ...], seed: int = 7):
    """A noisy image and captures of its scene at other brightnesses (1.0 = the same)."""
    rng = np.random.default_rng(seed)
    clean = blobs_image((192, 192), rng, n_blobs=40)
    first, noise = simulate_poisson_gaussian(clean, photons=photons, rng=1, **CAMERA)
    others = [simulate_poisson_gaussian(clean, photons=photons * b, rng=10 + k, **CAMERA)[0]
              for k, b in enumerate(brightness)]
    expected = clean / clean.max() * photons * CAMERA["gain"] + CAMERA["offset"]
    return first.astype(np.float64), [o.astype(np.float64) for o in others], expected, noise


@pytest.mark.parametrize("brightness", [0.85, 1.2])
def test_the_brightness_of_a_capture_is_read_from_its_difference(brightness):
    """Same scene: ratio 1 and a mean-square difference at noise level; another brightness:
    its ratio read to within a few per cent of the change."""
    from infocus.qc.risk import capture_mismatch

    first, (same, other), expected, _ = _captures(20.0, (1.0, brightness))
    ratio, square = capture_mismatch(first, same, "YX")
    assert ratio == pytest.approx(1.0, abs=0.01)
    assert square < 10 * float(np.mean((first - same) ** 2)) / first.size
    ratio, square = capture_mismatch(first, other, "YX")
    assert ratio == pytest.approx(brightness, abs=0.05 * abs(brightness - 1) + 0.01)
    signal = (brightness - 1) * (expected - CAMERA["offset"])
    assert square == pytest.approx(float(np.mean(signal**2)), rel=0.4)


def test_a_capture_of_another_brightness_is_left_out_with_a_note():
    """A capture 20 % brighter biases the Noise2Noise estimate by several dB: it is left out,
    and with no capture left the estimate is made from the noise model (SURE)."""
    first, (same, brighter), expected, noise = _captures(20.0, (1.0, 1.2))
    smooth = DENOISERS["gaussian 1"]
    denoised = smooth(first)
    true = float(np.mean((denoised - expected) ** 2))
    biased = estimate_mse(first, denoised, noise, capture=[brighter], denoiser=None)
    assert biased.method == "bounds" and "capture 1 (" in biased.note and "brighter" in biased.note
    estimate = estimate_mse(first, denoised, noise, capture=[same, brighter])
    assert estimate.method == "second capture"
    assert estimate.note.startswith("left out capture 2 (")
    assert abs(estimate.mse - true) < 0.25 * true
    # What the identity would have said with the brighter capture in: far off.
    from infocus.qc.risk import _from_captures

    assert _from_captures(first, denoised, [brighter], "YX").mse > 2 * true
    fallback = estimate_mse(first, denoised, noise, capture=[brighter], denoiser=smooth)
    assert fallback.method == "sure" and fallback.note.startswith("no capture used")
    dimmer = _captures(20.0, (1.0, 1.2, 0.8))[1][2]  # its own noise draw
    two = estimate_mse(first, denoised, noise, capture=[brighter, same, dimmer])
    assert two.note.startswith("left out capture 1 (") and "capture 3 (" in two.note
    assert "their scenes differ" in two.note and "dimmer" in two.note


def test_captures_of_the_same_scene_are_all_used():
    """No capture of the same scene is left out: 3 photon levels, 2 captures each, 3 outputs."""
    for photons in (5.0, 20.0, 100.0):
        first, others, _, noise = _captures(photons, (1.0, 1.0), seed=int(photons))
        for denoise in ("gaussian 1", "gaussian 2.5", "median 3"):
            estimate = estimate_mse(first, DENOISERS[denoise](first), noise, capture=others)
            assert estimate.method == "second capture" and estimate.note == ""


def test_a_capture_identical_to_another_is_refused():
    """Two copies of one capture carry no noise between them (FMD test_mix holds such a pair)."""
    rng = np.random.default_rng(3)
    clean = blobs_image((64, 64), rng, n_blobs=8)
    first, noise = simulate_poisson_gaussian(clean, photons=20.0, rng=1, **CAMERA)
    second, _ = simulate_poisson_gaussian(clean, photons=20.0, rng=2, **CAMERA)
    with pytest.raises(InfocusInputError, match="Capture 1 is identical to the noisy image"):
        estimate_mse(first, first, noise, capture=first.copy())
    with pytest.raises(InfocusInputError, match="Capture 2 is identical to capture 1"):
        estimate_mse(first, first, noise, capture=[second, second.copy()])


def test_the_identity_and_gaussian_noise_are_exact_cases():
    rng = np.random.default_rng(5)
    clean = gaussian_filter(rng.uniform(50, 150, (128, 128)), 4)
    noisy = clean + rng.normal(0, 5, clean.shape)
    estimate = estimate_mse(noisy, noisy, NoiseParams.gaussian(5.0), denoiser=lambda x: x)
    assert estimate.mse == pytest.approx(25.0, rel=0.05)  # the identity keeps all the noise


def test_bad_input_is_one_sentence():
    noisy, _, noise = _scene(20.0, seed=6)
    with pytest.raises(InfocusInputError, match="shape"):
        estimate_mse(noisy, noisy[:-1], noise)
    with pytest.raises(InfocusInputError, match="NoiseParams"):
        estimate_mse(noisy, noisy, 3.0)
    with pytest.raises(InfocusInputError, match="same shape"):
        estimate_mse(noisy, noisy, noise, denoiser=lambda x: x[:-1])
    with pytest.raises(InfocusInputError, match="probes"):
        estimate_mse(noisy, noisy, noise, denoiser=lambda x: x, probes=0)


def test_correlated_noise_needs_the_covariance_in_the_divergence():
    """Noise smoothed by a 3x3 kernel (0.67 correlated with the next pixel): with independent
    pixels assumed, SURE misses the divergence and the estimate is even negative; with the
    correlation it is within 15 % of the true MSE."""
    from scipy import ndimage

    from infocus.noise.correlation import NoiseCorrelation

    rng = np.random.default_rng(0)
    clean = ndimage.gaussian_filter(rng.uniform(50, 150, (256, 256)), 4)
    taps = np.outer([0.5, 1.0, 0.5], [0.5, 1.0, 0.5])
    noisy = clean + 5 * ndimage.convolve(rng.normal(0, 1, clean.shape), taps / np.sqrt(
        np.sum(taps**2)))
    def smooth(x):
        return ndimage.gaussian_filter(x, 1.5)

    true = float(np.mean((smooth(noisy) - clean) ** 2))
    one_dimensional = np.array([1.5, 1.0, 0.25, 0.0]) / 1.5
    offsets = tuple((dy, dx) for dy in range(4) for dx in range(-3, 4)
                    if dy > 0 or dx > 0)
    correlation = NoiseCorrelation(offsets, tuple(
        float(one_dimensional[abs(dy)] * one_dimensional[abs(dx)]) for dy, dx in offsets), 1)
    white = estimate_mse(noisy, smooth(noisy), NoiseParams.gaussian(5), denoiser=smooth)
    correlated = estimate_mse(noisy, smooth(noisy), NoiseParams.gaussian(5), denoiser=smooth,
                              correlation=correlation)
    assert white.mse < 0 < true
    assert abs(correlated.mse - true) / true < 0.15



@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_a_variance_stabilised_denoiser_is_estimated_without_bias_at_5_photons(sigma):
    """Anscombe, Gaussian filter, inverse: its slope ∂f_i/∂y_i grows as y_i falls. Divergence
    weights v(y_i), correlated with that slope, made the median estimate 1.5 dB (σ = 1) and
    3.6 dB (σ = 2) optimistic over these scenes; one scene's estimate still spreads by about a
    dB (the MSE is a few % of the noise variance), so the median over six is tested."""
    from infocus.classical import get_denoiser

    filter_ = get_denoiser("gaussian")
    errors = []
    for seed in range(11, 17):
        noisy, expected, noise = _scene(5.0, seed=seed)

        def denoise(image, noise=noise):
            return np.asarray(filter_(image, axes="YX", noise=noise, sigma=sigma), np.float64)

        denoised = denoise(noisy)
        true = float(np.mean((denoised - expected) ** 2))
        estimate = estimate_mse(noisy, denoised, noise, denoiser=denoise).mse
        errors.append(10 * math.log10(true / estimate) if estimate > 0 else math.inf)
    assert abs(float(np.median(errors))) < 0.6


def test_an_estimated_noise_model_widens_the_interval_to_hold_its_own_error():
    """With the noise model estimated from the image, the interval also carries the error of
    its parameters: over noise draws it holds the truth at least as often as a 95 % interval
    should (the exact noise model's interval alone held it less often at 5 photons)."""
    from infocus.noise import estimate_noise_with_error

    denoise = DENOISERS["gaussian 2.5"]
    covered, widened = 0, []
    for seed in range(12):
        noisy, expected, _ = _scene(5.0, seed=200 + seed)
        params, covariance = estimate_noise_with_error(noisy)
        denoised = denoise(noisy)
        plain = estimate_mse(noisy, denoised, params, denoiser=denoise, seed=seed)
        wide = estimate_mse(noisy, denoised, params, denoiser=denoise, seed=seed,
                            noise_covariance=covariance)
        assert wide.mse == plain.mse
        widened.append((wide.high - wide.low) / (plain.high - plain.low))
        covered += wide.low <= float(np.mean((denoised - expected) ** 2)) <= wide.high
    assert min(widened) > 1.0
    assert covered >= 10
    # no error in the noise model: the interval is SURE's alone
    exact = estimate_mse(noisy, denoised, params, denoiser=denoise, seed=11,
                         noise_covariance=np.zeros((2, 2)))
    assert (exact.low, exact.high) == pytest.approx((plain.low, plain.high))
    with pytest.raises(InfocusInputError, match="one 2×2 matrix or one per channel"):
        estimate_mse(noisy, denoised, params, denoiser=denoise, noise_covariance=np.zeros(3))
