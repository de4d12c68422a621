"""The npe2 manifest, the sample data, and that ``import infocus`` stays free of Qt."""

from __future__ import annotations

import pytest

pytest.importorskip("napari", reason="the napari plugin needs pip install 'infocus[napari]'")
pytest.importorskip("pytestqt", reason="the widget tests need pytest-qt (the dev extra)")

import importlib
import subprocess
import sys
from pathlib import Path

import numpy as np

MANIFEST = Path(__file__).resolve().parents[2] / "src" / "infocus" / "napari" / "napari.yaml"


@pytest.fixture(scope="module")
def manifest():
    from npe2 import PluginManifest

    return PluginManifest.from_file(MANIFEST)


def test_manifest_is_valid_and_every_command_imports(manifest):
    assert manifest.name == "infocus"
    for command in manifest.contributions.commands:
        module, _, name = command.python_name.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), command.id


def test_manifest_offers_the_widgets_and_sample_data(manifest):
    commands = {c.id for c in manifest.contributions.commands}
    widgets = {w.command for w in manifest.contributions.widgets}
    samples = {s.key for s in manifest.contributions.sample_data}
    assert widgets == {"infocus.denoise", "infocus.train", "infocus.predict", "infocus.qc"}
    assert samples == {"mitosis", "mitosis_low_light"}
    assert widgets <= commands


def test_the_manifest_is_declared_as_package_data_and_entry_point():
    import tomllib

    project = tomllib.loads((MANIFEST.parents[3] / "pyproject.toml").read_text())
    entry = project["project"]["entry-points"]["napari.manifest"]["infocus"]
    assert entry == "infocus.napari:napari.yaml"
    assert "napari/napari.yaml" in project["tool"]["setuptools"]["package-data"]["infocus"]


def test_sample_data_is_the_embedded_image_clean_and_at_low_light():
    from infocus.napari._sample_data import LOW_LIGHT_PHOTONS, mitosis, mitosis_low_light

    ((sample, meta, kind),) = mitosis()
    assert sample.shape == (512, 512) and kind == "image" and meta["metadata"]["axes"] == "YX"
    (clean, _, _), (noisy, noisy_meta, _) = mitosis_low_light()
    assert noisy.shape == clean.shape == (512, 512)
    assert noisy_meta["name"] == "mitosis low light"
    # Camera units: offset 100 ADU, gain 2, LOW_LIGHT_PHOTONS peak photons.
    assert clean.max() == pytest.approx(100 + 2 * LOW_LIGHT_PHOTONS)
    assert 0.5 < np.std(noisy - clean) / np.sqrt(2 * (clean.mean() - 100) + 9) < 2


def test_sample_data_opens_in_napari(make_napari_viewer):
    from infocus.napari._sample_data import mitosis_low_light

    viewer = make_napari_viewer()
    for data, meta, kind in mitosis_low_light():
        viewer._add_layer_from_data(data, meta, kind)
    assert viewer.layers["mitosis low light"].metadata["axes"] == "YX"


def test_import_infocus_loads_no_qt_or_napari():
    code = ("import sys, infocus, infocus.napari; "
            "print(sorted(m for m in ('napari', 'qtpy', 'PyQt5', 'magicgui') if m in sys.modules))")
    src = str(MANIFEST.parents[2])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={"PYTHONPATH": src, "PATH": ""})
    assert result.stdout.strip() == "[]"
