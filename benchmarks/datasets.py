"""Loaders for the real benchmark images in ../shared/data (see its README for sources).

Each loader yields ``(name, noisy, clean)`` float32 pairs (or clean images only where the
noise is synthetic) and raises :class:`DatasetMissing` with the path it looked in when the data
are absent, so a runner can skip that dataset with a clear message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: ../shared/data beside the repository; INFOCUS_SHARED_DATA overrides it.
SHARED_DATA = Path(os.environ.get("INFOCUS_SHARED_DATA", REPO.parent / "shared" / "data"))


class DatasetMissing(FileNotFoundError):
    """The benchmark data are not where the README says they should be."""


def _folder(name: str) -> Path:
    folder = SHARED_DATA / name
    if not folder.is_dir():
        raise DatasetMissing(f"{name} not found in {SHARED_DATA} (../shared/data); skipping it.")
    return folder


def _read(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".png":
        import imageio.v3 as iio

        return iio.imread(path)
    import tifffile

    return tifffile.imread(path)


def fmd_test_mix() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """FMD test_mix: 48 raw captures (12 configurations × 4) with their 50-frame averages.

    8-bit PNGs; the FMD protocol scores with a peak of 255.
    """
    folder = _folder("fmd_test_mix")
    for raw_path in sorted((folder / "raw").glob("*.png")):
        clean = _read(folder / "gt" / raw_path.name).astype(np.float32)
        yield raw_path.stem, _read(raw_path).astype(np.float32), clean


def fmd_configuration(name: str) -> str:
    """``'Confocal_BPAE_B_3'`` -> ``'Confocal_BPAE_B'`` (the 4 captures share one ground truth)."""
    return name.rsplit("_", 1)[0]


def w2s_subset() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """W2S 8-bit subset: 30 single widefield captures with 400-frame averages.

    Each file was stretched to 0–255 separately: score with the scale-invariant PSNR.
    """
    folder = _folder("w2s_8bit_subset")
    for raw_path in sorted((folder / "raw").glob("*.tif")):
        clean = _read(folder / "gt" / raw_path.name).astype(np.float32)
        yield raw_path.stem, _read(raw_path).astype(np.float32), clean


def bsd68(
    sigma: float = 25.0, seed: int = 0
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """BSD68 with additive Gaussian noise (the DnCNN / Noise2Void protocol).

    ``noisy = clean + N(0, sigma²)`` on the 0–255 scale, not clipped or rounded, one fixed seed
    for the whole set. Score with a peak of 255.
    """
    folder = _folder("bsd68")
    rng = np.random.default_rng(seed)
    for path in sorted(folder.glob("*.png")):
        clean = _read(path).astype(np.float32)
        noisy = (clean + rng.normal(0.0, sigma, clean.shape)).astype(np.float32)
        yield path.stem, noisy, clean


def fluorescence_clean() -> Iterator[tuple[str, np.ndarray]]:
    """Real fluorescence images with little noise, used as clean images for simulated noise."""
    yield "human_mitosis", _read(
        _folder("human_mitosis") / "AS_09125_050116030001_D03f00d0.tif"
    ).astype(np.float32)
    yield "stardist_nuclei", _read(_folder("stardist_dsb2018_nuclei") / "img2d.tif").astype(
        np.float32
    )


def stardist_nuclei() -> np.ndarray:
    """The stardist DSB2018 nuclei image (512², values 0-235; its masks ship with the
    benchmarks, benchmarks/data)."""
    return _read(_folder("stardist_dsb2018_nuclei") / "img2d.tif").astype(np.float32)


def convallaria() -> np.ndarray:
    """One raw EMCCD frame of the PN2V Convallaria stack (1024×1024 uint16, no ground truth)."""
    folder = _folder("convallaria_pn2v")
    return _read(next(folder.glob("*.tif"))).astype(np.float32)
