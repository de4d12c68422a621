"""CARE with the RCAN network against CARE with the default U-Net, on one small budget.

    python -m benchmarks.rcan_vs_unet                  # 300 steps each (a few minutes on 2 cores)
    python -m benchmarks.rcan_vs_unet --steps 20       # smoke run

Protocol
--------
* Clean signal: the embedded sample (``human_mitosis.tif``, 512×512), cut into its four
  256×256 quadrants; three train, the bottom-right one is held out for the score.
* Noise: ``simulate_poisson_gaussian(quadrants, photons=30, gain=2, offset=100, read_noise=3,
  rng=0)`` (the brightest pixel of the four has 30 expected photons); the clean reference in
  camera units is ``clean / max * 30 * 2 + 100``.
* Training: ``infocus.train(method="care")`` with the method's defaults (16 patches of 64×64
  per step, cosine schedule, seed 0) and only the network changed: the U-Net default
  (``unet``, 16 first-level filters) or ``rcan`` with its defaults.
* Score: PSNR of the held-out quadrant's prediction (default CARE prediction, intensity
  calibration included) with the range of its clean image. Steps per second are the whole
  ``train`` call (validation after every 100-step epoch included) divided by the steps; the
  machine load is stored, since other processes on a 2-core machine change the timings, not
  the PSNR.

Results are printed as JSON and, with ``--output``, written there.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning threads slow a shared CPU

import numpy as np  # noqa: E402
import torch  # noqa: E402

from infocus.demo import load_sample  # noqa: E402
from infocus.methods.config import default_config  # noqa: E402
from infocus.metrics import psnr  # noqa: E402
from infocus.nets import count_parameters  # noqa: E402
from infocus.noise import simulate_poisson_gaussian  # noqa: E402
from infocus.training.loop import train  # noqa: E402

CAMERA = {"photons": 30.0, "gain": 2.0, "offset": 100.0, "read_noise": 3.0}


def quadrants() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(noisy, clean in camera units) of the four quadrants, ``(4, 256, 256)`` each, and the
    raw clean quadrants."""
    sample = load_sample().astype(np.float64)
    clean = np.stack([sample[y:y + 256, x:x + 256] for y in (0, 256) for x in (0, 256)])
    noisy, _ = simulate_poisson_gaussian(clean, rng=0, **CAMERA)
    reference = clean / clean.max() * CAMERA["photons"] * CAMERA["gain"] + CAMERA["offset"]
    return noisy.astype(np.float32), reference.astype(np.float32), clean


def run(spec: str, steps: int) -> dict[str, object]:
    """One training run; ``spec`` is a network name, optionally with options, as in
    ``rcan:num_channels=16``."""
    noisy, reference, _ = quadrants()
    network, _, text = spec.partition(":")
    options = {k: int(v) for k, v in (pair.split("=") for pair in text.split(",") if pair)}
    config = default_config("care").with_network(network, options).with_updates(steps=steps)
    started = time.perf_counter()
    model = train(noisy[:3], targets=reference[:3], axes="SYX", method="care", config=config,
                  progress=False)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    denoised = model.denoise(noisy[3], axes="YX")
    predict_seconds = time.perf_counter() - started
    return {
        "network": network,
        "network_options": dict(config.network_options),
        "parameters": count_parameters(model.network),
        "steps": steps,
        "train_seconds": round(seconds, 1),
        "steps_per_second": round(steps / seconds, 3),
        "predict_seconds_256x256": round(predict_seconds, 2),
        "psnr_noisy": round(psnr(noisy[3], reference[3]), 2),
        "psnr": round(psnr(denoised, reference[3]), 2),
        "load_average": os.getloadavg()[0],
        "threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--networks", default="unet;rcan",
                        help="';'-separated networks, each NAME or NAME:OPTION=INT,...")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    results = []
    for spec in args.networks.split(";"):
        results.append(run(spec, args.steps))
        text = json.dumps(results, indent=1)
        print(json.dumps(results[-1]), flush=True)
        if args.output is not None:  # after every run, so a long study keeps what it has
            args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
