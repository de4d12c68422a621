"""The benchmark datasets as arrays, cut to a profile's size, shared by the suites."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from benchmarks import datasets
from benchmarks.profiles import Profile

#: Camera of the simulated data: x = gain·Poisson(s) + offset + N(0, read_noise²).
CAMERA = {"gain": 2.0, "offset": 100.0, "read_noise": 3.0}


def crop(image: np.ndarray, size: int | None) -> np.ndarray:
    """Central ``size``² crop of the last two axes (the image itself when ``size`` is None)."""
    if size is None:
        return image
    h, w = image.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[..., top : top + size, left : left + size]


@dataclass(frozen=True)
class Paired:
    """Noisy images with their clean references, ``(N, H, W)`` float32, and names."""

    names: tuple[str, ...]
    noisy: np.ndarray
    clean: np.ndarray

    def subset(self, keep: np.ndarray) -> Paired:
        return Paired(tuple(n for n, k in zip(self.names, keep, strict=True) if k),
                      self.noisy[keep], self.clean[keep])


@functools.lru_cache(maxsize=4)
def _fmd_all() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    items = list(datasets.fmd_test_mix())
    return (tuple(n for n, _, _ in items), np.stack([x for _, x, _ in items]),
            np.stack([c for _, _, c in items]))


def fmd(profile: Profile, configurations: tuple[str, ...] = (), captures: int = 4) -> Paired:
    """FMD test_mix, optionally only some configurations and the first ``captures`` of each."""
    names, noisy, clean = _fmd_all()
    seen: dict[str, int] = defaultdict(int)
    keep = []
    for name in names:
        config = datasets.fmd_configuration(name)
        seen[config] += 1
        keep.append((not configurations or config in configurations) and seen[config] <= captures)
    mask = np.array(keep)
    return Paired(tuple(n for n, k in zip(names, keep, strict=True) if k),
                  crop(noisy[mask], profile.crop), crop(clean[mask], profile.crop))


def fmd_configurations(names: tuple[str, ...]) -> list[str]:
    return [datasets.fmd_configuration(n) for n in names]


def bsd68(profile: Profile) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """BSD68 + N(0, 25²) (seed 0 for the whole set, not clipped), whole images (321×481 or
    481×321) unless the profile crops."""
    items = list(datasets.bsd68(sigma=25.0, seed=0))[: profile.bsd68_images]
    return [(n, crop(x, profile.crop), crop(c, profile.crop)) for n, x, c in items]


def w2s(profile: Profile) -> Paired:
    items = list(datasets.w2s_subset())[: profile.w2s_images]
    return Paired(tuple(n for n, _, _ in items), crop(np.stack([x for _, x, _ in items]),
                  profile.crop), crop(np.stack([c for _, _, c in items]), profile.crop))


def simulated(profile: Profile, photons: float, seed: int = 0) -> Paired:
    """The two clean-ish fluorescence images under the simulated camera at ``photons``.

    The reference is the expected camera image ``gain · photons · s / max(s) + offset``.
    """
    from infocus.noise import simulate_poisson_gaussian

    names, noisy, clean = [], [], []
    for name, image in datasets.fluorescence_clean():
        image = crop(image, profile.crop)
        x, _ = simulate_poisson_gaussian(image, photons=photons, rng=seed, **CAMERA)
        names.append(name)
        noisy.append(x)
        clean.append(image / image.max() * photons * CAMERA["gain"] + CAMERA["offset"])
    return Paired(tuple(names), np.stack(noisy).astype(np.float32),
                  np.stack(clean).astype(np.float32))


def convallaria(profile: Profile) -> np.ndarray:
    return crop(datasets.convallaria(), None if profile.crop is None else 4 * profile.crop)


#: The FMD image shown before/after in the report: the first capture of the first widefield
#: configuration present (correlated noise, where methods differ most), central crop.
FIGURE_CROP = 160


def figure_index(names: tuple[str, ...]) -> int | None:
    for i, name in enumerate(names):
        if name.startswith("WideField"):
            return i
    return 0 if names else None


def save_crops(path: object, crops: dict[str, np.ndarray]) -> None:
    """Add ``crops`` (name -> 2-D array) to the ``.npz`` at ``path`` (created if missing)."""
    from pathlib import Path

    path = Path(str(path))
    saved = dict(np.load(path)) if path.exists() else {}
    saved.update({k: crop(np.asarray(v, dtype=np.float32), FIGURE_CROP) for k, v in crops.items()})
    np.savez_compressed(path, **saved)
