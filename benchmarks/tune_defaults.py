"""How the training defaults were chosen: PSNR against optimizer steps and CPU seconds.

    python -m benchmarks.tune_defaults                    # the whole study (about an hour on 2 cores)
    python -m benchmarks.tune_defaults --quick            # smoke run: every method, a few steps
    python -m benchmarks.tune_defaults --runs n2v-f16-frac0.02,care-f16   # some runs only
    python -m benchmarks.tune_defaults --list             # the runs of the study
    python -m benchmarks.tune_defaults --summary          # markdown tables of the results
    python -m benchmarks.tune_defaults --end-to-end n2v   # time `train` + `denoise` with the defaults
    python -m benchmarks.tune_defaults --timing --runs n2v-f16   # seconds per step, 1 and 2 threads

Protocol
--------
* Clean signal: the four 256×256 quadrants of each of the two real fluorescence images of
  ../shared/data (``human_mitosis`` and ``stardist_dsb2018_nuclei``), eight images in all,
  stacked as ``SYX``.
* Noise: one call ``simulate_poisson_gaussian(stack, photons=30, gain=2, offset=100,
  read_noise=3, rng=0)``: the brightest pixel of the whole stack has 30 expected photons. The
  clean reference in camera units is ``clean / max * 30 * 2 + 100``.
* Score: PSNR of each image with the range of its own clean image (Laine et al. 2021, Box 1),
  averaged over the eight.
* Self-supervised methods (N2V, N2V2, N2S) train on the eight noisy images and are scored on
  them: the one-stack use. CARE trains on the eight (noisy, clean) pairs, which makes its score
  on the same images optimistic, so it is also scored on two held-out crops of another image
  (``fmd_test_mix/gt/WideField_BPAE_B_1.png``, a 50-frame average of widefield nuclei,
  quadrants (0, 0) and (256, 0)), simulated the same way with 30 photons at their own peak.
  The training loop also holds one of the eight images out of training for its validation
  loss (``validation_fraction=0.1``); its index and score are stored too.
* Baselines: the noisy input, a Gaussian filter with the best σ per image (an oracle, since it
  looks at the clean image) and BM3D with its variance-stabilising transform and automatic
  noise estimation (``infocus.denoise(noisy, "bm3d", axes="YX")``).
* Every run is a full cosine schedule to its ``steps`` and records the mean PSNR over the eight
  images after every epoch (so a run also gives the anytime curve), its validation loss and the
  wall-clock time. The time per step excludes these evaluations (their cost is measured once
  and subtracted). The machine load (``os.getloadavg``) is stored with every run, because
  other processes on a 2-core machine change the timings, not the PSNR.

OpenMP threads that cannot get a core spin and slow training down many times over on a busy
machine, so this script sets ``OMP_WAIT_POLICY=PASSIVE`` before importing torch unless the
environment already sets it.

Results go to ``benchmarks/results/<date>-tune-defaults.json`` (runs are added to the file of
the day as they finish, so an interrupted study keeps what it measured).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from unittest import mock  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.datasets import SHARED_DATA, _read  # noqa: E402
from infocus import __version__, denoise  # noqa: E402
from infocus.metrics import psnr  # noqa: E402
from infocus.noise import simulate_poisson_gaussian  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PHOTONS = 30.0
CAMERA = {"gain": 2.0, "offset": 100.0, "read_noise": 3.0}
CROP = 256
TRAIN_IMAGES = (
    ("human_mitosis", "human_mitosis/AS_09125_050116030001_D03f00d0.tif"),
    ("stardist_nuclei", "stardist_dsb2018_nuclei/img2d.tif"),
)
HELD_OUT_IMAGE = ("fmd_widefield_bpae_b", "fmd_test_mix/gt/WideField_BPAE_B_1.png")
HELD_OUT_CORNERS = ((0, 0), (256, 0))
GAUSSIAN_SIGMAS = np.round(np.arange(0.4, 4.01, 0.1), 2)

# --------------------------------------------------------------------------- the study
#: name -> the settings of one run, all explicit. Names say what differs from the library's
#: defaults when the study began ("default"): 800 steps here, 32 filters, batch 16, 64²
#: patches, learning rate 2e-3, masked fraction 0.002 (N2V, N2V2), batch norm on. The
#: library's defaults have since moved to what this study found (16 filters, fraction 0.04).
RUNS: dict[str, dict[str, Any]] = {}


def _run(name: str, method: str, steps: int, *, filters: int = 32, batch: int = 16,
         patch: int = 64, lr: float = 2e-3, fraction: float = 0.002,
         batch_norm: bool = True, scheme: dict[str, Any] | None = None) -> None:
    scheme_options = dict(scheme or {})
    if method in ("n2v", "n2v2", "structn2v"):
        scheme_options.setdefault("fraction", fraction)
    RUNS[name] = {
        "method": method, "steps": steps, "base_filters": filters, "batch_size": batch,
        "patch_size": patch, "learning_rate": lr, "batch_norm": batch_norm,
        "scheme_options": scheme_options,
    }


# N2V: the library default, then one knob at a time from the cheaper 16-filter network.
_run("n2v-default", "n2v", 800)
_run("n2v-f16", "n2v", 800, filters=16)
for _fraction in (0.01, 0.02, 0.04, 0.08):
    _run(f"n2v-f16-frac{_fraction:g}", "n2v", 800, filters=16, fraction=_fraction)


def _n2v_variants(fraction: float) -> None:
    """Second stage, around the best masked fraction of the first."""
    tag = f"n2v-f16-frac{fraction:g}"
    for lr in (1e-3, 4e-3):
        _run(f"{tag}-lr{lr:g}", "n2v", 800, filters=16, fraction=fraction, lr=lr)
    for batch, patch in ((8, 64), (32, 32), (64, 32)):
        _run(f"{tag}-b{batch}p{patch}", "n2v", 800, filters=16, fraction=fraction,
             batch=batch, patch=patch)
    _run(f"{tag}-nobn", "n2v", 800, filters=16, fraction=fraction, batch_norm=False)
    _run(f"n2v-f32-frac{fraction:g}", "n2v", 800, fraction=fraction)
    for steps in (200, 400, 1600):
        _run(f"{tag}-s{steps}", "n2v", steps, filters=16, fraction=fraction)


BEST_FRACTION = 0.04
_n2v_variants(BEST_FRACTION)
# Other schemes: the library default and the 16-filter network.
_run("n2v2-default", "n2v2", 800)
_run("n2v2-f16", "n2v2", 800, filters=16)
_run(f"n2v2-f16-frac{BEST_FRACTION:g}", "n2v2", 800, filters=16, fraction=BEST_FRACTION)
_run("n2s-f16", "n2s", 800, filters=16)
_run("care-default", "care", 800)
_run("care-f16", "care", 800, filters=16)

QUICK_RUNS = ("n2v-f16", "n2v2-f16", "n2s-f16", "care-f16")


# --------------------------------------------------------------------------- data


def _quadrants(image: np.ndarray) -> list[tuple[tuple[int, int], np.ndarray]]:
    return [((y, x), image[y : y + CROP, x : x + CROP])
            for y in range(0, image.shape[0] - CROP + 1, CROP)
            for x in range(0, image.shape[1] - CROP + 1, CROP)]


def _simulate(clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean in camera units) for a SYX stack; 30 photons at the stack's peak."""
    noisy, _ = simulate_poisson_gaussian(clean, photons=PHOTONS, rng=0, **CAMERA)
    reference = clean / clean.max() * PHOTONS * CAMERA["gain"] + CAMERA["offset"]
    return noisy.astype(np.float32), reference.astype(np.float32)


