"""The shared display range and the before/after preview figure."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread

from infocus._errors import InfocusInputError, OutputExistsError
from infocus.qc.figures import _crop, display_range, middle_plane, write_preview

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_display_range_is_the_half_percent_tails_and_ignores_nans():
    values = np.arange(1001, dtype=np.float64)
    low, high = display_range(values)
    assert (low, high) == pytest.approx((5.0, 995.0))
    with_nans = np.concatenate([values, [np.nan, np.inf]])
    assert display_range(with_nans) == pytest.approx((low, high))


def test_display_range_of_a_constant_image_is_not_empty():
    low, high = display_range(np.full((8, 8), 3.0))
    assert low < 3.0 < high


def test_middle_plane_takes_the_middle_of_every_other_axis():
    stack = np.arange(5 * 3 * 4 * 6).reshape(5, 3, 4, 6)
    plane, where = middle_plane(stack, "TZYX")
    assert where == {"T": 2, "Z": 1}
    np.testing.assert_array_equal(plane, stack[2, 1])
    # Stored with X before Y: the plane still comes back as rows Y, columns X.
    transposed, _ = middle_plane(np.moveaxis(stack, -1, -2), "TZXY")
    np.testing.assert_array_equal(transposed, stack[2, 1])


def test_middle_plane_refuses_axes_that_do_not_fit():
    with pytest.raises(InfocusInputError, match="one letter per dimension"):
        middle_plane(np.zeros((4, 4, 4)), "YX")


def test_crop_lands_on_the_structure_of_a_flat_plane(rng):
    plane = np.zeros((200, 240))
    plane[120:170, 30:80] = rng.random((50, 50))
    (y0, y1), (x0, x1) = _crop(plane)
    assert y1 - y0 == x1 - x0 == 50  # a quarter of the shorter edge
    # Mostly over the textured square (its edge against the flat background counts as
    # structure too).
    overlap = max(0, min(y1, 170) - max(y0, 120)) * max(0, min(x1, 80) - max(x0, 30))
    assert overlap >= 0.75 * 50 * 50


def test_no_crop_of_a_small_plane():
    assert _crop(np.zeros((64, 300))) is None


def test_write_preview_draws_a_png_atomically(tmp_path, rng):
    noisy = rng.normal(100, 10, (3, 128, 160))
    denoised = np.full_like(noisy, 100.0)
    path = tmp_path / "preview.png"
    written = write_preview(noisy, denoised, path, axes="ZYX", title="test")
    assert written == path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = imread(path).shape[:2]
    assert width > 600 and height > width  # two columns, and the zoomed row below
    assert [p.name for p in tmp_path.iterdir()] == ["preview.png"]
    with pytest.raises(OutputExistsError):
        write_preview(noisy, denoised, path, axes="ZYX")
    write_preview(noisy[:, :64], denoised[:, :64], path, axes="ZYX", overwrite=True)
    assert imread(path).shape[0] < height  # no zoomed row for a small plane


def test_write_preview_refuses_planes_of_different_sizes(tmp_path):
    with pytest.raises(InfocusInputError, match="same size"):
        write_preview(np.zeros((32, 32)), np.zeros((16, 16)), tmp_path / "p.png", axes="YX")
    assert not list(tmp_path.iterdir())
