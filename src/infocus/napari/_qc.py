"""Dock widget: the maps of ``infocus qc`` as layers (:func:`infocus.qc.quality_check`).

* **qc flags** (labels): 1 where the output disagrees with the measurement beyond what the
  noise explains, 2 on objects whose integrated intensity changed, 4 on objects whose channel
  ratio changed (bits add up).
* **qc consistency** (image): the residual's window z-score, negative where the output is
  brighter than the measurement supports, positive where darker.
* **qc objects** (labels): the objects the intensity check compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import Container, Label, PushButton

from infocus._errors import InfocusInputError
from infocus.napari._axes import layer_array
from infocus.napari._common import (
    AxesField,
    add_output,
    idle_worker,
    layer_combo,
    report_error,
)

if TYPE_CHECKING:
    import napari
    from infocus.qc import QualityReport

__all__ = ["QualityWidget"]


class QualityWidget(Container):
    """Check a denoised layer against the noisy one it came from, without ground truth.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose layers the widget offers (napari passes it).
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        self._viewer = viewer
        self._noisy = layer_combo(viewer, "noisy")
        self._denoised = layer_combo(viewer, "denoised")
        self._axes = AxesField()
        self._run = PushButton(text="Check")
        self._status = Label(value="")
        self._status.native.setWordWrap(True)
        super().__init__(widgets=[self._noisy, self._denoised, self._axes, self._run,
                                  self._status])
        self.report: QualityReport | None = None
        self.worker: Any = None
        self._noisy.changed.connect(self._axes.follow)
        self._run.clicked.connect(self.run)
        self._axes.follow(self._noisy.value)
        # The newest layer is usually the output to check, the one below it the input.
        choices = list(self._noisy.choices)
        if len(choices) >= 2:
            self._denoised.value, self._noisy.value = choices[0], choices[1]

    def run(self) -> None:
        """Run the checks in a worker; the maps become layers over the noisy one."""
        noisy, denoised = self._noisy.value, self._denoised.value
        try:
            if noisy is None or denoised is None:
                raise InfocusInputError("Choose the noisy layer and the denoised layer to check.")
            if noisy is denoised:
                raise InfocusInputError(
                    "The noisy and the denoised layer are the same; choose the denoiser's output "
                    "as the denoised layer.")
            axes = self._axes.axes_for(noisy)
        except InfocusInputError as error:
            report_error(error, self._status)
            return
        from infocus.qc import quality_check

        self._run.enabled = False
        self._status.value = f"Checking {denoised.name} against {noisy.name} ..."
        worker = idle_worker(quality_check, np.asarray(layer_array(noisy)),
                               np.asarray(layer_array(denoised)), axes=axes)
        worker.returned.connect(lambda report: self._show(noisy, report))
        worker.errored.connect(lambda error: report_error(error, self._status))
        worker.finished.connect(lambda: setattr(self._run, "enabled", True))
        self.worker = worker
        worker.start()

    def _show(self, source: Any, report: QualityReport) -> None:
        self.report = report
        axes = report.axes
        limit = float(max(report.consistency.threshold, np.nanmax(np.abs(
            report.consistency.z)) if report.consistency.z.size else 1.0))
        add_output(self._viewer, source, report.intensity.labels.astype(np.uint32),
                   "qc objects", axes=axes, kind="labels", visible=False)
        add_output(self._viewer, source, report.consistency.z, "qc consistency", axes=axes,
                   colormap="bwr", contrast_limits=(-limit, limit), visible=False)
        add_output(self._viewer, source, report.flags, "qc flags", axes=axes, kind="labels",
                   opacity=0.6)
        self._status.value = report.summary_line()