def make_data() -> dict[str, Any]:
    """The eight training crops and the two held-out crops, noisy and clean, in camera units."""
    names, crops = [], []
    for name, relative in TRAIN_IMAGES:
        for corner, crop in _quadrants(_read(SHARED_DATA / relative).astype(np.float64)):
            names.append(f"{name}@{corner[0]},{corner[1]}")
            crops.append(crop)
    noisy, clean = _simulate(np.stack(crops))
    image = _read(SHARED_DATA / HELD_OUT_IMAGE[1]).astype(np.float64)
    held = np.stack([image[y : y + CROP, x : x + CROP] for y, x in HELD_OUT_CORNERS])
    held_noisy, held_clean = _simulate(held)
    return {
        "names": names, "noisy": noisy, "clean": clean,
        "held_names": [f"{HELD_OUT_IMAGE[0]}@{y},{x}" for y, x in HELD_OUT_CORNERS],
        "held_noisy": held_noisy, "held_clean": held_clean,
    }


def per_image_psnr(prediction: np.ndarray, clean: np.ndarray) -> list[float]:
    """PSNR of every image of a SYX stack, each with the range of its clean image."""
    return [psnr(p, c) for p, c in zip(prediction, clean, strict=True)]


# --------------------------------------------------------------------------- baselines


