r"""What a model's training images looked like, kept in the model file to recognise new input
that lies outside them (domain shift).

A network trained on one kind of image may invent structures of that kind in another
(Laine, Jacquemet & Krull 2021, §5). Three descriptions of the training data need no labels and
no network, and each catches a different way in which new data can differ:

* **intensities**: the 1st, 50th and 99th percentiles of the raw values (another exposure,
  laser power or camera setting);
* **noise**: the Poisson–Gaussian parameters (another camera gain, or another microscope);
* **structure**: the radially averaged power spectrum of 64×64 tiles, each tile scaled to unit
  range so that brightness does not enter, as a log-power profile over octave-spaced frequency
  bands, the noise's flat floor subtracted and the overall level removed (the shape of the
  spectrum, not how bright or full a tile is). Content of another size or kind moves power
  between bands. For each training tile the Mahalanobis distance of its profile to the training
  mean is computed; the 95th percentile of those distances is the edge of the domain, and new
  data with more than :data:`OUTSIDE_FRACTION` of their tiles beyond it have another structure.

:func:`data_signature` computes them (stored at training time), :func:`compare_signature` measures
new input against them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["TILE", "compare_signature", "data_signature"]

#: Edge of the tiles whose power spectra describe the structure.
TILE = 64
#: Frequency bands (cycles per pixel): octaves from 1/64 to 1/2.
BANDS = tuple(2.0 ** -k for k in range(6, 0, -1)) + (0.5 * math.sqrt(2),)
#: Allowed ratios before a difference is reported: of the noise's growth with the signal (a
#: camera gain), and of the intensity range (an exposure or laser power).
GAIN_RATIO = 2.0
SPAN_RATIO = 3.0
#: Share of tiles beyond the training tiles' 95th percentile distance that marks a different
#: structure. Eight times the 5 % expected: single 256² images of the training kind reached
#: 31 % (the edge itself is estimated from few tiles), thin filaments 50–81 % in 19 of 20 cases.
OUTSIDE_FRACTION = 0.4


def data_signature(planes: np.ndarray) -> dict[str, Any]:
    """The signature of images ``planes`` ``(C, P, Y, X)`` (raw values), one entry per channel.

    Returns
    -------
    dict
        ``{"format": 1, "channels": [{"percentiles": [p1, p50, p99], "noise": [a, b] or None,
        "spectrum_mean": [...], "spectrum_precision": [[...]], "distance_95": float}, ...]}``,
        JSON-serialisable.
    """
    return {"format": 1, "channels": [_channel_signature(np.asarray(c, np.float64))
                                      for c in planes]}


def _channel_signature(planes: np.ndarray) -> dict[str, Any]:
    noise = _noise(planes)
    profiles = _tile_profiles(planes, noise)
    entry: dict[str, Any] = {
        "percentiles": [float(v) for v in np.percentile(planes, [1, 50, 99])],
        "noise": noise,
    }
    if len(profiles) >= 2 * profiles.shape[1]:
        mean = profiles.mean(axis=0)
        precision = _precision(profiles)
        distances = _distances(profiles, mean, precision)
        entry.update(spectrum_mean=mean.tolist(), spectrum_precision=precision.tolist(),
                     distance_95=float(np.percentile(distances, 95)))
    return entry


def _precision(profiles: np.ndarray) -> np.ndarray:
    """Inverse covariance of the profiles, shrunk towards its diagonal (neighbouring bands
    are strongly correlated and a few dozen tiles estimate the covariance poorly)."""
    covariance = np.cov(profiles, rowvar=False)
    shrunk = 0.8 * covariance + 0.2 * np.diag(np.diag(covariance))
    return np.linalg.inv(shrunk + 1e-3 * np.eye(len(covariance)))


def _distances(profiles: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of each profile, per band."""
    centred = profiles - mean
    return np.einsum("ij,jk,ik->i", centred, precision, centred) / profiles.shape[1]


def compare_signature(signature: dict[str, Any], planes: np.ndarray) -> list[str]:
    """Ways in which images ``planes`` ``(C, P, Y, X)`` differ from the training data of
    ``signature``, one sentence each (empty: within the domain)."""
    channels = signature.get("channels", [])
    if len(channels) != len(planes):
        return [f"the model was trained on {len(channels)} channel(s), the input has "
                f"{len(planes)}"]
    findings = []
    for index, (trained, data) in enumerate(zip(channels, planes, strict=True)):
        where = f" (channel {index})" if len(planes) > 1 else ""
        findings += [f"{text}{where}" for text in
                     _differences(trained, np.asarray(data, np.float64))]
    return findings


