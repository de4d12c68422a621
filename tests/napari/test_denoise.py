"""The classical-denoising widget: controls from the registry, preview, full run, errors."""

from __future__ import annotations

import pytest

pytest.importorskip("napari", reason="the napari plugin needs pip install 'infocus[napari]'")
pytest.importorskip("pytestqt", reason="the widget tests need pytest-qt (the dev extra)")

import numpy as np

from infocus.classical import get_denoiser, list_denoisers
from infocus.napari._denoise import DenoiseWidget, ParameterControl, preview_window
from infocus.noise import simulate_poisson_gaussian


@pytest.fixture
def noisy(blobs_2d):
    image, _ = simulate_poisson_gaussian(blobs_2d, photons=30, gain=2, offset=100,
                                         read_noise=3, rng=1)
    return np.asarray(image, dtype=np.float32)


@pytest.fixture
def widget(make_napari_viewer, noisy):
    viewer = make_napari_viewer()
    viewer.add_image(noisy, name="noisy", scale=(0.5, 0.5), translate=(10, 20))
    widget = DenoiseWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Denoise")
    return viewer, widget


def _controls(widget):
    return {c.parameter.name: c for c in widget._parameters if isinstance(c, ParameterControl)}


def test_every_method_gets_its_controls(widget):
    _, widget = widget
    for method in list_denoisers():
        widget._method.value = method
        controls = _controls(widget)
        assert "vst" in controls and "axes" not in controls, method
        # Everything automatic by default: the method's own choice, nothing passed.
        assert all(c.value_for(1.0) in (None, c.parameter.default) for c in controls.values())


def test_denoise_adds_a_layer_with_the_source_geometry(widget, qtbot, noisy):
    viewer, widget = widget
    assert widget._axes.field.value == "YX" and widget._axes.note.value == ""
    widget._method.value = "gaussian"
    controls = _controls(widget)
    controls["sigma"].auto.value = False
    controls["sigma"].control.value = 1.5
    widget.run()
    qtbot.waitUntil(lambda: "noisy (gaussian)" in viewer.layers, timeout=20000)
    layer = viewer.layers["noisy (gaussian)"]
    expected = get_denoiser("gaussian")(noisy, axes="YX", sigma=1.5)
    np.testing.assert_allclose(layer.data, expected, rtol=1e-6)
    np.testing.assert_array_equal(layer.scale, (0.5, 0.5))
    np.testing.assert_array_equal(layer.translate, (10, 20))
    assert layer.metadata["axes"] == "YX"
    qtbot.waitUntil(lambda: widget._run.enabled, timeout=5000)


def test_strength_sliders_are_in_noise_units(widget, noisy):
    _, widget = widget
    widget._method.value = "nl_means"
    controls = _controls(widget)
    controls["h"].auto.value = False
    controls["h"].control.value = 0.8
    _, _, _, options = widget._request()
    sigma = widget._sigma(widget._layer.value, noisy, "YX", None)
    assert sigma > 0
    assert options["h"] == pytest.approx(0.8 * sigma)


def test_live_preview_denoises_a_crop_in_place(widget, qtbot):
    viewer, widget = widget
    widget._method.value = "gaussian"
    widget._crop.value = 64
    widget._preview.value = True
    qtbot.waitUntil(lambda: "preview" in viewer.layers, timeout=20000)
    preview = viewer.layers["preview"]
    assert preview.data.shape == (64, 64)
    # Over the crop it came from: translated by its offset in data pixels times the scale.
    offset = (np.asarray(preview.translate) - (10, 20)) / 0.5
    assert np.all(offset >= 0) and np.all(offset + 64 <= 128)


def test_bad_axes_give_one_sentence_not_a_traceback(widget):
    _, widget = widget
    widget._axes.field.value = "ZYX"
    widget.run()
    assert "has 2 dimensions but axes 'ZYX' name 3" in widget._status.value


def test_a_3d_layer_shows_a_guess_and_says_so(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((4, 32, 32), np.float32), name="stack")
    widget = DenoiseWidget(viewer)
    assert widget._axes.field.value == "ZYX"
    assert "TYX (a time series)" in widget._axes.note.value


def test_preview_window_keeps_channels_and_the_current_time_point():
    window = preview_window((5, 2, 300, 400), "TCYX", (3, 0, 10, 390), 128)
    assert window == (slice(3, 4), slice(0, 2), slice(0, 128), slice(272, 400))
