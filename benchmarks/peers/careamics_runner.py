"""Train and apply one CAREamics model (N2V, N2V2 or CARE) for the side-by-side benchmark.

Runs inside the peers environment (``.venv-peers``, see ``benchmarks/peers/README.md``) and
imports only careamics, numpy and tifffile, never infocus. ``compare.py`` launches it under
``/usr/bin/time -v``; it can also be run by hand::

    .venv-peers/bin/python benchmarks/peers/careamics_runner.py --method n2v \\
        --noisy noisy.npy --steps 160 --batch-size 64 --patch-size 64 --output-dir out/

Protocol (kept identical to ``infocus_runner.py``):

* CAREamics' own factories (``create_advanced_n2v_config`` / ``create_advanced_care_config``,
  the full-argument forms of ``create_n2v_config`` / ``create_care_config``) with their
  defaults: UNet depth 2, 32 initial filters, batch norm, mean/std normalisation, Adam
  (lr 1e-3), ReduceLROnPlateau, flips and 90° rotations, 0.2 % masked pixels for N2V.
* The budget is a number of optimizer steps: Lightning's ``max_steps`` stops training after
  exactly that many ``optimizer.step()`` calls, whatever the epoch length (CAREamics' epoch is
  one pass over the patches that tile the training images, here only a few batches, so the
  epoch count is set high enough never to stop training first). A callback counts the
  optimizer steps actually taken; they are written to the JSON and checked by ``compare.py``.
* An epoch of 8 images of 256² holds 128 patches of 64², less 8 held out for validation, so
  with batches of 64 every second step sees only 56 patches. ``--drop-last`` (what
  ``compare.py`` passes) drops that partial batch: then every step sees exactly
  ``--batch-size`` patches, as in infocus, and an epoch is one step. The batch sizes seen are
  recorded in the JSON.
* CARE's default early stopping (patience 3 epochs on the validation loss) would end training
  before the budget, so its patience is set above the number of epochs; everything else about
  validation and checkpointing stays as CAREamics does it. The time spent in validation is
  measured and reported separately.
* ``num_workers=0`` for every data loader, no logger, no progress bar.
* Prediction uses ``CAREamist.predict`` with CAREamics' defaults: its default checkpoint
  ("last" for N2V, "best" validation loss for CARE), whole images unless ``--tile`` is given
  (then tiles of that edge with a 48-pixel overlap, stitched without blending).

Outputs, in ``--output-dir``: ``careamics-<method>.npy`` (float32 predictions, same shape as
the noisy stack) and ``careamics-<method>.json`` (timings, steps, sizes, settings).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
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


def _first_tensor(batch: Any) -> Any:
    """The first tensor of a (possibly nested) batch: its leading axis is the batch size."""
    while not hasattr(batch, "shape"):
        batch = batch[0] if isinstance(batch, (list, tuple)) else next(iter(batch.values()))
    return batch


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
        "--tile",
        type=int,
        default=None,
        help="prediction tile edge (default: whole images, CAREamics' default)",
    )
    parser.add_argument("--overlap", type=int, default=48, help="tile overlap (with --tile)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--predict-repeats", type=int, default=3,
                        help="prediction calls timed; their median is the rate")
    parser.add_argument("--drop-last", action="store_true")
    parser.add_argument("--output-dir", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.method == "care" and args.clean is None:
        sys.exit("CARE learns from pairs: pass --clean.")
    started = time.perf_counter()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    import careamics
    import torch
    from careamics import CAREamist
    from careamics.config import create_advanced_care_config, create_advanced_n2v_config
    from lightning.pytorch import Callback

    noisy = read_array(args.noisy)
    clean = read_array(args.clean) if args.method == "care" else None
    spatial = [args.patch_size] * (len(args.axes.replace("S", "").replace("C", "")))

    class Counter(Callback):
        """Counts optimizer steps and the time spent in validation."""

        def __init__(self) -> None:
            self.optimizer_steps = 0
            self.train_batches = 0
            self.validation_seconds = 0.0
            self.validation_runs = 0
            self.step_seconds = 0.0
            self.batch_sizes: list[int] = []
            self._t0 = 0.0
            self._tb = 0.0

        def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
            self.optimizer_steps += 1

        def on_train_batch_start(
            self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int
        ) -> None:
            self._tb = time.perf_counter()

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            self.step_seconds += time.perf_counter() - self._tb
            self.train_batches += 1
            self.batch_sizes.append(int(_first_tensor(batch).shape[0]))

        def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
            self._t0 = time.perf_counter()

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            self.validation_seconds += time.perf_counter() - self._t0
            self.validation_runs += 1

    # Epochs are short (one pass over the patches that tile the images); make sure the epoch
    # limit can never stop training before max_steps does.
    epochs_cap = 10 * args.steps + 10
    loaders = {
        "train_dataloader_params": {"shuffle": True, "num_workers": 0, "drop_last": args.drop_last},
        "val_dataloader_params": {"num_workers": 0},
    }
    common: dict[str, Any] = {
        "experiment_name": f"peers_{args.method}",
        "data_type": "array",
        "axes": args.axes,
        "patch_size": spatial,
        "batch_size": args.batch_size,
        "num_epochs": epochs_cap,
        "num_workers": 0,
        "trainer_params": {"max_steps": args.steps},
        "model_params": {"depth": 2, "num_channels_init": 32},
        "logger": "none",
        "seed": args.seed + 1,  # CAREamics requires a seed > 0
        **loaders,
    }
    if args.method in ("n2v", "n2v2"):
        config = create_advanced_n2v_config(use_n2v2=args.method == "n2v2", **common)
    else:
        config = create_advanced_care_config(
            early_stopping_params={
                "monitor": "val_loss",
                "mode": "min",
                "patience": epochs_cap + 1,
            },
            **common,
        )

    counter = Counter()
    work = Path(tempfile.mkdtemp(prefix="careamics-peers-"))
    try:
        careamist = CAREamist(config, work_dir=work, callbacks=[counter], enable_progress_bar=False)
        careamist.trainer.logger = None  # CAREamist always adds a CSV logger; drop it
        parameters = sum(p.numel() for p in careamist.model.parameters())

        t0 = time.perf_counter()
        careamist.train(train_data=noisy, train_data_target=clean)
        train_seconds = time.perf_counter() - t0
        global_step = int(careamist.trainer.global_step)
        epochs = int(careamist.trainer.current_epoch)

        predict_options: dict[str, Any] = {
            "axes": args.axes,
            "data_type": "array",
            "num_workers": 0,
        }
        if args.tile is not None:
            predict_options.update(
                tile_size=(args.tile, args.tile), tile_overlap=(args.overlap, args.overlap)
            )
        # Timed several times: the first call also builds the prediction set-up, and one
        # call of about a second on a shared CPU is noisy; the median is the rate.
        predict_each = []
        for _ in range(args.predict_repeats):
            t0 = time.perf_counter()
            predictions, _ = careamist.predict(noisy, **predict_options)
            predict_each.append(time.perf_counter() - t0)
        predict_seconds = float(np.median(predict_each))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    prediction = np.asarray(
        predictions[0] if len(predictions) == 1 else np.stack(predictions), dtype=np.float32
    ).reshape(noisy.shape)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    np.save(args.output_dir / f"careamics-{args.method}.npy", prediction)

    result = {
        "tool": "careamics",
        "method": args.method,
        "versions": {
            "careamics": careamics.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "parameters": int(parameters),
        "steps_requested": args.steps,
        "optimizer_steps": counter.optimizer_steps,
        "lightning_global_step": global_step,
        "train_batches": counter.train_batches,
        "patches_seen": int(sum(counter.batch_sizes)),
        "batch_sizes_seen": sorted(set(counter.batch_sizes)),
        "step_seconds": counter.step_seconds,
        "epochs": epochs,
        "validation_runs": counter.validation_runs,
        "validation_seconds": counter.validation_seconds,
        "batch_size": args.batch_size,
        "patch_size": args.patch_size,
        "train_seconds": train_seconds,
        "steps_per_second": counter.optimizer_steps / train_seconds,
        "predict_seconds": predict_seconds,
        "predict_seconds_each": predict_each,
        "megapixels": noisy.size / 1e6,
        "megapixels_per_second": noisy.size / 1e6 / predict_seconds,
        "prediction_tile": args.tile,
        "prediction_overlap": args.overlap if args.tile is not None else None,
        "input_sha256": digest(noisy),
        "input_shape": list(noisy.shape),
        "output_shape": list(prediction.shape),
        "output_finite": bool(np.isfinite(prediction).all()),
        "settings": {
            "normalization": config.data_config.normalization.name,
            "optimizer": config.algorithm_config.optimizer.name,
            "lr_scheduler": config.algorithm_config.lr_scheduler.name,
            "n_val_patches": config.data_config.n_val_patches,
            "checkpoint": "last" if args.method != "care" else "best",
        },
        "total_seconds": time.perf_counter() - started,
    }
    if not math.isfinite(result["steps_per_second"]):
        result["steps_per_second"] = None
    (args.output_dir / f"careamics-{args.method}.json").write_text(json.dumps(result, indent=1))
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