def baselines(data: dict[str, Any]) -> dict[str, Any]:
    from scipy import ndimage as ndi

    out: dict[str, Any] = {}
    for split, noisy, clean in (("train", data["noisy"], data["clean"]),
                                ("held_out", data["held_noisy"], data["held_clean"])):
        rows: dict[str, Any] = {"noisy": per_image_psnr(noisy, clean)}
        best, sigmas = [], []
        for n, c in zip(noisy, clean, strict=True):
            scores = [psnr(ndi.gaussian_filter(n, s, mode="reflect"), c) for s in GAUSSIAN_SIGMAS]
            best.append(max(scores))
            sigmas.append(float(GAUSSIAN_SIGMAS[int(np.argmax(scores))]))
        rows["gaussian_oracle"] = best
        rows["gaussian_oracle_sigma"] = sigmas
        start = time.perf_counter()
        rows["bm3d_vst"] = [psnr(denoise(n, "bm3d", axes="YX"), c)
                            for n, c in zip(noisy, clean, strict=True)]
        rows["bm3d_vst_seconds"] = time.perf_counter() - start
        out[split] = {k: v for k, v in rows.items()}
        out[split]["mean"] = {k: float(np.mean(v)) for k, v in rows.items()
                              if isinstance(v, list) and k != "gaussian_oracle_sigma"}
        print(f"baselines {split}: " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                 out[split]["mean"].items()), flush=True)
    return out


# --------------------------------------------------------------------------- training


def _config(spec: dict[str, Any], steps_per_epoch: int) -> Any:
    from infocus.methods.config import default_config

    base = default_config(spec["method"])
    network_options = dict(base.network_options)
    network_options.update(base_filters=spec["base_filters"], batch_norm=spec["batch_norm"])
    scheme_options = dict(base.scheme_options)
    scheme_options.update(spec["scheme_options"])
    return base.with_updates(
        seed=spec.get("seed"), steps=spec["steps"], steps_per_epoch=steps_per_epoch, batch_size=spec["batch_size"],
        patch_size=spec["patch_size"], learning_rate=spec["learning_rate"],
        network_options=network_options, scheme_options=scheme_options,
    )


def train_and_score(name: str, spec: dict[str, Any], data: dict[str, Any],
                    evaluations: int = 8) -> dict[str, Any]:
    """Train one configuration; score after every epoch and at the end."""
    import torch

    from infocus.training.loop import train

    steps = spec["steps"]
    steps_per_epoch = max(1, steps // evaluations)
    config = _config(spec, steps_per_epoch)
    noisy, clean = data["noisy"], data["clean"]
    targets = clean if config.method == "care" else None

    def mean_psnr(prediction: Any, target: Any, **_: Any) -> float:
        # The loop scores its ``validation`` image with infocus.metrics.psnr; for the stack we
        # want the mean of the per-image PSNRs instead, so the loop calls this during the run.
        return float(np.mean(per_image_psnr(np.asarray(prediction), np.asarray(target))))

    load_before = os.getloadavg()
    start = time.perf_counter()
    with mock.patch("infocus.metrics.psnr", mean_psnr):
        model = train(noisy, method=config.method, axes="SYX", targets=targets, config=config,
                      validation=(noisy, clean, "SYX"), progress=False, log=lambda _m: None)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    start = time.perf_counter()
    prediction = model.denoise(noisy, axes="SYX")
    predict_seconds = time.perf_counter() - start
    scores = per_image_psnr(prediction, clean)
    train_seconds = max(0.0, wall - len(model.history) * predict_seconds)
    result: dict[str, Any] = {
        "spec": spec,
        "config": config.to_dict(),
        "torch_threads": torch.get_num_threads(),
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in load_after],
        "wall_seconds_with_evaluations": wall,
        "predict_seconds": predict_seconds,
        "train_seconds": train_seconds,
        "seconds_per_step": train_seconds / steps,
        "psnr": scores,
        "psnr_mean": float(np.mean(scores)),
        "curve": [{"step": h["step"], "psnr": h["val_psnr"], "val_loss": h["val_loss"],
                   "train_loss": h["train_loss"], "seconds": h["seconds"]}
                  for h in model.history],
    }
    if config.method == "care":
        held = model.denoise(data["held_noisy"], axes="SYX")
        result["held_out_psnr"] = per_image_psnr(held, data["held_clean"])
        result["held_out_psnr_mean"] = float(np.mean(result["held_out_psnr"]))
    curve = " ".join(f"{c['step']}:{c['psnr']:.2f}" for c in result["curve"])
    extra = (f", held-out {result['held_out_psnr_mean']:.2f}" if "held_out_psnr_mean" in result
             else "")
    print(f"{name}: {result['psnr_mean']:.2f} dB{extra}, {result['seconds_per_step']:.3f} s/step, "
          f"predict {predict_seconds:.1f} s, load {load_before[0]:.1f}->{load_after[0]:.1f} | "
          f"{curve}", flush=True)
    return result


