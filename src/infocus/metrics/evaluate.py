"""Per-image and stack-averaged metrics for (prediction, ground truth) pairs."""

from __future__ import annotations

from typing import Any

import numpy as np

from infocus._errors import InfocusInputError
from infocus.axes import check_axes, default_axes, iter_blocks, spatial_axes
from infocus.metrics.quality import mse, psnr, si_psnr, ssim

__all__ = ["METRICS", "evaluate"]

METRICS = ("mse", "psnr", "ssim", "si_psnr")


def evaluate(
    prediction: np.ndarray,
    target: np.ndarray,
    *,
    axes: str | None = None,
    data_range: float | None = None,
) -> dict[str, Any]:
    """All metrics, per image and averaged over a stack.

    An "image" is one ``YX`` plane, or one ``ZYX`` volume when the axes contain ``Z``; samples,
    time points and channels each count as separate images. The data range of each image is its
    own ground-truth range unless ``data_range`` is given.

    Returns
    -------
    dict
        ``{"per_image": [{"index": [...], "mse": ..., "psnr": ..., "ssim": ..., "si_psnr": ...}, ...],
        "mean": {"mse": ..., ...}, "n_images": N}``. The mean PSNR is the mean of per-image PSNRs,
        as in the FMD and Noise2Void protocols.
    """
    prediction = np.asarray(prediction)
    target = np.asarray(target)
    if prediction.shape != target.shape:
        raise InfocusInputError(
            f"Prediction shape {prediction.shape} differs from ground-truth shape {target.shape}; "
            "compare images of the same size and axes."
        )
    axes = check_axes(axes, target.shape) if axes is not None else default_axes(target.shape)
    block = spatial_axes(axes)
    rows = []
    for index in iter_blocks(target.shape, axes, block):
        pred, tgt = prediction[index], target[index]
        rows.append(
            {
                "index": [i for i in index if not isinstance(i, slice)],
                "mse": mse(pred, tgt),
                "psnr": psnr(pred, tgt, data_range=data_range),
                "ssim": ssim(pred, tgt, data_range=data_range),
                "si_psnr": si_psnr(pred, tgt, data_range=data_range),
            }
        )
    mean = {name: float(np.mean([row[name] for row in rows])) for name in METRICS}
    return {"per_image": rows, "mean": mean, "n_images": len(rows)}
