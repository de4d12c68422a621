"""bioimage.io packages written by other tools, run through infocus.

The CAREamics fixture (tests/data/bioimageio, see its README) is a Noise2Void package exported
by CAREamics 0.3.5 for one fixed 64x64 input size, with TorchScript weights added beside
CAREamics' state dict; infocus must reproduce CAREamics' own whole-image prediction.
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bioimageio.core", reason="needs the bioimageio extra")

from infocus._errors import InfocusInputError  # noqa: E402
from infocus.export.bioimageio import load_package  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "data" / "bioimageio"
CAREAMICS = FIXTURES / "careamics-n2v-tiny.zip"
#: Photon counts; the image reaches about 80. Measured: 0.003 at most (tile seams), 3e-5 mean.
TOLERANCE = 0.01


@pytest.fixture(scope="module")
def careamics():
    return load_package(CAREAMICS)


@pytest.fixture(scope="module")
def image():
    return np.load(FIXTURES / "input.npy")


@pytest.fixture(scope="module")
def careamics_prediction():
    return np.load(FIXTURES / "careamics_prediction.npy")


def test_careamics_package_predicts_what_careamics_predicted(careamics, image,
                                                             careamics_prediction):
    """96x100 image, package of fixed 64x64 tiles: tiled by infocus with its pre- and
    post-processing (CAREamics' mean/std normalisation) run by bioimageio.core."""
    assert np.abs(careamics_prediction - image).mean() > 1  # the fixture does denoise
    got = careamics.denoise(image, axes="YX")
    assert got.shape == image.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, careamics_prediction, rtol=0, atol=TOLERANCE)
    assert "tiles of exactly 64x64 pixels" in careamics.report()[0]


def test_careamics_package_reproduces_its_test_output(careamics):
    """The package's own test tensors (one whole tile, no stitching)."""
    with zipfile.ZipFile(CAREAMICS) as archive, archive.open("inputs.npy") as given, \
            archive.open("outputs.npy") as wanted:
        test_input, test_output = np.load(given), np.load(wanted)
    got = careamics.denoise(test_input[0, 0], axes="YX")
    np.testing.assert_allclose(got, test_output[0, 0], rtol=0, atol=1e-3)


def test_careamics_weights_run_without_careamics(careamics):
    expected = ("pytorch_state_dict" if importlib.util.find_spec("careamics")
                else "torchscript")
    assert careamics.weights_format == expected


def test_stacks_and_images_smaller_than_the_tile(careamics, image, careamics_prediction):
    frames = np.stack([image, image[::-1]])
    got = careamics.denoise(frames, axes="TYX")
    np.testing.assert_allclose(got[0], careamics_prediction, rtol=0, atol=TOLERANCE)
    assert np.abs(got[1] - got[0][::-1]).mean() > 0.1  # not a copy: N2V is no flip-invariant
    small = image[:40, :50]  # mirrored up to the 64x64 tile, cropped back
    got = careamics.denoise(small, axes="YX")
    assert got.shape == small.shape and np.isfinite(got).all()
    assert abs(got.mean() - careamics_prediction[:40, :50].mean()) < 1


def _edit_package(destination: Path, edit, extra: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(CAREAMICS) as source, zipfile.ZipFile(destination, "w") as target:
        for name in source.namelist():
            if name == "weights_torchscript.pt":
                continue
            data = source.read(name)
            target.writestr(name, edit(data.decode()).encode() if name == "rdf.yaml" else data)
        for name, text in (extra or {}).items():
            target.writestr(name, text)
    return destination


def _without_torchscript(rdf: str) -> str:
    start = rdf.index("  torchscript:\n")
    return rdf[:start] + rdf[rdf.index("config:", start):]


@pytest.mark.skipif(importlib.util.find_spec("careamics") is not None,
                    reason="careamics is installed, so its state dict runs")
def test_state_dict_without_its_library_is_refused_clearly(tmp_path):
    """As CAREamics exports it: only a state dict whose network code is careamics'."""
    package = _edit_package(tmp_path / "state-dict-only.zip", _without_torchscript)
    with pytest.raises(InfocusInputError,
                       match="Python package 'careamics', which is not installed.*TorchScript"):
        load_package(package)


def test_network_code_inside_a_package_is_never_run(tmp_path):
    def from_file(rdf: str) -> str:
        return _without_torchscript(rdf).replace("import_from: careamics.models.unet",
                                                 "source: unet.py")

    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w').close()\nclass UNet:\n    pass\n"
    package = _edit_package(tmp_path / "code.zip", from_file, {"unet.py": code})
    with pytest.raises(InfocusInputError, match="Python code from the package"):
        load_package(package)
    assert not marker.exists()
