"""The Poisson–Gaussian noise parameters shared by simulation, estimation and the VST."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["NoiseParams"]


@dataclass(frozen=True)
class NoiseParams:
    r"""Parameters of the noise-variance function of a Poisson–Gaussian camera.

    The measured value is :math:`x = a\,\mathrm{Poisson}(s) + \mathcal{N}(\mu, \sigma^2)`, so the
    variance is affine in the expected value :math:`y = \mathrm{E}[x] = a s + \mu`:

    .. math:: \mathrm{Var}[x \mid y] = a\,y + b, \qquad b = \sigma^2 - a\,\mu .

    Attributes
    ----------
    gain : float
        :math:`a`, camera units per photo-electron (0 for purely Gaussian noise).
    variance_intercept : float
        :math:`b`, the variance extrapolated to a zero expected value.
    offset : float or None
        :math:`\mu`, the camera offset (dark level), when known.
    read_noise : float or None
        :math:`\sigma`, the standard deviation of the Gaussian part, when known.
    """

    gain: float
    variance_intercept: float
    offset: float | None = None
    read_noise: float | None = None

    @classmethod
    def from_camera(cls, *, gain: float, offset: float, read_noise: float) -> NoiseParams:
        """Build from camera gain, offset and read noise (so that ``b = σ² − a·μ``)."""
        return cls(
            gain=float(gain),
            variance_intercept=float(read_noise) ** 2 - float(gain) * float(offset),
            offset=float(offset),
            read_noise=float(read_noise),
        )

    @classmethod
    def gaussian(cls, sigma: float) -> NoiseParams:
        """Signal-independent Gaussian noise of standard deviation ``sigma``."""
        return cls(gain=0.0, variance_intercept=float(sigma) ** 2, offset=0.0, read_noise=float(sigma))

    def variance(self, expected: np.ndarray | float) -> np.ndarray | float:
        """Noise variance :math:`a y + b` at expected value(s) ``y`` (clipped at 0)."""
        return np.maximum(self.gain * np.asarray(expected) + self.variance_intercept, 0.0)

    def is_signal_dependent(self, typical_level: float) -> bool:
        """Whether shot noise is a sizeable part (>10 %) of the variance at ``typical_level``."""
        shot = self.gain * max(typical_level - (self.offset or 0.0), 0.0)
        total = float(self.variance(typical_level))
        return self.gain > 0 and total > 0 and shot > 0.1 * total

    def to_dict(self) -> dict[str, float]:
        """The JSON form: ``gain`` and ``variance_intercept``, plus ``offset``/``read_noise`` when known."""
        return {
            k: float(v)
            for k, v in asdict(self).items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))
        }
