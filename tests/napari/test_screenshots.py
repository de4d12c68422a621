"""Screenshots of each widget for the documentation (docs/images/napari-*.png).

They are written to the test's temporary folder; ``INFOCUS_UPDATE_SCREENSHOTS=1`` writes them
to docs/images instead (then commit them).
"""

from __future__ import annotations

import pytest

pytest.importorskip("napari", reason="the napari plugin needs pip install 'infocus[napari]'")
pytest.importorskip("pytestqt", reason="the widget tests need pytest-qt (the dev extra)")

from qtpy.QtGui import QImage

from infocus.napari._denoise import DenoiseWidget
from infocus.napari._predict import PredictWidget
from infocus.napari._qc import QualityWidget
from infocus.napari._sample_data import mitosis_low_light
from infocus.napari._train import TrainWidget

#: Width of the screenshots in pixels (a dock widget's usual width).
WIDTH = 380


def _save(widget, path) -> QImage:
    widget.native.resize(WIDTH, widget.native.sizeHint().height())
    widget.native.grab().save(str(path))
    return QImage(str(path))


@pytest.mark.slow  # trains a small network and runs every widget once (about 20 s)
def test_screenshots_of_each_widget(make_napari_viewer, qtbot, screenshot_path, tmp_path,
                                    monkeypatch):
    monkeypatch.chdir(tmp_path)  # the model path shown is then short and says nothing of this machine
    viewer = make_napari_viewer()
    for data, meta, kind in mitosis_low_light():
        viewer._add_layer_from_data(data, meta, kind)
    shots = {}

    denoise = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(denoise, name="Denoise (classical)")
    denoise._method.value = "nl_means"
    denoise.run()
    qtbot.waitUntil(lambda: "mitosis low light (nl_means)" in viewer.layers, timeout=60000)
    qtbot.waitUntil(lambda: denoise._run.enabled, timeout=5000)
    shots["denoise"] = _save(denoise, screenshot_path("denoise"))

    train = TrainWidget(viewer)
    viewer.window.add_dock_widget(train, name="Train")
    train._layer.value = viewer.layers["mitosis low light"]
    train._steps.value, train._batch.value, train._patch.value = 40, 4, 32
    train._denoise_after.value = False
    train._output.line_edit.value = "n2v-model"  # shown as typed
    train.run()
    qtbot.waitUntil(lambda: train.model is not None, timeout=120000)
    qtbot.waitUntil(lambda: train._train.enabled, timeout=5000)
    shots["train"] = _save(train, screenshot_path("train"))

    predict = PredictWidget(viewer)
    viewer.window.add_dock_widget(predict, name="Denoise with a model")
    predict._model.line_edit.value = "n2v-model"
    predict._layer.value = viewer.layers["mitosis low light"]
    predict.run()
    qtbot.waitUntil(lambda: "mitosis low light (n2v-model)" in viewer.layers, timeout=60000)
    qtbot.waitUntil(lambda: predict._run.enabled, timeout=5000)
    shots["predict"] = _save(predict, screenshot_path("predict"))

    quality = QualityWidget(viewer)
    viewer.window.add_dock_widget(quality, name="Quality check")
    quality._noisy.value = viewer.layers["mitosis low light"]
    quality._denoised.value = viewer.layers["mitosis low light (nl_means)"]
    quality.run()
    qtbot.waitUntil(lambda: "qc flags" in viewer.layers, timeout=60000)
    qtbot.waitUntil(lambda: quality._run.enabled, timeout=5000)
    shots["qc"] = _save(quality, screenshot_path("qc"))

    for name, image in shots.items():
        assert image.width() > WIDTH // 2 and image.height() > 100, name
        assert screenshot_path(name).stat().st_size < 200_000, name