def _differences(trained: dict[str, Any], planes: np.ndarray) -> list[str]:
    findings = []
    low, _, high = trained["percentiles"]
    span = max(high - low, 1e-12)
    new_low, new_median, new_high = np.percentile(planes, [1, 50, 99])
    ratio = (new_high - new_low) / span
    if not 1 / SPAN_RATIO <= ratio <= SPAN_RATIO or not low - span <= new_median <= high + span:
        findings.append(f"intensities lie in {new_low:.4g}–{new_high:.4g}, the training "
                        f"images' in {low:.4g}–{high:.4g}")
    noise = _noise(planes)
    if trained.get("noise") and noise and trained["noise"][0] > 0 and noise[0] > 0:
        ratio = noise[0] / trained["noise"][0]
        if not 1 / GAIN_RATIO <= ratio <= GAIN_RATIO:
            findings.append(f"the noise grows {ratio:.2g} times as fast with the signal as in "
                            "the training images (another camera gain or microscope)")
    if "spectrum_mean" in trained:
        profiles = _tile_profiles(planes, noise)
        if len(profiles):
            distances = _distances(profiles, np.asarray(trained["spectrum_mean"]),
                                   np.asarray(trained["spectrum_precision"]))
            outside = float(np.mean(distances > trained["distance_95"]))
            if outside > OUTSIDE_FRACTION:
                findings.append(f"{100 * outside:.0f} % of the image's 64-pixel tiles have a "
                                "structure (power spectrum) unlike 95 % of the training "
                                "tiles")
    return findings


def _noise(planes: np.ndarray) -> list[float] | None:
    from infocus._errors import InfocusInputError
    from infocus.noise import estimate_noise

    try:
        params = estimate_noise(planes, axes="SYX")
    except InfocusInputError:
        return None
    return [float(params.gain), float(params.variance_intercept)]


def _tile_profiles(planes: np.ndarray, noise: list[float] | None) -> np.ndarray:
    """Log signal-power profiles over :data:`BANDS` of every 64×64 tile that holds signal.

    The noise adds a flat floor to a tile's power spectrum (``mean(a y + b)`` times the
    window's energy, for white noise) that would hide the structure at the frequencies where it
    dominates; it is subtracted, and what is left floored at 1 % of it.
    """
    height, width = planes.shape[-2] // TILE, planes.shape[-1] // TILE
    if height == 0 or width == 0:
        return np.empty((0, len(BANDS) - 1))
    tiles = planes[:, : height * TILE, : width * TILE].reshape(
        -1, height, TILE, width, TILE).transpose(0, 1, 3, 2, 4).reshape(-1, TILE, TILE)
    spans = np.ptp(tiles, axis=(1, 2))
    tiles = tiles[spans > 0]
    spans = spans[spans > 0]
    if not len(tiles):
        return np.empty((0, len(BANDS) - 1))
    window = np.outer(np.hanning(TILE), np.hanning(TILE))
    variance = np.zeros(len(tiles))
    if noise is not None:
        variance = np.maximum(noise[0] * tiles.mean(axis=(1, 2)) + noise[1], 0.0)
    floor = variance * float(np.sum(window**2)) / spans**2
    tiles = (tiles - tiles.mean(axis=(1, 2), keepdims=True)) / spans[:, None, None]
    power = np.abs(np.fft.rfft2(tiles * window)) ** 2
    fy = np.fft.fftfreq(TILE)[:, None]
    fx = np.fft.rfftfreq(TILE)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    profile = []
    for lo, hi in zip(BANDS[:-1], BANDS[1:], strict=True):
        band = power[:, (radius >= lo) & (radius < hi)].mean(axis=1)
        profile.append(np.log(np.maximum(band - floor, 0.01 * floor) + 1e-12))
    profiles = np.stack(profile, axis=1)
    # The shape of the spectrum, not its level: how bright or how full a tile is varies within
    # any data set, the size and sharpness of what is in it much less.
    return profiles - profiles.mean(axis=1, keepdims=True)
