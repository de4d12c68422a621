"""Shared command-line plumbing: error reporting, progress bars, output checks."""

from __future__ import annotations

import errno
import functools
import json
import math
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from infocus._errors import InfocusInputError, OutputExistsError

console = Console(stderr=True)
stdout = Console()

F = TypeVar("F", bound=Callable[..., Any])

#: Exit status for input a user can fix (same as a usage error).
EXIT_BAD_INPUT = 2


class InterruptedAfterOutput(KeyboardInterrupt):
    """Ctrl-C or SIGTERM after the output ``written`` was complete on disk (e.g. during the
    quality summary): the message must not say that nothing was written."""

    def __init__(self, written: Path, unfinished: str) -> None:
        super().__init__(f"{written}: {unfinished}")
        self.written = written
        self.unfinished = unfinished


class InterruptedResumable(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during training that has left a checkpoint: the message says how to
    continue instead of only that nothing was written."""

    def __init__(self, output: Path) -> None:
        super().__init__(str(output))
        self.output = output


@contextmanager
def resumable(output: Path, checkpoint: Path) -> Iterator[None]:
    """Around training that writes ``output``: an interruption once ``checkpoint`` exists says
    that training can continue from it with --resume."""
    try:
        yield
    except KeyboardInterrupt:
        if checkpoint.is_file():
            raise InterruptedResumable(output) from None
        raise


@contextmanager
def output_kept(written: Path, unfinished: str) -> Iterator[None]:
    """Around work done after ``written`` is complete: an interruption says that it was
    written and that ``unfinished`` (e.g. "the quality summary was not finished") is not."""
    try:
        yield
    except InterruptedAfterOutput:
        raise
    except KeyboardInterrupt:
        raise InterruptedAfterOutput(written, unfinished) from None


@contextmanager
def model_kept(model: Path | None, unfinished: str) -> Iterator[None]:
    """:func:`output_kept` for a model that was saved only when ``model`` is given."""
    if model is None:
        yield
    else:
        with output_kept(model, unfinished):
            yield


def reports_errors(command: F) -> F:
    """Turn :class:`InfocusInputError` (and missing optional packages) into one red line, exit 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (InfocusInputError, ImportError) as error:
            # escape: a message's own brackets (image[c], [0, 1]) are text, not rich markup
            console.print(f"[bold red]Error:[/] {escape(str(error))}", highlight=False)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except OSError as error:  # full or read-only disk, permissions, a vanished file
            console.print(f"[bold red]Error:[/] {escape(describe_os_error(error))}",
                          highlight=False)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except InterruptedAfterOutput as interrupted:
            console.print(f"[yellow]Interrupted after {escape(str(interrupted.written))} was "
                          f"written; {escape(interrupted.unfinished)}.[/]", highlight=False)
            raise typer.Exit(130) from None
        except InterruptedResumable as interrupted:
            console.print(f"[yellow]Interrupted; {escape(str(interrupted.output))} was not "
                          "written, but its last checkpoint is kept: run the same command with "
                          "--resume to continue.[/]", highlight=False)
            raise typer.Exit(130) from None
        except KeyboardInterrupt:
            console.print("[yellow]Interrupted; no output was written.[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def describe_os_error(error: OSError) -> str:
    """One sentence for an operating-system error: what failed, on which file, and what to do."""
    where = f" ({error.filename})" if error.filename else ""
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        return (f"The disk is full{where}; no output was written: free some space or write to "
                "another disk.")
    if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"{reason}{where}; no output was written: choose a folder you can write to, or "
                "check the file's permissions.")
    return f"{reason}{where}; no output was written: check the path and try again."


def check_output(path: Path, overwrite: bool, *, image_dtype: str | None = None) -> None:
    """Fail before any long work if ``path`` exists and ``overwrite`` is off, if its folder is
    missing or not writable, if it is a folder infocus did not write (which ``--overwrite``
    never deletes), or, for an image (``image_dtype`` given), if its ending or data type
    cannot be written."""
    from infocus.io import check_image_output, check_output_path, check_writable_folder
    from infocus.io._atomic import remove_stale_temporaries

    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"Output {path} already exists; pass --overwrite to replace it or choose another path."
        )
    removed = remove_stale_temporaries(path)
    if removed:
        console.print(f"[yellow]Removed {len(removed)} temporary file(s) that an interrupted "
                      f"earlier run left beside {path.name}.[/]", highlight=False)
    if image_dtype is not None:
        check_image_output(path, dtype=image_dtype, overwrite=True)
    else:
        check_output_path(path, overwrite=True)
        check_writable_folder(path.parent)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar; yields a ``progress(done, total)`` callback for long loops."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def print_json(payload: Any) -> None:
    """Machine-readable output on stdout (no colours, no wrapping): valid JSON, so a value
    that is not a finite number (the PSNR of two identical images) is written as null."""
    sys.stdout.write(json.dumps(_finite_or_null(payload), indent=2, allow_nan=False) + "\n")


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@contextmanager
def training_progress() -> Iterator[Callable[[Any], None]]:
    """A progress callback for :func:`infocus.train`: a rich bar on a terminal (one per method
    trained, e.g. the Noise2Void that bootstraps a noise model), else one line per epoch."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.4g} val {task.fields[val]:.4g}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    interactive = sys.stderr.isatty()
    with Progress(*columns, console=console, disable=not interactive) as bar:
        tasks: dict[str, Any] = {}

        def update(status: Any) -> None:
            if interactive:
                if status.method not in tasks:
                    tasks[status.method] = bar.add_task(
                        f"train {status.method}", total=status.steps, loss=float("nan"),
                        val=float("nan"))
                bar.update(tasks[status.method], completed=status.step, loss=status.loss,
                           val=status.val_loss)
            elif status.epoch is not None:
                entry = status.epoch
                extra = f", val PSNR {entry['val_psnr']:.2f} dB" if "val_psnr" in entry else ""
                console.print(f"{status.method} epoch {entry['epoch']}: step {status.step}/"
                              f"{status.steps}, train loss {entry['train_loss']:.4g}, val loss "
                              f"{entry['val_loss']:.4g}{extra}")

        yield update


#: The automatic one-line quality summary of a larger stack looks at evenly spaced time points
#: or planes that hold about this many pixels. The checks keep several float64 copies of what
#: they see (about 130 bytes a pixel were measured), so the summary's memory stays near 500 MB
#: however long the stack; an explicit --qc report still sees everything.
QC_SUMMARY_PIXELS = 4_000_000
#: A single plane or volume larger than this (nothing to thin out) gets no automatic summary.
QC_SUMMARY_MAX_PIXELS = 64_000_000

#: What one index of an axis is called in the summary's note on a sample.
_AXIS_ITEMS = {"T": "time points", "Z": "planes", "S": "images"}


def summary_selection(shape: tuple[int, ...], axes: str, budget: int | None = None
                      ) -> dict[str, list[int]]:
    """Evenly spaced indices of the outer axes (all but C, Y, X) whose pixels fit ``budget``
    (default :data:`QC_SUMMARY_PIXELS`).

    Axes are thinned from the outermost in: an axis whose single index still exceeds the
    budget keeps one index and the next axis is thinned too. Empty when the image fits.

    Examples
    --------
    >>> summary_selection((32, 2, 16, 128, 128), "TCZYX", budget=2_000_000)
    {'T': [0, 16, 31]}
    """
    import numpy as np

    budget = QC_SUMMARY_PIXELS if budget is None else budget
    selection: dict[str, list[int]] = {}
    size = math.prod(shape)
    for axis in (a for a in axes if a not in "CYX"):
        if size <= budget:
            break
        length = shape[axes.index(axis)]
        per_index = size // length
        count = max(1, min(length, budget // per_index))
        selection[axis] = sorted({int(i) for i in np.linspace(0, length - 1, count).round()})
        size = per_index * len(selection[axis])
    return selection


def take_selection(array: Any, axes: str, selection: dict[str, list[int]]) -> Any:
    """The ``selection`` of ``array`` (in memory or lazy), reading only the selected indices;
    the axes keep their order."""
    import numpy as np

    for axis, indices in selection.items():
        position = axes.index(axis)
        rest = {a: v for a, v in selection.items() if a != axis}
        return np.concatenate([take_selection(array[(slice(None),) * position + (slice(i, i + 1),)],
                                              axes, rest) for i in indices], axis=position)
    return np.asarray(array)


def _selection_note(selection: dict[str, list[int]], shape: tuple[int, ...], axes: str) -> str:
    return ", ".join(f"{len(v)} of {shape[axes.index(a)]} {_AXIS_ITEMS.get(a, a + ' positions')}"
                     for a, v in selection.items())


#: The classical reference of the disagreement check after a prediction with --qc: wavelet
#: shrinkage, not BM3D as in `infocus qc --model`. On one 1024 x 1024 plane (2 shared CPU
#: cores) a small Noise2Void U-Net predicted in 3.5 to 6.5 s, wavelet shrinkage with the
#: check's noise model took 2.0 s and BM3D 198 s (docs/qc.md).
PREDICT_REFERENCE = "wavelet"


def reference_name(given: str | None, default: str | None, *, flag: str) -> str | None:
    """The classical method a trained model's output is compared with: ``given`` by ``flag``
    (``"none"`` for no comparison), else ``default``; a learned or unknown name fails here,
    before any work."""
    if given is None:
        return default
    if given.lower() == "none":
        return None
    from infocus.classical import get_denoiser
    from infocus.methods import list_schemes

    if given.lower() in list_schemes():
        raise InfocusInputError(
            f"{flag} {given!r} is a learned method; name a classical one (e.g. bm3d, "
            "wavelet, nl_means): the comparison needs a denoiser that learnt nothing.")
    get_denoiser(given)
    return given


def report_quality(noisy: Any, denoised: Any, axes: str, *, folder: Path | None = None,
                   denoiser: Callable[[Any], Any] | None = None, noise: Any = None,
                   overwrite: bool = False, title: str = "", model: Any = None,
                   reference: str | None = None, denoised_axes: str | None = None) -> None:
    """Print the one-line ground-truth-free quality summary of a result just written, and with
    ``folder`` write the full ``infocus qc`` report there (re-running ``denoiser`` for the
    error estimate). The output is already safe on disk: a check that cannot run says why in
    one line instead of failing the command. A trained ``model`` adds the domain check, a
    classical ``reference`` method the disagreement check (on a sample of a large stack's
    planes).

    Without ``folder`` a stack of more than :data:`QC_SUMMARY_PIXELS` is summarised from
    evenly spaced time points or planes (:func:`summary_selection`); ``noisy`` and ``denoised``
    may then be lazy arrays, of which only those are read. ``denoised_axes``: the order of
    ``denoised``'s axes when it differs from ``axes`` (a file read back).
    """
    import numpy as np

    from infocus.qc import quality_check
    from infocus.qc.page import write_report

    denoised_axes = denoised_axes or axes
    shape = tuple(int(n) for n in np.shape(noisy))
    selection = summary_selection(shape, axes) if folder is None else {}
    kept = math.prod(shape[axes.index(a)] if a not in selection else len(selection[a])
                     for a in axes)
    if folder is None and kept > QC_SUMMARY_MAX_PIXELS:
        console.print(f"Quality check skipped for {kept:,} pixels; run `infocus qc` on a crop, "
                      "or pass --qc REPORT_DIR.")
        return
    noisy = take_selection(noisy, axes, selection)
    denoised = take_selection(denoised, denoised_axes, selection)
    if denoised_axes != axes:
        denoised = np.transpose(denoised, [denoised_axes.index(a) for a in axes])
    sampled = f", {_selection_note(selection, shape, axes)}" if selection else ""
    try:
        with console.status("quality check" + (f" (and {reference} for comparison)"
                                                if reference else "")):
            report = quality_check(noisy, denoised, axes=axes, noise=noise,
                                   denoiser=denoiser if folder is not None else None,
                                   signature=model_signature(model), reference=reference)
            if folder is not None:
                write_report(report, noisy, denoised, folder, overwrite=overwrite, title=title)
    except (InfocusInputError, ImportError) as error:
        console.print(f"[yellow]Quality check skipped: {escape(str(error))}[/]", highlight=False)
        return
    colour = "yellow" if report.flagged else "green"
    console.print(f"[{colour}]Quality (no ground truth{sampled}): "
                  f"{escape(report.summary_line())}[/]", highlight=False)
    if folder is not None:
        console.print(f"Wrote the quality report {folder} (open {folder / 'report.html'}).")


def model_signature(model: Any) -> dict[str, Any] | None:
    """The description of a trained model's training data, or None (no model, or a model file
    written before infocus stored one; then say so)."""
    if model is None:
        return None
    signature = model.provenance.get("data_signature")
    if not isinstance(signature, dict):
        console.print("[yellow]The model file holds no description of its training data "
                      "(written by an older infocus): the domain check is skipped.[/]")
        return None
    return signature


#: TeX commands in :math: roles, as the Unicode a terminal shows (the ones our docstrings use).
_TEX_SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "eta": "η", "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "pi": "π",
    "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ",
    "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Sigma": "Σ",
    "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω", "mid": "|", "cdot": "·", "times": "×", "le": "≤",
    "leq": "≤", "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠", "approx": "≈", "sim": "~",
    "pm": "±", "in": "∈", "infty": "∞", "sum": "Σ", "prod": "Π", "sqrt": "√", "dots": "…",
    "ldots": "…", "cdots": "…", "to": "→", "rightarrow": "→", "leftarrow": "←", "propto": "∝",
    "partial": "∂", "nabla": "∇", "ell": "ℓ", ",": " ", ";": " ",
    "!": "", " ": " ", "left": "", "right": "", "big": "", "Big": "",
}
_TEX_COMMAND = re.compile(r"\\([A-Za-z]+|[,;! ])")
_TEX_ACCENT = re.compile(r"\\(hat|tilde|bar)\s*(?:\{(\w)\}|(\w))")
_TEX_WRAPPER = re.compile(r"\\(?:mathrm|mathbf|mathit|mathcal|mathbb|operatorname|text)\s*\{([^{}]*)\}")
_TEX_FRACTION = re.compile(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_ROLE = re.compile(r"(?::[\w-]+)?:([\w-]+):`([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_REFERENCE = re.compile(r"`([^`<]+?)(?:\s*<[^>]*>)?`__?(?!\w)")
_INTERPRETED = re.compile(r"(?<![\w`])`([^`]+)`(?![\w`])")
_EMPHASIS = re.compile(r"(?<![\w*\\])(\*\*?)(?=\S)([^*]+?)(?<=\S)\1(?![\w*])")


def plain_text(text: str) -> str:
    """``text`` with its reStructuredText markup turned into what a terminal shows as is.

    Docstrings are written for Sphinx (numpydoc); the command line prints their first lines.
    Roles keep their text (``:func:`~infocus.io.read_image``` -> ``read_image``), math roles
    become Unicode (``:math:`\\hat{y} = \\sigma``` -> ``ŷ = σ``), literals, references and
    emphasis lose their backticks and stars. Only the markup our docstrings use is handled:
    this is a reader's courtesy, not a reStructuredText parser.
    """

    def role(match: re.Match[str]) -> str:
        name, content = match.groups()
        if name == "math":
            return _tex_to_unicode(content)
        content = re.sub(r"\s*<[^>]*>$", "", content)  # :ref:`text <target>` -> text
        return content.split(".")[-1] if content.startswith("~") else content.lstrip("!")

    text = _ROLE.sub(role, text)
    text = _LITERAL.sub(r"\1", text)
    text = _REFERENCE.sub(r"\1", text)
    text = _INTERPRETED.sub(r"\1", text)
    return _EMPHASIS.sub(r"\2", text)


def _tex_to_unicode(tex: str) -> str:
    """A TeX formula as plain text: symbols and Greek letters in Unicode, wrappers dropped,
    ``\\frac{a}{b}`` as ``a/b``; sub- and superscripts stay as ``_`` and ``^``."""
    # Escaped braces are text (a set); hide them from the brace handling below.
    tex = tex.replace(r"\{", "\x00").replace(r"\}", "\x01")
    tex = _TEX_ACCENT.sub(lambda m: (m.group(2) or m.group(3)) + {
        "hat": "\u0302", "tilde": "\u0303", "bar": "\u0304"}[m.group(1)], tex)
    previous = None
    while previous != tex:  # innermost first, so nested wrappers unwind
        previous = tex
        tex = _TEX_WRAPPER.sub(r"\1", tex)
        tex = _TEX_FRACTION.sub(lambda m: f"{_grouped(m.group(1))}/{_grouped(m.group(2))}", tex)
    tex = _TEX_COMMAND.sub(lambda m: _TEX_SYMBOLS.get(m.group(1), m.group(1)), tex)
    # Braces that only group go: x_{t+1} -> x_(t+1), {s} -> s.
    tex = re.sub(r"(?<=[_^])\{([^{}]*)\}", lambda m: _grouped(m.group(1)), tex)
    tex = re.sub(r"\{([^{}]*)\}", r"\1", tex)
    tex = tex.replace("\x00", "{").replace("\x01", "}")
    # NFC: one precomposed letter (ŷ) where Unicode has it, which every terminal font draws.
    return unicodedata.normalize("NFC", re.sub(r" {2,}", " ", tex).strip())


def _grouped(term: str) -> str:
    """``term`` in parentheses unless it is one symbol or word (``x_t``, but ``x_(t+1)``)."""
    return term if re.fullmatch(r"\w+|\S", term) else f"({term})"
