r"""DecoNoising: a blind-spot network whose output, blurred by the microscope's PSF, explains
the noisy image, so that the output itself is a deconvolved image.

The microscope forms :math:`x = \mathcal N(h * s)`: the fluorophore density :math:`s` blurred by
the point-spread function :math:`h`, then noise. Noise2Void trains a network :math:`f` on blind
spots to predict :math:`\mathbb E[x_i]` from the neighbours of pixel :math:`i`. DecoNoising
(Goncharova et al. 2020) puts the known blur *after* the network,

.. math:: \mathcal L = \frac{1}{|M|} \sum_{i \in M} \big((h * f(\tilde x))_i - x_i\big)^2
          + \lambda\, \frac{1}{N} \sum_j \max\!\big(0,\ \ell - f(\tilde x)_j\big),

where :math:`\tilde x` is the masked input and :math:`M` the blind spots. The blurred output
must match the data, so the output :math:`u = f(\tilde x)` is pushed towards an image that the
PSF blurs into the measurement: a deconvolved estimate of :math:`s`, and :math:`h * u` a
denoised one. The second term keeps :math:`u` above the black level :math:`\ell` (the paper's
positivity constraint; here :math:`\ell` is the 1st percentile of the training pixels, which
sits at or slightly below the camera's black level). Since every output pixel's input already
lacks :math:`x_i` at a blind spot, the blurred output at :math:`i` is blind to it as well.

The data fix :math:`u` only through :math:`h * u`: what the PSF removes (the finest detail)
the network sets by its own habits, which are not the same for an image and its mirror image.
Prediction therefore averages the outputs for the 8 flips and rotations of the image by
default (test-time augmentation, ``prediction_tta``; ``tta=False`` or ``--no-tta`` predicts
once, 8× faster): on four simulated widefield scenes at 10 photons that the benchmark does not
use, the deconvolved image rose from 26.42 to 26.51 dB (PSNR against the unblurred truth),
while the same averaging moved N2V followed by Richardson–Lucy only from 26.39 to 26.41 dB;
docs/benchmarks.md has the comparison on the benchmark's four scene sets.

Convolution with a normalised PSF commutes with the affine normalisation of the data
(:math:`h * (a s + b) = a\, h * s + b` when :math:`\sum h = 1`), so the loss is computed in
normalised units. Prediction returns both images; ``infocus predict --deconvolved`` writes
the second.

The PSF comes from a file (``psf=``, a measured bead image: odd sizes, normalised for you) or
is simulated from the optics (``psf_model=gaussian|widefield|confocal`` with ``na``,
``wavelength`` in nm, ``pixel_size`` and for 3-D ``z_step`` in µm; see :mod:`infocus.psf`).

References
----------
A. S. Goncharova, A. Honigmann, F. Jug, A. Krull, "Improving blind spot denoising for
microscopy", ECCV 2020 Workshops (BioImage Computing), arXiv:2008.08414.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infocus._errors import InfocusInputError
from infocus.methods._base import (
    SCHEMES,
    Batch,
    ChannelMode,
    FitData,
    Fitted,
    PredictionContext,
    PredictionRequest,
    masked_loss,
)
from infocus.methods.blind_spot import (
    _MEASURED_FILL,
    Noise2Void,
    _pattern,
    radius_for_pattern,
)

__all__ = ["DecoNoising", "blur"]

#: Percentile of the training pixels taken as the black level of the positivity term.
BLACK_PERCENTILE = 1.0


def blur(image: Tensor, psf: Tensor) -> Tensor:
    """``h * image`` per channel for a batch ``(B, C, *spatial)`` and a PSF ``(*spatial)``
    with odd sides; the image is extended by reflection, so the output has its shape."""
    return _convolve(image, _kernel(psf, image.shape[1]).to(image.dtype))


def _kernel(psf: Tensor, channels: int) -> Tensor:
    """The grouped-convolution weight ``(C, 1, *psf)`` that convolves each channel by ``psf``
    (conv*d correlates; flipping the kernel makes it a convolution)."""
    flipped = torch.flip(psf, dims=tuple(range(psf.ndim)))
    return flipped.expand(channels, 1, *psf.shape).contiguous()


def _convolve(image: Tensor, kernel: Tensor) -> Tensor:
    pad = [r for n in reversed(kernel.shape[2:]) for r in (n // 2, n // 2)]
    padded = F.pad(image, pad, mode="reflect") if any(pad) else image
    convolve = F.conv2d if kernel.ndim == 4 else F.conv3d
    return convolve(padded, kernel, groups=kernel.shape[0])


@dataclass(frozen=True)
class DecoNoising(Noise2Void):
    """DecoNoising (module docstring): N2V's blind spots, the PSF after the network.

    Parameters
    ----------
    psf : str
        Path of a PSF image; or empty when ``psf_model`` simulates one.
    psf_model : str
        ``"gaussian"``, ``"widefield"`` or ``"confocal"`` (with the optics below), or empty.
    na, wavelength, pixel_size, z_step, refractive_index : float
        The optics of a simulated PSF: numerical aperture, emission wavelength (nm), pixel size
        and plane distance (µm), immersion refractive index.
    positivity : float
        Weight :math:`\\lambda` of the positivity term.
    """

    psf: str = ""
    psf_model: str = ""
    na: float = 0.0
    wavelength: float = 0.0
    pixel_size: float = 0.0
    z_step: float = 0.0
    refractive_index: float = 1.515
    positivity: float = 1.0

    prediction_options: ClassVar[tuple[str, ...]] = ()
    outputs: ClassVar[frozenset[str]] = frozenset({"denoised", "deconvolved"})
    prediction_tta: ClassVar[bool] = True
    required_options: ClassVar[dict[str, Any]] = {
        "psf_model": "gaussian", "na": 1.2, "wavelength": 520.0, "pixel_size": 0.1}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.psf and self.psf_model:
            raise InfocusInputError(
                "Give the PSF as an image (--psf) or as a model of the optics (--psf-model), "
                "not both.")
        if not (np.isfinite(self.positivity) and self.positivity >= 0):
            raise InfocusInputError(
                f"positivity must be a non-negative weight (got {self.positivity!r}).")

    @property
    def summary(self) -> str:  # type: ignore[override]
        return ("DecoNoising: blind spots with the PSF after the network; a denoised and a "
                "deconvolved image (Goncharova et al. 2020).")

    @property
    def citation(self) -> dict[str, str]:  # type: ignore[override]
        return {"text": "Goncharova, Krull, Jug. Improving blind spot denoising for microscopy. "
                        "ECCV Workshops 2020.", "doi": "10.48550/arXiv.2008.08414"}

    def export_limits(self, state: dict[str, Any]) -> list[str]:
        """The deconvolved image (the graph's output is the denoised one) and the averaging
        over orientations (the graph predicts once)."""
        return ["The deconvolved image is left out: the exported model gives the denoised "
                "image (the network's output blurred by the PSF); predict with infocus for "
                "--deconvolved.",
                "The mean over the 8 flips and rotations is left out: the exported model "
                "predicts once, as infocus predict --no-tta does (infocus averages them by "
                "default for this method)."]

    # ------------------------------------------------------------------------------ training
    def fit(self, data: FitData) -> Fitted:
        """The blind spot (as N2V), the PSF on the data's grid, and the black level."""
        fitted = super().fit(data)
        psf = self._make_psf(data.ndim)
        smallest = min(min(int(n) for n in block.shape[1:]) for block in data.inputs)
        if max(psf.shape) > smallest:
            raise InfocusInputError(
                f"The PSF ({'×'.join(map(str, psf.shape))} pixels) is larger than the images "
                f"(smallest side {smallest}); crop the PSF to where it is above the background, "
                "or check --pixel-size.")
        sides = ", ".join(str(n) for n in psf.shape)
        data.say(f"PSF: {sides} pixels, peak {psf.max():.3f} of its sum.")
        state = {**fitted.state, "psf": psf.tolist(), "black_level": _black_level(data.inputs)}
        return Fitted(options=fitted.options, state=state)

    def _make_psf(self, ndim: int) -> np.ndarray:
        from infocus.psf import read_psf, simulate_psf

        if not (self.psf or self.psf_model):
            raise InfocusInputError(
                "DecoNoising needs the microscope's PSF: give a PSF image (--psf psf.tif) or a "
                "model of the optics (--psf-model gaussian --na 1.4 --wavelength 520 "
                "--pixel-size 0.1).")
        if self.psf:
            return read_psf(self.psf, ndim)
        return simulate_psf(self.psf_model, ndim=ndim, na=self.na, wavelength=self.wavelength,
                            pixel_size=self.pixel_size, z_step=self.z_step or None,
                            refractive_index=self.refractive_index)

    def check_state(self, state: dict[str, Any], source: str) -> None:
        if "psf" not in state or "black_level" not in state:
            raise InfocusInputError(
                f"{source} lacks the PSF DecoNoising was trained with; it is not a complete "
                "DecoNoising model (train it again).")

    def bind(self, state: dict[str, Any], normalizer: Any) -> DecoNoising:
        bound = dataclasses.replace(self)
        psf = torch.tensor(np.asarray(state["psf"], dtype=np.float32))
        mean = float(np.mean(normalizer.mean))
        std = float(np.mean(normalizer.std))
        object.__setattr__(bound, "_psf", psf)
        object.__setattr__(bound, "_floor", (float(state["black_level"]) - mean) / std)
        return bound

    def loss(self, prediction: Tensor, batch: Batch) -> dict[str, Tensor]:
        """Masked MSE of the blurred output, plus the positivity term (module docstring)."""
        psf = self._bound_psf(prediction)
        if any(n > s for n, s in zip(psf.shape, prediction.shape[2:], strict=True)):
            raise InfocusInputError(
                f"The PSF ({tuple(psf.shape)}) is larger than the training patches "
                f"({tuple(prediction.shape[2:])}); train with a larger --patch-size.")
        data = masked_loss(blur(prediction, psf), batch.target, batch.mask)
        below = torch.relu(self._floor - prediction).mean()
        return {"loss": data + self.positivity * below, "data": data, "below_black": below}

    def _bound_psf(self, like: Tensor) -> Tensor:
        psf = getattr(self, "_psf", None)
        if psf is None:
            raise RuntimeError("DecoNoising used before bind(); this is a bug in infocus")
        return psf.to(like.device)

    # ---------------------------------------------------------------------------- prediction
    def prediction_network(self, network: nn.Module, request: PredictionRequest) -> nn.Module:
        return _Reblur(network, self._bound_psf(next(network.parameters())))

    def finish(
        self, outputs: np.ndarray, noisy: np.ndarray, context: PredictionContext
    ) -> dict[str, np.ndarray]:
        """The blurred output is the denoised image, the output itself the deconvolved one."""
        channels = outputs.shape[0] // 2
        norm = context.target_norm
        return {"denoised": norm.denormalize(outputs[:channels], channel_axis=0),
                "deconvolved": norm.denormalize(outputs[channels:], channel_axis=0)}


class _Reblur(nn.Module):
    """The network and its output blurred by the PSF: ``(B, 2C, ...)``, blurred first. Its
    receptive radius adds the PSF's, so tiles stay exact."""

    def __init__(self, network: nn.Module, psf: Tensor) -> None:
        super().__init__()
        self.network = network
        # The weight is made once, not from the PSF at every call: graph exporters (ONNX)
        # need a convolution kernel of known shape.
        channels = int(getattr(network, "config", {}).get("out_channels", 1))
        self.register_buffer("kernel", _kernel(psf, channels))
        self.size_multiple = network.size_multiple
        self.config = dict(getattr(network, "config", {}))
        reach = max(n // 2 for n in psf.shape)
        self.receptive_radius = int(getattr(network, "receptive_radius",
                                            network.receptive_field // 2 + 1)) + reach
        self.receptive_field = int(network.receptive_field) + 2 * reach

    def forward(self, x: Tensor) -> Tensor:
        deconvolved = self.network(x)
        return torch.cat([_convolve(deconvolved, self.kernel), deconvolved], dim=1)


def _black_level(inputs: Sequence[Any]) -> float:
    """:data:`BLACK_PERCENTILE` of the pixels of up to 8 blocks (central 512² crops)."""
    values = []
    for block in list(inputs)[:8]:
        index = tuple(slice(None) if a == 0 else slice(max(0, n // 2 - 256), n // 2 + 256)
                      for a, n in enumerate(block.shape))
        values.append(np.asarray(block[index], dtype=np.float32).ravel())
    return float(np.percentile(np.concatenate(values), BLACK_PERCENTILE))


@SCHEMES.register("deconoising")
def _deconoising(
    *,
    psf: str = "",
    psf_model: str = "",
    na: float = 0.0,
    wavelength: float = 0.0,
    pixel_size: float = 0.0,
    z_step: float = 0.0,
    refractive_index: float = 1.515,
    positivity: float = 1.0,
    fraction: float = 0.002,
    radius: int = 2,
    channels: ChannelMode = "independent",
    blind_spot: Sequence[Sequence[int]] | str = "auto",
) -> DecoNoising:
    """DecoNoising; the PSF from psf=FILE or psf_model= with na, wavelength, pixel_size."""
    struct = _pattern(blind_spot)
    return DecoNoising(
        fraction, radius_for_pattern(radius, struct), "uniform", struct, _MEASURED_FILL,
        channels=channels, name="deconoising", measures_correlation=True, psf=str(psf),
        psf_model=str(psf_model), na=float(na), wavelength=float(wavelength),
        pixel_size=float(pixel_size), z_step=float(z_step),
        refractive_index=float(refractive_index), positivity=float(positivity),
    )
