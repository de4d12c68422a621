"""The ``infocus`` command line: simulate, estimate-noise, denoise, evaluate, methods, demo."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from infocus._errors import InfocusInputError
from infocus.cli._common import (
    console,
    print_json,
    progress_bar,
    refuse_existing,
    reports_errors,
    stdout,
)

app = typer.Typer(
    name="infocus",
    help=(
        "Denoise fluorescence-microscopy images and measure how far to trust the result.\n\n"
        "Axes are letters over S T C Z Y X (sample, time, channel, depth, rows, columns); they are "
        "read from TIFF/OME-Zarr metadata when present, else give them with --axes."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

AxesOption = Annotated[
    str | None,
    typer.Option("--axes", "-a", help="Axes of the input, e.g. YX, ZYX, TYX, CYX, TCZYX."),
]
OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace the output if it exists.")
]
DtypeOption = Annotated[
    str,
    typer.Option(
        "--dtype", help="Output pixel type: float32 (default), uint16 or uint8 (rounded, clipped)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]

_RESERVED = {"image", "axes", "noise", "vst", "progress"}


def _parse_params(pairs: list[str], function: Any, method: str) -> dict[str, Any]:
    """``["sigma=2", "size=5"]`` -> typed keyword arguments accepted by ``function``."""
    accepted = {
        name: p
        for name, p in inspect.signature(function).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in _RESERVED
    }
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise InfocusInputError(f"Method option {pair!r} is not NAME=VALUE; write e.g. -p sigma=2.")
        if name not in accepted:
            known = ", ".join(sorted(accepted)) or "none"
            raise InfocusInputError(
                f"Method {method!r} has no option {name!r}; its options are: {known}."
            )
        params[name] = _coerce(text.strip())
    return params


def _coerce(text: str) -> Any:
    lowered = text.lower()
    if lowered in {"true", "yes", "on"}:
        return True
    if lowered in {"false", "no", "off"}:
        return False
    if lowered in {"none", "auto"}:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _noise_from_options(
    sigma: float | None, gain: float | None, offset: float | None, read_noise: float | None
) -> Any:
    from infocus.noise import NoiseParams

    if sigma is not None:
        if any(v is not None for v in (gain, read_noise)):
            raise InfocusInputError(
                "--sigma describes purely Gaussian noise; give either --sigma or --gain/--read-noise."
            )
        return NoiseParams.gaussian(sigma)
    if gain is None and read_noise is None:
        return None
    if gain is None or read_noise is None:
        raise InfocusInputError(
            "Give both --gain and --read-noise (and --offset, default 0) to fix the noise model, "
            "or neither to estimate it from the image."
        )
    return NoiseParams.from_camera(gain=gain, offset=offset or 0.0, read_noise=read_noise)


@app.command()
@reports_errors
def simulate(
    clean: Annotated[Path, typer.Argument(help="Clean image (any supported format).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Noisy image to write.")],
    photons: Annotated[
        float, typer.Option(help="Expected photons at the brightest pixel of CLEAN.", min=1e-6)
    ],
    gain: Annotated[float, typer.Option(help="Camera units per photo-electron (a).", min=0)] = 1.0,
    offset: Annotated[float, typer.Option(help="Camera offset added to every pixel.")] = 0.0,
    read_noise: Annotated[
        float, typer.Option(help="Std of the Gaussian read noise, camera units.", min=0)
    ] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Random seed, for a reproducible draw.")] = None,
    axes: AxesOption = None,
    dtype: DtypeOption = "float32",
    overwrite: OverwriteOption = False,
) -> None:
    """Simulate low-light acquisition of a clean image: x = a·Poisson(s) + offset + N(0, σ²).

    CLEAN is scaled so that its maximum is PHOTONS expected photons.

    Example: [cyan]infocus simulate cells.tif -o noisy.tif --photons 30 --gain 2 --offset 100 --read-noise 3 --seed 0[/]
    """
    from infocus.io import read_image, write_image
    from infocus.noise import simulate_poisson_gaussian

    refuse_existing(output, overwrite)
    image = read_image(clean, axes=axes)
    noisy, params = simulate_poisson_gaussian(
        image.data, photons=photons, gain=gain, offset=offset, read_noise=read_noise, rng=seed
    )
    written = write_image(output, image.with_data(noisy), dtype=dtype, overwrite=overwrite)
    console.print(f"Wrote {written} ({image.axes} {noisy.shape}); noise: {params.to_dict()}")


@app.command("estimate-noise")
@reports_errors
def estimate_noise_command(
    image: Annotated[Path, typer.Argument(help="A noisy image.")],
    axes: AxesOption = None,
    offset: Annotated[
        float | None,
        typer.Option(help="Camera offset, if known; then the read noise is reported too."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Estimate the noise-variance function Var[x | E[x] = y] = gain·y + variance_intercept.

    Uses one image (all planes of a stack are pooled).

    Example: [cyan]infocus estimate-noise noisy.tif --json[/]
    """
    from infocus.io import read_image
    from infocus.noise import estimate_noise

    loaded = read_image(image, axes=axes)
    params = estimate_noise(loaded.data, axes=loaded.axes, offset=offset)
    if as_json:
        print_json(params.to_dict())
        return
    table = Table(title=f"Noise model of {image.name}: Var = gain·E[x] + variance_intercept")
    table.add_column("parameter")
    table.add_column("value", justify="right")
    for key, value in params.to_dict().items():
        table.add_row(key, f"{value:.6g}")
    stdout.print(table)


