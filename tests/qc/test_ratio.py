"""Channel ratios of objects: the reported interval holds the true error at its coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from infocus._errors import InfocusInputError
from infocus.noise import simulate_poisson_gaussian
from infocus.qc.ratio import check_ratios

GAIN, OFFSET, READ_NOISE, PHOTONS = 2.0, 100.0, 3.0, 15.0


def _two_channel_objects(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clean ``(2, 128, 128)`` in photons-per-peak units: 9 blobs on a grid, each with its own
    channel-1 / channel-0 ratio between 0.4 and 1.6; and those ratios."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:128, :128]
    ratios = rng.uniform(0.4, 1.6, 9)
    first, second = np.zeros((128, 128)), np.zeros((128, 128))
    for k, (cy, cx) in enumerate([(y, x) for y in (22, 64, 106) for x in (22, 64, 106)]):
        blob = rng.uniform(0.4, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2)
                                              / (2 * rng.uniform(5, 8) ** 2))
        first += blob
        second += ratios[k] * blob
    return np.stack([first, second]) + 0.03, ratios


def _camera(clean: np.ndarray) -> np.ndarray:
    return clean / clean.max() * PHOTONS * GAIN + OFFSET


def _variance(expected: np.ndarray) -> np.ndarray:
    return GAIN * (expected - OFFSET) + READ_NOISE**2


def _true_ratios(labels: np.ndarray, expected: np.ndarray) -> np.ndarray:
    index = np.arange(1, int(labels.max()) + 1)
    background = labels == 0
    sums = [ndimage.sum_labels(c - np.median(c[background]), labels, index) for c in expected]
    return sums[1] / sums[0]


def _draws(denoiser, count: int = 40):
    """(check, true ratio per label) for ``count`` noise draws of one scene."""
    clean, _ = _two_channel_objects()
    expected = _camera(clean)
    for seed in range(count):
        noisy, _ = simulate_poisson_gaussian(clean, photons=PHOTONS, rng=seed, gain=GAIN,
                                             offset=OFFSET, read_noise=READ_NOISE)
        output = denoiser(noisy, expected)
        check = check_ratios(noisy[:, None], output[:, None], _variance(expected)[:, None])
        yield check, _true_ratios(check.labels[0], expected)


def _oracle(noisy, expected):
    return expected


def _smoothing(noisy, expected):
    # Keeps every object's sum up to light moved across its halo.
    return ndimage.gaussian_filter(noisy, (0, 1.5, 1.5))


@pytest.mark.parametrize("denoiser", [_oracle, _smoothing])
def test_the_interval_holds_the_true_error_at_its_coverage(denoiser):
    inside = []
    for check, truth in _draws(denoiser):
        for change in check.changes:
            true_error = (change["denoised"] - truth[change["label"] - 1]) \
                / truth[change["label"] - 1]
            inside.append(change["error_low"] <= true_error <= change["error_high"])
    assert len(inside) >= 300
    assert 0.91 < np.mean(inside) < 0.985


def test_the_standard_error_is_the_spread_of_the_measured_ratio():
    measured, reported = {}, {}
    for check, _ in _draws(_oracle, count=60):
        for change in check.changes:
            measured.setdefault(change["label"], []).append(change["measured"])
            reported.setdefault(change["label"], []).append(change["standard_error"])
    assert len(measured) == 9
    spread = np.array([np.std(measured[k], ddof=1) for k in measured])
    standard_error = np.array([np.mean(reported[k]) for k in measured])
    # 60 draws pin a standard deviation down to about ±9 %.
    assert np.sqrt(np.mean(spread**2)) == pytest.approx(np.sqrt(np.mean(standard_error**2)),
                                                        rel=0.12)


def test_only_changes_beyond_the_noise_are_flagged():
    flagged_draws = sum(bool(check.flagged) for check, _ in _draws(_smoothing))
    assert flagged_draws <= 4  # family-wise error 5 % over 40 draws

    clean, _ = _two_channel_objects()
    expected = _camera(clean)
    noisy, _ = simulate_poisson_gaussian(clean, photons=PHOTONS, rng=1, gain=GAIN,
                                         offset=OFFSET, read_noise=READ_NOISE)
    changed = expected.copy()
    changed[1, 40:88, 40:88] = OFFSET + (changed[1, 40:88, 40:88] - OFFSET) * 1.3  # the centre blob
    check = check_ratios(noisy[:, None], changed[:, None], _variance(expected)[:, None])
    assert [c["label"] for c in check.flagged] == [int(check.labels[0, 64, 64])]
    centre = next(c for c in check.changes if c["label"] == check.labels[0, 64, 64])
    assert centre["error_low"] > 0.2  # the interval excludes no change
    assert centre["expected_relative_error"] >= abs(centre["relative_change"])


def test_a_coverage_outside_zero_to_one_is_refused():
    image = np.ones((2, 1, 16, 16))
    with pytest.raises(InfocusInputError, match="coverage"):
        check_ratios(image, image, image, coverage=95)
