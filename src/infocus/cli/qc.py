"""``infocus qc``: how good a denoised image is, and where not to trust it, without ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from infocus._errors import InfocusInputError
from infocus.cli._common import (
    check_output,
    console,
    model_signature,
    print_json,
    reference_name,
    reports_errors,
    stdout,
)
from infocus.cli.app import (
    AxesOption,
    JsonOption,
    MethodOption,
    OverwriteOption,
    _learned,
    _noise_from_options,
    _parse_params,
    app,
)


@app.command("qc")
@reports_errors
def qc_command(
    noisy: Annotated[Path, typer.Argument(help="The raw (noisy) image.")],
    denoised: Annotated[Path, typer.Argument(help="A denoiser's output for it, same units.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Report folder to write (qc.json, flags.tif, maps, "
                     "report.html)."),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option("--method", "-m", help="The classical method that made DENOISED (with its "
                     "-p options): lets the error estimate re-run it (SURE)."),
    ] = None,
    param: MethodOption = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="The trained model that made DENOISED: lets the error "
                     "estimate re-run it (SURE)."),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option("--reference", help="A classical method (automatic parameters) whose output "
                     "for NOISY DENOISED is compared with: regions where the two differ beyond "
                     "chance are flagged. Default with --model: bm3d when installed, else "
                     "wavelet; 'none' skips the comparison. Stacks over 4 million pixels are "
                     "compared on an evenly spaced sample of planes."),
    ] = None,
    captures: Annotated[
        list[Path] | None,
        typer.Option("--captures", help="Another raw capture of the same field of view "
                     "(repeatable): the error estimate then uses it (Noise2Noise identity)."),
    ] = None,
    gt: Annotated[
        Path | None,
        typer.Option("--gt", help="Ground truth, when known: true PSNR and SSIM beside the "
                     "estimates."),
    ] = None,
    axes: AxesOption = None,
    sigma: Annotated[float | None, typer.Option(help="Known Gaussian noise std.")] = None,
    gain: Annotated[float | None, typer.Option(help="Known camera gain (with --read-noise).")] = None,
    offset: Annotated[float | None, typer.Option(help="Known camera offset.")] = None,
    read_noise: Annotated[float | None, typer.Option(help="Known read-noise std.")] = None,
    data_range: Annotated[
        float | None,
        typer.Option(help="PSNR peak; default the ground truth's range, else the output's."),
    ] = None,
    as_json: JsonOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Check a denoised image against its measurement, without ground truth.

    Estimates the PSNR of DENOISED against the unknown clean image (with a 95 % interval),
    maps regions where DENOISED disagrees with the measurement beyond what the noise explains
    (structures added or removed, brightness changed), and compares the integrated intensity
    of each object. Works for any denoiser; --method or --model lets the estimate re-run it
    (narrower interval), --captures uses other raw captures of the scene. With --model, NOISY
    is also compared with the model's training data (intensities, noise, structure): a model
    applied to data unlike its training data may invent what it learnt there; DENOISED is then
    also compared with a classical denoiser's output (--reference), which cannot invent learnt
    structures: where the two differ beyond chance is a region to look at (it does not say
    which one is right).

    With --json, one JSON object on stdout: psnr_estimate, psnr_interval, flagged (true when
    any check failed), checks (each with its figures). REPORT_DIR/flags.tif is non-zero exactly
    where the output should not be trusted.

    Examples:

      [cyan]infocus qc noisy.tif denoised.tif -o qc-report[/]

      [cyan]infocus qc noisy.tif bm3d.tif -m bm3d -o qc-report --json[/]

      [cyan]infocus qc noisy.tif out.tif --model n2v-model --captures second.tif -o qc[/]
    """
    from infocus.io import read_image
    from infocus.qc import quality_check
    from infocus.qc.page import write_report

    if method is not None and model is not None:
        raise InfocusInputError("Give --method or --model, not both: one denoiser made the output.")
    if param and method is None:
        raise InfocusInputError("-p sets options of --method; give the method too.")
    if output is not None:
        check_output(output, overwrite)
    noise = _noise_from_options(sigma, gain, offset, read_noise)
    raw = read_image(noisy, axes=axes)
    out = _like(denoised, raw, "denoised image", axes)
    others = [_like(path, raw, "other capture", axes).data for path in captures or []]
    truth = _like(gt, raw, "ground truth", axes).data if gt is not None else None
    denoiser, trained = _denoiser(method, param or [], model, raw.axes, noise)
    classical = _reference_name(reference, model is not None)
    with console.status("checking (the denoiser runs twice more for the error estimate)"
                        if denoiser else "checking"):
        report = quality_check(raw.data, out.data, axes=raw.axes, noise=noise,
                               denoiser=denoiser, captures=others, ground_truth=truth,
                               data_range=data_range, signature=model_signature(trained),
                               reference=classical)
    if output is not None:
        write_report(report, raw.data, out.data, output, ground_truth=truth,
                     overwrite=overwrite, title=f"{denoised.name} against {noisy.name}")
    if as_json:
        summary = report.to_dict()
        if output is not None:
            summary["report"] = str(output)
        print_json(summary)
        return
    _print_report(report)
    if output is not None:
        console.print(f"Wrote {output} (open {output / 'report.html'} in a browser).")


def _like(path: Path, raw: Any, name: str, axes: str | None) -> Any:
    """``path`` read with the noisy image's axes, or one sentence saying how they differ."""
    from infocus.io import read_image

    try:
        image = read_image(path, axes=axes or raw.axes)
    except InfocusInputError:
        if axes:
            raise
        image = read_image(path)
    if image.data.shape != raw.data.shape:
        raise InfocusInputError(
            f"The {name} {path.name} is {image.axes} {image.data.shape} but the noisy image is "
            f"{raw.axes} {raw.data.shape}; pass images of the same field of view, same size."
        )
    return image


def _reference_name(reference: str | None, trained: bool) -> str | None:
    """The classical method to compare the output with, or None."""
    import importlib.util

    # BM3D is the stronger classical reference but an optional, non-commercial dependency.
    default = "bm3d" if importlib.util.find_spec("bm3d") is not None else "wavelet"
    return reference_name(reference, default if trained else None, flag="--reference")


def _denoiser(method: str | None, pairs: list[str], model: Path | None, axes: str,
              noise: Any) -> tuple[Any, Any]:
    """``image -> output`` of the denoiser that made the output, when the user named it, and
    the trained model (or None)."""
    if model is not None:
        from infocus.predict.model import load_model

        loaded = load_model(model)
        return (lambda image: loaded.denoise(image, axes=axes)), loaded
    if method is None:
        return None, None
    if _learned(method) is not None:
        raise InfocusInputError(
            f"{method!r} is a learned method: pass the model it trained with --model instead "
            "of --method (re-training for the estimate would give another denoiser)."
        )
    from infocus.classical import get_denoiser

    function = get_denoiser(method)
    params = _parse_params(pairs, function, method)
    return (lambda image: function(image, axes=axes, noise=noise, **params)), None


def _print_report(report: Any) -> None:
    psnr, low, high = report.psnr
    table = Table(title="Quality check (no ground truth needed)")
    for column in ("check", "result", "finding"):
        table.add_column(column)
    table.add_row("PSNR", f"{psnr:.2f} dB", escape(report.psnr_text()))
    for check in report.checks:
        table.add_row(check.name, "passed" if check.passed else "[bold red]FAILED[/]",
                      escape(check.summary))
    if report.truth is not None:
        table.add_row("ground truth", f"{report.truth['psnr']:.2f} dB",
                      f"SSIM {report.truth['ssim']:.4f}")
    stdout.print(table)
