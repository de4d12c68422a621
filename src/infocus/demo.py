"""The demo job: simulated low light on the embedded sample, every method, one report."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from infocus._errors import InfocusInputError, OutputExistsError
from infocus.io import is_infocus_folder

__all__ = ["load_sample", "run_demo"]

#: Training budget of the demo's Noise2Void (trained on the noisy image itself).
DEMO_N2V_STEPS = 400
#: Camera of the simulated acquisition: gain a (ADU/e-), offset (ADU), read noise (ADU).
DEMO_CAMERA = {"gain": 2.0, "offset": 100.0, "read_noise": 3.0}


def load_sample() -> np.ndarray:
    """The embedded sample: HT29 cells, DNA stain, 512×512 uint8 (CC0; see the README)."""
    import tifffile

    with resources.as_file(resources.files("infocus.data") / "human_mitosis.tif") as path:
        return tifffile.imread(path)


def run_demo(
    output: Path,
    *,
    photons: float = 20.0,
    seed: int = 0,
    methods: list[str] | None = None,
    learned_steps: int = DEMO_N2V_STEPS,
    overwrite: bool = False,
    console: Any = None,
) -> dict[str, Any]:
    """Simulate low light on the sample, denoise it with each method and write a report.

    The outputs (``clean.tif``, ``noisy.tif``, one TIFF per method, ``comparison.png``,
    ``metrics.md``, ``metrics.json``) are written to a temporary folder that replaces
    ``output`` only when everything succeeded.

    Returns
    -------
    dict
        The metrics table: ``{method: {"psnr", "ssim", "si_psnr", "seconds"}}``.
    """
    from infocus.classical import get_denoiser, list_denoisers
    from infocus.io import write_image
    from infocus.noise import estimate_noise, simulate_poisson_gaussian

    say = console.print if console is not None else print
    output = Path(output).expanduser()
    if output.exists() and not overwrite:
        raise OutputExistsError(
            f"Output folder {output} already exists; pass --overwrite to replace it or choose another."
        )
    if output.exists() and not is_infocus_folder(output):
        raise InfocusInputError(
            f"{output} is not a demo output (no metrics.json and comparison.png); --overwrite "
            "replaces only a folder the demo wrote, so choose another output folder."
        )
    if methods is None:
        methods = [m for m in list_denoisers() if m != "bm4d"]  # bm4d equals bm3d on one plane
        if learned_steps:
            from infocus.methods import DEFAULT_METHOD

            methods.append(DEFAULT_METHOD)
    learned = _self_supervised(methods)

    sample = load_sample().astype(np.float32)
    noisy, true_noise = simulate_poisson_gaussian(sample, photons=photons, rng=seed, **DEMO_CAMERA)
    # The clean image in the same camera units as the noisy one (expected value of x).
    clean = (sample / sample.max() * photons * DEMO_CAMERA["gain"] + DEMO_CAMERA["offset"]).astype(
        np.float32
    )
    estimated = estimate_noise(noisy, axes="YX")
    say(
        f"Simulated {photons:g} peak photons; true noise {true_noise.to_dict()}, "
        f"estimated gain {estimated.gain:.3g}, intercept {estimated.variance_intercept:.3g}"
    )

    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        results: dict[str, dict[str, float]] = {}
        images = {"clean": clean, "noisy": noisy}
        write_image(staging / "clean.tif", clean, axes="YX")
        write_image(staging / "noisy.tif", noisy, axes="YX")
        results["noisy input"] = _scores(noisy, clean, seconds=0.0)
        for name in methods:
            try:
                start = time.perf_counter()
                if name in learned:
                    denoised = _trained_on_itself(noisy, name, learned_steps, seed)
                else:
                    denoised = get_denoiser(name)(noisy, axes="YX", noise=estimated)
            except ImportError as error:  # optional extra not installed
                say(f"[yellow]skipped {name}:[/] {error}" if console else f"skipped {name}: {error}")
                continue
            seconds = time.perf_counter() - start
            images[name] = denoised
            write_image(staging / f"{name}.tif", denoised, axes="YX")
            results[name] = _scores(denoised, clean, seconds=seconds)
            say(f"  {name:<10} PSNR {results[name]['psnr']:6.2f} dB  ({seconds:.1f} s)")
        (staging / "metrics.json").write_text(
            json.dumps({"photons": photons, "camera": DEMO_CAMERA, "seed": seed, "results": results},
                       indent=2)
        )
        (staging / "metrics.md").write_text(_markdown(results, photons))
        _figure(images, results, staging / "comparison.png")
        if output.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
            output.rename(trash / output.name)
            staging.rename(output)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(f"Demo outputs are in {output.resolve()}: comparison.png, metrics.md, and one TIFF per method.")
    return results


def _self_supervised(methods: list[str]) -> set[str]:
    """The registered learned methods among ``methods`` that train on the noisy image alone."""
    from infocus.classical import list_denoisers

    candidates = [m for m in methods if m not in list_denoisers()]
    if not candidates:
        return set()
    from infocus.methods import create_scheme, list_schemes

    return {m for m in candidates if m in list_schemes() and not create_scheme(m).needs_target}


def _trained_on_itself(noisy: np.ndarray, method: str, steps: int, seed: int) -> np.ndarray:
    """A self-supervised method trained on the noisy image alone, then applied to it."""
    from infocus.training.loop import train

    model = train(noisy, method=method, axes="YX", steps=steps, seed=seed, progress=False)
    return model.denoise(noisy, axes="YX")


def _scores(image: np.ndarray, clean: np.ndarray, *, seconds: float) -> dict[str, float]:
    from infocus.metrics import psnr, si_psnr, ssim

    return {
        "psnr": psnr(image, clean),
        "ssim": ssim(image, clean),
        "si_psnr": si_psnr(image, clean),
        "seconds": seconds,
    }


def _markdown(results: dict[str, dict[str, float]], photons: float) -> str:
    lines = [
        f"# infocus demo: {photons:g} peak photons, camera {DEMO_CAMERA}",
        "",
        "PSNR/SSIM against the clean image (data range = its max − min). Parameters automatic;",
        "Learned methods train on the noisy image itself (seconds include their training).",
        "",
        "| method | PSNR (dB) | SSIM | SI-PSNR (dB) | seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['si_psnr']:.2f} | {r['seconds']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _figure(images: dict[str, np.ndarray], results: dict[str, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    crop = (slice(128, 384), slice(128, 384))
    names = list(images)
    columns = 4
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.2 * columns, 3.6 * rows), layout="constrained"
    )
    low, high = np.percentile(images["clean"], [0.5, 99.8])
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, name in zip(np.ravel(axes), names, strict=False):
        ax.imshow(images[name][crop], cmap="magma", vmin=low, vmax=high, interpolation="nearest")
        key = "noisy input" if name == "noisy" else name
        title = name if name == "clean" else f"{name}\n{results[key]['psnr']:.2f} dB"
        ax.set_title(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
