"""infocus against CAREamics on the same data, network size and training budget.

    python -m benchmarks.peers.compare                       # N2V, N2V2, CARE; 160 steps
    python -m benchmarks.peers.compare --quick               # 4 steps: checks the pipeline
    python -m benchmarks.peers.compare --methods n2v --steps 40 --batch-size 16

Each tool trains and predicts in its own process (CAREamics in ``.venv-peers``, infocus in the
running interpreter), launched under GNU ``/usr/bin/time -v`` for the peak resident memory.

Protocol (also in ``benchmarks/peers/README.md``):

* Data: eight 256×256 clean crops, the four quadrants of ``human_mitosis`` and of
  ``stardist_dsb2018_nuclei`` (../shared/data), as one SYX stack; noisy input
  ``simulate_poisson_gaussian(stack, photons=30, gain=2, offset=100, read_noise=3, rng=0)``.
  The reference is the expected camera image ``2 · 30 · clean / max(stack) + 100``; CARE trains
  on (noisy, reference) pairs, N2V and N2V2 on the noisy stack alone. Both tools predict the
  same eight noisy images they trained on (the usual self-supervised setting).
* Budget: the same number of optimizer steps (default 160), batches of 64 patches of 64×64,
  U-Net depth 2 with 32 base filters on both sides; every other setting is each tool's default.
  CAREamics drops the last, partial batch of each epoch (``drop_last``) so that every step
  of both tools sees exactly ``batch_size`` patches; ``--careamics-partial-batches`` restores
  its default (then half its steps see 56 patches, which flatters its steps/s).
* Scores: PSNR per image with the range of the reference as peak (Laine et al. 2021, Box 1),
  averaged over the eight images; training steps/s = optimizer steps / wall time of the whole
  training call (set-up, validation and checkpoints included); prediction MP/s = input
  megapixels / the median wall time of three prediction calls on the same input (the first
  also builds each tool's prediction set-up; every call's time is in the JSON); peak RSS of
  the whole process.
* CAREamics validates 8 patches after every epoch (here every step); that time is measured
  and a second steps/s ratio leaves it out of CAREamics' time (infocus's two validations of
  32 patches stay in its time, so that ratio is conservative for infocus).
* Ratios are ours/theirs (ΔPSNR is ours − theirs in dB); the goal is ΔPSNR ≥ 0, steps/s and
  MP/s ratios ≥ 1, peak-RSS ratio < 1.

Writes ``benchmarks/results/<date>-peers.json`` and ``.md`` (``-peers-quick`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import datasets
from benchmarks.runner import cpu_model
from infocus import __version__
from infocus.metrics import psnr
from infocus.nets.precision import native_bfloat16
from infocus.noise import simulate_poisson_gaussian
from infocus.noise.simulate import scale_to_photons

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = HERE.parent / "results"
METHODS = ("n2v", "n2v2", "care")
CAMERA = {"photons": 30.0, "gain": 2.0, "offset": 100.0, "read_noise": 3.0}
CROP = 256
TOOLS = ("infocus", "careamics")
TIME = "/usr/bin/time"


# ---------------------------------------------------------------------------------- data
def clean_crops(size: int = CROP) -> tuple[np.ndarray, list[str]]:
    """The four ``size``² quadrants of each of the two fluorescence images, as (8, size, size).

    Every crop must have content: at least 2 % of its pixels brighter than a quarter of the
    image's maximum (a crop of flat background would make the PSNR meaningless).
    """
    crops: list[np.ndarray] = []
    names: list[str] = []
    for name, image in datasets.fluorescence_clean():
        if min(image.shape) < 2 * size:
            raise SystemExit(f"{name} is {image.shape}; need at least {2 * size}² for 4 crops.")
        for y in (0, size):
            for x in (0, size):
                crop = image[y : y + size, x : x + size]
                if np.mean(crop > 0.25 * image.max()) < 0.02:
                    raise SystemExit(f"Crop ({y}, {x}) of {name} is empty background.")
                crops.append(crop)
                names.append(f"{name}[{y}:{y + size},{x}:{x + size}]")
    return np.stack(crops).astype(np.float32), names


def make_data(folder: Path) -> dict[str, Any]:
    """Write ``noisy.npy`` and ``clean.npy`` (expected camera image) into ``folder``."""
    clean, names = clean_crops()
    noisy, _ = simulate_poisson_gaussian(clean, rng=0, **CAMERA)
    reference = (
        CAMERA["gain"] * scale_to_photons(clean, CAMERA["photons"]) + CAMERA["offset"]
    ).astype(np.float32)
    np.save(folder / "noisy.npy", noisy)
    np.save(folder / "clean.npy", reference)
    return {
        "images": names,
        "shape": list(noisy.shape),
        "axes": "SYX",
        **CAMERA,
        "noisy_psnr": [psnr(n, r) for n, r in zip(noisy, reference, strict=True)],
    }


# ------------------------------------------------------------------------------ running
_RSS = re.compile(r"Maximum resident set size \(kbytes\):\s*(\d+)")
_WALL = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\):\s*([\d:.]+)")


def parse_time_v(text: str) -> dict[str, float | None]:
    """Peak RSS (MiB) and wall seconds from the report of GNU ``time -v``."""
    rss = _RSS.findall(text)
    wall = _WALL.findall(text)
    seconds = None
    if wall:
        seconds = 0.0
        for part in wall[-1].split(":"):
            seconds = seconds * 60 + float(part)
    return {"peak_rss_mib": int(rss[-1]) / 1024 if rss else None, "process_seconds": seconds}


def run_tool(
    tool: str, method: str, python: str, folder: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Run one runner under ``/usr/bin/time -v``; its JSON plus peak RSS and exit status."""
    script = HERE / f"{tool}_runner.py"
    command = [
        TIME,
        "-v",
        python,
        str(script),
        "--method",
        method,
        "--noisy",
        str(folder / "noisy.npy"),
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--patch-size",
        str(args.patch_size),
        "--seed",
        str(args.seed),
        "--output-dir",
        str(folder),
    ]
    if method == "care":
        command += ["--clean", str(folder / "clean.npy")]
    if args.tile is not None:
        command += ["--tile", str(args.tile)]
    if tool == "careamics" and not args.careamics_partial_batches:
        command += ["--drop-last"]
    env = dict(os.environ)
    if tool == "infocus":
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO / "src"), str(REPO), env.get("PYTHONPATH")])
        )
    load_before = os.getloadavg()[0]
    completed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder)
    log = folder / f"{tool}-{method}.log"
    log.write_text(completed.stdout + "\n--- stderr ---\n" + completed.stderr)
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.splitlines()[-25:])
        raise SystemExit(
            f"{tool} {method} failed (exit {completed.returncode}); see {log}:\n{tail}"
        )
    result = json.loads((folder / f"{tool}-{method}.json").read_text())
    result.update(parse_time_v(completed.stderr))
    result["load_average_before"] = load_before
    result["load_average_after"] = os.getloadavg()[0]
    return result


