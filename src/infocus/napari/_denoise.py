"""Dock widget: denoise the selected layer with a classical method, with a live preview.

The parameter controls are built from :func:`infocus.classical.denoiser_parameters`, for any
registered method: a slider where the method gives a range, a list where it gives choices, and
an "auto" box for each parameter the method can choose from the data.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSlider,
    Label,
    LineEdit,
    PushButton,
    Slider,
    SpinBox,
    Widget,
)
from qtpy.QtCore import QTimer

from infocus._errors import InfocusInputError
from infocus.classical import (
    Parameter,
    choose_domain,
    denoiser_parameters,
    get_denoiser,
    list_denoisers,
)
from infocus.napari._axes import layer_array
from infocus.napari._common import (
    AxesField,
    Relay,
    add_output,
    connect_while_alive,
    idle_worker,
    layer_combo,
    progress_bar,
    report_error,
    report_info,
)

if TYPE_CHECKING:
    import napari

__all__ = ["DenoiseWidget", "ParameterControl", "preview_window"]

#: Method shown first: fast, automatic, and good on every kind of image.
DEFAULT_METHOD = "nl_means"
#: Planes of a volume around the current one that the preview denoises (3-D methods need some).
PREVIEW_DEPTH = 16
#: Wait after the last change before the preview runs (a slider drag is many changes).
PREVIEW_DELAY_MS = 300


def _descriptions(function: Any) -> dict[str, str]:
    """Parameter name -> its sentence in the function's numpydoc docstring."""
    from docstring_parser import parse

    return {p.arg_name: " ".join((p.description or "").split())
            for p in parse(inspect.getdoc(function) or "").params}


class ParameterControl(Container):
    """The control of one denoiser parameter, and an "auto" box when the method can choose it.

    Parameters
    ----------
    parameter : Parameter
        From :func:`infocus.classical.denoiser_parameters`.
    tooltip : str
        What the parameter does (from the method's docstring).
    """

    def __init__(self, parameter: Parameter, tooltip: str = "") -> None:
        self.parameter = parameter
        self.control = _control(parameter)
        self.control.tooltip = tooltip
        self.auto = CheckBox(text="auto", value=True, tooltip=(
            "Chosen from the data (noise level or self-supervised calibration)."))
        widgets: list[Widget] = [self.control]
        if parameter.automatic:
            widgets.append(self.auto)
            self.control.enabled = False
            self.auto.changed.connect(lambda automatic: setattr(self.control, "enabled",
                                                                not automatic))
        units = " (× noise σ)" if parameter.range is not None and parameter.range.noise_units \
            else ""
        super().__init__(layout="horizontal", widgets=widgets, labels=False,
                         label=f"{parameter.name}{units}", tooltip=tooltip)
        self.margins = (0, 0, 0, 0)

    def value_for(self, sigma: float) -> Any:
        """The value to pass (None: automatic); ``sigma`` converts noise units."""
        if self.parameter.automatic and self.auto.value:
            return None
        value = self.control.value
        kind = self.parameter.kind
        if isinstance(self.control, LineEdit) and kind is not str:
            try:
                value = kind(value)
            except ValueError:
                raise InfocusInputError(
                    f"{self.parameter.name} must be a {kind.__name__} (got {value!r}); correct "
                    "the field.") from None
        if self.parameter.range is not None and self.parameter.range.noise_units:
            return float(value) * sigma
        return value


def _control(parameter: Parameter) -> Widget:
    span = parameter.range
    if parameter.choices is not None:
        return ComboBox(choices=parameter.choices, value=parameter.default)
    if parameter.kind is bool:
        return CheckBox(value=bool(parameter.default))
    if span is not None:
        if parameter.default is not None:
            start = parameter.default
        elif span.noise_units:
            start = min(max(1.0, span.low), span.high)
        else:  # a quarter along: the small end, where automatic values usually fall
            start = span.low + (span.high - span.low) / 4
        if parameter.kind is int:
            step = int(span.step or 1)
            start = int(span.low + round((start - span.low) / step) * step)
            return Slider(min=int(span.low), max=int(span.high), step=step, value=start)
        return FloatSlider(min=span.low, max=span.high, step=span.step or (span.high - span.low)
                           / 100, value=start)
    if parameter.kind is int:
        return SpinBox(min=0, max=10**6, value=1 if parameter.default is None else
                       parameter.default)
    return LineEdit(value="" if parameter.default is None else str(parameter.default))


