"""Training (progress, loss plot, cancel), prediction with a saved model, and the qc maps."""

from __future__ import annotations

import pytest

pytest.importorskip("napari", reason="the napari plugin needs pip install 'infocus[napari]'")
pytest.importorskip("pytestqt", reason="the widget tests need pytest-qt (the dev extra)")

import numpy as np

from infocus.napari._predict import PredictWidget
from infocus.napari._qc import QualityWidget
from infocus.napari._train import TrainWidget
from infocus.noise import simulate_poisson_gaussian


@pytest.fixture
def viewer(make_napari_viewer, blobs_2d):
    noisy, _ = simulate_poisson_gaussian(blobs_2d, photons=30, gain=2, offset=100,
                                         read_noise=3, rng=1)
    viewer = make_napari_viewer()
    viewer.add_image(np.asarray(noisy, np.float32), name="noisy", scale=(2.0, 2.0))
    return viewer


def _tiny(widget: TrainWidget, steps: int) -> None:
    widget._steps.value, widget._batch.value, widget._patch.value = steps, 2, 32


def test_train_shows_progress_and_loss_then_denoises_the_layer(viewer, qtbot, tmp_path):
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train")
    assert widget._method.value == "n2v" and not widget._wants_targets
    _tiny(widget, steps=6)
    widget._output.value = tmp_path / "model"
    widget.run()
    qtbot.waitUntil(lambda: "noisy (n2v)" in viewer.layers, timeout=60000)
    assert widget.plot.steps == [1, 2, 3, 4, 5, 6]
    assert len(widget.plot.val_losses) >= 1 and np.isfinite(widget.plot.losses).all()
    assert widget.model is not None and (tmp_path / "model").is_dir()
    layer = viewer.layers["noisy (n2v)"]
    assert layer.data.shape == (128, 128)
    np.testing.assert_array_equal(layer.scale, (2.0, 2.0))
    qtbot.waitUntil(lambda: widget._train.enabled, timeout=5000)


def test_cancel_stops_training_and_keeps_nothing(viewer, qtbot):
    widget = TrainWidget(viewer)
    _tiny(widget, steps=100_000)
    widget.run()
    qtbot.waitUntil(lambda: len(widget.plot.steps) >= 2, timeout=60000)
    widget.cancel()
    qtbot.waitUntil(lambda: widget._train.enabled, timeout=30000)
    assert "cancelled" in widget._status.value
    assert widget.model is None and "noisy (n2v)" not in viewer.layers
    assert len(widget.plot.steps) < 1000


def test_a_method_that_needs_targets_asks_for_them(viewer):
    widget = TrainWidget(viewer)
    widget._method.value = "care"
    assert widget._wants_targets
    assert "clean" in widget._about.value.lower()
    widget._method.value = "n2v"
    assert not widget._wants_targets


def test_predict_with_a_saved_model(viewer, qtbot, tmp_path):
    from conftest import tiny_model

    tiny_model().save(tmp_path / "model")
    widget = PredictWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Predict")
    widget._model.value = tmp_path / "model"
    widget._tile.value = 64  # several tiles on the 128 x 128 layer
    widget.run()
    qtbot.waitUntil(lambda: "noisy (model)" in viewer.layers, timeout=30000)
    expected = tiny_model().denoise(viewer.layers["noisy"].data, axes="YX", tile_size=64)
    np.testing.assert_allclose(viewer.layers["noisy (model)"].data, expected, rtol=1e-4,
                               atol=1e-3)


def test_predict_without_a_model_says_so(viewer):
    widget = PredictWidget(viewer)
    widget.run()
    assert widget._status.value == "Choose the model folder (or .zip) to denoise with."


def test_qc_maps_become_layers(viewer, qtbot):
    from scipy.ndimage import gaussian_filter

    noisy = viewer.layers["noisy"].data
    viewer.add_image(gaussian_filter(noisy, 1.0), name="smoothed", scale=(2.0, 2.0))
    widget = QualityWidget(viewer)
    viewer.window.add_dock_widget(widget, name="QC")
    assert (widget._noisy.value.name, widget._denoised.value.name) == ("noisy", "smoothed")
    widget.run()
    qtbot.waitUntil(lambda: "qc flags" in viewer.layers, timeout=30000)
    flags = viewer.layers["qc flags"]
    assert flags.data.shape == noisy.shape and flags.data.dtype == np.uint8
    np.testing.assert_array_equal(flags.scale, (2.0, 2.0))
    assert "qc consistency" in viewer.layers and "qc objects" in viewer.layers
    assert "PSNR" in widget._status.value


def test_qc_refuses_the_same_layer_twice(viewer):
    widget = QualityWidget(viewer)
    widget._denoised.value = widget._noisy.value
    widget.run()
    assert "are the same" in widget._status.value
