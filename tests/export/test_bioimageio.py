"""bioimage.io packages: written with bioimageio.spec, passing bioimageio.core's model test,
read back to denoise; packages that are invalid or not denoising models are refused."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from conftest import tiny_model

pytest.importorskip("bioimageio.core", reason="needs the bioimageio extra")

from infocus._errors import InfocusInputError  # noqa: E402
from infocus.export import EXPORT_TOLERANCE, export_model  # noqa: E402
from infocus.export.bioimageio import is_package, load_package  # noqa: E402


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """A 2-D N2V model exported and checked by bioimageio.core's model test (both weight
    formats reproduce the test output at several sizes and batch sizes)."""
    path = tmp_path_factory.mktemp("package") / "n2v.zip"
    left_out = export_model(tiny_model(2), path, authors=("A. Person",), check=True)
    assert left_out and "Pixel fusion" in left_out[0]
    return path


def test_package_holds_what_the_zoo_asks_for(package):
    names = set(zipfile.ZipFile(package).namelist())
    assert {"rdf.yaml", "weights_torchscript.pt", "weights.onnx", "test_input.npy",
            "test_output.npy", "cover.png", "README.md"} <= names
    rdf = zipfile.ZipFile(package).read("rdf.yaml").decode()
    for expected in ("format_version: 0.5", "fixed_zero_mean_unit_variance", "scale_linear",
                     "halo:", "10.48550/arXiv.1811.10980", "A. Person", "infocus_version"):
        assert expected in rdf, expected
    readme = zipfile.ZipFile(package).read("README.md").decode()
    assert "Pixel fusion is left out" in readme
    assert is_package(package)


def test_reimported_package_predicts_our_image(package, rng):
    """Same pixels as infocus (fusion off) away from the border; within the halo of the image
    border bioimage.io pads the image, where infocus's network pads its features with zeros."""
    model = tiny_model(2)
    image = rng.poisson(100, (2, 150, 130)).astype(np.float32)
    got = load_package(package).denoise(image, axes="SYX")
    expected = model.denoise(image, axes="SYX", backend="torch", pixel_fusion=False)
    halo = 28  # the receptive radius (26) rounded up to the pooling grid (4)
    assert f"halo: {halo}" in zipfile.ZipFile(package).read("rdf.yaml").decode()
    inner = (slice(None), slice(halo, -halo), slice(halo, -halo))
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(got[inner], expected[inner], atol=EXPORT_TOLERANCE * scale)
    assert np.abs(got - expected).max() < 0.01 * scale  # border: padding differs, not content


def test_check_refuses_to_write_a_failing_package(tmp_path, monkeypatch):
    import infocus.export.bioimageio as module

    def failing(path):
        raise InfocusInputError("The exported package failed bioimageio.core's model test")

    monkeypatch.setattr(module, "_check_package", failing)
    with pytest.raises(InfocusInputError, match="model test"):
        export_model(tiny_model(2), tmp_path / "m.zip")
    assert not list(tmp_path.iterdir())


def _rewrite(package, destination, edit):
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(destination, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            target.writestr(name, edit(data.decode()).encode() if name == "rdf.yaml" else data)
    return destination


def test_a_package_that_is_not_a_denoiser_is_refused(package, tmp_path):
    def segmentation(text: str) -> str:
        start = text.index("tags:")
        end = text.index("\n", text.index("- torchscript", start))
        return text[:start] + "tags:\n- segmentation\n- nuclei" + text[end:]

    other = _rewrite(package, tmp_path / "seg.zip", segmentation)
    with pytest.raises(InfocusInputError, match="not a denoising model.*segmentation"):
        load_package(other)


def test_an_invalid_package_is_refused(package, tmp_path):
    broken = _rewrite(package, tmp_path / "broken.zip",
                      lambda text: text.replace("format_version: 0.5", "format_version: 9.9"))
    with pytest.raises(InfocusInputError, match="not a valid bioimage.io package"):
        load_package(broken)
    assert not is_package(tmp_path)
    (tmp_path / "plain.zip").write_bytes(b"not a zip")
    assert not is_package(tmp_path / "plain.zip")


@pytest.mark.slow  # a thin volume is mirrored up to 116 planes per side: about 100 s on 2 cores
def test_volume_package(tmp_path, rng):
    path = tmp_path / "v.zip"
    export_model(tiny_model(3), path, check=False)
    volume = rng.poisson(100, (40, 48, 48)).astype(np.float32)
    got = load_package(path).denoise(volume, axes="ZYX")
    assert got.shape == volume.shape and np.isfinite(got).all()


def test_a_time_lapse_model_names_its_time_axis(tmp_path):
    """A model trained on TYX blocks (e.g. n2v with --spatial TYX) convolves along time."""
    model = tiny_model(3)
    model.spatial = "TYX"
    export_model(model, tmp_path / "movie.zip", check=False)
    rdf = zipfile.ZipFile(tmp_path / "movie.zip").read("rdf.yaml").decode()
    assert "type: time" in rdf and "id: time" in rdf
