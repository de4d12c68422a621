"""The noise-model methods (PN2V, DivNoising) beside Noise2Void, at the shipped defaults.

Protocols (the report states them next to the tables):

* **Defaults timing**: ``infocus.train`` with each method's defaults (no budget options) on
  eight 256² crops of the two fluorescence images at 30 photons (x = 2·Poisson(s) + 100 +
  N(0, 3²)): training seconds (PN2V's include the Noise2Void it bootstraps its noise model
  from) and PSNR.
* **Simulated** Poisson–Gaussian (the learned suite's data: two images, 5/20/100 photons) and
  **EMCCD** (the same images scaled to 5 photons at the peak, gamma-amplified with EM gain 50,
  1 ADU per electron, offset 100, read noise 10 ADU; reference = E[x]): every method trains on
  the two noisy images and predicts them, as ``infocus denoise`` does. PSNR with the clean
  image's range. For PN2V also the prior mean (what N2V-style prediction gives); for both
  probabilistic methods the **uncertainty calibration**: pixels binned by predicted standard
  deviation (deciles), and per bin the RMSE against the ground truth.
* **FMD test_mix**: per configuration, trained on its four captures and scored on them (the
  learned suite's N2V protocol, whose N2V numbers are comparable: same data, same budget,
  same code path); peak 255, predictions clamped to [0, 255].
* **W2S**: per channel on that channel's ten images; scale-invariant PSNR (each file was
  stretched separately, see the data README).
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np

from benchmarks import datasets
from benchmarks.datasets import DatasetMissing
from benchmarks.runner import Context
from benchmarks.suites import _data
from infocus.metrics import psnr, si_psnr, ssim

#: EMCCD camera of the simulated EMCCD data.
EMCCD = {"em_gain": 50.0, "gain": 1.0, "offset": 100.0, "read_noise": 10.0}
EMCCD_PHOTONS = 5.0
#: Bins of the uncertainty calibration curve (deciles of the predicted standard deviation).
CALIBRATION_BINS = 10


def _train(method: str, noisy: np.ndarray, steps: int | None) -> tuple[Any, float]:
    import infocus
    from infocus.methods.config import default_config

    config = default_config(method)
    if steps:
        config = config.with_updates(steps=steps)
    messages: list[str] = []
    start = time.perf_counter()
    model = infocus.train(noisy, method=method, axes="SYX", config=config, progress=False,
                          log=messages.append)
    model.provenance["log"] = messages
    return model, time.perf_counter() - start


def _predict(model: Any, noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float]:
    start = time.perf_counter()
    if "uncertainty" in model.outputs:
        result = model.predict(noisy, axes="SYX", uncertainty=True)
        denoised, std = result.denoised, result.uncertainty
    else:
        denoised, std = model.denoise(noisy, axes="SYX"), None
    return np.asarray(denoised), std, time.perf_counter() - start


def calibration_curve(prediction: np.ndarray, std: np.ndarray, clean: np.ndarray,
                      bins: int = CALIBRATION_BINS) -> dict[str, Any]:
    """Pixels binned by predicted standard deviation (quantile bins): per bin the mean
    predicted std and the RMSE against ``clean``; and the ratio of the overall RMSE to the
    root-mean-square predicted std (1: calibrated)."""
    std, error = std.ravel().astype(np.float64), (prediction - clean).ravel().astype(np.float64)
    edges = np.quantile(std, np.linspace(0, 1, bins + 1))
    index = np.clip(np.searchsorted(edges, std, side="right") - 1, 0, bins - 1)
    rows = []
    for k in range(bins):
        members = index == k
        if members.any():
            rows.append({"predicted_std": float(std[members].mean()),
                         "rmse": float(np.sqrt(np.mean(error[members] ** 2))),
                         "pixels": int(members.sum())})
    return {"bins": rows, "rmse": float(np.sqrt(np.mean(error**2))),
            "rms_predicted_std": float(np.sqrt(np.mean(std**2))),
            "ratio": float(np.sqrt(np.mean(error**2)) / max(np.sqrt(np.mean(std**2)), 1e-12))}


def _record(model: Any, seconds: float) -> dict[str, Any]:
    keep = ("prior_scale", "uncertainty_scale", "noise_model_source")
    return {"train_seconds": seconds, "steps": model.config.steps,
            "state": {k: model.state[k] for k in keep if k in model.state},
            "final_validation_loss": model.history[-1]["val_loss"] if model.history else None,
            "log": model.provenance.get("log", [])}


def _evaluate(method: str, noisy: np.ndarray, clean: np.ndarray, steps: int | None,
              data_range: float | None = None) -> tuple[dict[str, Any], Any, np.ndarray]:
    """Train ``method`` on ``noisy``, predict it, score against ``clean``."""
    model, seconds = _train(method, noisy, steps)
    prediction, std, predict_seconds = _predict(model, noisy)
    if data_range is not None:
        prediction = np.clip(prediction, 0, data_range)
    result = {
        "psnr": float(np.mean([psnr(p, c, data_range=data_range)
                               for p, c in zip(prediction, clean, strict=True)])),
        "ssim": float(np.mean([ssim(p, c, data_range=data_range)
                               for p, c in zip(prediction, clean, strict=True)])),
        "per_image_psnr": [float(psnr(p, c, data_range=data_range))
                           for p, c in zip(prediction, clean, strict=True)],
        "predict_seconds_per_megapixel": predict_seconds / (noisy.size / 1e6),
        **_record(model, seconds),
    }
    if std is not None:
        result["calibration"] = calibration_curve(prediction, std, clean)
    if "estimate" in model.prediction_options:
        prior = np.asarray(model.denoise(noisy, axes="SYX", estimate="prior"))
        if data_range is not None:
            prior = np.clip(prior, 0, data_range)
        result["prior_psnr"] = float(np.mean([psnr(p, c, data_range=data_range)
                                              for p, c in zip(prior, clean, strict=True)]))
    return result, model, prediction


# ------------------------------------------------------------------------------ datasets
def defaults_timing(context: Context) -> dict[str, Any]:
    """Each method's shipped defaults on eight 256² images (the issue's 10-minute budget)."""
    from infocus.noise import simulate_poisson_gaussian

    tiles = []
    for _, image in datasets.fluorescence_clean():
        image = _data.crop(image, 512)
        tiles += [image[y : y + 256, x : x + 256] for y in (0, 256) for x in (0, 256)]
    clean = np.stack(tiles).astype(np.float32)
    noisy, _ = simulate_poisson_gaussian(clean, photons=30, rng=0, **_data.CAMERA)
    # simulate_poisson_gaussian scales the whole stack by its maximum.
    reference = clean / clean.max() * 30 * 2 + 100
    result = {}
    for method in context.profile.probabilistic_methods:
        model, seconds = _train(method, noisy.astype(np.float32),
                                context.profile.probabilistic_steps)
        prediction = _predict(model, noisy)[0]
        result[method] = {
            "train_seconds": seconds,
            "psnr": float(np.mean([psnr(p, c) for p, c in zip(prediction, reference,
                                                              strict=True)])),
            "steps": model.config.steps,
        }
        context.log(f"defaults {method}: {seconds:.0f} s, {result[method]['psnr']:.2f} dB")
    return result


def simulated(context: Context) -> dict[str, Any]:
    levels: dict[str, Any] = dict(_get_partial(context, "simulated").get("levels", {}))
    for photons in context.profile.photon_levels:
        if f"{photons:g}" in levels:
            continue
        data = _data.simulated(context.profile, photons)
        level: dict[str, Any] = {}
        for method in context.profile.probabilistic_methods:
            level[method], model, _ = _evaluate(method, data.noisy, data.clean,
                                                context.profile.probabilistic_steps)
            context.log(f"simulated {photons:g} photons {method}: {level[method]['psnr']:.2f} dB")
            if "samples" in model.outputs and photons == 20:
                _save_samples(context, model, data.noisy[0], data.clean[0])
        levels[f"{photons:g}"] = level
        context.save({**context.previous, "simulated": {"levels": levels, "partial": True}})
    return {"levels": levels}


def _get_partial(context: Context, part: str) -> dict[str, Any]:
    """What an interrupted run saved of ``part`` (empty when nothing)."""
    value = context.previous.get(part, {})
    return value if isinstance(value, dict) else {}


def emccd_data(profile: Any) -> _data.Paired:
    """The two fluorescence images on a simulated EMCCD (module docstring)."""
    from infocus.noise import add_emccd_noise, scale_to_photons

    names, noisy, clean = [], [], []
    for name, image in datasets.fluorescence_clean():
        photons = scale_to_photons(_data.crop(image, profile.crop), EMCCD_PHOTONS)
        x, _ = add_emccd_noise(photons, rng=0, **EMCCD)
        names.append(name)
        noisy.append(x)
        clean.append(EMCCD["gain"] * EMCCD["em_gain"] * photons + EMCCD["offset"])
    return _data.Paired(tuple(names), np.stack(noisy).astype(np.float32),
                        np.stack(clean).astype(np.float32))


def emccd(context: Context) -> dict[str, Any]:
    data = emccd_data(context.profile)
    result = {}
    for method in context.profile.probabilistic_methods:
        result[method], _, _ = _evaluate(method, data.noisy, data.clean,
                                         context.profile.probabilistic_steps)
        context.log(f"emccd {method}: {result[method]['psnr']:.2f} dB")
    return result


def fmd(context: Context) -> dict[str, Any]:
    profile = context.profile
    data = _data.fmd(profile, profile.probabilistic_fmd_configurations)
    configs = _data.fmd_configurations(data.names)
    result: dict[str, Any] = {k: dict(v) for k, v in _get_partial(context, "fmd").items()
                              if isinstance(v, dict)}
    # N2V is measured by the learned suite with the same protocol.
    methods = [m for m in profile.probabilistic_methods if m != "n2v"]
    # Configuration by configuration, so an interrupted run still compares the methods.
    order = profile.probabilistic_fmd_configurations or sorted(set(configs))
    for config in [c for c in order if c in configs]:
        members = np.array([c == config for c in configs])
        for method in methods:
            entry = result.setdefault(method, {"per_configuration": {}})
            if config in entry["per_configuration"]:
                continue
            scores, _, _ = _evaluate(method, data.noisy[members], data.clean[members],
                                     profile.probabilistic_steps, data_range=255.0)
            entry["per_configuration"][config] = scores
            context.log(f"fmd {method} {config}: {scores['psnr']:.2f} dB "
                        f"({scores['train_seconds']:.0f} s)")
            done = entry["per_configuration"].values()
            entry["psnr"] = float(np.mean([p for s in done for p in s["per_image_psnr"]]))
            context.save({**context.previous, "fmd": result})
    return result


def w2s(context: Context) -> dict[str, Any]:
    data = _data.w2s(context.profile)
    channels = sorted({n.rsplit("_", 1)[1] for n in data.names})
    result: dict[str, Any] = {}
    for method in context.profile.probabilistic_methods:
        if method == "n2v":
            continue
        prediction = np.empty_like(data.noisy)
        runs = {}
        for channel in channels:
            members = np.array([n.endswith(f"_{channel}") for n in data.names])
            model, seconds = _train(method, data.noisy[members],
                                    context.profile.probabilistic_steps)
            prediction[members] = _predict(model, data.noisy[members])[0]
            runs[f"channel {channel}"] = _record(model, seconds)
        values = [si_psnr(p, c) for p, c in zip(prediction, data.clean, strict=True)]
        per_channel = defaultdict(list)
        for name, value in zip(data.names, values, strict=True):
            per_channel[name.rsplit("_", 1)[1]].append(value)
        result[method] = {"si_psnr": float(np.mean(values)), "runs": runs,
                          "per_channel": {c: float(np.mean(v)) for c, v in per_channel.items()}}
        context.log(f"w2s {method}: {result[method]['si_psnr']:.2f} dB")
    return result


def _save_samples(context: Context, model: Any, noisy: np.ndarray, clean: np.ndarray) -> None:
    """A crop with DivNoising's MMSE, standard deviation and a few posterior samples."""
    window = (slice(160, 288), slice(160, 288)) if noisy.shape[0] >= 288 else (
        slice(None), slice(None))
    crop = noisy[window]
    result = model.predict(crop, axes="YX", uncertainty=True)
    samples = model.sample(crop, axes="YX", n=4, seed=0)
    np.savez_compressed(context.artifacts / "divnoising_samples.npz", noisy=crop,
                        clean=clean[window], mmse=result.denoised, std=result.uncertainty,
                        samples=samples)


PARTS = {"defaults": defaults_timing, "simulated": simulated, "emccd": emccd, "fmd": fmd,
         "w2s": w2s}


def run(context: Context) -> dict[str, Any]:
    result: dict[str, Any] = {key: value for key, value in context.previous.items()}
    result["budget"] = {"steps": context.profile.probabilistic_steps or "shipped defaults",
                        "methods": list(context.profile.probabilistic_methods)}
    for part in context.profile.probabilistic_datasets:
        if part in result and part != "fmd" and not _get_partial(context, part).get("partial"):
            continue
        context.log(f"{part} ...")
        started = time.perf_counter()
        try:
            result[part] = PARTS[part](context)
        except DatasetMissing as missing:
            context.log(f"skipped: {missing}")
            result[part] = context.previous[part] = {"skipped": str(missing)}
            continue
        result[part]["wall_seconds"] = time.perf_counter() - started
        # A part's partial saves start from context.previous: keep finished parts in it.
        context.previous[part] = result[part]
        context.save(result)
    return result
