"""Exported graphs (ONNX, TorchScript) give infocus's own prediction, minus the steps each
method names; methods that are more than a network are refused with a reason."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
import torch

from conftest import tiny_model
from infocus._errors import InfocusInputError, OutputExistsError
from infocus.export import EXPORT_TOLERANCE, export_model, exported_graph
from infocus.methods import create_scheme, list_schemes
from infocus.methods.config import default_config


def run_exported(path, image: np.ndarray) -> np.ndarray:
    """Run an exported file on ``image`` ``(C, *spatial)`` with the matching runtime."""
    batch = np.ascontiguousarray(image[None], dtype=np.float32)
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])
        return session.run(None, {"input": batch})[0][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is in maintenance
        module = torch.jit.load(io.BytesIO(path.read_bytes()))
    with torch.no_grad():
        return module(torch.from_numpy(batch))[0].numpy()


def assert_export_matches(model, image: np.ndarray, axes: str, folder) -> None:
    """Both formats equal ``model.denoise`` with the method's own options and its default
    test-time augmentation switched off."""
    off = {name: False for name in model.prediction_options}
    expected = model.denoise(image, axes=axes, backend="torch", tta=False, **off)
    channels_first = image[None] if "C" not in axes else image
    for suffix in (".onnx", ".pt"):
        path = folder / f"exported{suffix}"
        export_model(model, path, overwrite=True,
                     format="onnx" if suffix == ".onnx" else "torchscript")
        got = run_exported(path, channels_first).reshape(expected.shape)
        tolerance = EXPORT_TOLERANCE * float(np.abs(expected).max())
        np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance, err_msg=suffix)


@pytest.mark.parametrize("ndim", [2, 3])
def test_exported_graph_equals_prediction_2d_and_3d(ndim, tmp_path, rng):
    model = tiny_model(ndim)
    shape = (64, 48) if ndim == 2 else (16, 32, 24)
    image = rng.poisson(100, shape).astype(np.float32)
    assert_export_matches(model, image, "YX" if ndim == 2 else "ZYX", tmp_path)


def test_exported_graph_takes_other_sizes_than_traced(tmp_path, rng):
    model = tiny_model(2)
    export_model(model, tmp_path / "m.pt")
    image = rng.poisson(80, (1, 40, 136)).astype(np.float32)
    got = run_exported(tmp_path / "m.pt", image)
    expected = model.denoise(image[0], axes="YX", backend="torch", pixel_fusion=False)
    np.testing.assert_allclose(got[0], expected, atol=EXPORT_TOLERANCE * 200)


def test_joint_channels_keep_their_own_normalisation(tmp_path, rng):
    from infocus.intensity.normalize import Normalizer

    model = tiny_model(2, channels=2, joint=True)
    model.input_norm = model.target_norm = Normalizer(mean=(100.0, 30.0), std=(20.0, 5.0))
    image = np.stack([rng.poisson(100, (32, 32)), rng.poisson(30, (32, 32))]).astype(np.float32)
    assert_export_matches(model, image, "CYX", tmp_path)


def test_export_says_what_is_left_out(tmp_path):
    left_out = export_model(tiny_model(2), tmp_path / "m.onnx")
    assert len(left_out) == 1 and "Pixel fusion is left out" in left_out[0]


@pytest.mark.parametrize("name", [n for n in list_schemes() if not create_scheme(n).exportable])
def test_methods_that_are_more_than_a_network_are_refused(name, tmp_path):
    model = tiny_model(2)
    model.config = default_config(name)
    with pytest.raises(InfocusInputError, match=f"{name!r} cannot be exported: its prediction"):
        exported_graph(model)
    assert not list(tmp_path.iterdir())


def test_every_method_names_its_paper():
    for name in list_schemes():
        citation = create_scheme(name).citation
        assert citation.get("text") and (citation.get("doi") or citation.get("url")), name


def test_bad_requests_are_refused(tmp_path):
    model = tiny_model(2)
    with pytest.raises(InfocusInputError, match="Unknown export format 'tflite'"):
        export_model(model, tmp_path / "m.tflite", format="tflite")
    (tmp_path / "m.onnx").write_bytes(b"old")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        export_model(model, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_bytes() == b"old"
    with pytest.raises(InfocusInputError, match="does not exist"):
        export_model(model, tmp_path / "missing" / "m.onnx")
    export_model(model, tmp_path / "m.onnx", overwrite=True)
    assert (tmp_path / "m.onnx").stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary left
