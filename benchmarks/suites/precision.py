"""bfloat16 mixed-precision training against float32, on every benchmark dataset with a truth.

``precision="auto"`` (:mod:`infocus.nets.precision`) trains in bfloat16 where the hardware
computes it natively. The issue asks that it ships only after a PSNR check on every benchmark
dataset: per dataset, the same method, data, seed and steps are trained twice, in float32 and
in bfloat16, back to back, and both models predict the same images (prediction is float32 in
both: only training differs). Parts:

* ``fmd``: Noise2Void on the four test_mix captures of each of the profile's FMD
  configurations (one model per configuration), FMD's protocol (clamped, peak 255);
* ``simulated``: Noise2Void on the two fluorescence images at 20 photons (simulated camera),
  and CARE trained on their top halves with the clean references, scored on the bottom halves;
* ``bsd68``: Noise2Void on the profile's BSD68 images (σ = 25, peak 255);
* ``w2s``: Noise2Void on the profile's W2S images, scale-invariant PSNR against the
  400-frame averages.

Convallaria has no ground truth and is left out. Each pair of runs records both training
times and the machine load, and whether the CPU has bfloat16 units (AMX).

One training seed differs from another by more than the tolerance on some data (Noise2Void
on FMD's widefield captures moved by 1.9 dB between two seeds), so a row whose seed-0
difference exceeds :data:`TOLERANCE_DB` is trained with :data:`EXTRA_SEEDS` in both precisions
too, and the difference of the means over all its seeds decides.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.runner import Context, run_parts
from benchmarks.suites import _data
from infocus.metrics import psnr, si_psnr

PRECISIONS = ("float32", "bfloat16")
#: How much PSNR bfloat16 training may lose against float32 on any benchmark dataset and still
#: be the default where the hardware has it (``precision="auto"``): below the seed-to-seed
#: spread of one trained model (standard deviations of 0.13-0.17 dB over three seeds in the
#: 3D-RCAN section of docs/benchmarks.md).
TOLERANCE_DB = 0.1
#: Further training seeds of a row whose seed-0 difference exceeds the tolerance.
EXTRA_SEEDS = (1, 2)


def _train_both(context: Context, method: str, noisy: np.ndarray, targets: np.ndarray | None,
                score: Callable[[Any], float], seed: int) -> dict[str, Any]:
    """Train ``method`` with ``seed`` in each precision on ``noisy`` (``SYX``), back to back;
    score and time both."""
    from infocus.methods.config import default_config
    from infocus.training.loop import train

    config = default_config(method).with_updates(seed=seed)
    if context.profile.precision_steps:
        config = config.with_updates(steps=context.profile.precision_steps)
    runs: dict[str, Any] = {"steps": config.steps}
    for precision in PRECISIONS:
        load = os.getloadavg()[0]
        started = time.perf_counter()
        model = train(noisy, targets=targets, axes="SYX",
                      config=config.with_updates(precision=precision), progress=False,
                      log=lambda m: None)
        runs[precision] = {"score": score(model), "train_seconds": time.perf_counter() - started,
                           "load_average": load, "ran_as": model.provenance.get("precision")}
    return runs


def _pair(context: Context, method: str, noisy: np.ndarray, targets: np.ndarray | None,
          score: Callable[[Any], float]) -> dict[str, Any]:
    """Seed 0 in both precisions, and the extra seeds when its difference exceeds the
    tolerance; the difference of the means over the seeds run, and seed 0's speed-up."""
    first = _train_both(context, method, noisy, targets, score, seed=0)
    row: dict[str, Any] = {"method": method, "steps": first["steps"],
                           "float32": first["float32"], "bfloat16": first["bfloat16"]}
    seeds = {0: first}
    if abs(first["bfloat16"]["score"] - first["float32"]["score"]) > TOLERANCE_DB:
        for seed in EXTRA_SEEDS:
            seeds[seed] = _train_both(context, method, noisy, targets, score, seed=seed)
    row["seeds"] = {str(seed): {p: runs[p]["score"] for p in PRECISIONS}
                    for seed, runs in seeds.items()}
    means = {p: float(np.mean([runs[p]["score"] for runs in seeds.values()]))
             for p in PRECISIONS}
    row["mean"] = means
    row["difference"] = means["bfloat16"] - means["float32"]
    row["speed_ratio"] = first["float32"]["train_seconds"] / first["bfloat16"]["train_seconds"]
    return row


