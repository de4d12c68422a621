"""Dock widget: denoise a layer with a saved model (tiled, so large images are fine)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import CheckBox, Container, FileEdit, Label, PushButton, SpinBox

from infocus._errors import InfocusInputError
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

if TYPE_CHECKING:
    import numpy as np

    import napari

__all__ = ["PredictWidget"]


class PredictWidget(Container):
    """Denoise an image layer with a model written by ``infocus train`` or the Train widget.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose layers the widget offers (napari passes it).
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._model = FileEdit(label="model", mode="d", tooltip=(
            "A model folder (or type the path of a model .zip)."))
        self._layer = layer_combo(viewer, "image")
        self._axes = AxesField()
        self._tile = SpinBox(label="tile size", min=0, max=8192, step=16, value=0,
                             tooltip="Tile edge in pixels; 0 chooses it from the free memory.")
        self._tta = CheckBox(text="test-time augmentation (8 flips/rotations; unchecked: "
                                  "the method's default)", value=False)
        self._run = PushButton(text="Denoise")
        self._cancel = PushButton(text="Cancel", enabled=False)
        self._progress = progress_bar()
        self._status = Label(value="")
        self._status.native.setWordWrap(True)
        super().__init__(widgets=[
            self._model, self._layer, self._axes, self._tile, self._tta,
            Container(layout="horizontal", widgets=[self._run, self._cancel]), self._progress,
            self._status])
        self._relay = Relay()
        self._relay.progress.connect(self._show_progress)
        self._stop = threading.Event()
        self.worker: Any = None
        self._layer.changed.connect(self._axes.follow)
        self._run.clicked.connect(self.run)
        self._cancel.clicked.connect(self._stop.set)
        self._axes.follow(self._layer.value)

    def run(self) -> None:
        """Load the model and denoise the layer in a worker thread."""
        layer = self._layer.value
        try:
            if layer is None:
                raise InfocusInputError("Choose an image layer to denoise.")
            axes = self._axes.axes_for(layer)
            path = Path(self._model.value)
            if str(path) in ("", "."):
                raise InfocusInputError("Choose the model folder (or .zip) to denoise with.")
        except InfocusInputError as error:
            report_error(error, self._status)
            return
        self._stop.clear()
        self._run.enabled, self._cancel.enabled = False, True
        self._progress.visible, self._progress.value = True, 0
        self._status.value = f"Denoising {layer.name} with {path.name} ..."
        worker = idle_worker(self._work, path, layer_array(layer), axes,
                               int(self._tile.value) or None, bool(self._tta.value))
        worker.returned.connect(lambda result: self._finished(layer, result, path, axes))
        worker.errored.connect(self._failed)
        worker.finished.connect(self._idle)
        self.worker = worker
        worker.start()

    def _work(self, path: Path, data: Any, axes: str, tile_size: int | None, tta: bool
              ) -> np.ndarray:
        from infocus.predict.model import load_model

        def progress(done: int, total: int) -> None:
            if self._stop.is_set():
                raise Cancelled
            self._relay.progress.emit((done, total))

        model = load_model(path)
        # unchecked leaves the method's default (DecoNoising averages orientations)
        return model.denoise(data, axes=axes, tile_size=tile_size, tta=True if tta else None,
                             progress=progress)

    def _show_progress(self, done_total: tuple[int, int]) -> None:
        done, total = done_total
        self._progress.max = max(1, total)
        self._progress.value = done

    def _finished(self, source: Any, result: np.ndarray, path: Path, axes: str) -> None:
        add_output(self._viewer, source, result, f"{source.name} ({path.stem})", axes=axes,
                   contrast_limits=source.contrast_limits)
        report_info(f"Denoised {source.name} with {path.name}.", self._status)

    def _failed(self, error: BaseException) -> None:
        if isinstance(error, Cancelled):
            report_info("Prediction cancelled.", self._status)
        else:
            report_error(error, self._status)

    def _idle(self) -> None:
        self._run.enabled, self._cancel.enabled = True, False
        self._progress.visible = False
