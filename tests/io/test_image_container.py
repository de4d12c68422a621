"""The Image container: validation, metadata helpers and unit names."""

from __future__ import annotations

import numpy as np
import pytest

from infocus._errors import InfocusInputError
from infocus.io import Image, normalize_unit


def test_axes_are_checked_and_upper_cased() -> None:
    image = Image(np.zeros((3, 16, 16)), "zyx")
    assert image.axes == "ZYX"
    assert image.shape == (3, 16, 16)
    assert image.ndim == 3
    assert image.size("Z") == 3
    assert image.size("C") == 1


def test_axes_length_mismatch_names_shape() -> None:
    with pytest.raises(InfocusInputError, match=r"shape \(3, 16, 16\).*'YX'"):
        Image(np.zeros((3, 16, 16)), "YX")


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({"C": 1.0}, "no such physical axis"),
        ({"Z": 1.0}, "no such physical axis"),
        ({"Y": -0.1}, "positive finite"),
        ({"X": float("nan")}, "positive finite"),
        ({"X": "wide"}, "positive finite"),
    ],
)
def test_bad_pixel_sizes_are_refused(sizes: dict, message: str) -> None:
    with pytest.raises(InfocusInputError, match=message):
        Image(np.zeros((16, 16)), "YX", sizes)


def test_pixel_sizes_are_stored_as_float_with_upper_case_keys() -> None:
    image = Image(np.zeros((2, 16, 16)), "ZYX", {"z": 1, "y": 0.5, "x": 0.5})
    assert image.pixel_sizes == {"Z": 1.0, "Y": 0.5, "X": 0.5}
    assert all(isinstance(v, float) for v in image.pixel_sizes.values())


def test_channel_names_must_match_channel_count() -> None:
    assert Image(np.zeros((2, 16, 16)), "CYX", channel_names=["a", "b"]).channel_names == ["a", "b"]
    assert Image(np.zeros((16, 16)), "YX", channel_names=["only"]).channel_names == ["only"]
    with pytest.raises(InfocusInputError, match="one name per channel"):
        Image(np.zeros((2, 16, 16)), "CYX", channel_names=["a"])
    with pytest.raises(InfocusInputError, match="list of strings"):
        Image(np.zeros((2, 16, 16)), "CYX", channel_names="ab")


def test_with_data_keeps_metadata_and_checks_shape() -> None:
    image = Image(
        np.zeros((2, 16, 16), np.uint16),
        "CYX",
        {"Y": 0.2, "X": 0.2},
        channel_names=["a", "b"],
        source="in.tif",
    )
    new = image.with_data(np.ones((2, 16, 16), np.float32))
    assert new.dtype == np.float32
    assert (new.axes, new.pixel_sizes, new.channel_names, new.source) == (
        "CYX",
        {"Y": 0.2, "X": 0.2},
        ["a", "b"],
        "in.tif",
    )
    assert image.dtype == np.uint16  # the original is untouched
    with pytest.raises(InfocusInputError):
        image.with_data(np.ones((16, 16)))
    projected = image.with_data(np.ones((16, 16)), axes="YX")
    assert projected.axes == "YX"
    assert projected.channel_names is None
    assert projected.pixel_sizes == {"Y": 0.2, "X": 0.2}


def test_load_returns_plain_array(tmp_path) -> None:
    array = np.arange(256, dtype=np.float32).reshape(16, 16)
    np.save(tmp_path / "a.npy", array)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    loaded = Image(mapped, "YX").load()
    assert type(loaded.data) is np.ndarray
    np.testing.assert_array_equal(loaded.data, array)
    plain = Image(array, "YX")
    assert plain.load() is plain


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("micron", "µm"),
        ("um", "µm"),
        ("μm", "µm"),
        ("\\u00B5m", "µm"),
        ("micrometer", "µm"),
        ("nanometer", "nm"),
        ("", None),
        (None, None),
        ("parsec", "parsec"),
    ],
)
def test_normalize_unit(given: str | None, expected: str | None) -> None:
    assert normalize_unit(given) == expected


def test_unit_is_normalised_in_image() -> None:
    assert Image(np.zeros((16, 16)), "YX", {"X": 1.0}, unit="micron").unit == "µm"