def _camera(viewer: Any) -> Any:
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def preview_window(shape: tuple[int, ...], axes: str, position: tuple[float, ...], size: int
                   ) -> tuple[slice, ...]:
    """The crop the preview denoises: ``size`` × ``size`` pixels of YX around ``position`` (data
    coordinates, one per axis), the current sample and time point, every channel, and
    :data:`PREVIEW_DEPTH` planes of Z around the current one.

    Examples
    --------
    >>> preview_window((10, 100, 100), "ZYX", (5, 50, 50), 32)
    (slice(0, 10, None), slice(34, 66, None), slice(34, 66, None))
    """
    window = []
    for n, letter, at in zip(shape, axes, position, strict=True):
        centre = int(np.clip(round(at), 0, n - 1))
        if letter in "ST":
            window.append(slice(centre, centre + 1))
        elif letter == "C":
            window.append(slice(0, n))
        else:
            width = min(n, PREVIEW_DEPTH if letter == "Z" else size)
            start = int(np.clip(centre - width // 2, 0, n - width))
            window.append(slice(start, start + width))
    return tuple(window)


def noise_sigma(data: Any, axes: str, vst: bool | None) -> float:
    """The noise σ in the working domain of the first channel, measured on a central crop of
    its middle plane: the unit of the "× noise σ" sliders."""
    index = tuple(slice(max(0, n // 2 - 256), n // 2 + 256) if a in "YX" else
                  (0 if a == "C" else n // 2) for n, a in zip(data.shape, axes, strict=True))
    plane = np.asarray(data[index], dtype=np.float32)
    return choose_domain(plane, axes="YX", vst=vst).sigma


class DenoiseWidget(Container):
    """Denoise an image layer with a classical method; the result is a new layer.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose layers the widget offers (napari passes it).
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._layer = layer_combo(viewer, "image")
        self._axes = AxesField()
        self._method = ComboBox(label="method", choices=list_denoisers(),
                                value=DEFAULT_METHOD, tooltip="A classical denoiser.")
        self._parameters = Container(labels=True)
        self._preview = CheckBox(text="live preview on a crop", value=False, tooltip=(
            "Denoise a crop around the centre of the view, again after every change."))
        self._crop = SpinBox(label="crop size", min=32, max=2048, step=32, value=256)
        self._run = PushButton(text="Denoise")
        self._progress = progress_bar()
        self._status = Label(value="")
        self._status.native.setWordWrap(True)
        super().__init__(widgets=[
            self._layer, self._axes, self._method, self._parameters, self._preview, self._crop,
            self._run, self._progress, self._status])
        self._relay = Relay()
        self._relay.progress.connect(self._show_progress)
        self._timer = QTimer(self.native)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self.update_preview)
        self._previewing = False
        self._preview_again = False
        self._sigma_cache: dict[tuple[int, str, Any], float] = {}
        self.worker: Any = None
        self._layer.changed.connect(self._layer_changed)
        self._method.changed.connect(self._method_changed)
        self._parameters.changed.connect(self._schedule_preview)
        self._axes.field.changed.connect(self._schedule_preview)
        self._preview.changed.connect(self._schedule_preview)
        self._crop.changed.connect(self._schedule_preview)
        self._run.clicked.connect(self.run)
        connect_while_alive(self, _camera(viewer).events.center, self._schedule_preview)
        connect_while_alive(self, viewer.dims.events.current_step, self._schedule_preview)
        self._method_changed(self._method.value)
        self._layer_changed(self._layer.value)

    # --- controls -------------------------------------------------------------------------
    def _layer_changed(self, layer: Any) -> None:
        self._axes.follow(layer)
        self._schedule_preview()

    def _method_changed(self, method: str) -> None:
        descriptions = _descriptions(get_denoiser(method))
        self._parameters.clear()
        for parameter in denoiser_parameters(method):
            self._parameters.append(
                ParameterControl(parameter, descriptions.get(parameter.name, "")))
        self._schedule_preview()

    def _schedule_preview(self, *_: Any) -> None:
        if self._preview.value:
            self._timer.start()

    def _request(self) -> tuple[Any, Any, str, dict[str, Any]]:
        """The layer, its data, its checked axes and the method's options (or one sentence)."""
        layer = self._layer.value
        if layer is None:
            raise InfocusInputError("Open or choose an image layer to denoise.")
        axes = self._axes.axes_for(layer)
        data = layer_array(layer)
        controls = [c for c in self._parameters if isinstance(c, ParameterControl)]
        vst = next((c.value_for(1.0) for c in controls if c.parameter.name == "vst"), None)
        needs_sigma = any(c.parameter.range is not None and c.parameter.range.noise_units
                          and c.value_for(1.0) is not None for c in controls)
        sigma = self._sigma(layer, data, axes, vst) if needs_sigma else 1.0
        options = {c.parameter.name: c.value_for(sigma) for c in controls}
        return layer, data, axes, {k: v for k, v in options.items() if v is not None}

    def _sigma(self, layer: Any, data: Any, axes: str, vst: bool | None) -> float:
        key = (id(layer), axes, vst)
        if key not in self._sigma_cache:
            self._sigma_cache[key] = noise_sigma(data, axes, vst)
        return self._sigma_cache[key]

    # --- preview --------------------------------------------------------------------------
    def update_preview(self) -> None:
        """Denoise the crop around the centre of the view in a worker (the "preview" layer)."""
        if self._previewing:
            self._preview_again = True
            return
        try:
            layer, data, axes, options = self._request()
            window = preview_window(tuple(data.shape), axes, self._position(layer, axes),
                                    int(self._crop.value))
        except InfocusInputError as error:
            report_error(error, self._status)
            return
        crop = np.asarray(data[window])
        method = self._method.value
        self._previewing = True
        worker = idle_worker(get_denoiser(method), crop, axes=axes, **options)
        worker.returned.connect(lambda result: self._show_preview(layer, result, window, axes))
        worker.errored.connect(lambda error: report_error(error, self._status))
        worker.finished.connect(self._preview_done)
        self.worker = worker
        worker.start()

    def _position(self, layer: Any, axes: str) -> tuple[float, ...]:
        """The data coordinates of the centre of the view, one per axis of ``axes``."""
        world = list(self._viewer.dims.point)
        displayed = list(self._viewer.dims.displayed)[-2:]
        for dim, value in zip(displayed, _camera(self._viewer).center[-2:], strict=True):
            world[dim] = value
        point = list(layer.world_to_data(world[-layer.ndim:]))
        colour = len(axes) - len(point)  # an RGB layer's colour axis is not a napari dimension
        return tuple(point) + (0.0,) * colour

    def _show_preview(self, source: Any, result: np.ndarray, window: tuple[slice, ...],
                      axes: str) -> None:
        offset = np.array([w.start for w in window[: source.ndim]], dtype=float)
        translate = np.asarray(source.translate) + offset * np.asarray(source.scale)
        add_output(self._viewer, source, result, "preview", axes=axes, translate=translate,
                   contrast_limits=source.contrast_limits)

    def _preview_done(self) -> None:
        self._previewing = False
        if self._preview_again:
            self._preview_again = False
            self.update_preview()

    # --- the full image -------------------------------------------------------------------
    def run(self) -> None:
        """Denoise the whole layer in a worker; the result becomes the layer "NAME (method)"."""
        try:
            layer, data, axes, options = self._request()
        except InfocusInputError as error:
            report_error(error, self._status)
            return
        method = self._method.value
        self._run.enabled = False
        self._progress.visible = True
        self._progress.value = 0
        self._status.value = f"Denoising {layer.name} with {method} ..."
        worker = idle_worker(get_denoiser(method), np.asarray(data), axes=axes,
                               progress=lambda done, total: self._relay.progress.emit(
                                   (done, total)), **options)
        worker.returned.connect(lambda result: self._finished(layer, result, method, axes))
        worker.errored.connect(lambda error: report_error(error, self._status))
        worker.finished.connect(self._idle)
        self.worker = worker
        worker.start()

    def _show_progress(self, done_total: tuple[int, int]) -> None:
        done, total = done_total
        self._progress.max = max(1, total)
        self._progress.value = done

    def _finished(self, source: Any, result: np.ndarray, method: str, axes: str) -> None:
        add_output(self._viewer, source, result, f"{source.name} ({method})", axes=axes,
                   contrast_limits=source.contrast_limits)
        report_info(f"Denoised {source.name} with {method}.", self._status)

    def _idle(self) -> None:
        self._run.enabled = True
        self._progress.visible = False
