"""A trained model as one self-contained graph, written as ONNX or TorchScript.

What a graph can carry is the network and the affine normalisation around it:

.. math:: \\hat s = \\sigma^{out}_c\\, f\\!\\left(\\frac{x - \\mu^{in}_c}{\\sigma^{in}_c}\\right)_{1..C}
          + \\mu^{out}_c ,

with :math:`f` the method's prediction network (e.g. DecoNoising's network followed by its
re-blur with the PSF) and :math:`1..C` its first :math:`C` output channels, which by the
convention of :meth:`infocus.methods.TrainingScheme.finish` are the denoised image (a method
with further outputs, such as DenoiSeg's class probabilities, puts them after). Steps of
infocus's prediction that work on the whole stitched image or on the noisy pixels besides the
network (pixel fusion, intensity calibration, posterior sampling) are not in the graph; each
method says which it loses (:meth:`~infocus.methods.TrainingScheme.export_limits`).

The graph takes and returns ``(B, C, [Z,] Y, X)`` float32 in camera units, with spatial sizes
that are multiples of the network's ``size_multiple``; it does not tile, so a large image is
tiled by the caller with an overlap of at least the receptive field (``infocus predict`` and
bioimage.io's tiling do this).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from infocus._errors import InfocusInputError

if TYPE_CHECKING:
    from infocus.predict.model import TrainedModel

__all__ = ["ExportedGraph", "exported_graph", "onnx_bytes", "torchscript_bytes"]

#: Largest difference an exported graph may show against infocus's own prediction of the same
#: pixels (with the steps the graph leaves out switched off), relative to the largest output
#: magnitude: float32 rounding in another order of operations (measured below 1e-7 on the
#: test models, whose outputs are near 100 camera units).
EXPORT_TOLERANCE = 1e-6


class _Affine(nn.Module):
    """``network((x - mean_in) / std_in)[:, :C] * std_out + mean_out``, per channel."""

    def __init__(self, network: nn.Module, mean_in: np.ndarray, std_in: np.ndarray,
                 mean_out: np.ndarray, std_out: np.ndarray, channels: int, ndim: int) -> None:
        super().__init__()
        self.network = network
        self.channels = channels
        shape = (1, -1) + (1,) * ndim
        for name, value in (("mean_in", mean_in), ("std_in", std_in),
                            ("mean_out", mean_out), ("std_out", std_out)):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32).reshape(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.network((x - self.mean_in) / self.std_in)
        return y[:, : self.channels] * self.std_out + self.mean_out


@dataclass(frozen=True)
class ExportedGraph:
    """A model's prediction as one module, and what describes its input.

    Attributes
    ----------
    module : torch.nn.Module
        Camera units in, camera units out (normalisation inside).
    network : torch.nn.Module
        The same without the normalisation: normalised in, normalised out (for formats that
        describe the normalisation themselves, as bioimage.io does).
    channels : int
        Channels in and out.
    spatial : str
        The spatial axes, ``"YX"`` or ``"ZYX"``.
    size_multiple : int
        Every spatial size must be a multiple of this.
    receptive_radius : int
        Pixels each output pixel sees on either side; tiles must overlap by twice this.
    limits : list of str
        What infocus's prediction does that the graph does not (sentences for the user).
    """

    module: nn.Module
    network: nn.Module
    channels: int
    spatial: str
    size_multiple: int
    receptive_radius: int
    limits: list[str]

    def example(self, size: int | None = None) -> torch.Tensor:
        """A zero input of the smallest convenient shape (or ``size`` per spatial axis)."""
        edge = size or 2 * self.size_multiple
        return torch.zeros((1, self.channels) + (edge,) * len(self.spatial))


def exported_graph(model: TrainedModel) -> ExportedGraph:
    """The prediction of ``model`` that a graph can carry, on the CPU in evaluation mode.

    Raises
    ------
    InfocusInputError
        When the model's method cannot be exported (its prediction is more than a network:
        posterior sampling, frames read from neighbours), saying why.
    """
    from infocus.methods import PredictionRequest
    from infocus.nets import fused_for_inference

    scheme = model.scheme
    if not scheme.exportable:
        raise InfocusInputError(
            f"Method {model.method!r} cannot be exported: {scheme.not_exportable_because}; "
            "predict with infocus (infocus predict) instead."
        )
    bound = scheme.bind(model.state, model.input_norm)
    network = fused_for_inference(model.network.to("cpu"))
    predictor = bound.prediction_network(network, PredictionRequest()).eval()
    channels = int(getattr(model.network, "config", {}).get("in_channels", 1))
    spatial = model.spatial
    mean_in, std_in = _per_channel(model.input_norm, channels, "input")
    mean_out, std_out = _per_channel(model.target_norm, channels, "target")
    identity = np.zeros(channels), np.ones(channels)
    module = _Affine(predictor, mean_in, std_in, mean_out, std_out, channels, len(spatial))
    bare = _Affine(predictor, *identity, *identity, channels, len(spatial))
    reach = predictor if hasattr(predictor, "receptive_radius") else network
    radius = getattr(reach, "receptive_radius", None)
    if radius is None:
        radius = int(reach.receptive_field) // 2 + 1
    radius = max(np.atleast_1d(radius).tolist())
    multiple = max(np.atleast_1d(reach.size_multiple).tolist())
    return ExportedGraph(module=module.eval(), network=bare.eval(), channels=channels,
                         spatial=spatial, size_multiple=int(multiple),
                         receptive_radius=int(radius),
                         limits=list(bound.export_limits(model.state)))


def _per_channel(norm: Any, channels: int, which: str) -> tuple[np.ndarray, np.ndarray]:
    mean, std = np.asarray(norm.mean, np.float64), np.asarray(norm.std, np.float64)
    if mean.size == 1:
        return np.full(channels, mean[0]), np.full(channels, std[0])
    if mean.size != channels:
        raise InfocusInputError(
            f"The model's {which} normalisation has {mean.size} channels but its network takes "
            f"{channels}; the model is damaged: retrain it."
        )
    return mean, std


def onnx_bytes(module: nn.Module, example: torch.Tensor, spatial: str) -> bytes:
    """``module`` as an ONNX graph with dynamic batch and spatial sizes (input ``"input"``,
    output ``"output"``)."""
    names = [axis.lower() for axis in spatial]
    dynamic = {0: "batch", **{2 + i: n for i, n in enumerate(names)}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The tracing exporter turns shape checks in forward() into constants, as intended.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, buffer, dynamo=False, input_names=["input"],
                          output_names=["output"],
                          dynamic_axes={"input": dynamic, "output": dynamic})
    return buffer.getvalue()


def torchscript_bytes(module: nn.Module, example: torch.Tensor) -> bytes:
    """``module`` traced into TorchScript (what deepImageJ and bioimage.io's
    ``torchscript`` weights run), saved to bytes."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice; tracing is intended
        traced = torch.jit.trace(module, example, check_trace=False)
        traced = torch.jit.freeze(traced.eval())
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
    return buffer.getvalue()
