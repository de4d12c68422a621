"""Classical denoisers on real and simulated data: quality and speed, one JSON per run.

    python -m benchmarks.classical                 # FMD test_mix, BSD68 (σ=25), simulated
    python -m benchmarks.classical --only fmd      # one dataset
    python -m benchmarks.classical --limit 4       # first 4 images of each set (a smoke run)

Protocols (stated again in docs/benchmarks.md):
* FMD test_mix: 48 raw 8-bit captures against their 50-frame averages; every method with its
  automatic parameters, the noise model estimated from the raw image alone (no ground truth);
  predictions clamped to [0, 255] and PSNR/SSIM with peak 255, as in the FMD benchmark code.
* BSD68: clean + N(0, 25²), not clipped or rounded, seed 0; σ = 25 given to the methods as the
  DnCNN/N2V protocol does; PSNR with peak 255.
* Simulated: two real fluorescence images as clean signal, x = 2·Poisson(s) + 100 + N(0, 3²)
  at 3 photon levels; PSNR with the range of the clean image (Laine et al. 2021, Box 1).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import datasets
from infocus import __version__
from infocus.classical import get_denoiser, list_denoisers
from infocus.metrics import psnr, ssim
from infocus.noise import NoiseParams, simulate_poisson_gaussian

RESULTS = Path(__file__).resolve().parent / "results"
#: BM4D on a single 2-D plane is BM3D; it is benchmarked on volumes only.
METHODS_2D = [m for m in list_denoisers() if m != "bm4d"]
PHOTON_LEVELS = (5.0, 20.0, 100.0)
CAMERA = {"gain": 2.0, "offset": 100.0, "read_noise": 3.0}


def machine() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "infocus": __version__,
    }


def _run(method: str, noisy: np.ndarray, **options: Any) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = get_denoiser(method)(noisy, axes="YX", **options)
    return out, time.perf_counter() - start


def fmd(limit: int | None) -> dict[str, Any]:
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    for i, (name, noisy, clean) in enumerate(datasets.fmd_test_mix()):
        if limit is not None and i >= limit:
            break
        rows["noisy input"].append(
            {"image": name, "psnr": psnr(noisy, clean, data_range=255),
             "ssim": ssim(noisy, clean, data_range=255), "seconds": 0.0}
        )
        for method in METHODS_2D:
            out, seconds = _run(method, noisy)
            out = np.clip(out, 0, 255)
            rows[method].append(
                {"image": name, "psnr": psnr(out, clean, data_range=255),
                 "ssim": ssim(out, clean, data_range=255), "seconds": seconds}
            )
        print(f"fmd {name}: " + ", ".join(f"{m} {rows[m][-1]['psnr']:.2f}" for m in rows),
              flush=True)
    return _summarise(rows, megapixels=512 * 512 / 1e6)


def bsd68(limit: int | None) -> dict[str, Any]:
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    for i, (name, noisy, clean) in enumerate(datasets.bsd68(sigma=25.0, seed=0)):
        if limit is not None and i >= limit:
            break
        rows["noisy input"].append({"image": name, "psnr": psnr(noisy, clean, data_range=255),
                                    "ssim": ssim(noisy, clean, data_range=255), "seconds": 0.0,
                                    "megapixels": clean.size / 1e6})
        out, seconds = _run("bm3d", noisy, noise=NoiseParams.gaussian(25.0), vst=False)
        rows["bm3d"].append({"image": name, "psnr": psnr(out, clean, data_range=255),
                             "ssim": ssim(out, clean, data_range=255), "seconds": seconds,
                             "megapixels": clean.size / 1e6})
        print(f"bsd68 {name}: bm3d {rows['bm3d'][-1]['psnr']:.2f}", flush=True)
    return _summarise(rows)


def simulated(limit: int | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for photons in PHOTON_LEVELS:
        rows: dict[str, list[dict[str, float]]] = defaultdict(list)
        for i, (name, clean_image) in enumerate(datasets.fluorescence_clean()):
            if limit is not None and i >= limit:
                break
            noisy, _ = simulate_poisson_gaussian(clean_image, photons=photons, rng=0, **CAMERA)
            clean = (clean_image / clean_image.max() * photons * CAMERA["gain"]
                     + CAMERA["offset"]).astype(np.float32)
            rows["noisy input"].append({"image": name, "psnr": psnr(noisy, clean),
                                        "ssim": ssim(noisy, clean), "seconds": 0.0})
            for method in METHODS_2D:
                out, seconds = _run(method, noisy)
                rows[method].append({"image": name, "psnr": psnr(out, clean),
                                     "ssim": ssim(out, clean), "seconds": seconds})
            print(f"simulated {photons:g} photons {name}: "
                  + ", ".join(f"{m} {rows[m][-1]['psnr']:.2f}" for m in rows), flush=True)
        results[f"{photons:g}"] = _summarise(rows, megapixels=512 * 512 / 1e6)
    return results


def _summarise(rows: dict[str, list[dict[str, float]]], megapixels: float | None = None
               ) -> dict[str, Any]:
    summary = {}
    for method, items in rows.items():
        mp = sum(r.get("megapixels", megapixels or 0.0) for r in items)
        summary[method] = {
            "psnr": float(np.mean([r["psnr"] for r in items])),
            "ssim": float(np.mean([r["ssim"] for r in items])),
            "seconds_per_megapixel": float(sum(r["seconds"] for r in items) / mp) if mp else 0.0,
            "n_images": len(items),
            "per_image": items,
        }
    return summary


def markdown(results: dict[str, Any]) -> str:
    lines: list[str] = []

    def table(title: str, summary: dict[str, Any]) -> None:
        lines.extend([f"**{title}**", "", "| method | PSNR (dB) | SSIM | s / MP |",
                      "|---|---:|---:|---:|"])
        for method, s in summary.items():
            lines.append(f"| {method} | {s['psnr']:.2f} | {s['ssim']:.4f} | "
                         f"{s['seconds_per_megapixel']:.2f} |")
        lines.append("")

    data = results["datasets"]
    if "fmd" in data:
        table(f"FMD test_mix ({data['fmd']['noisy input']['n_images']} images, peak 255)",
              data["fmd"])
    if "bsd68" in data:
        table("BSD68, Gaussian σ = 25 (peak 255)", data["bsd68"])
    for photons, summary in data.get("simulated", {}).items():
        table(f"Simulated Poisson–Gaussian, {photons} peak photons (human_mitosis, stardist)",
              summary)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["fmd", "bsd68", "simulated"], action="append")
    parser.add_argument("--limit", type=int, default=None, help="images per dataset")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    chosen = args.only or ["fmd", "bsd68", "simulated"]
    runners = {"fmd": fmd, "bsd68": bsd68, "simulated": simulated}
    started = time.perf_counter()
    results: dict[str, Any] = {"date": date.today().isoformat(), "machine": machine(),
                               "datasets": {}}
    for name in chosen:
        try:
            results["datasets"][name] = runners[name](args.limit)
        except datasets.DatasetMissing as missing:
            print(f"skipped: {missing}")
    results["wall_seconds"] = time.perf_counter() - started
    output = args.output or RESULTS / f"{results['date']}-classical.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1))
    print(markdown(results))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
