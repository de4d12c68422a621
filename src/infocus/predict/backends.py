"""How a network is run on batches of tiles: PyTorch, or ONNX Runtime on the CPU.

Both backends take and return NumPy batches ``(B, C, [Z,] Y, X)`` float32, so tiling,
test-time augmentation and normalisation do not care which one runs.

ONNX Runtime's CPU convolutions ran the default 16-filter U-Net faster than PyTorch's on the
2-core machines we benchmark on (``python -m benchmarks run --suites roofline``; numbers in
docs/benchmarks.md), with outputs equal to float rounding. ``backend="auto"`` therefore uses it
on the CPU when the optional packages are installed (``pip install 'infocus[onnx]'``) and the
input has at least :data:`ONNX_MIN_PIXELS` pixels, and falls back to PyTorch otherwise, or when
the export fails. The exported graph holds the same weights;
it is made in memory from the loaded network and never read from a model file, so a model file
still cannot carry code.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from infocus._errors import InfocusInputError

__all__ = ["ONNX_MIN_PIXELS", "Backend", "BatchFunction", "make_runner", "onnx_available", "tta"]

#: ``auto`` uses ONNX Runtime for inputs of at least this many pixels. Exporting the network
#: costs about half a second and ONNX Runtime saves about that much per megapixel on two cores,
#: so smaller images are predicted faster by PyTorch directly.
ONNX_MIN_PIXELS = 1 << 21

Backend = Literal["auto", "torch", "onnxruntime"]
BatchFunction = Callable[[np.ndarray], np.ndarray]


def onnx_available() -> bool:
    """Whether both ``onnx`` (export) and ``onnxruntime`` (execution) can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def _torch_runner(network: torch.nn.Module, device: torch.device, ndim: int) -> BatchFunction:
    from infocus.nets import channels_last

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = channels_last(torch.from_numpy(np.ascontiguousarray(batch)).to(device), ndim)
            return network(x).float().cpu().numpy()

    return run


def _onnx_runner(network: torch.nn.Module, ndim: int, threads: int | None) -> BatchFunction:
    import onnxruntime as ort

    channels = int(getattr(network, "in_channels", 1))
    example = torch.zeros((1, channels) + (2 * int(network.size_multiple),) * ndim)
    names = ["z", "y", "x"][-ndim:]
    dynamic = {0: "batch", **{2 + i: n for i, n in enumerate(names)}}
    buffer = io.BytesIO()
    cpu = network.to("cpu").eval()
    with warnings.catch_warnings():
        # The legacy exporter traces; shape checks in forward() become constants, as intended.
        warnings.simplefilter("ignore")
        torch.onnx.export(cpu, example, buffer, dynamo=False, input_names=["input"],
                          output_names=["output"],
                          dynamic_axes={"input": dynamic, "output": dynamic})
    options = ort.SessionOptions()
    # ONNX Runtime's arena keeps every peak allocation for the session's life; without it the
    # tiles' working memory is returned after each batch, as with PyTorch (bounded memory for
    # out-of-core prediction matters more than the allocator's few percent).
    options.enable_cpu_mem_arena = False
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(buffer.getvalue(), sess_options=options,
                                   providers=["CPUExecutionProvider"])

    def run(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {"input": np.ascontiguousarray(batch, dtype=np.float32)})[0]

    return run


def make_runner(
    network: torch.nn.Module, *, device: torch.device, ndim: int, backend: Backend = "auto"
) -> tuple[BatchFunction, str]:
    """A batch function for an evaluation-mode ``network`` and the backend actually used.

    Parameters
    ----------
    network : torch.nn.Module
        In evaluation mode (batch norm folded, see :func:`infocus.nets.fused_for_inference`).
    device : torch.device
        Where PyTorch runs; ONNX Runtime is used on the CPU only.
    ndim : int
        Spatial dimensions (2 or 3).
    backend : {"auto", "torch", "onnxruntime"}
        ``auto``: ONNX Runtime on the CPU when installed, else PyTorch.

    Raises
    ------
    InfocusInputError
        ``onnxruntime`` asked for but not installed, or on a GPU device, or unknown backend.
    """
    if backend not in ("auto", "torch", "onnxruntime"):
        raise InfocusInputError(
            f"Unknown backend {backend!r}; choose 'auto', 'torch' or 'onnxruntime'."
        )
    on_cpu = device.type == "cpu"
    if backend == "onnxruntime" and not (on_cpu and onnx_available()):
        raise InfocusInputError(
            "The onnxruntime backend needs the CPU and the packages onnx and onnxruntime; "
            "install them with pip install 'infocus[onnx]', or use backend='torch'."
        )
    if backend == "onnxruntime" or (backend == "auto" and on_cpu and onnx_available()):
        try:
            return _onnx_runner(network, ndim, torch.get_num_threads()), "onnxruntime"
        except Exception as error:  # noqa: BLE001 - any export failure falls back, with a reason
            if backend == "onnxruntime":
                raise InfocusInputError(
                    f"This network could not be exported to ONNX ({type(error).__name__}: "
                    f"{error}); use backend='torch'."
                ) from error
            warnings.warn(
                f"ONNX export failed ({type(error).__name__}); predicting with PyTorch instead.",
                RuntimeWarning, stacklevel=2,
            )
    return _torch_runner(network, device, ndim), "torch"


def tta(run: BatchFunction, batch: np.ndarray, *, rotations: bool = True) -> np.ndarray:
    """Mean of ``run`` over the 8 symmetries of the YX plane (square tiles), or over the 4 that
    keep the Y and X directions (flips and the 180° turn) when ``rotations`` is False."""
    turns = range(4) if rotations else (0, 2)
    total = None
    for k in turns:
        for flip in (False, True):
            x = np.rot90(batch, k, axes=(-2, -1))
            x = x[..., ::-1] if flip else x
            y = run(np.ascontiguousarray(x))
            y = y[..., ::-1] if flip else y
            y = np.rot90(y, -k, axes=(-2, -1))
            total = y if total is None else total + y
    assert total is not None
    return (total / (2 * len(turns))).astype(np.float32)
