"""Train and apply one infocus model (N2V, N2V2 or CARE) for the side-by-side benchmark.

The twin of ``careamics_runner.py``, run in infocus's own environment (``.venv``)::

    .venv/bin/python benchmarks/peers/infocus_runner.py --method n2v \\
        --noisy noisy.npy --steps 160 --batch-size 64 --patch-size 64 --output-dir out/

Protocol: ``infocus.train(..., config=default_config(method).with_updates(...))``
(called as ``infocus.training.loop.train``) with the
same number of optimizer steps, patch size and batch size as CAREamics, and the same network
size (U-Net depth 2, 32 base filters; ``unet_n2v2`` for N2V2, infocus's default for that
method). Everything else is infocus's default (normalisation, Adam with a cosine schedule,
augmentation, validation every ``steps_per_epoch`` steps on a held-out share of the data).
No model is written to disk and no progress bar is drawn. Prediction is
``model.denoise`` with its defaults (seamless blended tiles; ``--tile`` sets the tile edge).

Outputs, in ``--output-dir``: ``infocus-<method>.npy`` and ``infocus-<method>.json``, with
the same keys as the CAREamics runner's JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("n2v", "n2v2", "care")


def read_array(path: Path) -> np.ndarray:
    """A ``.npy`` or ``.tif`` stack as float32."""
    if path.suffix.lower() == ".npy":
        return np.load(path).astype(np.float32)
    import tifffile

    return tifffile.imread(path).astype(np.float32)


def digest(array: np.ndarray) -> str:
    """SHA-256 of the array's float32 bytes (proves which images were predicted)."""
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=METHODS, required=True)
    parser.add_argument("--noisy", type=Path, required=True, help=".npy or .tif stack (SYX)")
    parser.add_argument("--clean", type=Path, default=None, help="training targets (CARE only)")
    parser.add_argument("--axes", default="SYX")
    parser.add_argument("--steps", type=int, required=True, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument(
        "--tile", type=int, default=None, help="prediction tile edge (default: chosen by infocus)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--predict-repeats", type=int, default=3,
                        help="prediction calls timed; their median is the rate")
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "bfloat16"),
                        help="infocus's training precision (default: its own default)")
    parser.add_argument("--output-dir", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.method == "care" and args.clean is None:
        sys.exit("CARE learns from pairs: pass --clean.")
    started = time.perf_counter()

    import torch

    import infocus
    from infocus.methods.config import default_config

    train_model = infocus.train

    noisy = read_array(args.noisy)
    clean = read_array(args.clean) if args.method == "care" else None

    config = default_config(args.method)
    config = config.with_updates(
        steps=args.steps,
        batch_size=args.batch_size,
        patch_size=args.patch_size,
        seed=args.seed,
        precision=args.precision,
        network_options={**config.network_options, "depth": 2, "base_filters": 32},
    )

    # Count the optimizer steps actually taken (a wrapper around Adam.step, undone after).
    counter = {"steps": 0}
    original_step = torch.optim.Adam.step

    def counting_step(self: Any, *a: Any, **k: Any) -> Any:
        counter["steps"] += 1
        return original_step(self, *a, **k)

    torch.optim.Adam.step = counting_step  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        model = train_model(
            noisy,
            method=args.method,
            axes=args.axes,
            targets=clean,
            config=config,
            progress=False,
            log=lambda message: None,
        )
        train_seconds = time.perf_counter() - t0
    finally:
        torch.optim.Adam.step = original_step  # type: ignore[method-assign]
    parameters = sum(p.numel() for p in model.network.parameters())

    # As in the CAREamics runner: the median of several calls is the rate.
    predict_each = []
    for _ in range(args.predict_repeats):
        t0 = time.perf_counter()
        prediction = model.denoise(noisy, axes=args.axes, tile_size=args.tile)
        predict_each.append(time.perf_counter() - t0)
    predict_seconds = float(np.median(predict_each))
    prediction = np.asarray(prediction, dtype=np.float32)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    np.save(args.output_dir / f"infocus-{args.method}.npy", prediction)
    history = model.history
    result = {
        "tool": "infocus",
        "method": args.method,
        "versions": {
            "infocus": infocus.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "parameters": int(parameters),
        "network": config.network,
        "prediction_backend": model.last_backend,
        # What the method measured and offers at prediction (pixel fusion, calibration, ...).
        "method_state": sorted(model.state),
        "prediction_options": list(model.prediction_options),
        "prediction_report": model.report(),
        "steps_requested": args.steps,
        "optimizer_steps": counter["steps"],
        "history_last_step": int(history[-1]["step"]) if history else 0,
        "train_batches": counter["steps"],
        "patches_seen": counter["steps"] * args.batch_size,
        "batch_sizes_seen": [args.batch_size],
        "epochs": len(history),
        "validation_runs": len(history),
        "validation_seconds": None,
        "step_seconds": None,
        "batch_size": args.batch_size,
        "patch_size": args.patch_size,
        "train_seconds": train_seconds,
        "steps_per_second": counter["steps"] / train_seconds,
        "predict_seconds": predict_seconds,
        "predict_seconds_each": predict_each,
        "training_precision": model.provenance.get("precision"),
        "megapixels": noisy.size / 1e6,
        "megapixels_per_second": noisy.size / 1e6 / predict_seconds,
        "prediction_tile": args.tile,
        "prediction_overlap": None,
        "input_sha256": digest(noisy),
        "input_shape": list(noisy.shape),
        "output_shape": list(prediction.shape),
        "output_finite": bool(np.isfinite(prediction).all()),
        "settings": {
            "normalization": "infocus default",
            "optimizer": "Adam",
            "lr_scheduler": config.schedule,
            "learning_rate": config.learning_rate,
            "validation_fraction": config.validation_fraction,
            "validation_patches": config.validation_patches,
            "steps_per_epoch": config.steps_per_epoch,
            "checkpoint": "last",
        },
        "total_seconds": time.perf_counter() - started,
    }
    (args.output_dir / f"infocus-{args.method}.json").write_text(json.dumps(result, indent=1))
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("method", "optimizer_steps", "train_seconds", "predict_seconds")
            }
        )
    )
    return result


if __name__ == "__main__":
    main()
