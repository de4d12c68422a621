"""What the widgets share: layer choices, the axes field, output layers, errors and workers."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, LineEdit, ProgressBar, Widget
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal

from infocus._errors import InfocusInputError
from infocus.axes import check_axes
from infocus.napari._axes import layer_array, layer_axes

if TYPE_CHECKING:
    import napari

__all__ = ["AxesField", "Cancelled", "Relay", "add_output", "image_choices", "report_error"]


class Cancelled(Exception):
    """Raised by a progress callback when the user pressed Cancel: the work stops there."""


def image_choices(viewer: napari.viewer.Viewer) -> Callable[[Any], list[tuple[str, Image]]]:
    """A ``choices`` callable for a ComboBox: the viewer's image layers, top layer first."""

    def choices(_widget: Any) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in reversed(viewer.layers)
                if isinstance(layer, Image)]

    return choices


def layer_combo(viewer: napari.viewer.Viewer, label: str, *, optional: bool = False
                ) -> ComboBox:
    """A ComboBox of the viewer's image layers that follows layers being added and removed."""
    combo = ComboBox(label=label, choices=image_choices(viewer), nullable=optional)
    for event in (viewer.layers.events.inserted, viewer.layers.events.removed,
                  viewer.layers.events.moved):
        connect_while_alive(combo, event, lambda _event: combo.reset_choices())
    return combo


def connect_while_alive(widget: Widget, emitter: Any, callback: Callable[..., Any]) -> None:
    """Connect a viewer event to ``callback`` until ``widget`` is deleted (a closed dock widget
    must not hear the viewer's later events)."""
    emitter.connect(callback)

    def disconnect(*_: Any) -> None:
        with suppress(Exception):  # the viewer may be gone first (closing napari)
            emitter.disconnect(callback)

    widget.native.destroyed.connect(disconnect)


class AxesField(Container):
    """An editable axes field filled from the chosen layer, with a message when it is a guess."""

    def __init__(self, label: str = "axes") -> None:
        self.field = LineEdit(label=label, tooltip=(
            "One letter per dimension of the layer: S sample, T time, C channel, Z depth, "
            "Y rows, X columns, e.g. ZYX or TYX."))
        self.note = Label(value="")
        self.note.native.setWordWrap(True)
        super().__init__(widgets=[self.field, self.note], labels=True)
        self.margins = (0, 0, 0, 0)
        self.note.visible = False

    def follow(self, layer: Any) -> None:
        """Fill the field from ``layer`` (None clears it)."""
        if layer is None:
            self._show("", "")
            return
        try:
            guess = layer_axes(layer)
        except InfocusInputError as error:
            self._show("", str(error))
            return
        self._show(guess.axes, guess.message)

    def _show(self, axes: str, message: str) -> None:
        self.field.value, self.note.value = axes, message
        self.note.visible = bool(message)

    def axes_for(self, layer: Any) -> str:
        """The axes in the field, checked against ``layer``'s data (one clear sentence if not)."""
        return check_axes(self.field.value.strip(), tuple(np.shape(layer_array(layer))))


def add_output(viewer: napari.viewer.Viewer, source: Any, data: np.ndarray, name: str, *,
               axes: str, kind: str = "image", **options: Any) -> Any:
    """Add ``data`` (the source layer's shape) as a new layer over ``source``: same scale,
    translation and axis labels, its axes kept in the metadata; replaces a layer of that name."""
    properties: dict[str, Any] = {
        "name": name, "scale": source.scale, "translate": source.translate,
        "axis_labels": source.axis_labels, "metadata": {"axes": axes}, **options}
    if name in viewer.layers:
        viewer.layers.remove(name)
    if kind == "labels":
        return viewer.add_labels(data, **properties)
    return viewer.add_image(data, rgb=bool(getattr(source, "rgb", False)), **properties)


def report_error(error: BaseException, status: Label | None = None) -> None:
    """One sentence in a napari notification (and the widget's status line), never a
    traceback: input errors say what to fix; anything else names its type."""
    message = str(error) if isinstance(error, InfocusInputError | ImportError) else (
        f"{type(error).__name__}: {error}")
    if status is not None:
        status.value = message
    show_error(message)


def report_info(message: str, status: Label | None = None) -> None:
    """A message in a napari notification and the widget's status line."""
    if status is not None:
        status.value = message
    show_info(message)


class Relay(QObject):
    """Hands progress from a worker thread to the widget in the GUI thread (queued signal)."""

    progress = Signal(object)


def progress_bar() -> ProgressBar:
    """A hidden progress bar, shown while work runs."""
    bar = ProgressBar(value=0, min=0, max=1, label="progress")
    bar.visible = False
    return bar


def idle_worker(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A napari worker for ``function(*args, **kwargs)``, not started yet (so that no signal is
    missed), whose errors go only to the handlers the widget connects: a sentence, not a
    traceback."""
    return create_worker(function, *args, _start_thread=False, _ignore_errors=True, **kwargs)