def score(prediction: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    """Mean and per-image PSNR with the reference's range as peak."""
    values = [psnr(p, r) for p, r in zip(prediction, reference, strict=True)]
    return {"psnr": float(np.mean(values)), "psnr_per_image": values}


def checks(
    method: str, runs: dict[str, dict[str, Any]], noisy_sha: str, steps: int, batch_size: int
) -> dict[str, bool]:
    ours, theirs = runs["infocus"], runs["careamics"]
    return {
        "optimizer_steps_equal_budget": all(r["optimizer_steps"] == steps for r in runs.values()),
        "step_counters_agree": (
            theirs["lightning_global_step"] == theirs["optimizer_steps"]
            and ours["history_last_step"] == ours["optimizer_steps"]
        ),
        "patches_per_step_equal": all(r["batch_sizes_seen"] == [batch_size] for r in runs.values()),
        "same_input_predicted": ours["input_sha256"] == theirs["input_sha256"] == noisy_sha,
        "same_output_shape": ours["output_shape"] == theirs["output_shape"] == ours["input_shape"],
        "same_parameter_count": ours["parameters"] == theirs["parameters"],
        "outputs_finite": ours["output_finite"] and theirs["output_finite"],
    }


def steps_per_second_without_validation(run: dict[str, Any]) -> float:
    """Optimizer steps per second of the training call less its measured validation time
    (CAREamics validates after every epoch; infocus's time is not split, so it is unchanged)."""
    seconds = run["train_seconds"] - (run.get("validation_seconds") or 0.0)
    return run["optimizer_steps"] / seconds


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float]:
    return {
        "psnr_difference_db": ours["psnr"] - theirs["psnr"],
        "train_steps_per_second": ours["steps_per_second"] / theirs["steps_per_second"],
        # Conservative for infocus: only CAREamics' validation time is taken out.
        "train_steps_per_second_vs_careamics_without_validation": (
            ours["steps_per_second"] / steps_per_second_without_validation(theirs)
        ),
        "predict_megapixels_per_second": (
            ours["megapixels_per_second"] / theirs["megapixels_per_second"]
        ),
        "peak_rss": ours["peak_rss_mib"] / theirs["peak_rss_mib"],
    }


