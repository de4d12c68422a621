"""Registry-driven checks that every classical denoiser honours the common interface."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from infocus._errors import InfocusInputError
from infocus.classical import DENOISERS, bm3d, get_denoiser, list_denoisers
from infocus.noise import NoiseParams

METHODS = list_denoisers()
#: Methods that treat Z as part of the block (all but bm3d, which works slice by slice).
VOLUMETRIC = {"gaussian", "median", "nl_means", "tv", "wavelet", "bm4d"}
#: Explicit values for the parameters that are otherwise calibrated per call.
FIXED = {"gaussian": {"sigma": 1.5}, "median": {"size": 3}, "tv": {"weight": 0.8}}


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((np.asarray(a, np.float64) - b) ** 2))


def test_all_methods_are_registered():
    assert set(METHODS) == {"bm3d", "bm4d", "gaussian", "median", "nl_means", "tv", "wavelet"}


def test_lookup_is_case_insensitive():
    assert get_denoiser("BM3D") is bm3d
    assert "Gaussian" in DENOISERS


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(InfocusInputError, match="gaussian"):
        get_denoiser("bm5d")


@pytest.mark.parametrize("name", METHODS)
def test_common_signature(name):
    parameters = inspect.signature(get_denoiser(name)).parameters
    first, *rest = parameters.values()
    assert first.name == "image" and first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in rest)
    assert all(p.default is not inspect.Parameter.empty for p in rest)
    assert parameters["axes"].default == "YX"
    for option in ("noise", "vst", "progress"):
        assert parameters[option].default is None


@pytest.mark.parametrize("name", METHODS)
def test_2d_denoises_poisson_gaussian_data(name, make_camera_image):
    noisy, _, expected = make_camera_image((96, 96), seed=1)
    out = get_denoiser(name)(noisy)
    assert out.dtype == np.float32 and out.shape == noisy.shape
    assert np.isfinite(out).all()
    # Fully automatic (noise estimated, parameters chosen): at least halve the error.
    assert _mse(out, expected) < 0.5 * _mse(noisy, expected)


@pytest.mark.parametrize("name", METHODS)
def test_integer_input_gives_float32(name, make_camera_image):
    noisy, _, _ = make_camera_image((64, 64), seed=2)
    out = get_denoiser(name)(np.round(noisy).astype(np.uint16))
    assert out.dtype == np.float32 and out.shape == noisy.shape and np.isfinite(out).all()


@pytest.mark.parametrize("name", METHODS)
def test_3d_zyx(name, make_camera_image, reproducible_block_matching):
    noisy, noise, expected = make_camera_image((6, 48, 48), seed=3)
    denoise = get_denoiser(name)
    params = FIXED.get(name, {})
    out = denoise(noisy, axes="ZYX", noise=noise, **params)
    assert out.dtype == np.float32 and out.shape == noisy.shape and np.isfinite(out).all()
    assert _mse(out, expected) < 0.5 * _mse(noisy, expected)
    for z in (0, 5):
        alone = denoise(noisy[z], axes="YX", noise=noise, **params)
        if name in VOLUMETRIC:
            assert not np.allclose(out[z], alone, atol=1e-3)  # Z really is part of the block
        else:
            np.testing.assert_array_equal(out[z], alone)


@pytest.mark.parametrize("name", METHODS)
def test_tyx_is_frame_by_frame(name, make_camera_image, reproducible_block_matching):
    frames, noise, _ = make_camera_image((2, 64, 64), seed=4)
    denoise = get_denoiser(name)
    params = FIXED.get(name, {})
    out = denoise(frames, axes="TYX", noise=noise, vst=True, **params)
    for t, frame in enumerate(frames):
        np.testing.assert_array_equal(out[t], denoise(frame, noise=noise, vst=True, **params))


@pytest.mark.parametrize("name", METHODS)
def test_cyx_is_per_channel(name, make_camera_image, reproducible_block_matching):
    # Channels with different brightness and noise; everything automatic, chosen per channel.
    dim, _, _ = make_camera_image((64, 64), seed=5, photons=15.0)
    bright, _, _ = make_camera_image((64, 64), seed=6, photons=300.0)
    image = np.stack([dim, 3.0 * bright])
    denoise = get_denoiser(name)
    out = denoise(image, axes="CYX")
    assert out.dtype == np.float32 and out.shape == image.shape
    for c in range(2):
        np.testing.assert_array_equal(out[c], denoise(image[c]))


@pytest.mark.parametrize("name", METHODS)
def test_channel_axis_may_come_last(name, make_camera_image, reproducible_block_matching):
    dim, _, _ = make_camera_image((64, 64), seed=7)
    image = np.stack([dim, dim[::-1]], axis=-1)
    denoise = get_denoiser(name)
    noise = NoiseParams.from_camera(gain=2.0, offset=100.0, read_noise=3.0)
    params = FIXED.get(name, {})
    out = denoise(image, axes="YXC", noise=noise, **params)
    np.testing.assert_array_equal(out[..., 1], denoise(dim[::-1], noise=noise, **params))


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize(
    ("image", "axes", "match"),
    [
        (np.full((32, 32), np.nan, dtype=np.float32), "YX", "NaN"),
        (np.ones((4, 4), dtype=np.float32), "YX", "minimum"),
        (np.ones((32, 32), dtype=np.float32), "ZYX", "dimensions"),
        (np.ones((32, 32), dtype=np.float32), "QX", "unknown"),
        (np.ones((2, 32, 32), dtype=np.complex64), "CYX", "dtype"),
    ],
    ids=["nan", "tiny", "axes-length", "axes-letter", "complex"],
)
def test_bad_input_is_rejected(name, image, axes, match):
    with pytest.raises(InfocusInputError, match=match):
        get_denoiser(name)(image, axes=axes, noise=NoiseParams.gaussian(1.0))


@pytest.mark.parametrize("name", METHODS)
def test_noise_must_be_noise_params(name):
    with pytest.raises(InfocusInputError, match="NoiseParams"):
        get_denoiser(name)(np.ones((32, 32), np.float32), noise=1.0)


@pytest.mark.parametrize("name", METHODS)
def test_parameters_are_described_for_interfaces(name):
    from infocus.classical import denoiser_parameters

    described = denoiser_parameters(name)
    assert [p.name for p in described][-1] == "vst"
    for parameter in described:
        assert parameter.kind in (float, int, bool, str), parameter
        if parameter.range is not None:
            assert parameter.kind in (float, int)
            assert parameter.range.low < parameter.range.high
            if not parameter.automatic and not parameter.range.noise_units:
                assert parameter.range.low <= parameter.default <= parameter.range.high
        if parameter.choices is not None:
            assert parameter.default in parameter.choices


def test_a_hint_for_a_parameter_that_does_not_exist_is_refused():
    from infocus.classical import ParameterRange, tunable

    with pytest.raises(ValueError, match="no parameter 'sigm'"):
        tunable(sigm=ParameterRange(0.1, 1.0))(lambda image, *, sigma=None: image)