def _psnr255(output: np.ndarray, clean: np.ndarray) -> float:
    return psnr(np.clip(output, 0, 255), clean, data_range=255)


def fmd(context: Context, result: dict[str, Any], save: Callable[[], None]) -> None:
    profile = context.profile
    rows = result.setdefault("rows", {})
    for configuration in profile.precision_fmd_configurations:
        if configuration in rows:
            continue
        data = _data.fmd(profile, (configuration,))

        def score(model: Any, data: Any = data) -> float:
            out = model.denoise(data.noisy, axes="SYX")
            return float(np.mean([_psnr255(o, c) for o, c in
                                  zip(out, data.clean, strict=True)]))

        rows[configuration] = _pair(context, "n2v", data.noisy, None, score)
        context.log(f"  {configuration}: Δ {rows[configuration]['difference']:+.3f} dB")
        save()


def simulated(context: Context, result: dict[str, Any], save: Callable[[], None]) -> None:
    data = _data.simulated(context.profile, 20.0)
    rows = result.setdefault("rows", {})
    if "n2v" not in rows:
        def score(model: Any) -> float:
            out = model.denoise(data.noisy, axes="SYX")
            return float(np.mean([psnr(o, c) for o, c in zip(out, data.clean, strict=True)]))

        rows["n2v"] = _pair(context, "n2v", data.noisy, None, score)
        save()
    if "care" not in rows:
        half = data.noisy.shape[-2] // 2

        def score_care(model: Any) -> float:
            out = model.denoise(data.noisy[:, half:], axes="SYX")
            return float(np.mean([psnr(o, c) for o, c in
                                  zip(out, data.clean[:, half:], strict=True)]))

        rows["care"] = _pair(context, "care", data.noisy[:, :half], data.clean[:, :half],
                             score_care)
        save()


def bsd68(context: Context, result: dict[str, Any], save: Callable[[], None]) -> None:
    items = _data.bsd68(context.profile)
    # BSD68 mixes 321×481 and 481×321 images: a stack of their common central crop.
    edge = min(min(x.shape) for _, x, _ in items)
    noisy = np.stack([_data.crop(x, edge) for _, x, _ in items]).astype(np.float32)
    clean = np.stack([_data.crop(c, edge) for _, _, c in items])

    def score(model: Any) -> float:
        out = model.denoise(noisy, axes="SYX")
        return float(np.mean([psnr(o, c, data_range=255) for o, c in
                              zip(out, clean, strict=True)]))

    result.setdefault("rows", {})["n2v"] = _pair(context, "n2v", noisy, None, score)
    result["crop"] = int(edge)
    save()


def w2s(context: Context, result: dict[str, Any], save: Callable[[], None]) -> None:
    data = _data.w2s(context.profile)

    def score(model: Any) -> float:
        out = model.denoise(data.noisy, axes="SYX")
        return float(np.mean([si_psnr(o, c) for o, c in zip(out, data.clean, strict=True)]))

    result.setdefault("rows", {})["n2v"] = _pair(context, "n2v", data.noisy, None, score)
    result["images"] = len(data.names)
    save()


PARTS = {"fmd": fmd, "simulated": simulated, "bsd68": bsd68, "w2s": w2s}


def run(context: Context) -> dict[str, Any]:
    from benchmarks.runner import cpu_model
    from infocus.nets.precision import native_bfloat16

    result = run_parts(context, PARTS)
    result["native_bfloat16"] = native_bfloat16("cpu")
    result["cpu"] = cpu_model()
    return result
