"""Choosing the network: any image-to-image network for the methods that set only its
channels, RCAN for CARE and Noise2Noise, and one clear refusal for what a method cannot train."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import blobs_image
from infocus._errors import InfocusInputError
from infocus.methods import create_scheme, list_schemes
from infocus.methods.config import default_config
from infocus.nets import RCAN, list_networks, network_kind
from infocus.predict.model import load_model
from infocus.training.loop import train

SMALL_RCAN = {"num_channels": 8, "residual_groups": 1, "residual_blocks": 1,
              "attention_window": 5}
FAST = {"patch_size": 32, "batch_size": 2, "steps": 4, "steps_per_epoch": 2,
        "validation_patches": 2}


@pytest.fixture
def pairs(rng):
    clean = np.stack([blobs_image((64, 64), rng, n_blobs=12) for _ in range(3)]) * 60 + 100
    return rng.poisson(clean).astype(np.float32), clean.astype(np.float32)


def test_another_network_starts_from_its_own_defaults():
    care = default_config("care")
    assert care.network_options == {"base_filters": 16}  # the method's U-Net size
    assert care.with_network("RCAN").network_options == {}
    assert care.with_network("rcan").network == "rcan"
    same = care.with_network("unet", {"depth": 3})
    assert same.network_options == {"base_filters": 16, "depth": 3}
    assert care.with_network().network_options == care.network_options


@pytest.mark.parametrize("method", ["care", "n2n"])
def test_supervised_methods_train_rcan_and_the_model_round_trips(tmp_path, pairs, method):
    noisy, clean = pairs
    target = clean if method == "care" else np.random.default_rng(1).poisson(clean)
    config = default_config(method).with_network("rcan", SMALL_RCAN).with_updates(**FAST)
    model = train(noisy, targets=target.astype(np.float32), axes="SYX", config=config,
                  output=tmp_path / "model.zip", progress=False)
    assert isinstance(model.network, RCAN)
    assert model.network.config["num_channels"] == 8
    loaded = load_model(tmp_path / "model.zip")
    assert isinstance(loaded.network, RCAN) and loaded.config.network == "rcan"
    np.testing.assert_array_equal(loaded.denoise(noisy[0], backend="torch"),
                                  model.denoise(noisy[0], backend="torch"))


def _wrong_kind() -> list[tuple[str, str]]:
    return [(method, network) for method in list_schemes() for network in list_networks()
            if network_kind(network) != create_scheme(method).network_kind]


@pytest.mark.parametrize(("method", "network"), _wrong_kind())
def test_a_network_of_another_kind_is_refused_before_any_data_is_read(tmp_path, method,
                                                                       network):
    scheme = create_scheme(method)
    config = default_config(method).with_network(network).with_updates(
        scheme_options=scheme.required_options)
    targets = tmp_path / "never-read-either.tif" if scheme.needs_target or scheme.labels else None
    with pytest.raises(InfocusInputError, match=rf"Method '{method}' trains an? .* network, "
                       rf"but '{network}' is .*; choose one of: "):
        train(tmp_path / "never-read.tif", method=method, axes="YX", config=config,
              targets=targets, progress=False)


def test_divnoising_refuses_rcan_and_care_refuses_the_vae():
    assert ("divnoising", "rcan") in _wrong_kind()
    assert ("care", "divnoising_vae") in _wrong_kind()
    assert ("care", "rcan") not in _wrong_kind()


@pytest.mark.parametrize("method", ["pn2v", "denoiseg", "deepcad", "n2v"])
def test_methods_that_set_the_channels_accept_rcan(method, tmp_path):
    # They name only ndim / in_channels / out_channels, which RCAN takes: the check passes
    # and the run goes on to read the (missing) data.
    scheme = create_scheme(method)
    config = default_config(method).with_network("rcan", SMALL_RCAN).with_updates(
        scheme_options=scheme.required_options)
    with pytest.raises(InfocusInputError) as error:
        train(tmp_path / "missing.tif", method=method, axes="YX", config=config,
              targets=tmp_path / "labels.tif" if scheme.labels else None, progress=False)
    assert "missing.tif" in str(error.value) and "network" not in str(error.value)


@pytest.mark.parametrize(("options", "message"), [
    ({"in_channels": 2}, "sets the network's in_channels from the data; drop it"),
    ({"ndim": 3, "out_channels": 2}, "ndim and out_channels from the data; drop them"),
    ({"base_filters": 8}, "Network 'rcan' has no option 'base_filters'"),
    ({"attention_window": 4}, "attention_window must be odd"),
])
def test_bad_network_options_are_refused_before_any_data_is_read(tmp_path, options, message):
    config = default_config("care").with_network("rcan", options)
    with pytest.raises(InfocusInputError, match=message):
        train(tmp_path / "never-read.tif", targets=tmp_path / "t.tif", method="care",
              axes="YX", config=config, progress=False)
