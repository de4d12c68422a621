"""A figure of a noise model against data: is :math:`p(x \\mid s)` what the camera does?"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from infocus.noise.models import NoiseModel

__all__ = ["plot_noise_model"]


def plot_noise_model(
    model: NoiseModel,
    path: str | os.PathLike[str],
    *,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
    signals: int = 4,
    overwrite: bool = False,
) -> Path:
    """Write a two-panel PNG: left, :math:`p(x \\mid s)` at ``signals`` signal levels across the
    model's range, over the histogram of the observations whose signal falls near each level;
    right, the noise's standard deviation against the signal, model and data.

    Parameters
    ----------
    model : NoiseModel
        The model to show.
    path : path
        The PNG to write (atomically).
    pairs : (signal, observed), optional
        Data to compare with, e.g. from :func:`~infocus.noise.models.calibration_pairs`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from infocus.io._atomic import atomic_output

    low, high = model.signal_range
    levels = np.linspace(low, high, signals + 2)[1:-1]
    width = (high - low) / (signals + 1) / 4
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    colours = plt.cm.viridis(np.linspace(0.1, 0.9, signals))
    _, stds = model.mean_and_std(levels)
    for level, std, colour in zip(levels, stds, colours, strict=True):
        grid = np.linspace(level - 5 * std, level + 6 * std, 400)
        left.plot(grid, model.likelihood(grid, np.full_like(grid, level)), color=colour,
                  label=f"s = {level:.4g}")
        if pairs is not None:
            signal, observed = pairs
            near = observed[np.abs(signal - level) < width]
            if near.size > 50:
                left.hist(near, bins=60, range=(grid[0], grid[-1]), density=True, alpha=0.3,
                          color=colour)
    left.set(xlabel="observed value x", ylabel="p(x | s)",
             title=f"{model.kind} noise model (lines) and data (bars)")
    left.legend(fontsize=8)
    grid = np.linspace(low, high, 200)
    right.plot(grid, model.mean_and_std(grid)[1], color="k", label="model")
    if pairs is not None:
        signal, observed = pairs
        edges = np.linspace(low, high, 41)
        index = np.digitize(signal, edges) - 1
        centres, spread = [], []
        for k in range(40):
            members = observed[index == k] - signal[index == k]
            if members.size > 50:
                centres.append(0.5 * (edges[k] + edges[k + 1]))
                spread.append(members.std())
        right.plot(centres, spread, "o", color="tab:orange", ms=4, label="data")
    right.set(xlabel="signal s", ylabel="std of x given s", title="noise level")
    right.legend(fontsize=8)
    path = Path(path).expanduser()
    with atomic_output(path, overwrite=overwrite, suffix=".png") as temporary:
        fig.savefig(temporary, dpi=110)
    plt.close(fig)
    return path
