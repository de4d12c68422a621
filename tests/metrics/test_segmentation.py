"""Average precision of instance masks, as StarDist and DenoiSeg report it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infocus._errors import InfocusInputError
from infocus.metrics import average_precision, iou_matrix


def _squares(origins, size=4, shape=(32, 32)):
    labels = np.zeros(shape, np.uint16)
    for k, (y, x) in enumerate(origins, 1):
        labels[y : y + size, x : x + size] = k
    return labels


def test_counts_matches_misses_and_extras():
    truth = _squares([(0, 0), (10, 10), (20, 20)])
    predicted = _squares([(0, 1), (10, 10), (2, 25)])  # shifted (IoU 0.6), exact, spurious
    iou, true_ids, pred_ids = iou_matrix(predicted, truth)
    assert iou.shape == (3, 3) and list(true_ids) == [1, 2, 3]
    assert iou[0, 0] == pytest.approx(12 / 20)
    scores = average_precision(predicted, truth, (0.5, 0.7))
    assert scores[0.5] == pytest.approx(2 / 4)  # 2 TP, 1 FP, 1 FN
    assert scores[0.7] == pytest.approx(1 / 5)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 27), st.integers(0, 27)), min_size=1, max_size=6),
       st.permutations(list(range(1, 7))))
def test_a_segmentation_scores_one_against_itself_whatever_its_ids(origins, ids):
    truth = _squares(origins, size=3)
    present = np.unique(truth[truth > 0])
    relabelled = np.zeros_like(truth)
    for old, new in zip(present, ids, strict=False):
        relabelled[truth == old] = new
    assert average_precision(relabelled, truth, (0.5, 0.9)) == {0.5: 1.0, 0.9: 1.0}


def test_low_thresholds_match_each_object_once():
    truth = _squares([(0, 0), (0, 4)])  # two touching squares
    predicted = np.zeros_like(truth)
    predicted[0:4, 0:8] = 1  # one object over both
    assert average_precision(predicted, truth, (0.3,))[0.3] == pytest.approx(1 / 2)


@pytest.mark.parametrize(
    ("labels", "message"),
    [(np.full((4, 4), 0.5), "non-integer"), (np.full((4, 4), -2), "negative"),
     (np.zeros((0, 4)), "empty")],
)
def test_masks_that_are_not_instance_labels_are_refused(labels, message):
    with pytest.raises(InfocusInputError, match=message):
        average_precision(labels, np.zeros((4, 4), int))


def test_shapes_must_agree():
    with pytest.raises(InfocusInputError, match="same image"):
        average_precision(np.zeros((4, 4), int), np.zeros((4, 5), int))
