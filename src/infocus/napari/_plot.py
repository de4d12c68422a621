"""A small live plot of the training and validation loss (matplotlib in the dock widget)."""

from __future__ import annotations

import math

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

__all__ = ["LossPlot"]


class LossPlot(FigureCanvasQTAgg):
    """Training loss per step and validation loss per epoch, redrawn as they come."""

    def __init__(self) -> None:
        figure = Figure(figsize=(3.6, 2.2), dpi=90, layout="constrained")
        super().__init__(figure)
        self.axes = figure.add_subplot()
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.epochs: list[int] = []
        self.val_losses: list[float] = []
        self.setMinimumHeight(160)
        self.clear()

    def clear(self) -> None:
        """Forget the curves (a new run)."""
        self.steps, self.losses, self.epochs, self.val_losses = [], [], [], []
        self._redraw()

    def add(self, step: int, loss: float, val_loss: float | None = None) -> None:
        """The running loss at ``step``, and a validation loss when an epoch ended there."""
        self.steps.append(step)
        self.losses.append(loss)
        if val_loss is not None and math.isfinite(val_loss):
            self.epochs.append(step)
            self.val_losses.append(val_loss)
        self._redraw()

    def _redraw(self) -> None:
        axes = self.axes
        axes.clear()
        axes.plot(self.steps, self.losses, color="tab:blue", lw=1, label="training")
        axes.plot(self.epochs, self.val_losses, "o-", color="tab:orange", ms=3, lw=1,
                  label="validation")
        axes.set_xlabel("step", fontsize=8)
        axes.set_ylabel("loss", fontsize=8)
        axes.tick_params(labelsize=7)
        if self.steps:
            axes.legend(fontsize=7, frameon=False)
        self.draw_idle()