def validation_block(seed: int = 0, blocks: int = 8, fraction: float = 0.1) -> int:
    """Index of the image the training loop holds out for its validation loss."""
    from infocus.training.data import split_validation

    dummy = [np.zeros((1, 64, 64), np.float32) for _ in range(blocks)]
    _, _, held, _ = split_validation(dummy, fraction=fraction, patch_shape=(64, 64),
                                     rng=np.random.default_rng(seed))
    return next(i for i, d in enumerate(dummy) if any(h is d for h in held))


def time_steps(spec: dict[str, Any], data: dict[str, Any], steps: int = 60) -> float:
    """Seconds per optimizer step of ``spec`` (no evaluations; the first third is warm-up)."""
    from infocus.training.loop import train

    spec = dict(spec, steps=steps)
    config = _config(spec, steps // 3)
    targets = data["clean"] if config.method == "care" else None
    model = train(data["noisy"], method=config.method, axes="SYX", targets=targets,
                  config=config, progress=False, log=lambda _m: None)
    first, last = model.history[0], model.history[-1]
    return (last["seconds"] - first["seconds"]) / (last["step"] - first["step"])


def end_to_end(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """What `infocus train` with no budget flags costs: train + predict, nothing else.

    ``name`` is a method (the library's defaults as they are now) or a run of :data:`RUNS`
    (epochs of the library's length, as without flags).
    """
    from infocus.methods.config import default_config
    from infocus.training.loop import train

    if name in RUNS:
        config = _config(RUNS[name], default_config(RUNS[name]["method"]).steps_per_epoch)
    else:
        config = default_config(name)
    method = config.method
    targets = data["clean"] if method == "care" else None
    load_before = os.getloadavg()
    start = time.perf_counter()
    model = train(data["noisy"], method=method, axes="SYX", targets=targets, config=config,
                  progress=False, log=lambda _m: None)
    trained = time.perf_counter() - start
    prediction = model.denoise(data["noisy"], axes="SYX")
    total = time.perf_counter() - start
    scores = per_image_psnr(prediction, data["clean"])
    result = {"config": model.config.to_dict(), "train_seconds": trained,
              "total_seconds": total, "psnr": scores, "psnr_mean": float(np.mean(scores)),
              "load_before": list(load_before), "load_after": list(os.getloadavg())}
    if method == "care":
        result["held_out_psnr"] = per_image_psnr(model.denoise(data["held_noisy"], axes="SYX"),
                                                 data["held_clean"])
        result["held_out_psnr_mean"] = float(np.mean(result["held_out_psnr"]))
    print(f"end-to-end {name}: {result['psnr_mean']:.2f} dB in {total:.0f} s "
          f"(train {trained:.0f} s)", flush=True)
    return result


# --------------------------------------------------------------------------- report


def summary(results: dict[str, Any]) -> str:
    """Markdown tables of a results file: baselines, every run with its curve, timings."""
    lines = ["| baseline | train 8 (dB) | held-out 2 (dB) |", "|---|---|---|"]
    base = results.get("baselines", {})
    for key in ("noisy", "gaussian_oracle", "bm3d_vst"):
        lines.append(f"| {key} | {base['train']['mean'][key]:.2f} | "
                     f"{base['held_out']['mean'][key]:.2f} |")
    lines += ["", "| run | method | filters | batch×patch² | lr | fraction | BN | steps | "
              "PSNR (dB) | curve (step:dB) | s/step | load |", "|" + "---|" * 12]
    for name, run in results.get("runs", {}).items():
        spec = run["spec"]
        curve = " ".join(f"{c['step']}:{c['psnr']:.2f}" for c in run["curve"])
        held = f" (held-out {run['held_out_psnr_mean']:.2f})" if "held_out_psnr_mean" in run else ""
        lines.append(
            f"| {name} | {spec['method']} | {spec['base_filters']} | "
            f"{spec['batch_size']}×{spec['patch_size']} | {spec['learning_rate']:g} | "
            f"{spec['scheme_options'].get('fraction', '–')} | {'on' if spec['batch_norm'] else 'off'}"
            f" | {spec['steps']} | {run['psnr_mean']:.2f}{held} | {curve} | "
            f"{run['seconds_per_step']:.3f} | {run['load_before'][0]:.1f} |")
    if results.get("timing"):
        lines += ["", "| run | threads | OMP_WAIT_POLICY | s/step | load |", "|---|---|---|---|---|"]
        for t in results["timing"]:
            lines.append(f"| {t['run']} | {t['threads']} | {t.get('omp_wait_policy')} | "
                         f"{t['seconds_per_step']:.3f} | {t['load_before'][0]:.1f} |")
    if results.get("end_to_end"):
        lines += ["", "| end to end (defaults) | steps | filters | PSNR (dB) | train+predict (s) "
                  "| load |", "|---|---|---|---|---|---|"]
        for name, entries in results["end_to_end"].items():
            for e in entries:
                config = e["config"]
                held = (f" (held-out {e['held_out_psnr_mean']:.2f})"
                        if "held_out_psnr_mean" in e else "")
                lines.append(f"| {name} | {config['steps']} | "
                             f"{config['network_options'].get('base_filters')} | "
                             f"{e['psnr_mean']:.2f}{held} | {e['total_seconds']:.0f} | "
                             f"{e['load_before'][0]:.1f} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    import torch

    return {
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "numpy": np.__version__,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "infocus": __version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: one short run per method (20 steps)")
    parser.add_argument("--runs", help="comma-separated run names (see --list)")
    parser.add_argument("--list", action="store_true", help="list the runs and exit")
    parser.add_argument("--summary", action="store_true",
                        help="print markdown tables of the newest (or --output) results file")
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--end-to-end", help="comma-separated methods (the library's defaults) or run names: "
                        "time train + predict")
    parser.add_argument("--timing", action="store_true",
                        help="time 60 steps of each run (--runs) with 1 and 2 threads")
    parser.add_argument("--seed", type=int,
                        help="training seed (default 0); the run is stored as NAME-seedN")
    parser.add_argument("--tag", help="suffix for the stored run names (e.g. a code version)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--output", type=Path, help="JSON file (default: results/<date>-...)")
    args = parser.parse_args()
    if args.summary:
        path = args.output or max(RESULTS.glob("*-tune-defaults.json"))
        print(summary(json.loads(path.read_text())))
        return
    if args.list:
        for name, spec in RUNS.items():
            print(name, json.dumps(spec))
        return
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    suffix = "-quick" if args.quick else ""
    output = args.output or RESULTS / f"{date.today().isoformat()}-tune-defaults{suffix}.json"
    results: dict[str, Any] = json.loads(output.read_text()) if output.exists() else {}
    results.setdefault("protocol", __doc__.split("Protocol\n--------\n")[1].split("\n\n")[0])
    results["machine"] = machine()
    results.setdefault("runs", {})
    data = make_data()
    results["images"] = data["names"]
    results["held_out_images"] = data["held_names"]
    results["validation_block"] = validation_block()

    def save() -> None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=1) + "\n")

    if not args.skip_baselines and "baselines" not in results:
        results["baselines"] = baselines(data)
        save()
    if args.timing:
        timings = results.setdefault("timing", [])
        for name in args.runs.split(",") if args.runs else list(RUNS):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                load = os.getloadavg()
                seconds = time_steps(RUNS[name], data)
                timings.append({"run": name, "threads": threads, "seconds_per_step": seconds,
                                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                                "load_before": list(load), "load_after": list(os.getloadavg())})
                print(f"timing {name} threads={threads}: {seconds:.3f} s/step "
                      f"(load {load[0]:.1f})", flush=True)
                save()
        return
    if args.end_to_end:
        results.setdefault("end_to_end", {})
        for name in args.end_to_end.split(","):
            results["end_to_end"].setdefault(name, []).append(end_to_end(name, data))
            save()
        return
    names = args.runs.split(",") if args.runs else (QUICK_RUNS if args.quick else list(RUNS))
    for name in names:
        spec = dict(RUNS[name])
        if args.quick:
            spec["steps"] = 20
        if args.seed is not None:
            spec["seed"] = args.seed
            name = f"{name}-seed{args.seed}"
        name += args.tag or ""
        results["runs"][name] = train_and_score(name, spec, data)
        save()
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