@app.command()
@reports_errors
def denoise(
    image: Annotated[Path, typer.Argument(help="Noisy image.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Denoised image to write.")],
    method: Annotated[str, typer.Option("--method", "-m", help="Denoiser; see `infocus methods`.")],
    axes: AxesOption = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Method option NAME=VALUE (repeatable), e.g. -p sigma=2."),
    ] = None,
    sigma: Annotated[
        float | None, typer.Option(help="Known Gaussian noise std (skips noise estimation).")
    ] = None,
    gain: Annotated[float | None, typer.Option(help="Known camera gain (with --read-noise).")] = None,
    offset: Annotated[float | None, typer.Option(help="Known camera offset.")] = None,
    read_noise: Annotated[float | None, typer.Option(help="Known read-noise std.")] = None,
    vst: Annotated[
        bool | None,
        typer.Option(
            "--vst/--no-vst",
            help="Force the variance-stabilising transform on/off (default: automatic).",
        ),
    ] = None,
    dtype: DtypeOption = "float32",
    overwrite: OverwriteOption = False,
) -> None:
    """Denoise an image with a classical method; parameters are automatic unless given.

    Examples:

      [cyan]infocus denoise noisy.tif -o clean.tif --method bm3d[/]

      [cyan]infocus denoise stack.tif -o out.tif -m nl_means --axes TYX -p h=0.6[/]
    """
    from infocus.classical import get_denoiser
    from infocus.io import read_image, write_image

    function = get_denoiser(method)
    params = _parse_params(param or [], function, method)
    noise = _noise_from_options(sigma, gain, offset, read_noise)
    refuse_existing(output, overwrite)
    loaded = read_image(image, axes=axes)
    with progress_bar(f"{method}") as progress:
        result = function(
            loaded.data, axes=loaded.axes, noise=noise, vst=vst, progress=progress, **params
        )
    written = write_image(output, loaded.with_data(result), dtype=dtype, overwrite=overwrite)
    console.print(f"Wrote {written} ({loaded.axes} {result.shape}, {dtype}).")


