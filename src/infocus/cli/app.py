"""The ``infocus`` command line: simulate, estimate-noise, denoise, evaluate, methods, demo."""

from __future__ import annotations

import inspect
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from infocus._errors import InfocusInputError
from infocus.cli._common import (
    PREDICT_REFERENCE,
    check_output,
    console,
    model_kept,
    output_kept,
    plain_text,
    print_json,
    progress_bar,
    reference_name,
    report_quality,
    reports_errors,
    resumable,
    stdout,
    training_progress,
)
from infocus.cli._figures import (
    check_loss_curve,
    check_preview,
    write_file_preview,
    write_loss_curve,
    write_preview,
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
ContextOption = Annotated[
    list[str] | None,
    typer.Option("--context", help="Let the network see neighbours along T (time points), Z "
                 "(planes) or C (channels together); repeatable. Sets --spatial TYX/ZYX and "
                 "--channels joint."),
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
QcOption = Annotated[
    Path | None,
    typer.Option("--qc", help="Also write the full `infocus qc` report (maps, HTML page) to "
                 "this folder; the one-line summary is printed either way."),
]
QcReferenceOption = Annotated[
    str | None,
    typer.Option("--qc-reference", help="A classical method (automatic parameters) whose "
                 "output the trained network's is compared with: regions where the two differ "
                 "beyond chance are flagged in the summary and the --qc report. Default with "
                 "--qc: wavelet, not the bm3d of `infocus qc --model`, which costs far more than "
                 "the prediction (198 s against 3.5 s on a 1024 x 1024 plane); stacks over 4 "
                 "million pixels are compared on an evenly spaced sample of planes. 'none' "
                 "skips the comparison; given without --qc, the summary line includes it."),
]

PreviewOption = Annotated[
    Path | None,
    typer.Option("--preview", help="Also write a before/after picture (PNG): raw and denoised "
                 "side by side on the raw image's grey scale, with a zoomed crop; a stack "
                 "shows its middle plane."),
]

#: What an interruption after the output was written left undone (the preview comes first).
PREVIEW_UNFINISHED = "the preview and the quality summary were not finished"
SUMMARY_UNFINISHED = "the quality summary was not finished"

WorkersOption = Annotated[
    int | None,
    typer.Option(help="Run on a local dask.distributed cluster of this many worker processes, "
                 "block by block, into a .zarr output.", min=1),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(help="Run on a running dask scheduler (e.g. tcp://host:8786, started by "
                 "dask-jobqueue or dask-gateway) into a .zarr output."),
]
ResumeRunOption = Annotated[
    bool, typer.Option("--resume", help="With --workers/--scheduler: continue a killed run, "
                       "keeping the blocks it finished.")
]

#: Options set by their own flags, not by -p.
_RESERVED = frozenset({"image", "axes", "noise", "vst", "progress", "plan"})


def _parse_params(pairs: list[str], function: Any, method: str) -> dict[str, Any]:
    """``["sigma=2", "size=5"]`` -> typed keyword arguments accepted by ``function``."""
    from infocus._api import check_options

    params = _name_value_pairs(pairs, example="sigma=2")
    check_options(method, function, params, reserved=_RESERVED)
    return params


def _name_value_pairs(pairs: list[str], example: str, *, flag: str = "-p",
                      what: str = "Method option") -> dict[str, Any]:
    """``["sigma=2", "size=5"]`` -> ``{"sigma": 2, "size": 5}`` (values typed by _coerce)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise InfocusInputError(f"{what} {pair!r} is not NAME=VALUE; write e.g. {flag} {example}.")
        options[name] = _coerce(text.strip())
    return options


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

    check_output(output, overwrite, image_dtype=dtype)
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
    """Estimate the noise-variance function Var(x | y) = gain·y + variance_intercept, y = E(x),
    and the noise's correlation with the next pixel along X and Y.

    Uses one image (all planes of a stack are pooled). A neighbour correlation above about 0.3
    means the noise is spatially correlated (camera binning or interpolation, sCMOS rows):
    n2v/n2v2 then widen their blind spot automatically. The gain and intercept are measured
    through high-pass filters, which see only part of correlated noise; per_pixel_gain and
    per_pixel_variance_intercept are corrected for the measured correlation (the variance of
    one pixel, as infocus qc uses it; the same values where the noise is white).

    Example: [cyan]infocus estimate-noise noisy.tif --json[/]
    """
    from infocus.io import read_image

    loaded = read_image(image, axes=axes)
    per_channel = {name: _noise_values(data, plane_axes, offset)
                   for name, data, plane_axes in _channels(loaded)}
    if as_json:
        # One channel: the parameters themselves (as before); several: one entry each.
        print_json(next(iter(per_channel.values())) if len(per_channel) == 1 else per_channel)
        return
    table = Table(title=escape(f"Noise model of {image.name}: Var = gain·E[x] + variance_intercept"))
    table.add_column("parameter")
    for name in per_channel:
        table.add_column(name or "value", justify="right")
    for key in next(iter(per_channel.values())):
        table.add_row(key, *(f"{v.get(key, float('nan')):.6g}" for v in per_channel.values()))
    stdout.print(table)


def _channels(image: Any) -> list[tuple[str, np.ndarray, str]]:
    """``(name, data, axes)`` per channel (name "" for an image without channels)."""
    if "C" not in image.axes or image.size("C") == 1:
        return [("", image.data, image.axes)]
    axis = image.axes.index("C")
    names = image.channel_names or [f"channel {c}" for c in range(image.size("C"))]
    rest = image.axes.replace("C", "")
    return [(str(names[c]), np.take(image.data, c, axis=axis), rest)
            for c in range(image.size("C"))]


def _noise_values(data: np.ndarray, axes: str, offset: float | None) -> dict[str, float]:
    """The white-noise estimate, the correlation, and the per-pixel variance: the estimate
    corrected for the correlation where it is strong enough to widen a blind spot, the same
    values elsewhere."""
    from infocus.noise import correct_for_correlation, estimate_noise, estimate_noise_correlation

    params = estimate_noise(data, axes=axes, offset=offset)
    correlation = estimate_noise_correlation(data, axes, noise=params)
    per_pixel, _ = correct_for_correlation(params, correlation)
    return {**params.to_dict(), "correlation_x": correlation.at(0, 1),
            "correlation_y": correlation.at(1, 0), "per_pixel_gain": per_pixel.gain,
            "per_pixel_variance_intercept": per_pixel.variance_intercept}


BlindSpotOption = Annotated[
    str | None,
    typer.Option(
        "--blind-spot",
        help="Blind-spot methods that measure it (n2v, n2v2, pn2v, deconoising, denoiseg, and deepcad when it sees the frame itself): 'auto' (default) widens the "
        "blind spot where the noise is spatially correlated; 'pixel' keeps the classic "
        "one-pixel blind spot.",
    ),
]
MethodOption = Annotated[
    list[str] | None,
    typer.Option("--param", "-p",
                 help="Method option NAME=VALUE (repeatable); `infocus methods` lists them."),
]


PsfOption = Annotated[
    Path | None,
    typer.Option("--psf", help="Methods that deconvolve (deconoising): the microscope's PSF "
                 "image, e.g. an averaged bead with the offset subtracted; any odd size, "
                 "normalised for you."),
]
PsfModelOption = Annotated[
    str | None,
    typer.Option("--psf-model", help="Simulate the PSF instead: gaussian, widefield or "
                 "confocal (the last two need infocus[psf]), with --na, --wavelength and "
                 "--pixel-size (and --z-step in 3-D)."),
]
NaOption = Annotated[float | None, typer.Option("--na", help="Numerical aperture (PSF model).")]
WavelengthOption = Annotated[
    float | None, typer.Option(help="Emission wavelength in nm (PSF model).")]
PixelSizeOption = Annotated[
    float | None, typer.Option(help="Pixel size in the sample in µm (PSF model).")]
ZStepOption = Annotated[
    float | None, typer.Option(help="Distance between planes in µm (3-D PSF model).")]
DeconvolvedOption = Annotated[
    Path | None,
    typer.Option("--deconvolved", help="Methods that deconvolve (deconoising): also write the "
                 "deconvolved image here."),
]


def _optics(psf: Path | None, psf_model: str | None, na: float | None,
            wavelength: float | None, pixel_size: float | None, z_step: float | None
            ) -> dict[str, Any]:
    """The PSF flags that were given, as method options."""
    given = {"psf": str(psf) if psf is not None else None,
             "psf_model": psf_model.lower() if psf_model else None, "na": na,
             "wavelength": wavelength, "pixel_size": pixel_size, "z_step": z_step}
    return {k: v for k, v in given.items() if v is not None}


def _method_options(method: str, pairs: list[str], blind_spot: str | None,
                    flags: dict[str, Any] | None = None) -> dict[str, Any]:
    """Training options of a learned method from -p NAME=VALUE pairs, --blind-spot and the
    PSF flags; a flag the method has no option for is refused, naming the methods that do."""
    from infocus.methods import list_schemes, scheme_options

    accepted = scheme_options(method)
    options = _name_value_pairs(pairs, example="radius=3")
    flags = dict(flags or {})
    if blind_spot is not None:
        flags["blind_spot"] = blind_spot.lower()
    for name, value in flags.items():
        if name not in accepted:
            offering = [n for n in list_schemes() if name in scheme_options(n)]
            raise InfocusInputError(
                f"--{name.replace('_', '-')} applies to {', '.join(offering)} only, not to "
                f"{method!r}."
            )
        options[name] = value
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InfocusInputError(
            f"Method {method!r} has no option {unknown[0]!r}; its options are: "
            f"{', '.join(accepted) or 'none'}."
        )
    return options


def _learned(method: str) -> Any:
    """The registered learned method named ``method``, or None for a classical denoiser."""
    from infocus.methods import create_scheme, list_schemes

    return create_scheme(method) if method.lower() in list_schemes() else None


@app.command()
@reports_errors
def denoise(
    image: Annotated[Path, typer.Argument(help="Noisy image.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Denoised image to write.")],
    method: Annotated[str, typer.Option("--method", "-m", help="Denoiser (see `infocus methods`), or auto: the "
                                   "one with the best estimated PSNR.")],
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
    steps: Annotated[
        int | None,
        typer.Option(help="Training steps of a self-supervised learned method.", min=1),
    ] = None,
    save_model: Annotated[
        Path | None,
        typer.Option(help="Keep the network a learned method trained on the image here."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of a learned method's training.")] = 0,
    budget: Annotated[
        str | None,
        typer.Option(help="With --method auto: time for all candidates, e.g. 90s or 5min "
                     "(default 1min: classical methods only on a CPU); a self-supervised "
                     "network trained on the image joins when it fits."),
    ] = None,
    context: ContextOption = None,
    blind_spot: BlindSpotOption = None,
    psf: PsfOption = None,
    psf_model: PsfModelOption = None,
    na: NaOption = None,
    wavelength: WavelengthOption = None,
    pixel_size: PixelSizeOption = None,
    z_step: ZStepOption = None,
    deconvolved: DeconvolvedOption = None,
    qc: QcOption = None,
    qc_reference: QcReferenceOption = None,
    preview: PreviewOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    resume: ResumeRunOption = False,
    dtype: DtypeOption = "float32",
    overwrite: OverwriteOption = False,
) -> None:
    """Denoise an image; parameters are automatic unless given.

    Classical methods (gaussian, median, nl_means, tv, wavelet, bm3d, bm4d) work at once.
    Self-supervised learned methods (see `infocus methods`) first train a network on the
    noisy image itself, then predict: the one-command path for one noisy stack. For learned
    methods, -p sets training options.

    --method auto runs several candidates (the classical methods with automatic parameters,
    and a self-supervised network when --budget allows), estimates each output's PSNR
    without ground truth (see `infocus qc`), prints the ranking and writes the best output.

    --workers N (or --scheduler ADDRESS) runs a classical method on a dask cluster, one
    plane or volume per task, into a .zarr output; the noise and the automatic parameters
    are chosen once from the whole stack, so the result equals the one-process result.

    Examples:

      [cyan]infocus denoise noisy.tif -o clean.tif --method bm3d --preview before-after.png[/]

      [cyan]infocus denoise stack.tif -o out.tif -m nl_means --axes TYX -p h=0.6[/]

      [cyan]infocus denoise stack.tif -o out.tif -m n2v --axes TYX[/]

      [cyan]infocus denoise noisy.tif -o best.tif --method auto --budget 5min[/]

      [cyan]infocus denoise movie.zarr -o denoised.zarr -m nl_means --workers 4[/]
    """
    from infocus.classical import get_denoiser
    from infocus.io import read_image, write_image
    from infocus.qc.choose import AUTO

    check_preview(preview, overwrite)
    distributed = workers is not None or scheduler is not None
    if resume and not distributed:
        raise InfocusInputError(
            "--resume continues a killed distributed run; give --workers N or --scheduler "
            "ADDRESS as in the killed run.")
    if distributed and (method.lower() == AUTO or _learned(method) is not None):
        raise InfocusInputError(
            f"--workers and --scheduler run a classical method block by block, not "
            f"{method!r}; for a learned method train a model (`infocus train`) and run "
            "`infocus predict MODEL IMAGE -o OUT.zarr --workers N`.")
    if method.lower() == AUTO:
        given = {"-p": param, "--steps": steps, "--save-model": save_model, "--vst": vst,
                 "--blind-spot": blind_spot, "--context": context, "--deconvolved": deconvolved,
                 "--qc-reference": qc_reference,
                 **{f"--{k.replace('_', '-')}": v for k, v in
                    _optics(psf, psf_model, na, wavelength, pixel_size, z_step).items()}}
        extra = [flag for flag, value in given.items() if value is not None and value != []]
        if extra:
            raise InfocusInputError(
                f"{extra[0]} sets one method's options; --method auto chooses each candidate's "
                "parameters itself, so drop it (or name a method instead of auto).")
        _denoise_auto(image, output, axes=axes, noise=_noise_from_options(
            sigma, gain, offset, read_noise), budget=budget, seed=seed, qc=qc,
            preview=preview, dtype=dtype, overwrite=overwrite)
        return
    if budget is not None:
        raise InfocusInputError(
            f"--budget applies to --method auto only, not to {method!r} (use --steps to set a "
            "learned method's training).")
    scheme = _learned(method)
    if scheme is not None:
        if scheme.needs_target or scheme.labels:
            how = "--labels MASKS" if scheme.labels else "--target TARGET"
            raise InfocusInputError(
                f"Method {method!r} learns from {'label images' if scheme.labels else 'pairs of images'}; "
                f"train it with `infocus train {method.lower()} INPUT {how} -o MODEL`, then "
                "`infocus predict`."
            )
        if sigma is not None or gain is not None or read_noise is not None:
            raise InfocusInputError(
                f"Method {method!r} learns its own noise model; drop --sigma/--gain/--read-noise "
                "(use --steps to set the training budget)."
            )
        options = _method_options(method.lower(), param or [], blind_spot,
                                  _optics(psf, psf_model, na, wavelength, pixel_size, z_step))
        _denoise_learned(image, output, method.lower(), axes=axes, steps=steps, seed=seed,
                         save_model=save_model, dtype=dtype, overwrite=overwrite,
                         scheme_options=options, qc=qc, deconvolved=deconvolved,
                         context=context, preview=preview,
                         reference=_qc_reference(qc_reference, qc))
        return
    optics = _optics(psf, psf_model, na, wavelength, pixel_size, z_step)
    if steps is not None or save_model is not None or blind_spot is not None or optics or (
            deconvolved is not None or context or qc_reference is not None):
        raise InfocusInputError(
            f"--steps, --save-model, --blind-spot, --context, --deconvolved, --qc-reference "
            f"and the PSF options apply to learned methods only, not to {method!r}."
        )
    function = get_denoiser(method)
    params = _parse_params(param or [], function, method)
    noise = _noise_from_options(sigma, gain, offset, read_noise)
    if distributed:
        _denoise_distributed(image, output, method, axes=axes, workers=workers,
                             scheduler=scheduler, resume=resume, noise=noise, vst=vst,
                             params=params, qc=qc, preview=preview, dtype=dtype,
                             overwrite=overwrite)
        return
    check_output(output, overwrite, image_dtype=dtype)
    if qc is not None:
        check_output(qc, overwrite)
    loaded = read_image(image, axes=axes)
    with progress_bar(f"{method}") as progress:
        result = function(
            loaded.data, axes=loaded.axes, noise=noise, vst=vst, progress=progress, **params
        )
    written = write_image(output, loaded.with_data(result), dtype=dtype, overwrite=overwrite)
    console.print(f"Wrote {written} ({loaded.axes} {result.shape}, {dtype}).")
    with output_kept(written, PREVIEW_UNFINISHED):
        write_preview(preview, loaded.data, result, axes=loaded.axes, method=method,
                      title=f"{method} on {image.name}", overwrite=overwrite)
    with output_kept(written, SUMMARY_UNFINISHED):
        report_quality(
            loaded.data, result, loaded.axes, folder=qc, noise=noise, overwrite=overwrite,
            denoiser=lambda x: function(x, axes=loaded.axes, noise=noise, vst=vst, **params),
            title=f"{method} on {image.name}")


def _denoise_distributed(image: Path, output: Path, method: str, *, axes: str | None,
                         workers: int | None, scheduler: str | None, resume: bool, noise: Any,
                         vst: bool | None, params: dict[str, Any], qc: Path | None,
                         preview: Path | None, dtype: str, overwrite: bool) -> None:
    """``infocus denoise --workers/--scheduler``: a classical method on a dask cluster."""
    from infocus.classical import get_denoiser
    from infocus.predict.distributed import denoise_distributed

    if not resume:
        check_output(output, overwrite, image_dtype=dtype)
    if qc is not None:
        check_output(qc, overwrite)
    with progress_bar(method) as progress:
        written = denoise_distributed(method, image, output, axes=axes, workers=workers,
                                      scheduler=scheduler, resume=resume, overwrite=overwrite,
                                      dtype=dtype, noise=noise, vst=vst, progress=progress,
                                      **params)
    console.print(f"Wrote {written}.")
    with output_kept(written, PREVIEW_UNFINISHED):
        write_file_preview(preview, image, written, axes=axes, method=method,
                           overwrite=overwrite)
    if qc is None:
        _skip_distributed_summary("denoising")
        return
    with output_kept(written, SUMMARY_UNFINISHED):
        noisy, denoised = _read_back(image, written, axes)
        function = get_denoiser(method)
        report_quality(noisy.data, denoised, noisy.axes, folder=qc, noise=noise,
                       overwrite=overwrite, title=f"{method} on {image.name}",
                       denoiser=lambda x: function(x, axes=noisy.axes, noise=noise, vst=vst,
                                                   **params))


def _denoise_auto(image: Path, output: Path, *, axes: str | None, noise: Any,
                  budget: str | None, seed: int, qc: Path | None, preview: Path | None,
                  dtype: str, overwrite: bool) -> None:
    """``infocus denoise --method auto``: rank the candidates by their estimated PSNR, print
    the ranking, write the best output."""
    from infocus.io import read_image, write_image
    from infocus.qc.choose import DEFAULT_BUDGET, choose_denoiser, parse_budget

    seconds = DEFAULT_BUDGET if budget is None else parse_budget(budget)
    check_output(output, overwrite, image_dtype=dtype)
    if qc is not None:
        check_output(qc, overwrite)
    loaded = read_image(image, axes=axes)
    with console.status("choosing a denoiser") as status:
        choice = choose_denoiser(loaded.data, axes=loaded.axes, noise=noise, budget=seconds,
                                 seed=seed, log=lambda message: status.update(
                                     f"choosing a denoiser: {escape(message)}")
                                 if sys.stderr.isatty() else console.print(message))
    _print_ranking(choice)
    written = write_image(output, loaded.with_data(choice.output), dtype=dtype,
                          overwrite=overwrite)
    console.print(escape(choice.reason()), highlight=False)
    console.print(f"Wrote {written} ({loaded.axes} {choice.output.shape}, {dtype}, "
                  f"{choice.method}).")
    with output_kept(written, PREVIEW_UNFINISHED):
        write_preview(preview, loaded.data, choice.output, axes=loaded.axes,
                      method=choice.method, title=f"{choice.method} on {image.name}",
                      overwrite=overwrite)
    with output_kept(written, SUMMARY_UNFINISHED):
        report_quality(loaded.data, choice.output, loaded.axes, folder=qc, noise=noise,
                       overwrite=overwrite, denoiser=choice.denoiser,
                       title=f"{choice.method} on {image.name}")


def _print_ranking(choice: Any) -> None:
    """The candidates, best estimate first, and those skipped with the reason."""
    import math

    def db(value: float) -> str:
        return f"{value:.2f}" if math.isfinite(value) else ("∞" if value > 0 else "−∞")

    table = Table(title=f"Candidates ranked by estimated PSNR (no ground truth; peak "
                        f"{choice.data_range:.4g})")
    for column in ("", "method", "estimated PSNR (dB)", "95 % interval", "estimator",
                   "seconds"):
        table.add_column(column, justify="right" if column in ("seconds",) else "left")
    for rank, entry in enumerate(choice.ranking, start=1):
        kept = "[bold green]kept[/]" if rank == 1 else str(rank)
        name = entry.method + (f" ({entry.note})" if entry.note else "")
        table.add_row(kept, escape(name), db(entry.psnr),
                      f"{db(entry.low)} to {db(entry.high)}", entry.estimator,
                      f"{entry.seconds:.1f}")
    stdout.print(table)
    for entry in choice.skipped:
        stdout.print(f"Skipped {escape(entry.method)}: {escape(entry.reason)}.", highlight=False)


def _denoise_learned(
    image: Path, output: Path, method: str, *, axes: str | None, steps: int | None, seed: int,
    save_model: Path | None, dtype: str, overwrite: bool, scheme_options: dict[str, Any],
    qc: Path | None = None, deconvolved: Path | None = None, context: list[str] | None = None,
    preview: Path | None = None, reference: str | None = None,
) -> None:
    from infocus.io import read_image, write_image
    from infocus.methods import create_scheme
    from infocus.methods.config import default_config
    from infocus.training.loop import train as train_model

    check_output(output, overwrite, image_dtype=dtype)
    also = _extra_outputs(create_scheme(method), {"deconvolved": deconvolved}, overwrite, dtype)
    if save_model is not None:
        check_output(save_model, overwrite)
        check_loss_curve(save_model, overwrite)
    if qc is not None:
        check_output(qc, overwrite)
    loaded = read_image(image, axes=axes)
    config = default_config(method).with_context(context)
    config = config.with_updates(scheme_options={**config.scheme_options, **scheme_options})
    with training_progress() as on_step:
        model = train_model(loaded.data, method=method, axes=loaded.axes, config=config,
                            steps=steps, seed=seed, output=save_model, overwrite=overwrite,
                            log=console.print, progress=on_step)
    with model_kept(save_model, "the loss curve and the denoised image were not written"):
        if save_model is not None:
            write_loss_curve(save_model, model.history, title=f"{method} on {image.name}",
                             overwrite=overwrite)
    with model_kept(save_model, "the denoised image was not written"), \
            progress_bar(f"predict {method}") as progress:
        prediction = model.predict(loaded.data, axes=loaded.axes, progress=progress,
                                   also=tuple(also))
    result = prediction.denoised
    written = write_image(output, loaded.with_data(result), dtype=dtype, overwrite=overwrite)
    console.print(f"Wrote {written} ({loaded.axes} {result.shape}, {dtype}).")
    for name, path in also.items():
        extra = write_image(path, loaded.with_data(prediction.extras[name]), dtype=dtype,
                            overwrite=overwrite)
        console.print(f"Wrote {extra} ({name}).")
    with output_kept(written, PREVIEW_UNFINISHED):
        write_preview(preview, loaded.data, result, axes=loaded.axes, method=method,
                      title=f"{method} on {image.name}", overwrite=overwrite)
    with output_kept(written, SUMMARY_UNFINISHED):
        report_quality(loaded.data, result, loaded.axes, folder=qc, overwrite=overwrite,
                       denoiser=lambda x: model.denoise(x, axes=loaded.axes),
                       title=f"{method} on {image.name}", model=model, reference=reference)


def _paired_labels(method: str, inputs: list[Path], labels: Path, target: Any
                   ) -> tuple[list[str], list[str | None]]:
    """Every input image file with its namesake in ``labels`` (None for unlabelled ones)."""
    from infocus.methods import create_scheme, list_schemes
    from infocus.training.data import image_files

    if not create_scheme(method).labels:
        segmenting = [n for n in list_schemes() if create_scheme(n).labels]
        raise InfocusInputError(
            f"--labels applies to {', '.join(segmenting)} only, not to {method!r}.")
    if target:
        raise InfocusInputError("Give either --target or --labels, not both.")
    files = [f for p in inputs for f in image_files(p)]
    if labels.is_dir():
        paired = [labels / f.name if (labels / f.name).exists() else None for f in files]
    elif len(files) == 1:
        paired = [labels]
    else:
        raise InfocusInputError(
            f"--labels {labels} is one file but there are {len(files)} images; give a folder "
            "of masks named like the images.")
    if all(p is None for p in paired):
        raise InfocusInputError(
            f"No file in {labels} has a namesake among the images; name each mask like its "
            "image.")
    return [str(f) for f in files], [str(p) if p is not None else None for p in paired]


def _extra_outputs(scheme: Any, wanted: dict[str, Path | None], overwrite: bool, dtype: str
                   ) -> dict[str, Path]:
    """The further images asked for (e.g. --deconvolved), checked against what the method
    gives and against existing files."""
    also = {name: path for name, path in wanted.items() if path is not None}
    for name, path in also.items():
        if name not in scheme.outputs:
            raise InfocusInputError(
                f"--{name} applies to methods that give a {name} image, not to "
                f"{scheme.name!r}.")
        check_output(path, overwrite, image_dtype=dtype)
    return also


@app.command("train")
@reports_errors
def train_command(
    method: Annotated[str, typer.Argument(help="A learned method; `infocus methods` lists them.")],
    inputs: Annotated[list[Path], typer.Argument(help="Noisy images or folders of them.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model folder or .zip.")],
    target: Annotated[
        list[Path] | None,
        typer.Option("--target", "-t",
                     help="Targets, one per input, for methods that learn from pairs (care: "
                     "clean images; n2n: second noisy captures)."),
    ] = None,
    axes: AxesOption = None,
    steps: Annotated[int | None, typer.Option(help="Optimizer steps in all.", min=1)] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs of 100 steps (instead of --steps).", min=1)
    ] = None,
    patch_size: Annotated[int | None, typer.Option(help="Training patch edge, pixels.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Patches per step.", min=1)] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    spatial: Annotated[
        str | None,
        typer.Option(help="auto, YX, ZYX or TYX (time as a third dimension); default: the "
                          "method's own (auto for most)."),
    ] = None,
    channels: Annotated[
        str, typer.Option(help="independent (one image per channel) or joint.")
    ] = "independent",
    context: ContextOption = None,
    seed: Annotated[int, typer.Option(help="Random seed (CPU runs are reproducible).")] = 0,
    blind_spot: BlindSpotOption = None,
    psf: PsfOption = None,
    psf_model: PsfModelOption = None,
    na: NaOption = None,
    wavelength: WavelengthOption = None,
    pixel_size: PixelSizeOption = None,
    z_step: ZStepOption = None,
    param: MethodOption = None,
    network: Annotated[
        str | None,
        typer.Option(help="Network architecture instead of the method's own: unet (CARE's "
                     "U-Net), unet_n2v2 (N2V2's U-Net) or rcan (the residual channel attention "
                     "network of 3D-RCAN, Chen et al. 2021). Methods that need a network of "
                     "their own (divnoising: its VAE) refuse another."),
    ] = None,
    network_option: Annotated[
        list[str] | None,
        typer.Option("--network-option",
                     help="Network option NAME=VALUE (repeatable), e.g. num_channels=32 or "
                     "residual_groups=5 for rcan, base_filters=32 for unet; another --network "
                     "starts from its own defaults."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue a killed run from its last checkpoint.")
    ] = False,
    init: Annotated[
        Path | None,
        typer.Option("--init", help="Fine-tune this trained model on the new data (its network; "
                     "by default a quarter of the steps and a tenth of the learning rate)."),
    ] = None,
    freeze: Annotated[
        str | None,
        typer.Option(help="With --init: a part of the network to keep fixed, e.g. encoder."),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Methods that also segment (denoiseg): instance masks "
                     "(0 background, 1, 2, ... per object) for some of the images, a folder "
                     "of files named like them, or one file for one image."),
    ] = None,
    precision: Annotated[
        str,
        typer.Option(help="auto, float32 or bfloat16: the network's arithmetic while training. "
                     "auto is bfloat16 mixed precision where the hardware has it (a CPU with "
                     "AMX, a CUDA GPU; whole training runs took 1.7-2.6x less time there in "
                     "docs/benchmarks.md) and float32 elsewhere."),
    ] = "auto",
    processes: Annotated[
        int,
        typer.Option(help="Train in this many processes on this machine (torch.distributed: "
                     "they share the cores, or take one GPU each); --batch-size is shared "
                     "among them. On several machines, start this command with torchrun "
                     "instead.", min=1, max=64),
    ] = 1,
    overwrite: OverwriteOption = False,
) -> None:
    """Train a denoising network and save it as a model (config JSON + safetensors weights).

    The training and validation loss against the step is drawn in loss.png inside a model
    folder, or beside a .zip model as NAME.loss.png.

    Examples:

      [cyan]infocus train n2v stack.tif --axes SYX -o n2v-model[/]

      [cyan]infocus train n2v folder-of-2d-images/ -o n2v-model[/]

      [cyan]infocus train care low/ --target high/ -o care-model.zip --steps 4000[/]

      [cyan]infocus train care low/ --target high/ -o rcan-model --network rcan[/]

      [cyan]infocus train n2n capture1/ --target capture2/ -o n2n-model[/]

      [cyan]infocus train pn2v stack.tif --axes SYX -o pn2v-model -p noise_model=camera.json[/]

      [cyan]infocus train n2v new-sample.tif -o tuned-model --init n2v-model[/]

      [cyan]infocus train n2v big-stack.tif --axes SYX -o n2v-model --processes 2[/]

      [cyan]infocus train deconoising stack.tif --axes SYX -o dn-model --psf psf.tif[/]

      [cyan]infocus train denoiseg images/ --labels masks/ -o seg-model[/]
    """
    from infocus.methods import list_schemes
    from infocus.methods.config import default_config
    from infocus.training.loop import CHECKPOINT_NAME, checkpoint_dir_for
    from infocus.training.loop import train as train_model

    if method.lower() not in list_schemes():
        raise InfocusInputError(
            f"Unknown training method {method!r}; choose one of: {', '.join(list_schemes())}."
        )
    if steps is not None and epochs is not None:
        raise InfocusInputError("Give either --steps or --epochs, not both.")
    config = default_config(method).with_updates(spatial=spatial, channels=channels,
                                                 precision=precision)
    config = config.with_context(context)
    if init is not None and (network is not None or network_option):
        raise InfocusInputError(
            "Fine-tuning (--init) keeps the model's network; drop --network and "
            "--network-option, or train from scratch without --init.")
    config = config.with_network(network, _name_value_pairs(
        network_option or [], example="num_channels=32", flag="--network-option",
        what="Network option"))
    extra = _method_options(method.lower(), param or [], blind_spot,
                            _optics(psf, psf_model, na, wavelength, pixel_size, z_step))
    if extra:
        config = config.with_updates(scheme_options={**config.scheme_options, **extra})
    if epochs is not None:
        steps = epochs * config.steps_per_epoch
    if not resume:  # a resumed run writes where the interrupted one would have
        check_output(output, overwrite)
    check_loss_curve(output, overwrite)
    images: list[str] = [str(p) for p in inputs]
    targets: list[str | None] | None = [str(p) for p in target] if target else None
    if labels is not None:
        images, targets = _paired_labels(method.lower(), inputs, labels, target)
    with resumable(output, checkpoint_dir_for(output) / CHECKPOINT_NAME), \
            training_progress() as on_step:
        trained = train_model(
            images, method=method.lower(), axes=axes, targets=targets, output=output,
            config=config,
            steps=steps, patch_size=patch_size, batch_size=batch_size,
            learning_rate=learning_rate, seed=seed, resume=resume, overwrite=overwrite,
            init=init, freeze=freeze, processes=processes, log=console.print, progress=on_step,
        )
    console.print(f"Saved model to {output}.")
    with output_kept(output, "its loss curve was not written"):
        write_loss_curve(output, trained.history, overwrite=overwrite,
                         title=f"{method.lower()} on {', '.join(p.name for p in inputs)}")


@app.command()
@reports_errors
def predict(
    model: Annotated[Path, typer.Argument(help="Model folder or .zip from `infocus train`, or a "
                                          "bioimage.io denoising package (.zip).")],
    image: Annotated[Path, typer.Argument(help="Image to denoise (TIFF, Zarr, PNG, .npy).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the result.")],
    axes: AxesOption = None,
    uncertainty: Annotated[
        Path | None,
        typer.Option("--uncertainty", "-u",
                     help="Probabilistic methods (pn2v, divnoising): also write the per-pixel "
                     "posterior standard deviation here."),
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option(help="Probabilistic methods: posterior samples per pixel for the MMSE "
                     "estimate (default: the method's).", min=1),
    ] = None,
    tile_size: Annotated[
        int | None, typer.Option(help="Tile edge in pixels (default: from free memory).")
    ] = None,
    overlap: Annotated[
        int | None, typer.Option(help="Tile overlap (default: covers the receptive field).")
    ] = None,
    tta: Annotated[
        bool | None,
        typer.Option("--tta/--no-tta", help="Average the 8 flips/rotations (default: the "
                     "method's; on for DecoNoising, off for the others)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Tiles per forward pass.", min=1)] = 4,
    backend: Annotated[
        str,
        typer.Option(help="auto (ONNX Runtime on the CPU when installed), torch or onnxruntime."),
    ] = "auto",
    pixel_fusion: Annotated[
        bool | None,
        typer.Option("--pixel-fusion/--no-pixel-fusion",
                     help="Blind-spot models: weigh in the noisy pixel the network never saw "
                     "(default: on when the noise was measured white)."),
    ] = None,
    frame_averaging: Annotated[
        bool | None,
        typer.Option("--frame-averaging/--no-frame-averaging",
                     help="Models that predict each frame from its neighbours: average each "
                     "frame with its neighbours' estimates wherever the scene did not change "
                     "(default: on)."),
    ] = None,
    large_scales: Annotated[
        bool | None,
        typer.Option("--large-scales/--no-large-scales",
                     help="Blind-spot models: give each channel the measurement's large-scale "
                     "intensities (a 4-pixel blur of the residual added back), which keeps "
                     "objects' channel ratios (default: on for models trained with joint "
                     "channels)."),
    ] = None,
    calibrate: Annotated[
        bool | None,
        typer.Option("--calibrate/--no-calibrate",
                     help="Fit one gain and offset per image so that large-scale intensities "
                     "agree with the measurement (default: on for CARE)."),
    ] = None,
    qc: QcOption = None,
    qc_reference: QcReferenceOption = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Predict on a local dask.distributed cluster of this many worker "
                     "processes, block by block, into a .zarr output.", min=1),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Predict on a running dask scheduler (e.g. tcp://host:8786, started "
                     "by dask-jobqueue or dask-gateway) into a .zarr output."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="With --workers/--scheduler: continue a killed "
                           "prediction, keeping the blocks it finished.")
    ] = False,
    deconvolved: DeconvolvedOption = None,
    labels_out: Annotated[
        Path | None,
        typer.Option("--labels-out", help="Methods that segment (denoiseg): write the instance "
                     "labels here (uint32 in Zarr, uint16 or uint32 otherwise)."),
    ] = None,
    foreground: Annotated[
        Path | None,
        typer.Option("--foreground", help="Methods that segment: write the foreground "
                     "probability here."),
    ] = None,
    preview: PreviewOption = None,
    dtype: DtypeOption = "float32",
    overwrite: OverwriteOption = False,
) -> None:
    """Denoise an image with a trained model; tiles are blended, so no seams show.

    A Zarr output (-o out.zarr) is written block by block: memory stays bounded for
    stacks larger than memory. Options a model's method does not have are refused.

    Examples:

      [cyan]infocus predict n2v-model stack.tif -o denoised.tif --preview before-after.png[/]

      [cyan]infocus predict care-model.zip big.zarr -o big-denoised.zarr --dtype uint16[/]

      [cyan]infocus predict divnoising-model img.tif -o mmse.tif --samples 100 --uncertainty std.tif[/]

      [cyan]infocus predict n2v-model movie.zarr -o denoised.zarr --workers 4[/]
    """
    from infocus.predict.model import load_model
    from infocus.predict.stream import predict_file

    distributed = workers is not None or scheduler is not None
    if resume and not distributed:
        raise InfocusInputError(
            "--resume continues a killed distributed prediction; give --workers N or "
            "--scheduler ADDRESS as in the killed run.")
    from infocus.export.bioimageio import is_package

    if is_package(model):
        from infocus.cli.export import predict_package

        predict_package(model, image, output, axes=axes, dtype=dtype, overwrite=overwrite,
                        preview=preview, unsupported={"uncertainty": uncertainty, "samples": samples,
                                     "tile_size": tile_size, "overlap": overlap, "tta": tta,
                                     "pixel_fusion": pixel_fusion, "calibrate": calibrate,
                                     "frame_averaging": frame_averaging,
                                     "large_scales": large_scales, "qc": qc,
                                     "qc_reference": qc_reference,
                                     "workers": workers, "scheduler": scheduler,
                                     "deconvolved": deconvolved, "labels_out": labels_out,
                                     "foreground": foreground,
                                     "backend": None if backend == "auto" else backend})
        return
    if not resume:
        check_output(output, overwrite, image_dtype=dtype)
        if uncertainty is not None:
            check_output(uncertainty, overwrite, image_dtype="float32")
    if qc is not None:
        check_output(qc, overwrite)
    check_preview(preview, overwrite)
    reference = _qc_reference(qc_reference, qc)
    loaded = load_model(model)
    also = _extra_outputs(loaded.scheme, {"deconvolved": deconvolved, "labels": labels_out,
                                          "foreground": foreground}, overwrite or resume, dtype)
    options = {"pixel_fusion": pixel_fusion, "calibrate": calibrate, "samples": samples,
               "frame_averaging": frame_averaging, "large_scales": large_scales}
    settings = {"tile_size": tile_size, "overlap": overlap, "tta": tta,
                "batch_size": batch_size, "backend": backend}
    with progress_bar("predict") as progress:
        if distributed:
            from infocus.predict.distributed import predict_distributed

            written = predict_distributed(
                model, image, output, axes=axes, workers=workers, scheduler=scheduler,
                resume=resume, overwrite=overwrite, dtype=dtype, uncertainty=uncertainty,
                also=also, progress=progress, **settings, **options)
        else:
            written = predict_file(
                loaded, image, output, axes=axes, dtype=dtype, overwrite=overwrite,
                uncertainty=uncertainty, also=also, progress=progress, **settings, **options,
            )
    console.print(f"Wrote {written}" + (f" and {uncertainty}." if uncertainty else "."))
    for name, path in also.items():
        console.print(f"Wrote {path} ({name}).")
    for line in loaded.report():
        console.print(f"[yellow]{line}[/]" if line.startswith("Warning") else line)
    with output_kept(written, PREVIEW_UNFINISHED):
        write_file_preview(preview, image, written, axes=axes, method=loaded.method,
                           overwrite=overwrite)
    if distributed and qc is None and reference is None:
        _skip_distributed_summary("prediction")
        return
    with output_kept(written, SUMMARY_UNFINISHED):
        _predicted_quality(loaded, image, written, axes, qc, overwrite,
                           {**settings, **{k: v for k, v in options.items() if v is not None}},
                           reference)


def _skip_distributed_summary(work: str) -> None:
    """Say why a distributed run ends without the quality summary: it would read the whole
    input and output into this process, which distributed work exists to avoid (an explicit
    --qc report is still written)."""
    console.print(f"Quality check skipped for distributed {work} (it would read the whole "
                  "stack here); run `infocus qc` on a crop, or pass --qc REPORT_DIR.")


def _qc_reference(given: str | None, qc: Path | None) -> str | None:
    """The classical method a trained network's output is compared with (--qc-reference)."""
    return reference_name(given, PREDICT_REFERENCE if qc is not None else None,
                          flag="--qc-reference")


def _predicted_quality(model: Any, image: Path, written: Path, axes: str | None,
                       qc: Path | None, overwrite: bool, settings: dict[str, Any],
                       reference: str | None) -> None:
    """The quality summary of a prediction, read back from disk: only the sample it looks at
    (:func:`~infocus.cli._common.summary_selection`), or everything for a --qc report."""
    from infocus.io import open_image_lazy

    if qc is not None:
        noisy, denoised = _read_back(image, written, axes)
        denoised_axes = None
    else:
        noisy = open_image_lazy(image, axes=axes)
        result = open_image_lazy(written)
        denoised = result.data
        # TIFF and Zarr store Y X last: the written axes may be in another order.
        denoised_axes = result.axes if sorted(result.axes) == sorted(noisy.axes) else None
    report_quality(noisy.data, denoised, noisy.axes, folder=qc, overwrite=overwrite,
                   denoiser=lambda x: model.denoise(x, axes=noisy.axes, **settings),
                   title=f"{model.method} on {image.name}", model=model, reference=reference,
                   denoised_axes=denoised_axes)


def _read_back(image: Path, written: Path, axes: str | None) -> tuple[Any, np.ndarray]:
    """The input and the written result, whole and in the input's axis order (for a --qc
    report)."""
    from infocus.io import read_image

    noisy = read_image(image, axes=axes)
    result = read_image(written)
    # TIFF and Zarr store Y X last: bring the written axes back to the input's order.
    denoised = np.transpose(result.data, [result.axes.index(a) for a in noisy.axes]) \
        if sorted(result.axes) == sorted(noisy.axes) else result.data
    return noisy, denoised


@app.command()
@reports_errors
def sample(
    model: Annotated[Path, typer.Argument(help="Model of a generative method (divnoising).")],
    image: Annotated[Path, typer.Argument(help="Image to draw posterior samples for.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the samples.")],
    n: Annotated[int, typer.Option("-n", "--number", help="How many samples.", min=1)] = 20,
    axes: AxesOption = None,
    seed: Annotated[int, typer.Option(help="Random seed of the draw.")] = 0,
    tile_size: Annotated[
        int | None, typer.Option(help="Tile edge in pixels (default: from free memory).")
    ] = None,
    dtype: DtypeOption = "float32",
    overwrite: OverwriteOption = False,
) -> None:
    """Draw posterior samples: diverse clean images that all explain the noisy one.

    Where the samples agree, the data pin the result down; where they differ, the
    network is guessing. Samples are stacked along a new leading axis S.

    Example: [cyan]infocus sample divnoising-model noisy.tif -n 20 -o samples.tif[/]
    """
    from infocus.predict.model import load_model
    from infocus.predict.stream import sample_file

    check_output(output, overwrite, image_dtype=dtype)
    loaded = load_model(model)
    with progress_bar(f"sample ×{n}") as progress:
        written = sample_file(loaded, image, output, n=n, axes=axes, seed=seed,
                              tile_size=tile_size, dtype=dtype, overwrite=overwrite,
                              progress=progress)
    console.print(f"Wrote {n} samples to {written}.")


noise_model_app = typer.Typer(
    help="Fit and inspect noise models p(x|s), the likelihoods pn2v and divnoising train through.",
    no_args_is_help=True, rich_markup_mode="rich",
)
app.add_typer(noise_model_app, name="noise-model")


@noise_model_app.command("fit")
@reports_errors
def noise_model_fit(
    inputs: Annotated[list[Path], typer.Argument(help="Noisy images (or one calibration stack).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Noise model to write (.json).")],
    axes: AxesOption = None,
    calibration: Annotated[
        bool, typer.Option("--calibration",
                           help="INPUT is a stack of noisy captures of a static sample along "
                           "its first axis (S or T); their mean is the signal."),
    ] = False,
    signal: Annotated[
        Path | None, typer.Option(help="A clean (or denoised) image paired with INPUT.")
    ] = None,
    kind: Annotated[
        str, typer.Option(help="gmm (default), histogram, or poisson_gaussian (parametric).")
    ] = "gmm",
    steps: Annotated[
        int | None,
        typer.Option(help="Bootstrapping: training steps of the Noise2Void it fits to.", min=1),
    ] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Fit a noise model: from calibration captures, from (noisy, signal) pairs, or
    bootstrapped from a Noise2Void prediction of the noisy images (the default).

    Examples:

      [cyan]infocus noise-model fit calibration.tif --axes TYX --calibration -o camera.json[/]

      [cyan]infocus noise-model fit noisy.tif --signal average.tif -o camera.json[/]

      [cyan]infocus noise-model fit stack.tif --axes SYX -o camera.json[/]

    Then: [cyan]infocus train pn2v stack.tif --axes SYX -o model -p noise_model=camera.json[/]
    """
    from infocus.noise.models import save_noise_model

    check_output(output, overwrite)
    if calibration and signal is not None:
        raise InfocusInputError("Give either --calibration or --signal, not both.")
    if kind not in ("gmm", "histogram", "poisson_gaussian"):
        raise InfocusInputError(
            f"Unknown --kind {kind!r}; choose gmm, histogram or poisson_gaussian."
        )
    if calibration or signal is not None:
        if kind == "poisson_gaussian":
            raise InfocusInputError(
                "--kind poisson_gaussian is measured from the noisy images alone; drop "
                "--calibration/--signal, or fit a gmm or histogram to the pairs."
            )
        pairs = _noise_pairs(inputs, axes, calibration, signal)
        from infocus.noise.models import fit_pairs

        model = fit_pairs(*pairs, kind)
        how = "calibration captures" if calibration else f"pairs with {signal}"
    else:
        from infocus.training.loop import fit_noise_model

        source = "parametric" if kind == "poisson_gaussian" else "bootstrap"
        with training_progress() as on_step:
            model = fit_noise_model([str(p) for p in inputs], axes=axes, source=source,
                                    kind=kind, steps=steps, log=console.print,
                                    progress=on_step)
        how = source
    save_noise_model(model, output, overwrite=overwrite,
                     metadata={"fitted_from": how, "inputs": [p.name for p in inputs]})
    low, high = model.signal_range
    levels = np.linspace(low, high, 4)
    _, stds = model.mean_and_std(levels)
    spread = ", ".join(f"{s:.4g}: {d:.3g}" for s, d in zip(levels, stds, strict=True))
    console.print(f"Wrote {output}: {model.kind} noise model ({how}) for signals "
                  f"{low:.4g}–{high:.4g}; noise std at signal {spread}.")


def _noise_pairs(inputs: list[Path], axes: str | None, calibration: bool, signal: Path | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(signal, observation) pairs from a calibration stack or from an image and its signal."""
    from infocus.io import read_image
    from infocus.noise.models import calibration_pairs

    if len(inputs) != 1:
        raise InfocusInputError(
            f"Give one input with --calibration or --signal (got {len(inputs)})."
        )
    noisy = read_image(inputs[0], axes=axes)
    if calibration:
        captures = [a for a in noisy.axes if a in "ST"]
        if len(captures) != 1 or len(noisy.axes) - 1 != sum(a in "ZYX" for a in noisy.axes):
            raise InfocusInputError(
                f"A calibration stack has one capture axis (S or T) and spatial axes, but "
                f"{inputs[0].name} has axes {noisy.axes}; pass --axes, e.g. TYX."
            )
        stack = np.moveaxis(noisy.data, noisy.axes.index(captures[0]), 0)
        return calibration_pairs(stack)
    assert signal is not None
    clean = read_image(signal, axes=axes or noisy.axes)
    if clean.data.shape != noisy.data.shape:
        raise InfocusInputError(
            f"{signal.name} has shape {clean.data.shape} but {inputs[0].name} has "
            f"{noisy.data.shape}; pair each noisy image with a signal of the same shape."
        )
    return clean.data.astype(np.float64).ravel(), noisy.data.astype(np.float64).ravel()


@noise_model_app.command("show")
@reports_errors
def noise_model_show(
    model: Annotated[Path, typer.Argument(help="Noise model (.json) from `noise-model fit`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Figure to write (.png).")],
    data: Annotated[
        Path | None, typer.Option(help="Noisy data to compare with (see --calibration/--signal).")
    ] = None,
    axes: AxesOption = None,
    calibration: Annotated[
        bool, typer.Option("--calibration", help="DATA is a calibration stack.")
    ] = False,
    signal: Annotated[Path | None, typer.Option(help="The signal paired with DATA.")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Plot p(x|s) against data: densities at a few signal levels over the observed values,
    and the noise level against the signal.

    Example: [cyan]infocus noise-model show camera.json --data calibration.tif --axes TYX --calibration -o camera.png[/]
    """
    from infocus.noise.figures import plot_noise_model
    from infocus.noise.models import load_noise_model

    check_output(output, overwrite)
    loaded = load_noise_model(model)
    pairs = None
    if data is not None:
        if not calibration and signal is None:
            raise InfocusInputError(
                "Say how DATA gives signals: --calibration (a stack of captures of a static "
                "sample) or --signal FILE (a clean or denoised image)."
            )
        pairs = _noise_pairs([data], axes, calibration, signal)
    elif calibration or signal is not None:
        raise InfocusInputError("--calibration and --signal describe --data; give --data too.")
    written = plot_noise_model(loaded, output, pairs=pairs, overwrite=overwrite)
    console.print(f"Wrote {written}.")


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
    labels: Annotated[
        bool, typer.Option("--labels", help="Compare instance segmentations instead: average "
                           "precision at IoU 0.5 to 0.9 (as StarDist and DenoiSeg report it).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare an image with its ground truth: MSE, PSNR, SSIM and scale-invariant PSNR.

    PSNR = 10·log10(R² / MSE) with R = max(gt) − min(gt) unless --data-range is given
    (Laine et al. 2021, Box 1). Paths may be two files or two folders of files with
    matching names (then every pair is scored and the mean reported). With --labels both
    are instance masks and the score is the average precision TP / (TP + FP + FN) of
    objects matched at each IoU threshold.

    Example: [cyan]infocus evaluate denoised.tif gt.tif --json[/]

    Example: [cyan]infocus evaluate predicted-labels/ true-labels/ --labels[/]
    """
    from infocus.io import read_image
    from infocus.metrics import METRICS
    from infocus.metrics import evaluate as evaluate_arrays

    pairs = _pairs(prediction, ground_truth)
    if labels:
        _evaluate_labels(pairs, axes, as_json)
        return
    rows: list[dict[str, Any]] = []
    for pred_path, gt_path in pairs:
        gt = read_image(gt_path, axes=axes)
        pred = _prediction_like(pred_path, gt, gt_path, axes)
        try:
            result = evaluate_arrays(pred.data, gt.data, axes=gt.axes, data_range=data_range)
        except InfocusInputError as error:
            if len(pairs) == 1:
                raise
            raise InfocusInputError(f"{pred_path.name}: {error}") from None
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


#: IoU thresholds of `infocus evaluate --labels`.
AP_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def _evaluate_labels(pairs: list[tuple[Path, Path]], axes: str | None, as_json: bool) -> None:
    """Average precision of predicted against true instance masks, per pair and mean."""
    from infocus.io import read_image
    from infocus.metrics import average_precision

    rows = []
    for pred_path, gt_path in pairs:
        gt = read_image(gt_path, axes=axes)
        pred = _prediction_like(pred_path, gt, gt_path, axes)
        try:
            scores = average_precision(pred.data, gt.data, AP_THRESHOLDS)
        except InfocusInputError as error:
            if len(pairs) == 1:
                raise
            raise InfocusInputError(f"{pred_path.name}: {error}") from None
        rows.append({"file": pred_path.name, **{f"ap_{t:g}": v for t, v in scores.items()}})
    names = [f"ap_{t:g}" for t in AP_THRESHOLDS]
    mean = {name: float(np.mean([r[name] for r in rows])) for name in names}
    if as_json:
        print_json({"per_image": rows, "mean": mean, "n_images": len(rows)})
        return
    table = Table(title="Average precision of the instance masks")
    table.add_column("image")
    for t in AP_THRESHOLDS:
        table.add_column(f"AP@{t:g}", justify="right")
    for r in rows if len(rows) <= 50 else []:
        table.add_row(r["file"], *(f"{r[n]:.3f}" for n in names))
    table.add_row(f"[bold]mean of {len(rows)}[/]", *(f"{mean[n]:.3f}" for n in names))
    stdout.print(table)


def _prediction_like(path: Path, gt: Any, gt_path: Path, axes: str | None) -> Any:
    """The prediction read with the ground truth's axes (a file without axes metadata takes
    them), or one sentence saying how the two differ."""
    from infocus.io import read_image

    try:
        return read_image(path, axes=axes or gt.axes)
    except InfocusInputError:
        if axes:
            raise
    own = read_image(path)
    raise InfocusInputError(
        f"{path.name} is {own.axes} {own.data.shape} but its ground truth {gt_path.name} is "
        f"{gt.axes} {gt.data.shape}; compare images of the same shape (or give --axes when a "
        "file's metadata has them wrong)."
    )


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
    unpaired = [p.name for p in files if not (ground_truth / p.name).exists()]
    if unpaired:
        # A mean over some of the images would read as a score for all of them.
        shown = ", ".join(unpaired[:3]) + (", ..." if len(unpaired) > 3 else "")
        raise InfocusInputError(
            f"{len(unpaired)} file(s) in {prediction} have no namesake in {ground_truth} "
            f"({shown}); give every prediction its ground truth, or move the others out."
        )
    return pairs


@app.command()
@reports_errors
def methods() -> None:
    """List the available denoising methods, with the options of the learned ones (-p)."""
    from infocus.classical import get_denoiser, list_denoisers
    from infocus.methods import create_scheme, list_schemes, scheme_options

    table = Table(title="Denoising methods")
    table.add_column("name")
    table.add_column("description")
    table.add_column("kind")
    for name in list_denoisers():
        doc = inspect.getdoc(get_denoiser(name)) or ""
        # The summary is the docstring's first paragraph, written for Sphinx.
        summary = " ".join(doc.split("\n\n")[0].split())
        table.add_row(name, escape(plain_text(summary)), "classical")
    for name in list_schemes():
        scheme = create_scheme(name)
        kind = "learned (pairs)" if scheme.needs_target else "learned (self-supervised)"
        if "samples" in scheme.outputs or "uncertainty" in scheme.outputs:
            kind += ", uncertainty"
        options = ", ".join(scheme_options(name))
        table.add_row(name, escape(f"{plain_text(scheme.summary)}\noptions: {options or 'none'}"),
                      kind)
    stdout.print(table)


@app.command()
@reports_errors
def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the demo outputs.")
    ] = Path("infocus-demo"),
    photons: Annotated[float, typer.Option(help="Peak photons of the simulated low light.")] = 20.0,
    seed: Annotated[int, typer.Option(help="Random seed of the simulated noise.")] = 0,
    n2v_steps: Annotated[
        int, typer.Option(help="Training steps of the demo's Noise2Void (0 skips it).", min=0)
    ] = 400,
    overwrite: OverwriteOption = False,
) -> None:
    """Simulate low light on the embedded sample, denoise it with every method, report metrics.

    The classical methods run with automatic parameters; Noise2Void trains on the noisy image
    itself for --n2v-steps steps. Writes TIFFs, a side-by-side figure (PNG) and a metrics table (Markdown and JSON).

    Example: [cyan]infocus demo --output demo-output[/]
    """
    from infocus.demo import run_demo

    run_demo(output, photons=photons, seed=seed, learned_steps=n2v_steps, overwrite=overwrite,
             console=console)


def main() -> None:
    """Console-script entry point."""
    # OpenMP threads that spin while waiting made training 5-13x slower when another process
    # competed for the cores (docs/benchmarks.md); passive waiting costs nothing when idle.
    # Must be set before torch is imported, which every command does lazily.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # A job scheduler or `kill` stops a run with SIGTERM: clean up as for Ctrl-C, so no
    # temporary output is left behind.
    signal.signal(signal.SIGTERM, _interrupt)
    app()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
