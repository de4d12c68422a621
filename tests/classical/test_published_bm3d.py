"""BM3D against its published BSD68 figure (DnCNN protocol, σ = 25): 28.57 dB."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from infocus.classical import bm3d
from infocus.metrics import psnr
from infocus.noise import NoiseParams


@pytest.mark.slow
@pytest.mark.shared_data
def test_bm3d_bsd68_sigma25_matches_published(shared_data):
    """Clean + N(0, 25²), not clipped or rounded (../shared/peers/published.md, §1.1)."""
    rng = np.random.default_rng(0)
    scores = []
    for path in sorted((shared_data / "bsd68").glob("*.png")):
        clean = iio.imread(path).astype(np.float32)
        noisy = (clean + rng.normal(0.0, 25.0, clean.shape)).astype(np.float32)
        denoised = bm3d(noisy, axes="YX", noise=NoiseParams.gaussian(25.0), vst=False)
        scores.append(psnr(denoised, clean, data_range=255))
    assert len(scores) == 68
    assert abs(float(np.mean(scores)) - 28.57) <= 0.15, np.mean(scores)
