"""``infocus export``: a trained model as ONNX, TorchScript or a BioImage Model Zoo package;
and ``infocus predict`` with a bioimage.io package made elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from infocus._errors import InfocusInputError
from infocus.cli._common import check_output, console, progress_bar, reports_errors
from infocus.cli._figures import check_preview, write_file_preview
from infocus.cli.app import AxesOption, OverwriteOption, app


@app.command("export")
@reports_errors
def export_command(
    model: Annotated[Path, typer.Argument(help="Model folder or .zip from `infocus train`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write: .onnx, .pt "
                                         "(TorchScript) or .zip (bioimage.io package).")],
    format: Annotated[
        str | None,
        typer.Option("--format", "-f", help="onnx, torchscript or bioimageio (default: from the "
                     "output's ending)."),
    ] = None,
    sample: Annotated[
        Path | None,
        typer.Option(help="bioimage.io: the image to cut the package's test input and cover "
                     "from (default: the embedded sample at the model's intensities)."),
    ] = None,
    axes: AxesOption = None,
    author: Annotated[
        list[str] | None,
        typer.Option("--author", help="bioimage.io: an author of the package; repeatable."),
    ] = None,
    license: Annotated[
        str, typer.Option(help="bioimage.io: SPDX licence of the weights.")
    ] = "CC-BY-4.0",
    check: Annotated[
        bool,
        typer.Option("--check/--no-check", help="bioimage.io: run bioimageio.core's model test "
                     "on the package before it is written (default: on)."),
    ] = True,
    overwrite: OverwriteOption = False,
) -> None:
    """Export a trained model for other tools: ONNX, TorchScript or a BioImage Model Zoo package.

    The exported model takes and returns images in the training data's camera units; it is
    the network with its normalisation. What infocus's prediction does besides (pixel
    fusion, intensity calibration) is printed, and written into a package's README.
    Methods whose prediction is more than a network (pn2v, divnoising, deepcad) are refused.

    Examples:

      [cyan]infocus export n2v-model -o n2v.onnx[/]

      [cyan]infocus export care-model.zip -o care-bioimageio.zip --author "A. Person"[/]
    """
    from infocus.export import export_model, format_for

    chosen = format or format_for(output)
    check_output(output, overwrite)
    options: dict[str, Any] = {}
    if chosen == "bioimageio":
        options = {"authors": tuple(author or ()), "license": license, "check": check}
        if sample is not None:
            from infocus.io import read_image

            image = read_image(sample, axes=axes)
            options.update(sample=image.data, sample_axes=image.axes)
    elif sample is not None or author:
        raise InfocusInputError("--sample and --author describe a bioimage.io package; drop "
                                "them for --format onnx or torchscript.")
    with console.status(f"Exporting to {chosen}"):
        left_out = export_model(model, output, format=chosen, overwrite=overwrite, **options)
    console.print(f"Wrote {output} ({chosen}).")
    if chosen == "bioimageio" and check:
        console.print("bioimageio.core's model test passed (both weight formats).")
    for line in left_out:
        console.print(f"[yellow]{line}[/]")


def predict_package(package: Path, image: Path, output: Path, *, axes: str | None,
                    dtype: str, overwrite: bool, preview: Path | None,
                    unsupported: dict[str, Any]) -> None:
    """``infocus predict`` with a bioimage.io package: read, denoise block by block through
    bioimageio.core, write atomically."""
    from infocus.export.bioimageio import load_package
    from infocus.io import read_image, write_image

    given = [name for name, value in unsupported.items() if value not in (None, False)]
    if given:
        raise InfocusInputError(
            f"--{given[0].replace('_', '-')} needs an infocus model; a bioimage.io package is "
            "run with its own pre- and post-processing only: drop the option.")
    check_output(output, overwrite, image_dtype=dtype)
    check_preview(preview, overwrite)
    denoiser = load_package(package)
    source = read_image(image, axes=axes)
    with progress_bar("predict") as progress:
        result = denoiser.denoise(source.data, axes=source.axes, progress=progress)
    write_image(output, result, axes=source.axes, dtype=dtype, overwrite=overwrite,
                pixel_sizes=getattr(source, "pixel_sizes", None))
    console.print(f"Wrote {output} ({denoiser.method}, run by bioimageio.core).")
    for line in denoiser.report():
        console.print(line)
    write_file_preview(preview, image, output, axes=source.axes, method=denoiser.method,
                       overwrite=overwrite)
