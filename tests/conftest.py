"""Shared fixtures: a seeded generator, small synthetic images and the real benchmark data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

#: The real benchmark images (see ../shared/data/README.md); CI has them beside the clone.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded random generator per test."""
    return np.random.default_rng(20261125)


@pytest.fixture
def shared_data() -> Path:
    """Path to ../shared/data; the test is skipped with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real benchmark data not found at {SHARED_DATA} (../shared/data beside the repo)")
    return SHARED_DATA


def blobs_image(shape: tuple[int, ...], rng: np.random.Generator, n_blobs: int = 30) -> np.ndarray:
    """A smooth fluorescence-like test image in [0, 1]: Gaussian blobs on a dim background."""
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    image = np.full(shape, 0.05)
    for _ in range(n_blobs):
        centre = [rng.uniform(0, n) for n in shape]
        width = rng.uniform(2.0, max(3.0, min(shape) / 10))
        r2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
        image += rng.uniform(0.3, 1.0) * np.exp(-r2 / (2 * width**2))
    return (image / image.max()).astype(np.float32)


@pytest.fixture
def noisy_stack(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three 64×64 blob images at 30 photons under a camera (gain 2, offset 100, read noise 3):
    the noisy stack and its expectation."""
    from infocus.noise import simulate_poisson_gaussian

    clean = np.stack([blobs_image((64, 64), rng, n_blobs=20) for _ in range(3)])
    noisy, _ = simulate_poisson_gaussian(clean, photons=30, gain=2, offset=100, read_noise=3,
                                         rng=1)
    return noisy, clean * 60 + 100


@pytest.fixture
def blobs_2d(rng: np.random.Generator) -> np.ndarray:
    """A 128x128 smooth fluorescence-like image in [0, 1]."""
    return blobs_image((128, 128), rng)


def passthrough_care_model(relation: dict[str, float]):
    """A CARE model whose network passes its input through (residual, zero head) while its
    target normalisation shifts and scales: the prediction is 1.3·x + 7, a pure intensity
    distortion, trained on targets that had the inputs' units."""
    import torch

    from infocus.intensity.normalize import Normalizer
    from infocus.methods.config import default_config
    from infocus.nets import create_network
    from infocus.predict.model import TrainedModel

    network = create_network("unet", ndim=2, in_channels=1, out_channels=1, depth=1,
                             base_filters=4, residual=True)
    with torch.no_grad():
        network.head.weight.zero_()
        network.head.bias.zero_()
    network.eval()
    config = default_config("care").with_updates(
        network_options={"depth": 1, "base_filters": 4, "residual": True})
    return TrainedModel(network=network, config=config, spatial="YX",
                        input_norm=Normalizer(mean=(100.0,), std=(20.0,)),
                        target_norm=Normalizer(mean=(137.0,), std=(26.0,)),
                        state={"photometric_relation": [relation]})


def tiny_model(ndim: int = 2, *, channels: int = 1, joint: bool = False, seed: int = 0):
    """An untrained N2V model with a small U-Net (depth 2, 8 filters) and non-trivial batch
    normalisation statistics: quick to run, and every part of prediction is exercised."""
    import torch

    from infocus.intensity.normalize import Normalizer
    from infocus.methods.config import default_config
    from infocus.nets import create_network
    from infocus.predict.model import TrainedModel

    torch.manual_seed(seed)
    network = create_network("unet", ndim=ndim, in_channels=channels, out_channels=channels,
                             depth=2, base_filters=8)
    # Give BatchNorm non-trivial statistics so that the round trip covers buffers too.
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    network.eval()
    config = default_config("n2v").with_updates(
        network_options={"depth": 2, "base_filters": 8},
        channels="joint" if joint else "independent",
    )
    norm = Normalizer(mean=(100.0,) * channels, std=(20.0,) * channels)
    return TrainedModel(network=network, config=config, spatial="ZYX" if ndim == 3 else "YX",
                        input_norm=norm, target_norm=norm, history=[{"epoch": 1}],
                        provenance={"seed": 0})
