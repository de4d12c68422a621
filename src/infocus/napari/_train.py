"""Dock widget: train any registered method on layers or files, in a worker thread.

Progress reaches the widget through a queued Qt signal (the progress bar and the loss plot);
Cancel makes the training's progress callback raise, which stops the run after the current
step (:func:`infocus.train` lets a callback's exception through).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, PushButton, SpinBox
from qtpy.QtCore import Signal

from infocus._errors import InfocusInputError
from infocus.methods import DEFAULT_METHOD, create_scheme, list_schemes
from infocus.methods.config import default_config
from infocus.napari._axes import layer_array
from infocus.napari._common import (
    AxesField,
    Cancelled,
    Relay,
    add_output,
    idle_worker,
    layer_combo,
    progress_bar,
    report_error,
    report_info,
)
from infocus.napari._plot import LossPlot

if TYPE_CHECKING:
    import napari
    from infocus.predict.model import TrainedModel
    from infocus.training.loop import TrainingProgress

__all__ = ["TrainWidget"]


class _TrainingRelay(Relay):
    log = Signal(str)


def _paths(value: Any) -> list[Path]:
    """The files of a FileEdit in "rm" mode (an empty tuple when none were chosen)."""
    return [Path(p) for p in (value or ()) if str(p) not in ("", ".")]


class TrainWidget(Container):
    """Train a denoising network on an image layer (or files) and denoise the layer with it.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose layers the widget offers (napari passes it).
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._layer = layer_combo(viewer, "images")
        self._files = FileEdit(label="or files", mode="rm", tooltip=(
            "Train on these files instead of the layer (their axes come from the files)."))
        self._axes = AxesField()
        self._method = ComboBox(label="method", choices=list_schemes(), value=DEFAULT_METHOD)
        self._about = Label(value="")
        self._about.native.setWordWrap(True)
        self._target = layer_combo(viewer, "targets", optional=True)
        self._target_files = FileEdit(label="or target files", mode="rm")
        self._steps = SpinBox(label="steps", min=1, max=10**7)
        self._patch = SpinBox(label="patch size", min=0, max=1024, step=8, value=0,
                              tooltip="Edge of the training patches; 0 chooses it from the data.")
        self._batch = SpinBox(label="batch size", min=1, max=1024)
        self._output = FileEdit(label="save model to", mode="w", nullable=True, tooltip=(
            "A folder or .zip to write the model to (optional); load it later in "
            "'Denoise with a model'."))
        self._denoise_after = CheckBox(text="denoise the layer when done", value=True)
        self._train = PushButton(text="Train")
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._progress = progress_bar()
        self._status = Label(value="")
        self._status.native.setWordWrap(True)
        super().__init__(widgets=[
            self._layer, self._files, self._axes, self._method, self._about, self._target,
            self._target_files, self._steps, self._patch, self._batch, self._output,
            self._denoise_after, Container(layout="horizontal", widgets=[self._train,
                                                                       self._cancel]),
            self._progress, self._status])
        self.plot = LossPlot()
        self.native.layout().addWidget(self.plot)
        self._relay = _TrainingRelay()
        self._relay.progress.connect(self._show_progress)
        self._relay.log.connect(lambda message: setattr(self._status, "value", message))
        self._stop = threading.Event()
        self._wants_targets = False
        self.model: TrainedModel | None = None
        self.worker: Any = None
        self._layer.changed.connect(self._axes.follow)
        self._method.changed.connect(self._method_changed)
        self._train.clicked.connect(self.run)
        self._cancel.clicked.connect(self.cancel)
        self._axes.follow(self._layer.value)
        self._method_changed(self._method.value)

    def _method_changed(self, method: str) -> None:
        scheme = create_scheme(method)
        config = default_config(method)
        self._steps.value, self._batch.value = config.steps, config.batch_size
        self._wants_targets = bool(scheme.needs_target or scheme.labels)
        self._target.visible = self._target_files.visible = self._wants_targets
        self._about.value = scheme.summary + (f" Targets: {scheme.target_help}."
                                              if scheme.needs_target else "")

    def _inputs(self) -> tuple[Any, Any, str | None, Any]:
        """Inputs, targets, axes (None for files) and the layer to denoise afterwards."""
        files = _paths(self._files.value)
        layer = self._layer.value
        if files:
            inputs, axes, source = files, None, None
        elif layer is not None:
            inputs, axes, source = layer_array(layer), self._axes.axes_for(layer), layer
        else:
            raise InfocusInputError("Choose an image layer to train on, or pick files.")
        targets: Any = None
        if self._wants_targets:
            target_files = _paths(self._target_files.value)
            if target_files:
                targets = target_files
            elif self._target.value is not None:
                targets = layer_array(self._target.value)
        return inputs, targets, axes, source

    def run(self) -> None:
        """Start training in a worker thread."""
        try:
            inputs, targets, axes, source = self._inputs()
        except InfocusInputError as error:
            report_error(error, self._status)
            return
        method = self._method.value
        output = self._output.value
        options = {"method": method, "axes": axes, "targets": targets,
                   "steps": int(self._steps.value), "batch_size": int(self._batch.value),
                   "patch_size": int(self._patch.value) or None,
                   "output": None if output in (None, Path(".")) else output}
        self._stop.clear()
        self.plot.clear()
        self._train.enabled, self._cancel.enabled = False, True
        self._progress.visible, self._progress.value = True, 0
        self._progress.max = options["steps"]
        self._status.value = f"Training {method} ..."
        denoise = source if self._denoise_after.value else None
        worker = idle_worker(self._work, inputs, options, denoise, axes)
        worker.returned.connect(lambda result: self._finished(result, source, method, axes))
        worker.errored.connect(self._failed)
        worker.finished.connect(self._idle)
        self.worker = worker
        worker.start()

    def cancel(self) -> None:
        """Stop the training after the current step; nothing is kept."""
        self._stop.set()
        self._status.value = "Cancelling ..."

    def _work(self, inputs: Any, options: dict[str, Any], denoise: Any, axes: str | None
              ) -> tuple[TrainedModel, np.ndarray | None]:
        from infocus.training.loop import train

        def progress(report: TrainingProgress) -> None:
            if self._stop.is_set():
                raise Cancelled
            self._relay.progress.emit(report)

        model = train(inputs, **options, progress=progress, log=self._relay.log.emit)
        denoised = None
        if denoise is not None:
            denoised = model.denoise(layer_array(denoise), axes=axes)
        return model, denoised

    def _show_progress(self, report: TrainingProgress) -> None:
        self._progress.max = report.steps
        self._progress.value = report.step
        self.plot.add(report.step, report.loss,
                      report.epoch["val_loss"] if report.epoch is not None else None)

    def _finished(self, result: tuple[TrainedModel, np.ndarray | None], source: Any,
                  method: str, axes: str | None) -> None:
        self.model, denoised = result
        if denoised is not None and axes is not None:
            add_output(self._viewer, source, denoised, f"{source.name} ({method})", axes=axes,
                       contrast_limits=source.contrast_limits)
        report_info(f"Trained {method} for {len(self.plot.steps)} steps.", self._status)

    def _failed(self, error: BaseException) -> None:
        if isinstance(error, Cancelled):
            report_info("Training cancelled; nothing was kept.", self._status)
        else:
            report_error(error, self._status)

    def _idle(self) -> None:
        self._train.enabled, self._cancel.enabled = True, False
        self._progress.visible = False