# ------------------------------------------------------------------------------ report
def markdown(results: dict[str, Any]) -> str:
    p = results["protocol"]
    lines = [
        f"**infocus {results['machine']['infocus']} vs CAREamics "
        f"{results['machine'].get('careamics', '?')}**: {p['steps']} optimizer steps of "
        f"{p['batch_size']} patches of {p['patch_size']}², U-Net depth 2 / 32 filters, "
        f"8 images 256² at {CAMERA['photons']:g} peak photons (noisy input "
        f"{results['data']['noisy_psnr_mean']:.2f} dB); "
        f"{results['machine']['cpu_count']} CPU cores"
        + (f" ({results['machine']['cpu']}"
           + (", with bfloat16 units (AMX)" if results["machine"].get("bfloat16_native") else "")
           + ")" if results["machine"].get("cpu") else "") + ".",
        "",
        "| method | tool | PSNR (dB) | train s | of which validation s | steps/s | "
        "predict s | MP/s | peak RSS (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method, entry in results["methods"].items():
        for tool in TOOLS:
            r = entry[tool]
            validation = (
                f"{r['validation_seconds']:.1f} ({r['validation_runs']} runs)"
                if r.get("validation_seconds") is not None
                else f"not split ({r['validation_runs']} runs)"
            )
            lines.append(
                f"| {method} | {tool} | {r['psnr']:.2f} | {r['train_seconds']:.1f} | "
                f"{validation} | {r['steps_per_second']:.3f} | {r['predict_seconds']:.2f} | "
                f"{r['megapixels_per_second']:.3f} | {r['peak_rss_mib']:.0f} |"
            )
    lines += [
        "",
        "| method | ΔPSNR (dB, ours − theirs) | steps/s ratio | steps/s ratio, CAREamics "
        "without validation | MP/s ratio | peak RSS ratio | checks |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for method, entry in results["methods"].items():
        q = entry["ratios"]
        ok = (
            "all pass"
            if all(entry["checks"].values())
            else "FAIL: " + ", ".join(k for k, v in entry["checks"].items() if not v)
        )
        lines.append(
            f"| {method} | {q['psnr_difference_db']:+.2f} | "
            f"{q['train_steps_per_second']:.2f} | "
            f"{q['train_steps_per_second_vs_careamics_without_validation']:.2f} | "
            f"{q['predict_megapixels_per_second']:.2f} | {q['peak_rss']:.2f} | {ok} |"
        )
    lines += [
        "",
        "Ratios are infocus / CAREamics: goal ΔPSNR ≥ 0, steps/s and MP/s ≥ 1, peak RSS < 1.",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--methods", default=",".join(METHODS), help="comma-separated subset of n2v,n2v2,care"
    )
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (160)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument(
        "--tile",
        type=int,
        default=CROP,
        help="prediction tile edge for both tools (256: whole images)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="4 steps: test the pipeline")
    parser.add_argument(
        "--careamics-partial-batches",
        action="store_true",
        help="keep CAREamics' last partial batch of each epoch (its default)",
    )
    parser.add_argument("--peers-python", default=str(REPO / ".venv-peers" / "bin" / "python"))
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="keep data, predictions and logs here (default: a temporary folder)",
    )
    parser.add_argument("--output", type=Path, default=None, help="result JSON path")
    args = parser.parse_args(argv)
    args.steps = args.steps if args.steps is not None else (4 if args.quick else 160)
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(TIME).is_file():
        raise SystemExit("GNU time is missing: install it (apt-get install time).")
    if not Path(args.peers_python).is_file():
        raise SystemExit(
            f"{args.peers_python} not found: build the peers environment first "
            "(bash ../shared/peers/setup_venv.sh .venv-peers)."
        )
    started = time.perf_counter()
    keep = args.work_dir is not None
    folder = args.work_dir or Path(tempfile.mkdtemp(prefix="infocus-peers-"))
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        data = make_data(folder)
        noisy = np.load(folder / "noisy.npy")
        reference = np.load(folder / "clean.npy")
        noisy_sha = hashlib.sha256(np.ascontiguousarray(noisy, np.float32).tobytes()).hexdigest()
        results: dict[str, Any] = {
            "date": date.today().isoformat(),
            "quick": args.quick,
            "machine": {
                "cpu": cpu_model(),
                "bfloat16_native": native_bfloat16("cpu"),
                "cpu_count": os.cpu_count(),
                "platform": platform.platform(),
                "processor": platform.processor() or platform.machine(),
                "python": platform.python_version(),
                "infocus": __version__,
            },
            "protocol": {
                "steps": args.steps,
                "batch_size": args.batch_size,
                "patch_size": args.patch_size,
                "network": "U-Net depth 2, 32 filters",
                "prediction_tile": args.tile,
                "seed": args.seed,
                "careamics_drop_last": not args.careamics_partial_batches,
                "psnr": "mean over images, peak = range of the reference",
            },
            "data": {
                **data,
                "noisy_psnr_mean": float(np.mean(data["noisy_psnr"])),
                "noisy_sha256": noisy_sha,
            },
            "methods": {},
        }
        for method in args.methods:
            runs: dict[str, dict[str, Any]] = {}
            for tool in TOOLS:
                python = sys.executable if tool == "infocus" else args.peers_python
                print(f"{method}: training {tool} for {args.steps} steps ...", flush=True)
                run = run_tool(tool, method, python, folder, args)
                run.update(score(np.load(folder / f"{tool}-{method}.npy"), reference))
                runs[tool] = run
                print(
                    f"  {tool}: PSNR {run['psnr']:.2f} dB, {run['optimizer_steps']} steps in "
                    f"{run['train_seconds']:.1f} s, predict {run['predict_seconds']:.2f} s, "
                    f"peak RSS {run['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
            results["machine"]["careamics"] = runs["careamics"]["versions"]["careamics"]
            results["methods"][method] = {
                **runs,
                "ratios": ratios(runs["infocus"], runs["careamics"]),
                "checks": checks(method, runs, noisy_sha, args.steps, args.batch_size),
            }
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    results["wall_seconds"] = time.perf_counter() - started
    suffix = "-peers-quick" if args.quick else "-peers"
    output = args.output or RESULTS / f"{results['date']}{suffix}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1))
    table = markdown(results)
    output.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"wrote {output} and {output.with_suffix('.md')}")
    failed = [m for m, e in results["methods"].items() if not all(e["checks"].values())]
    if failed:
        print(f"checks FAILED for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
