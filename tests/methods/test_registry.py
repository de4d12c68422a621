"""Every registered method goes through one path: train, save, load, predict. And a method is
one file: nothing outside infocus.methods names one."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import infocus
from conftest import blobs_image
from export.test_export import assert_export_matches
from infocus._errors import InfocusInputError
from infocus.methods import create_scheme, list_schemes, scheme_options
from infocus.methods.config import default_config

SOURCE = Path(infocus.__file__).parent
FIXTURES = Path(__file__).resolve().parents[1] / "data" / "models"


def _tiny(name: str):
    config = default_config(name)
    return config.with_updates(
        steps=4, steps_per_epoch=2, patch_size=32, batch_size=2, validation_patches=2,
        scheme_options={**config.scheme_options, **create_scheme(name).required_options})


@pytest.mark.parametrize("name", list_schemes())
def test_every_method_trains_saves_loads_and_predicts(name, tmp_path, rng):
    scheme = create_scheme(name)
    clean = np.stack([blobs_image((64, 64), rng, n_blobs=12) for _ in range(2)]) * 40 + 10
    noisy = rng.poisson(clean).astype(np.float32)
    targets = clean.astype(np.float32) if scheme.needs_target else None
    inputs: object = noisy
    axes, image, image_axes = "SYX", noisy[0], "YX"
    if scheme.context_axis:  # the two images as two frames of one stack
        axes = image_axes = f"{scheme.context_axis}YX"
        image = noisy
    if scheme.labels:  # instance masks for the first image only
        inputs, targets = list(noisy), [(clean[0] > 20).astype(np.uint16), None]
    model = infocus.train(inputs, method=name, targets=targets, axes="YX" if scheme.labels
                          else axes, config=_tiny(name), output=tmp_path / "model.zip",
                          progress=False, log=lambda m: None)
    loaded = infocus.load_model(tmp_path / "model.zip")
    assert loaded.config == model.config and loaded.state == model.state
    expected = model.denoise(image, axes=image_axes, backend="torch")
    np.testing.assert_allclose(loaded.denoise(image, axes=image_axes, backend="torch"), expected, rtol=1e-5,
                               atol=1e-4)
    assert expected.shape == image.shape and expected.dtype == np.float32
    assert np.isfinite(expected).all()
    if "uncertainty" in loaded.outputs:
        result = loaded.predict(image, axes=image_axes, uncertainty=True, backend="torch")
        assert result.uncertainty.shape == image.shape and (result.uncertainty >= 0).all()
    else:
        with pytest.raises(InfocusInputError, match="no uncertainty"):
            loaded.predict(image, axes=image_axes, uncertainty=True)
    if "samples" in loaded.outputs:
        drawn = loaded.sample(image, axes=image_axes, n=3)
        assert drawn.shape == (3, *image.shape) and np.isfinite(drawn).all()
        np.testing.assert_array_equal(drawn, loaded.sample(image, axes=image_axes, n=3))
    else:
        with pytest.raises(InfocusInputError, match="cannot draw posterior samples"):
            loaded.sample(image, axes=image_axes, n=3)
    extras = sorted(loaded.outputs - {"denoised", "uncertainty", "samples"})
    result = loaded.predict(image, axes=image_axes, also=tuple(extras), backend="torch")
    assert sorted(result.extras) == extras
    assert all(v.shape == image.shape and np.isfinite(v).all() for v in result.extras.values())
    if scheme.exportable and not scheme.context_axis:  # ONNX and TorchScript give our prediction
        assert_export_matches(loaded, image, image_axes, tmp_path)
    if required := create_scheme(name).required_options:
        with pytest.raises(InfocusInputError, match=sorted(required)[0].split("_")[0]):
            infocus.train(noisy, method=name, axes="SYX", progress=False, log=lambda m: None,
                          config=_tiny(name).with_updates(scheme_options={}))
    if scheme.labels:
        with pytest.raises(InfocusInputError, match="give instance masks"):
            infocus.train(noisy, method=name, axes="SYX", progress=False, log=lambda m: None,
                          config=_tiny(name))


@pytest.mark.parametrize("name", list_schemes())
def test_every_method_describes_itself(name):
    scheme = create_scheme(name)
    assert scheme.summary and scheme.summary.endswith(").")
    assert not scheme.needs_target or scheme.target_help
    assert default_config(name).network == scheme.default_network
    assert set(scheme.prediction_options).isdisjoint({"axes", "tile_size", "tta", "out"})
    for option in scheme_options(name):
        assert option.isidentifier()


def test_no_method_is_named_outside_its_file():
    """training/, predict/ and cli/ ask the registry; a method name written there as a string
    would be knowledge that belongs in the method's file."""
    names = "|".join(map(re.escape, list_schemes()))
    pattern = re.compile(rf"[\"']({names})[\"']")
    found = [
        f"{path.relative_to(SOURCE)}:{number}: {line.strip()}"
        for folder in ("training", "predict", "cli")
        for path in sorted((SOURCE / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("name", ["n2v", "care"])
def test_models_saved_by_infocus_0_1_load_and_predict_as_before(name):
    """Format-1 models (their method state in the provenance) keep loading, and predict
    what infocus 0.1 predicted for them, to float32 rounding."""
    model = infocus.load_model(FIXTURES / f"model-0.1-{name}.zip")
    assert model.provenance["infocus_version"] == "0.1.0" and model.state
    image = np.load(FIXTURES / "input-48x48.npy")
    expected = np.load(FIXTURES / f"model-0.1-{name}-expected.npy")
    # A few float32 units in the last place, not bit equality: PyTorch picks its convolution
    # kernels by the CPU's instruction set (AVX2, AVX-512), which changes the summation order.
    np.testing.assert_allclose(model.denoise(image, axes="YX", backend="torch"), expected,
                               rtol=1e-6, atol=0)
