"""The loss curve of a training run, as a PNG a person looks at before trusting the model.

``infocus train`` writes it with the model: ``MODEL/loss.png`` inside a model folder, and
``NAME.loss.png`` beside a ``NAME.zip`` model (a .zip model holds exactly the files of the
model format, so that every infocus version reads it).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["LOSS_CURVE_NAME", "loss_curve_path", "plot_history"]

#: The file name of the loss curve inside a model folder.
LOSS_CURVE_NAME = "loss.png"


def loss_curve_path(model: str | os.PathLike[str]) -> Path:
    """Where the loss curve of the model at ``model`` goes: ``MODEL/loss.png`` for a model
    folder, ``NAME.loss.png`` beside a ``NAME.zip`` model."""
    path = Path(model).expanduser()
    if path.suffix.lower() == ".zip":
        return path.with_suffix(".loss.png")
    return path / LOSS_CURVE_NAME


def plot_history(
    history: Sequence[dict[str, Any]],
    path: str | os.PathLike[str],
    *,
    title: str = "",
    overwrite: bool = False,
) -> Path:
    """Write a PNG of the training and validation loss against the optimiser step.

    The losses are drawn on a logarithmic axis when they are all positive (a loss that falls
    by orders of magnitude stays readable), else on a linear one: likelihood losses (PN2V,
    DivNoising) go negative. A history with the validation PSNR (``train(validation=...)``)
    gets a second panel for it.

    Parameters
    ----------
    history : sequence of dict
        :attr:`TrainedModel.history <infocus.predict.model.TrainedModel.history>`: one entry
        per epoch with ``step``, ``train_loss`` and ``val_loss`` (the mean training loss over
        the epoch, and the loss on the fixed validation patches at its end).
    path : path
        The PNG to write, atomically.
    title : str
        Heading, e.g. the method and the data.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InfocusInputError
        The history records no finite loss (nothing to draw).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from infocus._errors import InfocusInputError
    from infocus.io._atomic import atomic_output

    curves = {name: _series(history, key) for name, key in
              (("training", "train_loss"), ("validation", "val_loss"))}
    curves = {name: points for name, points in curves.items() if points[0]}
    if not curves:
        raise InfocusInputError(
            "The training history records no finite loss, so there is no curve to draw; "
            "train for at least one epoch (--steps of at least 1).")
    psnr = _series(history, "val_psnr")
    panels = 1 + bool(psnr[0])
    figure = Figure(figsize=(6.4 * panels, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, panels, squeeze=False)[0]
    styles = {"training": dict(color="tab:blue"), "validation": dict(color="tab:orange")}
    for name, (steps, values) in curves.items():
        axes[0].plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3,
                     label=name, **styles[name])
    values = [v for _, points in curves.values() for v in points]
    logarithmic = min(values) > 0
    if logarithmic:
        axes[0].set_yscale("log")
    axes[0].set(xlabel="optimiser step", ylabel="loss" + (" (log scale)" * logarithmic))
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3, which="both" if logarithmic else "major")
    if psnr[0]:
        axes[1].plot(*psnr, marker="o", markersize=3, color="tab:green")
        axes[1].set(xlabel="optimiser step", ylabel="PSNR (dB)", title="validation image")
        axes[1].grid(alpha=0.3)
    if title:
        figure.suptitle(title, fontsize=10)
    path = Path(path).expanduser()
    with atomic_output(path, overwrite=overwrite, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    return path


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """Steps and values of ``key`` over the epochs that recorded a finite value."""
    pairs = [(float(entry["step"]), float(entry[key])) for entry in history
             if isinstance(entry.get(key), int | float) and math.isfinite(entry[key])
             and isinstance(entry.get("step"), int | float)]
    return [s for s, _ in pairs], [v for _, v in pairs]
