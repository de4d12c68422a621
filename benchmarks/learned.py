"""Learned methods on FMD test_mix and on simulated Poisson–Gaussian data.

    python -m benchmarks.learned --dataset fmd --methods n2v,n2v2,n2s,n2n,care
    python -m benchmarks.learned --dataset simulated --methods n2v,care --steps 800
    python -m benchmarks.learned --dataset fmd --methods n2v --steps 20 --limit 8   # smoke run

Protocols (stated again in docs/benchmarks.md):
* FMD test_mix (48 raw captures = 12 configurations × 4, 8-bit): N2V, N2V2 and Noise2Self are
  trained on the 48 noisy images themselves (self-supervised, transductive, as a user would);
  Noise2Noise on pairs of independent raw captures of the same field of view (capture k with
  capture k+1); CARE (supervised, raw → 50-frame average) in two folds split by configuration:
  each half of the configurations is predicted by a model trained on the other half, so CARE is
  never tested on a field of view it saw. Predictions clamped to [0, 255]; PSNR/SSIM peak 255.
* Simulated: the same camera and photon levels as benchmarks/classical.py, on 256×256 crops of
  the two clean-ish fluorescence images; self-supervised methods train on the noisy crops, CARE on
  the crops of the *other* image (noisy → clean), so it is tested on unseen content.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import datasets
from benchmarks.classical import CAMERA, PHOTON_LEVELS, machine
from infocus.metrics import psnr, ssim
from infocus.noise import simulate_poisson_gaussian
from infocus.training.config import default_config
from infocus.training.loop import train

RESULTS = Path(__file__).resolve().parent / "results"


def _config(method: str, steps: int | None) -> Any:
    config = default_config(method)
    return config.with_updates(steps=steps) if steps else config


def _train(method: str, inputs: np.ndarray, targets: np.ndarray | None, steps: int | None,
           seed: int) -> tuple[Any, float]:
    start = time.perf_counter()
    model = train(inputs, targets=targets, method=method, axes="SYX",
                  config=_config(method, steps), seed=seed, progress=False,
                  log=lambda m: print("   ", m, flush=True))
    return model, time.perf_counter() - start


def _predict(model: Any, images: np.ndarray, axes: str = "SYX") -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = model.denoise(images, axes=axes)
    return out, time.perf_counter() - start


def fmd(methods: list[str], steps: int | None, limit: int | None, seed: int) -> dict[str, Any]:
    items = list(datasets.fmd_test_mix())[: limit or None]
    names = [n for n, _, _ in items]
    noisy = np.stack([x for _, x, _ in items])
    clean = np.stack([c for _, _, c in items])
    configs = [datasets.fmd_configuration(n) for n in names]
    results: dict[str, Any] = {}
    for method in methods:
        print(f"fmd {method}", flush=True)
        train_seconds = 0.0
        predict_seconds = 0.0
        prediction = np.empty_like(noisy)
        if method in ("n2v", "n2v2", "n2s", "structn2v"):
            model, train_seconds = _train(method, noisy, None, steps, seed)
            prediction, predict_seconds = _predict(model, noisy)
        elif method == "n2n":
            partner = []
            for i, c in enumerate(configs):
                same = [j for j, d in enumerate(configs) if d == c]
                partner.append(same[(same.index(i) + 1) % len(same)])
            model, train_seconds = _train(method, noisy, noisy[partner], steps, seed)
            prediction, predict_seconds = _predict(model, noisy)
        elif method == "care":
            distinct = sorted(set(configs))
            for fold in (0, 1):
                held_out = set(distinct[fold::2])
                test = np.array([c in held_out for c in configs])
                model, seconds = _train(method, noisy[~test], clean[~test], steps, seed)
                train_seconds += seconds
                out, seconds = _predict(model, noisy[test])
                prediction[test] = out
                predict_seconds += seconds
        else:
            raise SystemExit(f"unknown method {method}")
        prediction = np.clip(prediction, 0, 255)
        scores = [(psnr(p, c, data_range=255), ssim(p, c, data_range=255))
                  for p, c in zip(prediction, clean, strict=True)]
        per_config: dict[str, list[float]] = defaultdict(list)
        for (p, _), c in zip(scores, configs, strict=True):
            per_config[c].append(p)
        results[method] = {
            "psnr": float(np.mean([s[0] for s in scores])),
            "ssim": float(np.mean([s[1] for s in scores])),
            "per_configuration_psnr": {c: float(np.mean(v)) for c, v in per_config.items()},
            "train_seconds": train_seconds,
            "predict_seconds_per_megapixel": predict_seconds / (noisy.size / 1e6),
            "config": _config(method, steps).to_dict(),
        }
        print(f"fmd {method}: PSNR {results[method]['psnr']:.2f} SSIM "
              f"{results[method]['ssim']:.4f} train {train_seconds:.0f} s", flush=True)
        print("    per configuration: " + json.dumps(results[method]["per_configuration_psnr"]),
              flush=True)
    return results


def _crops(image: np.ndarray, size: int = 256) -> np.ndarray:
    h, w = image.shape
    return np.stack([image[y : y + size, x : x + size]
                     for y in (0, h - size) for x in (0, w - size)])


def simulated(methods: list[str], steps: int | None, seed: int) -> dict[str, Any]:
    sources = {name: _crops(image) for name, image in datasets.fluorescence_clean()}
    results: dict[str, Any] = {}
    for photons in PHOTON_LEVELS:
        level: dict[str, Any] = {}
        stacks = {}
        for name, crops in sources.items():
            noisy, _ = simulate_poisson_gaussian(crops, photons=photons, rng=seed, **CAMERA)
            clean = crops / crops.max() * photons * CAMERA["gain"] + CAMERA["offset"]
            stacks[name] = (noisy, clean.astype(np.float32))
        for method in methods:
            scores, train_seconds = [], 0.0
            for name, (noisy, clean) in stacks.items():
                if method == "care":
                    other = next(n for n in stacks if n != name)
                    model, seconds = _train(method, stacks[other][0], stacks[other][1], steps,
                                            seed)
                else:
                    model, seconds = _train(method, noisy, None, steps, seed)
                train_seconds += seconds
                out, _ = _predict(model, noisy)
                scores.extend(psnr(o, c) for o, c in zip(out, clean, strict=True))
            level[method] = {"psnr": float(np.mean(scores)), "train_seconds": train_seconds}
            print(f"simulated {photons:g} photons {method}: PSNR {level[method]['psnr']:.2f}",
                  flush=True)
        results[f"{photons:g}"] = level
    return results


DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def convallaria(methods: list[str], steps: int | None, seed: int) -> dict[str, Any]:
    """Real EMCCD frame, no ground truth: train on the frame itself, save a before/after crop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    noisy = datasets.convallaria()
    results: dict[str, Any] = {}
    crop = (slice(300, 556), slice(300, 556))
    panels = {"raw EMCCD frame": noisy[crop]}
    for method in methods:
        start = time.perf_counter()
        model = train(noisy, method=method, axes="YX", config=_config(method, steps), seed=seed,
                      progress=False, log=lambda m: print("   ", m, flush=True))
        seconds = time.perf_counter() - start
        out, predict_seconds = _predict(model, noisy, axes="YX")
        panels[method] = out[crop]
        results[method] = {
            "train_seconds": seconds,
            "predict_megapixels_per_second": noisy.size / 1e6 / predict_seconds,
            "final_validation_loss": model.history[-1]["val_loss"],
            "history": model.history,
        }
    low, high = np.percentile(panels["raw EMCCD frame"], [1, 99.7])
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.3), layout="constrained")
    for ax, (title, image) in zip(np.atleast_1d(axes), panels.items(), strict=True):
        ax.imshow(image, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    fig.savefig(DOCS_IMAGES / "convallaria_before_after.png", dpi=100)
    plt.close(fig)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["fmd", "simulated", "convallaria"], required=True)
    parser.add_argument("--methods", default="n2v,n2v2,n2s,n2n,care")
    parser.add_argument("--steps", type=int, default=None, help="default: each method's")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    methods = args.methods.split(",")
    started = time.perf_counter()
    if args.dataset == "fmd":
        data = fmd(methods, args.steps, args.limit, args.seed)
    elif args.dataset == "convallaria":
        data = convallaria([m for m in methods if m not in ("n2n", "care")], args.steps, args.seed)
    else:
        data = simulated([m for m in methods if m not in ("n2n",)], args.steps, args.seed)
    result = {"date": date.today().isoformat(), "machine": machine(), "dataset": args.dataset,
              "methods": data, "wall_seconds": time.perf_counter() - started}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{result['date']}-learned-{args.dataset}-{'-'.join(methods)}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
