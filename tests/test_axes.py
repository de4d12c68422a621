"""Axes strings and the helpers that move arrays between layouts (infocus.axes)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import infocus.axes as axes_module
from infocus._errors import InfocusInputError
from infocus.axes import check_axes, default_axes, iter_blocks, spatial_axes, yx_planes


def test_check_axes_normalises_and_refuses_bad_strings():
    assert check_axes("tyx", (2, 3, 4)) == "TYX"
    for bad, match in [("YXQ", "unknown"), ("YYX", "more than once"), ("ZX", "Y"),
                       ("", "non-empty")]:
        with pytest.raises(InfocusInputError, match=match):
            check_axes(bad)
    with pytest.raises(InfocusInputError):
        check_axes("YX", (2, 3, 4))


def test_default_and_spatial_axes():
    assert default_axes((5, 6)) == "YX"
    with pytest.raises(InfocusInputError, match="ambiguous"):
        default_axes((3, 5, 6))
    assert spatial_axes("TZYX") == "ZYX" and spatial_axes("TZYX", max_ndim=2) == "YX"


@settings(max_examples=25, deadline=None)
@given(order=st.permutations("TZYX"), sizes=st.lists(st.integers(1, 4), min_size=4, max_size=4))
def test_yx_planes_holds_every_plane_once_in_any_axis_order(order, sizes):
    axes = "".join(order)
    array = np.arange(int(np.prod(sizes))).reshape(sizes)
    planes = yx_planes(array, axes)
    y, x = sizes[axes.index("Y")], sizes[axes.index("X")]
    assert planes.shape == (array.size // (y * x), y, x)
    assert sorted(planes.ravel().tolist()) == list(range(array.size))
    # Each plane is a YX plane of the input: the block selection of iter_blocks gives the same.
    blocks = [array[i] for i in iter_blocks(array.shape, axes, "YX")]  # Y, X in input order
    reference = [b if axes.index("Y") < axes.index("X") else b.T for b in blocks]
    np.testing.assert_array_equal(planes, np.stack(reference))


def test_docstring_examples_run():
    result = doctest.testmod(axes_module)
    assert result.attempted > 0 and result.failed == 0
