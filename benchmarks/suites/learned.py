"""Trained methods on real and simulated data, with the shipped defaults.

Protocols (the report states them next to the tables):

* **FMD test_mix** (12 configurations × 4 raw 8-bit captures of one field of view; clean = the
  50-frame average). N2V, N2V2 and Noise2Self train **one model per configuration** on its four
  noisy captures and predict them: the one-stack use of ``infocus denoise -m n2v`` (a
  microscopist's stack comes from one microscope). Noise2Noise also trains per configuration,
  on pairs of independent captures (k → k+1 of the same field of view). CARE is supervised
  (raw → average) and must never see the field of view it is scored on: two folds split by
  configuration, each half predicted by a model trained on the other half. Because that
  protocol measures generalisation to another microscope as much as denoising, ``care-split``
  adds CARE as it is used in practice (training pairs from the same microscope and sample):
  trained on the top halves of all 48 captures and scored on the bottom halves, and the other
  way round, so no scored pixel is ever seen in training. Predictions are clamped to [0, 255];
  PSNR and SSIM with peak 255 (the FMD protocol).
* **FMD held-out halves** (a few configurations): CARE, Noise2Noise and N2V each trained per
  configuration on the top halves of its four captures and scored on the bottom halves. On the
  main table the self-supervised methods are scored on the very captures they trained on
  (their normal use) while CARE is not; here every method gets the same data and none sees
  the scored pixels, which separates "which training signal is better" from "who saw the
  test field of view".
* **Simulated**: the two fluorescence images under x = 2·Poisson(s) + 100 + N(0, 3²) at each
  photon level (the classical suite's data). Self-supervised methods train on the two noisy
  images; Noise2Noise on a second, independent noisy realisation; CARE on the *other* image
  (two folds), so it is scored on unseen content; ``care-split`` on the other half of both
  images (top ↔ bottom). PSNR with the clean image's range.
* **BSD68** σ = 25: N2V trains on the 68 noisy test images themselves (Noise2Void's paper trained
  on the 400 BSD training images instead; the report says so). Peak 255.
* **W2S** (8-bit copy, each file stretched separately): N2V per channel on that channel's
  images; scale-invariant PSNR.
* **Convallaria** (real EMCCD frame, no ground truth): N2V, N2V2, Noise2Self on the frame;
  training speed, prediction speed and the ground-truth-free validation loss; a crop is kept
  for the report's before/after figure.

Every training run uses the shipped defaults (``infocus.methods.config.default_config``)
unless the profile sets ``learned_steps``; its wall time is recorded with it.
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

SELF_SUPERVISED = ("n2v", "n2v2", "n2s")


def _config(method: str, steps: int | None) -> Any:
    from infocus.methods.config import default_config

    config = default_config("care" if method == "care-split" else method)
    return config.with_updates(steps=steps) if steps else config


def _train(method: str, noisy: Any, targets: Any, steps: int | None,
           axes: str = "SYX") -> tuple[Any, float]:
    from infocus.training.loop import train

    messages: list[str] = []
    start = time.perf_counter()
    model = train(noisy, targets=targets, method=method, axes=axes,
                  config=_config(method, steps), progress=False, log=messages.append)
    model.provenance["log"] = messages
    return model, time.perf_counter() - start


def _care_split(noisy: np.ndarray, clean: np.ndarray, steps: int | None, uncalibrated: np.ndarray,
                ) -> tuple[np.ndarray, dict[str, Any], float]:
    """CARE trained on one half (rows) of every image and scored on the other half, both ways.

    ``uncalibrated`` receives the predictions without intensity calibration."""
    half = noisy.shape[-2] // 2
    prediction = np.empty_like(noisy)
    runs: dict[str, Any] = {}
    predict_seconds = 0.0
    for trained, tested, label in ((slice(0, half), slice(half, None), "top → bottom"),
                                   (slice(half, None), slice(0, half), "bottom → top")):
        model, seconds = _train("care", noisy[:, trained], clean[:, trained], steps)
        prediction[:, tested], p_seconds = _predict(model, noisy[:, tested])
        uncalibrated[:, tested] = _predict(model, noisy[:, tested], calibrate=False)[0]
        predict_seconds += p_seconds
        runs[f"trained on the {label} halves"] = _run_record(model, seconds, len(noisy))
    return prediction, runs, predict_seconds


def _predict(model: Any, images: Any, axes: str = "SYX", **options: Any,
             ) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    out = model.denoise(images, axes=axes, **options)
    return np.asarray(out), time.perf_counter() - start


def _run_record(model: Any, seconds: float, images: int) -> dict[str, Any]:
    return {
        "train_seconds": seconds,
        "steps": model.config.steps,
        "images": images,
        "blind_spot": model.config.scheme_options.get("blind_spot"),
        "final_validation_loss": model.history[-1]["val_loss"] if model.history else None,
        "log": model.provenance.get("log", []),
    }


def _scores(prediction: np.ndarray, clean: np.ndarray, names: tuple[str, ...],
            data_range: float | None) -> dict[str, Any]:
    per_image = [
        {"image": n, "psnr": psnr(p, c, data_range=data_range),
         "ssim": ssim(p, c, data_range=data_range)}
        for n, p, c in zip(names, prediction, clean, strict=True)
    ]
    return {
        "psnr": float(np.mean([r["psnr"] for r in per_image])),
        "ssim": float(np.mean([r["ssim"] for r in per_image])),
        "per_image": per_image,
    }


# ------------------------------------------------------------------------------------ FMD
def fmd(method: str, context: Context) -> dict[str, Any]:
    profile = context.profile
    data = _data.fmd(profile, profile.learned_fmd_configurations)
    configs = _data.fmd_configurations(data.names)
    prediction = np.empty_like(data.noisy)
    uncalibrated = np.empty_like(data.noisy) if method.startswith("care") else None
    runs: dict[str, Any] = {}
    predict_seconds = 0.0
    if method == "care-split":
        prediction, runs, predict_seconds = _care_split(data.noisy, data.clean,
                                                        profile.learned_steps, uncalibrated)
    elif method == "care":
        distinct = sorted(set(configs))
        for fold in (0, 1):
            held_out = set(distinct[fold::2])
            test = np.array([c in held_out for c in configs])
            if not test.any() or test.all():
                continue
            model, seconds = _train("care", data.noisy[~test], data.clean[~test],
                                    profile.learned_steps)
            out, p_seconds = _predict(model, data.noisy[test])
            prediction[test] = out
            uncalibrated[test] = _predict(model, data.noisy[test], calibrate=False)[0]
            predict_seconds += p_seconds
            runs[f"fold {fold}: tested on {', '.join(sorted(held_out))}"] = _run_record(
                model, seconds, int((~test).sum()))
    else:
        for config in sorted(set(configs)):
            members = np.array([c == config for c in configs])
            noisy = data.noisy[members]
            targets = None
            if method == "n2n":
                if len(noisy) < 2:
                    context.log(f"fmd n2n {config}: one capture only; skipped")
                    return {"skipped": "Noise2Noise needs at least two captures per view"}
                targets = np.roll(noisy, -1, axis=0)  # capture k -> capture k+1
            model, seconds = _train(method, noisy, targets, profile.learned_steps)
            out, p_seconds = _predict(model, noisy)
            prediction[members] = out
            predict_seconds += p_seconds
            runs[config] = _run_record(model, seconds, len(noisy))
            score = np.mean([psnr(np.clip(o, 0, 255), c, data_range=255)
                             for o, c in zip(out, data.clean[members], strict=True)])
            context.log(f"fmd {method} {config}: {score:.2f} dB, {seconds:.0f} s")
    prediction = np.clip(prediction, 0, 255)
    shown = _data.figure_index(data.names)
    if shown is not None:
        _data.save_crops(context.artifacts / "fmd_crops.npz", {
            "noisy": data.noisy[shown], "clean": data.clean[shown], method: prediction[shown]})
        (context.artifacts / "fmd_crops.txt").write_text(data.names[shown])
    result = _scores(prediction, data.clean, data.names, 255.0)
    per_config: dict[str, list[float]] = defaultdict(list)
    for row, config in zip(result["per_image"], configs, strict=True):
        per_config[config].append(row["psnr"])
    if uncalibrated is not None:
        # What intensity calibration (on by default for CARE) changed.
        result["psnr_uncalibrated"] = float(np.mean([
            psnr(np.clip(u, 0, 255), c, data_range=255)
            for u, c in zip(uncalibrated, data.clean, strict=True)]))
    result.update({
        "per_configuration_psnr": {c: float(np.mean(v)) for c, v in per_config.items()},
        "runs": runs,
        "train_seconds": float(sum(r["train_seconds"] for r in runs.values())),
        "predict_seconds_per_megapixel": predict_seconds / (data.noisy.size / 1e6),
    })
    return result


# ------------------------------------------------------------------------ FMD held-out halves
def fmd_halves(method: str, context: Context) -> dict[str, Any]:
    profile = context.profile
    data = _data.fmd(profile, profile.learned_fmd_halves_configurations)
    configs = _data.fmd_configurations(data.names)
    half = data.noisy.shape[-2] // 2
    per_config: dict[str, float] = {}
    runs: dict[str, Any] = {}
    for config in sorted(set(configs)):
        members = np.array([c == config for c in configs])
        noisy, clean = data.noisy[members], data.clean[members]
        targets = {"care": clean[:, :half], "n2n": np.roll(noisy[:, :half], -1, axis=0)}
        model, seconds = _train(method, noisy[:, :half], targets.get(method),
                                profile.learned_steps)
        out = np.clip(_predict(model, noisy[:, half:])[0], 0, 255)
        per_config[config] = float(np.mean([psnr(o, c, data_range=255) for o, c in
                                            zip(out, clean[:, half:], strict=True)]))
        runs[config] = _run_record(model, seconds, len(noisy))
        context.log(f"fmd halves {method} {config}: {per_config[config]:.2f} dB")
    return {"psnr": float(np.mean(list(per_config.values()))),
            "per_configuration_psnr": per_config, "runs": runs,
            "train_seconds": float(sum(r["train_seconds"] for r in runs.values()))}


# ------------------------------------------------------------------------------ simulated
def simulated(method: str, context: Context) -> dict[str, Any]:
    profile = context.profile
    levels: dict[str, Any] = {}
    for photons in profile.photon_levels:
        data = _data.simulated(profile, photons)
        runs: dict[str, Any] = {}
        uncalibrated = np.empty_like(data.noisy)
        if method == "care":
            prediction = np.empty_like(data.noisy)
            for i in range(len(data.names)):
                train_on = np.arange(len(data.names)) != i
                model, seconds = _train("care", data.noisy[train_on], data.clean[train_on],
                                        profile.learned_steps)
                prediction[i] = _predict(model, data.noisy[i : i + 1])[0][0]
                uncalibrated[i] = _predict(model, data.noisy[i : i + 1], calibrate=False)[0][0]
                runs[f"tested on {data.names[i]}"] = _run_record(model, seconds, 1)
        elif method == "care-split":
            prediction, runs, _ = _care_split(data.noisy, data.clean, profile.learned_steps,
                                              uncalibrated)
        else:
            targets = None
            if method == "n2n":
                targets = _data.simulated(profile, photons, seed=1).noisy
            model, seconds = _train(method, data.noisy, targets, profile.learned_steps)
            prediction = _predict(model, data.noisy)[0]
            runs["all"] = _run_record(model, seconds, len(data.names))
        score = {"psnr": float(np.mean([psnr(p, c) for p, c in
                                        zip(prediction, data.clean, strict=True)])),
                 "ssim": float(np.mean([ssim(p, c) for p, c in
                                        zip(prediction, data.clean, strict=True)])),
                 "runs": runs,
                 "train_seconds": float(sum(r["train_seconds"] for r in runs.values()))}
        if method.startswith("care"):
            score["psnr_uncalibrated"] = float(np.mean([
                psnr(u, c) for u, c in zip(uncalibrated, data.clean, strict=True)]))
        levels[f"{photons:g}"] = score
        context.log(f"simulated {method} {photons:g} photons: {score['psnr']:.2f} dB")
    return {"levels": levels,
            "train_seconds": float(sum(v["train_seconds"] for v in levels.values()))}


# ---------------------------------------------------------------------------------- BSD68
def bsd68(method: str, context: Context) -> dict[str, Any]:
    items = _data.bsd68(context.profile)
    names = tuple(n for n, _, _ in items)
    noisy = [x for _, x, _ in items]
    model, seconds = _train(method, noisy, None, context.profile.learned_steps, axes="YX")
    prediction = [_predict(model, x, axes="YX")[0] for x in noisy]
    per_image = [{"image": n, "psnr": psnr(p, c, data_range=255),
                  "ssim": ssim(p, c, data_range=255)}
                 for n, p, (_, _, c) in zip(names, prediction, items, strict=True)]
    return {"psnr": float(np.mean([r["psnr"] for r in per_image])),
            "ssim": float(np.mean([r["ssim"] for r in per_image])),
            "per_image": per_image, "runs": {"all": _run_record(model, seconds, len(items))},
            "train_seconds": seconds}


# ------------------------------------------------------------------------------------ W2S
def w2s(method: str, context: Context) -> dict[str, Any]:
    data = _data.w2s(context.profile)
    channels = sorted({n.rsplit("_", 1)[1] for n in data.names})
    prediction = np.empty_like(data.noisy)
    runs = {}
    for channel in channels:
        members = np.array([n.endswith(f"_{channel}") for n in data.names])
        model, seconds = _train(method, data.noisy[members], None, context.profile.learned_steps)
        prediction[members] = _predict(model, data.noisy[members])[0]
        runs[f"channel {channel}"] = _run_record(model, seconds, int(members.sum()))
    values = [si_psnr(p, c) for p, c in zip(prediction, data.clean, strict=True)]
    return {"si_psnr": float(np.mean(values)),
            "per_image": [{"image": n, "si_psnr": v} for n, v in
                          zip(data.names, values, strict=True)],
            "runs": runs, "train_seconds": float(sum(r["train_seconds"] for r in runs.values()))}


# ---------------------------------------------------------------------------- Convallaria
CONVALLARIA_CROP = (slice(300, 556), slice(300, 556))


def convallaria(method: str, context: Context) -> dict[str, Any]:
    frame = _data.convallaria(context.profile)
    model, seconds = _train(method, frame, None, context.profile.learned_steps, axes="YX")
    out, predict_seconds = _predict(model, frame, axes="YX")
    window = CONVALLARIA_CROP if frame.shape[0] >= 556 else (slice(None), slice(None))
    crops = context.artifacts / "convallaria.npz"
    saved = dict(np.load(crops)) if crops.exists() else {}
    saved["raw"] = frame[window].astype(np.float32)
    saved[method] = out[window].astype(np.float32)
    np.savez_compressed(crops, **saved)
    return {
        **_run_record(model, seconds, 1),
        "predict_megapixels_per_second": frame.size / 1e6 / predict_seconds,
        "train_steps_per_second": model.config.steps / seconds,
        "history": model.history,
    }


DATASETS = {"fmd": fmd, "simulated": simulated, "bsd68": bsd68, "w2s": w2s,
            "convallaria": convallaria, "fmd-halves": fmd_halves}
#: Which methods each dataset can run (pairs of captures, clean targets).
APPLIES = {
    "fmd": ("n2v", "n2v2", "n2s", "n2n", "care", "care-split"),
    "simulated": ("n2v", "n2v2", "n2s", "n2n", "care", "care-split"),
    "bsd68": ("n2v", "n2v2"),
    "w2s": ("n2v",),
    "convallaria": ("n2v", "n2v2", "n2s"),
    "fmd-halves": ("care", "n2n", "n2v"),
}


def run(context: Context) -> dict[str, Any]:
    profile = context.profile
    result: dict[str, Any] = {key: dict(value) for key, value in context.previous.items()}
    result["budget"] = {
        "steps": profile.learned_steps or "shipped defaults",
        "config": {m: _config(m, profile.learned_steps).to_dict()
                   for m in profile.learned_methods},
    }
    for dataset in profile.learned_datasets:
        entry = result.setdefault(dataset, {})
        for method in profile.learned_methods:
            if method not in APPLIES[dataset] or method in entry:
                continue
            context.log(f"{dataset} {method} ...")
            started = time.perf_counter()
            try:
                entry[method] = DATASETS[dataset](method, context)
            except DatasetMissing as missing:
                context.log(f"skipped: {missing}")
                entry["skipped"] = str(missing)
                break
            entry[method]["wall_seconds"] = time.perf_counter() - started
            context.save(result)
    return result
