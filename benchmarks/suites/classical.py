"""Classical denoisers with their automatic parameters: quality and speed.

Protocols (the report states them next to the tables):

* **FMD test_mix**: raw 8-bit captures against their 50-frame averages; every method with its
  automatic parameters, the noise model estimated from the raw image alone; predictions
  clamped to [0, 255], PSNR/SSIM with peak 255 (the FMD benchmark code).
* **W2S** (8-bit copy, each file stretched to 0–255 separately): automatic parameters;
  scale-invariant PSNR (the prediction is fitted affinely to the ground truth first).
* **BSD68**: clean + N(0, 25²), not clipped or rounded, seed 0; σ = 25 is given to the methods
  (the DnCNN / Noise2Void protocol); PSNR with peak 255.
* **Simulated**: two real fluorescence images as clean signal, x = 2·Poisson(s) + 100 +
  N(0, 3²) at each photon level; PSNR with the range of the clean image (Laine et al. 2021).

Also measured, as the bar every method must clear: the **best Gaussian filter**, σ chosen per
image with the ground truth (an oracle no user has), on FMD and the simulated data.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np

from benchmarks.datasets import DatasetMissing
from benchmarks.runner import Context
from benchmarks.suites import _data
from infocus.metrics import psnr, si_psnr, ssim

#: σ grid of the oracle Gaussian (pixels).
ORACLE_SIGMAS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)


def _denoise(method: str, image: np.ndarray, **options: Any) -> tuple[np.ndarray, float]:
    from infocus.classical import get_denoiser

    start = time.perf_counter()
    out = get_denoiser(method)(image, axes="YX", **options)
    return out, time.perf_counter() - start


def _oracle_gaussian(noisy: np.ndarray, clean: np.ndarray, score: Any) -> tuple[np.ndarray, float]:
    from scipy import ndimage

    best, best_sigma = None, 0.0
    for sigma in ORACLE_SIGMAS:
        out = ndimage.gaussian_filter(noisy.astype(np.float64), sigma).astype(np.float32)
        if best is None or score(out, clean) > score(best, clean):
            best, best_sigma = out, sigma
    assert best is not None
    return best, best_sigma


def _summary(rows: dict[str, list[dict[str, Any]]], key: str = "psnr") -> dict[str, Any]:
    out = {}
    for method, items in rows.items():
        megapixels = sum(r["megapixels"] for r in items)
        seconds = sum(r.get("seconds", 0.0) for r in items)
        entry = {key: float(np.mean([r[key] for r in items])), "n_images": len(items),
                 "seconds_per_megapixel": seconds / megapixels if seconds else None,
                 "per_image": items}
        if all("ssim" in r for r in items):
            entry["ssim"] = float(np.mean([r["ssim"] for r in items]))
        out[method] = entry
    return out


def fmd(context: Context) -> dict[str, Any]:
    profile = context.profile
    data = _data.fmd(profile, profile.fmd_configurations, profile.fmd_captures)
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def score(p: np.ndarray, c: np.ndarray) -> float:
        return psnr(np.clip(p, 0, 255), c, data_range=255)

    shown = _data.figure_index(data.names)
    for index, (name, noisy, clean) in enumerate(
        zip(data.names, data.noisy, data.clean, strict=True)
    ):
        mp = noisy.size / 1e6
        rows["noisy input"].append({"image": name, "psnr": score(noisy, clean),
                                    "ssim": ssim(noisy, clean, data_range=255), "megapixels": mp})
        out, sigma = _oracle_gaussian(noisy, clean, score)
        rows["best Gaussian (oracle σ)"].append(
            {"image": name, "psnr": score(out, clean), "sigma": sigma, "megapixels": mp,
             "ssim": ssim(np.clip(out, 0, 255), clean, data_range=255)})
        for method in profile.classical_methods:
            out, seconds = _denoise(method, noisy)
            out = np.clip(out, 0, 255)
            rows[method].append({"image": name, "psnr": score(out, clean),
                                 "ssim": ssim(out, clean, data_range=255), "seconds": seconds,
                                 "megapixels": mp})
            if index == shown and method == "bm3d":
                _data.save_crops(context.artifacts / "fmd_crops.npz",
                                 {"noisy": noisy, "clean": clean, "bm3d (VST)": out})
                (context.artifacts / "fmd_crops.txt").write_text(name)
        context.log(f"fmd {name}: " + ", ".join(f"{m} {rows[m][-1]['psnr']:.2f}" for m in rows))
    summary = _summary(rows)
    for entry in summary.values():
        per_config: dict[str, list[float]] = defaultdict(list)
        for row in entry["per_image"]:
            per_config[row["image"].rsplit("_", 1)[0]].append(row["psnr"])
        entry["per_configuration_psnr"] = {c: float(np.mean(v)) for c, v in per_config.items()}
    return summary


def w2s(context: Context) -> dict[str, Any]:
    data = _data.w2s(context.profile)
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name, noisy, clean in zip(data.names, data.noisy, data.clean, strict=True):
        mp = noisy.size / 1e6
        rows["noisy input"].append({"image": name, "si_psnr": si_psnr(noisy, clean),
                                    "megapixels": mp})
        for method in context.profile.classical_methods:
            out, seconds = _denoise(method, noisy)
            rows[method].append({"image": name, "si_psnr": si_psnr(out, clean),
                                 "seconds": seconds, "megapixels": mp})
        context.log(f"w2s {name}: " + ", ".join(f"{m} {rows[m][-1]['si_psnr']:.2f}" for m in rows))
    return _summary(rows, key="si_psnr")


def bsd68(context: Context) -> dict[str, Any]:
    from infocus.noise import NoiseParams

    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name, noisy, clean in _data.bsd68(context.profile):
        mp = noisy.size / 1e6
        rows["noisy input"].append({"image": name, "psnr": psnr(noisy, clean, data_range=255),
                                    "ssim": ssim(noisy, clean, data_range=255), "megapixels": mp})
        for method in context.profile.classical_methods:
            out, seconds = _denoise(method, noisy, noise=NoiseParams.gaussian(25.0), vst=False)
            rows[method].append({"image": name, "psnr": psnr(out, clean, data_range=255),
                                 "ssim": ssim(out, clean, data_range=255), "seconds": seconds,
                                 "megapixels": mp})
        context.log(f"bsd68 {name}: " + ", ".join(f"{m} {rows[m][-1]['psnr']:.2f}" for m in rows))
    return _summary(rows)


def simulated(context: Context) -> dict[str, Any]:
    levels = {}
    for photons in context.profile.photon_levels:
        data = _data.simulated(context.profile, photons)
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for name, noisy, clean in zip(data.names, data.noisy, data.clean, strict=True):
            mp = noisy.size / 1e6
            rows["noisy input"].append({"image": name, "psnr": psnr(noisy, clean),
                                        "ssim": ssim(noisy, clean), "megapixels": mp})
            out, sigma = _oracle_gaussian(noisy, clean, psnr)
            rows["best Gaussian (oracle σ)"].append({"image": name, "psnr": psnr(out, clean),
                                                     "ssim": ssim(out, clean), "sigma": sigma,
                                                     "megapixels": mp})
            for method in context.profile.classical_methods:
                out, seconds = _denoise(method, noisy)
                rows[method].append({"image": name, "psnr": psnr(out, clean),
                                     "ssim": ssim(out, clean), "seconds": seconds,
                                     "megapixels": mp})
        levels[f"{photons:g}"] = _summary(rows)
        context.log(f"simulated {photons:g} photons: " + ", ".join(
            f"{m} {v['psnr']:.2f}" for m, v in levels[f"{photons:g}"].items()))
    return {"levels": levels}


DATASETS = {"fmd": fmd, "w2s": w2s, "bsd68": bsd68, "simulated": simulated}


def run(context: Context) -> dict[str, Any]:
    result: dict[str, Any] = dict(context.previous)
    result["methods"] = list(context.profile.classical_methods)
    for name, function in DATASETS.items():
        if name in result:
            continue
        try:
            result[name] = function(context)
        except DatasetMissing as missing:
            context.log(f"skipped: {missing}")
            result[name] = {"skipped": str(missing)}
        context.save(result)
    return result
