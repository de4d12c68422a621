"""The pictures commands write beside their results: a model's loss curve, a before/after
preview. Checked before the long work, written after it; the result is already safe on disk
then, so a picture that cannot be drawn says why in one line instead of failing the command."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.markup import escape

from infocus._errors import InfocusInputError
from infocus.cli._common import check_output, console


def check_preview(path: Path | None, overwrite: bool) -> None:
    """Refuse a --preview that is not a .png, or that exists without --overwrite."""
    if path is None:
        return
    if path.suffix.lower() != ".png":
        raise InfocusInputError(
            f"--preview {path} must end in .png (the before/after figure is a PNG); e.g. "
            f"--preview {path.with_suffix('.png').name}.")
    check_output(path, overwrite)


def write_preview(path: Path | None, noisy: Any, denoised: Any, *, axes: str, title: str,
                  method: str, overwrite: bool) -> None:
    """Write the before/after PNG of two arrays when --preview was given (checked by
    :func:`check_preview`)."""
    if path is None:
        return
    _draw_preview(path, lambda: (noisy, axes, denoised, axes), title, method, overwrite)


def write_file_preview(path: Path | None, image: Path, written: Path, *, axes: str | None,
                       method: str, overwrite: bool) -> None:
    """The before/after PNG of an image file and its denoised file; only the middle plane of
    each is read, so a stack larger than memory is fine."""
    if path is None:
        return

    def planes() -> tuple[Any, str, Any, str]:
        from infocus.io import open_image_lazy

        noisy = open_image_lazy(image, axes=axes)
        # The written file may keep its axes in another order (TIFF and Zarr keep Y X last).
        result = open_image_lazy(written)
        return noisy.data, noisy.axes, result.data, result.axes

    _draw_preview(path, planes, f"{method} on {image.name}", method, overwrite)


def _draw_preview(path: Path, images: Callable[[], tuple[Any, str, Any, str]], title: str,
                  method: str, overwrite: bool) -> None:
    from infocus.qc.figures import write_preview as write_figure

    try:
        noisy, axes, denoised, denoised_axes = images()
        written = write_figure(noisy, denoised, path, axes=axes, denoised_axes=denoised_axes,
                               title=title, label=f"denoised ({method})", overwrite=overwrite)
    except (InfocusInputError, OSError, ValueError) as error:
        console.print(f"[yellow]Preview not written: {escape(str(error))}[/]", highlight=False)
        return
    console.print(f"Wrote the preview {written}.")


def check_loss_curve(model: Path, overwrite: bool) -> None:
    """Refuse an existing loss curve beside a .zip model (inside a model folder it is
    replaced with the folder)."""
    from infocus.training.figures import loss_curve_path

    target = loss_curve_path(model)
    if target.parent != model:
        check_output(target, overwrite)


def write_loss_curve(model: Path, history: list[dict[str, Any]], *, title: str,
                     overwrite: bool) -> None:
    """Draw the training history of the model just saved at ``model`` where
    :func:`~infocus.training.figures.loss_curve_path` says."""
    from infocus.training.figures import loss_curve_path, plot_history

    # Under torchrun every process runs the command; only the first saved the model.
    if int(os.environ.get("RANK", "0")) != 0:
        return
    target = loss_curve_path(model)
    try:
        # Inside the folder just written there is nothing of the user's to protect.
        written = plot_history(history, target, title=title,
                               overwrite=overwrite or target.parent == model)
    except (InfocusInputError, OSError, ValueError) as error:
        console.print(f"[yellow]Loss curve not written: {escape(str(error))}[/]",
                      highlight=False)
        return
    console.print(f"Wrote the loss curve {written}.")
