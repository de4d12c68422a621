"""Axes from a napari layer: certain from metadata, labels or 2-D; a guess with a message else."""

from __future__ import annotations

import pytest

pytest.importorskip("napari", reason="the napari plugin needs pip install 'infocus[napari]'")
pytest.importorskip("pytestqt", reason="the widget tests need pytest-qt (the dev extra)")

import numpy as np

from infocus._errors import InfocusInputError
from infocus.napari._axes import guess_axes, layer_axes


@pytest.mark.parametrize(("ndim", "kwargs", "axes"), [
    (2, {}, "YX"),
    (3, {"rgb": True}, "YXC"),
    (3, {"labels": ("time", "y", "x")}, "TYX"),
    (4, {"labels": ("C", "Z", "Y", "X")}, "CZYX"),
    (3, {"metadata_axes": "cyx"}, "CYX"),
])
def test_certain_axes(ndim, kwargs, axes):
    guess = guess_axes(ndim, **kwargs)
    assert (guess.axes, guess.certain, guess.message) == (axes, True, "")


@pytest.mark.parametrize(("ndim", "kwargs", "axes"), [
    (3, {}, "ZYX"),
    (3, {"labels": ("-3", "-2", "-1")}, "ZYX"),  # napari's default labels say nothing
    (4, {"metadata_axes": "YX"}, "TZYX"),  # metadata of the wrong length is ignored
    (5, {}, "TCZYX"),
])
def test_ambiguous_axes_are_a_guess_with_a_message(ndim, kwargs, axes):
    guess = guess_axes(ndim, **kwargs)
    assert guess.axes == axes and not guess.certain
    assert "check the guess" in guess.message and axes in guess.message


def test_a_one_dimensional_layer_is_refused_in_one_sentence():
    with pytest.raises(InfocusInputError, match="1 dimensions cannot be an image"):
        guess_axes(1)


def test_layer_axes_reads_the_layer():
    from napari.layers import Image

    layer = Image(np.zeros((3, 8, 8), np.float32), axis_labels=("t", "y", "x"))
    assert layer_axes(layer).axes == "TYX"
    layer = Image(np.zeros((8, 8), np.float32), metadata={"axes": "YX"})
    assert layer_axes(layer).certain
