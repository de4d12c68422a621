"""The Poisson–Gaussian noise parameters shared by simulation, estimation and the VST."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np

from infocus._errors import InfocusInputError

__all__ = ["NoiseParams"]

_LABELS = {"gain": "gain", "variance_intercept": "variance intercept", "offset": "offset",
           "read_noise": "read noise"}


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

    def __post_init__(self) -> None:
        # Every way of building noise parameters (flags, -p options, Python) passes here, so a
        # NaN or negative value is refused once instead of giving a NaN or unchanged image.
        for name in ("gain", "offset", "read_noise", "variance_intercept"):
            value = getattr(self, name)
            if value is None and name in ("offset", "read_noise"):
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise InfocusInputError(f"Noise {_LABELS[name]} must be a number, got {value!r}.")
            if not math.isfinite(value):
                raise InfocusInputError(
                    f"Noise {_LABELS[name]} must be finite, got {value}; give a measured value "
                    "or leave it out to estimate the noise from the image."
                )
        for name in ("gain", "read_noise"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InfocusInputError(
                    f"Noise {_LABELS[name]} must be zero or positive, got {value}; pass the "
                    "camera's value (gain 0 means purely Gaussian noise)."
                )

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
        """Signal-independent Gaussian noise of standard deviation ``sigma`` (> 0)."""
        if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not sigma > 0 \
                or not math.isfinite(sigma):
            raise InfocusInputError(
                f"The noise standard deviation (sigma) must be a positive finite number, got "
                f"{sigma!r}; e.g. --sigma 5, or leave it out to estimate it from the image."
            )
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