@app.command()
@reports_errors
def evaluate(
    prediction: Annotated[Path, typer.Argument(help="Denoised (or raw) image.")],
    ground_truth: Annotated[Path, typer.Argument(help="Clean reference of the same shape.")],
    axes: AxesOption = None,
    data_range: Annotated[
        float | None,
        typer.Option(help="PSNR peak; default max−min of the ground truth (255 for FMD/BSD68)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Compare an image with its ground truth: MSE, PSNR, SSIM and scale-invariant PSNR.

    PSNR = 10·log10(R² / MSE) with R = max(gt) − min(gt) unless --data-range is given
    (Laine et al. 2021, Box 1). Paths may be two files or two folders of files with
    matching names (then every pair is scored and the mean reported).

    Example: [cyan]infocus evaluate denoised.tif gt.tif --json[/]
    """
    from infocus.io import read_image
    from infocus.metrics import METRICS
    from infocus.metrics import evaluate as evaluate_arrays

    pairs = _pairs(prediction, ground_truth)
    rows: list[dict[str, Any]] = []
    for pred_path, gt_path in pairs:
        gt = read_image(gt_path, axes=axes)
        pred = read_image(pred_path, axes=axes or gt.axes)
        result = evaluate_arrays(pred.data, gt.data, axes=gt.axes, data_range=data_range)
        for row in result["per_image"]:
            rows.append({"file": pred_path.name, **row})
    mean = {name: float(np.mean([r[name] for r in rows])) for name in METRICS}
    if as_json:
        print_json({"per_image": rows, "mean": mean, "n_images": len(rows)})
        return
    table = Table(title="Quality against ground truth")
    for column in ("image", "MSE", "PSNR (dB)", "SSIM", "SI-PSNR (dB)"):
        table.add_column(column, justify="right" if column != "image" else "left")
    for r in rows if len(rows) <= 50 else []:
        label = r["file"] + (f" {r['index']}" if r["index"] else "")
        table.add_row(label, f"{r['mse']:.4g}", f"{r['psnr']:.2f}", f"{r['ssim']:.4f}", f"{r['si_psnr']:.2f}")
    table.add_row(
        f"[bold]mean of {len(rows)}[/]",
        f"{mean['mse']:.4g}",
        f"{mean['psnr']:.2f}",
        f"{mean['ssim']:.4f}",
        f"{mean['si_psnr']:.2f}",
    )
    stdout.print(table)


def _pairs(prediction: Path, ground_truth: Path) -> list[tuple[Path, Path]]:
    if prediction.is_dir() != ground_truth.is_dir() and ground_truth.exists():
        raise InfocusInputError(
            f"{prediction} and {ground_truth} must both be files or both be folders."
        )
    if not prediction.is_dir():
        return [(prediction, ground_truth)]
    files = sorted(p for p in prediction.iterdir() if p.is_file() and not p.name.startswith("."))
    pairs = [(p, ground_truth / p.name) for p in files if (ground_truth / p.name).exists()]
    if not pairs:
        raise InfocusInputError(
            f"No file in {prediction} has a namesake in {ground_truth}; pair images by file name."
        )
    return pairs


@app.command()
@reports_errors
def methods() -> None:
    """List the available denoising methods."""
    from infocus.classical import get_denoiser, list_denoisers

    table = Table(title="Denoising methods")
    table.add_column("name")
    table.add_column("description")
    for name in list_denoisers():
        doc = inspect.getdoc(get_denoiser(name)) or ""
        table.add_row(name, doc.splitlines()[0] if doc else "")
    stdout.print(table)


@app.command()
@reports_errors
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the demo outputs.")
    ] = Path("infocus-demo"),
    photons: Annotated[float, typer.Option(help="Peak photons of the simulated low light.")] = 20.0,
    seed: Annotated[int, typer.Option(help="Random seed of the simulated noise.")] = 0,
    overwrite: OverwriteOption = False,
) -> None:
    """Simulate low light on the embedded sample, denoise it with every method, report metrics.

    Writes TIFFs, a side-by-side figure (PNG) and a metrics table (Markdown and JSON).

    Example: [cyan]infocus demo --output demo-output[/]
    """
    from infocus.demo import run_demo

    run_demo(output, photons=photons, seed=seed, overwrite=overwrite, console=console)


def main() -> None:
    """Console-script entry point."""
    app()
