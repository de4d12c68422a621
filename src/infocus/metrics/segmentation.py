r"""Instance segmentation scores: matching by intersection over union, average precision.

A predicted object :math:`p` and a true object :math:`t` match at threshold :math:`\tau` when
:math:`\mathrm{IoU}(p, t) = |p \cap t| / |p \cup t| > \tau`; for :math:`\tau \ge 0.5` each object
has at most one partner, so the matching is unique. With TP matched pairs, FP unmatched
predictions and FN unmatched true objects, the *average precision* as StarDist and DenoiSeg
report it (Schmidt et al., MICCAI 2018; Buchholz et al. 2020) is

.. math:: \mathrm{AP}_\tau = \frac{TP}{TP + FP + FN}.

Below 0.5 a predicted object may overlap several true ones; pairs are then matched greedily
by decreasing IoU (each object used once).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from infocus._errors import InfocusInputError

__all__ = ["average_precision", "check_label_image", "iou_matrix"]


def check_label_image(labels: object, name: str = "label image") -> np.ndarray:
    """``labels`` as a non-negative integer array (0 = background), or one clear error."""
    array = np.asarray(labels)
    if array.size == 0:
        raise InfocusInputError(f"The {name} is empty; give an image of instance masks.")
    integral = np.issubdtype(array.dtype, np.integer) or (
        np.issubdtype(array.dtype, np.floating) and bool(np.all(np.isfinite(array)))
        and np.array_equal(array, np.round(array)))
    if not integral:
        raise InfocusInputError(
            f"The {name} holds non-integer values; give instance masks (0 background, "
            "1, 2, ... one id per object), e.g. as uint16.")
    if array.min() < 0:
        raise InfocusInputError(
            f"The {name} holds negative values; instance masks use 0 for background and "
            "positive ids for objects.")
    return array.astype(np.int64, copy=False)


def iou_matrix(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """IoU of every (true, predicted) object pair, and the object ids of rows and columns."""
    predicted = check_label_image(predicted, "predicted label image")
    truth = check_label_image(truth, "true label image")
    if predicted.shape != truth.shape:
        raise InfocusInputError(
            f"The label images have shapes {truth.shape} and {predicted.shape}; compare "
            "segmentations of the same image.")
    true_ids, true_index = np.unique(truth, return_inverse=True)
    pred_ids, pred_index = np.unique(predicted, return_inverse=True)
    overlap = np.zeros((true_ids.size, pred_ids.size), dtype=np.int64)
    np.add.at(overlap, (true_index.ravel(), pred_index.ravel()), 1)
    union = overlap.sum(1, keepdims=True) + overlap.sum(0, keepdims=True) - overlap
    iou = np.where(union > 0, overlap / np.maximum(union, 1), 0.0)
    keep_t, keep_p = true_ids > 0, pred_ids > 0
    return iou[np.ix_(keep_t, keep_p)], true_ids[keep_t], pred_ids[keep_p]


def _matches(iou: np.ndarray, threshold: float) -> int:
    if iou.size == 0:
        return 0
    if threshold >= 0.5:
        return int(np.count_nonzero(iou > threshold))
    order = np.argsort(iou, axis=None)[::-1]
    used_t, used_p, count = set(), set(), 0
    for flat in order:
        t, p = np.unravel_index(flat, iou.shape)
        if iou[t, p] <= threshold:
            break
        if t not in used_t and p not in used_p:
            used_t.add(t)
            used_p.add(p)
            count += 1
    return count


def average_precision(
    predicted: object, truth: object, thresholds: Sequence[float] = (0.5,)
) -> dict[float, float]:
    """:math:`\\mathrm{AP}_\\tau` (module docstring) for each IoU threshold :math:`\\tau`.

    Two empty images score 1 (nothing to find, nothing found).

    Examples
    --------
    >>> truth = np.zeros((8, 8), int); truth[1:4, 1:4] = 1; truth[5:8, 5:8] = 2
    >>> guess = np.zeros((8, 8), int); guess[1:4, 1:4] = 7
    >>> average_precision(guess, truth)
    {0.5: 0.5}
    """
    iou, true_ids, pred_ids = iou_matrix(np.asarray(predicted), np.asarray(truth))
    scores = {}
    for threshold in thresholds:
        tp = _matches(iou, float(threshold))
        fp, fn = pred_ids.size - tp, true_ids.size - tp
        scores[float(threshold)] = 1.0 if tp + fp + fn == 0 else tp / (tp + fp + fn)
    return scores
