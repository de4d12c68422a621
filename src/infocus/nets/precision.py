"""Mixed precision: bfloat16 arithmetic where the hardware computes it natively.

bfloat16 keeps float32's 8-bit exponent (its range) and rounds the mantissa to 8 bits (a
relative rounding error of at most :math:`2^{-9} \\approx 0.2\\,\\%`). Under
:func:`torch.autocast` the convolutions and matrix products run in bfloat16 while the weights,
the optimizer state, the loss and everything outside the network stay float32 (mixed
precision training, Micikevicius et al. 2018, "Mixed Precision Training", ICLR; Kalamkar et
al. 2019, "A Study of BFLOAT16 for Deep Learning Training", arXiv:1905.12322, which showed that
bfloat16 needs no loss scaling). The noise in a microscope image is far above that rounding
error, so the result changes by far less than the noise; docs/benchmarks.md measures by how
much on every benchmark dataset.

It only pays where the hardware has bfloat16 units. On a 2-core CPU with Intel's AMX tiles a
training step of the 32-filter U-Net (forward, backward, Adam on 64 patches of 64²) took 3.5×
less time in bfloat16, and whole training runs 1.7-2.6× less (docs/benchmarks.md, CAREamics
section); on a CPU without them PyTorch emulates bfloat16, and the 16-filter U-Net predicted
7× slower in bfloat16 than in float32 (prediction-speed section). ``"auto"`` therefore means
bfloat16 on a CPU with AMX and on a CUDA GPU that supports bfloat16, float32 everywhere else.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

import torch

from infocus._errors import InfocusInputError

__all__ = [
    "PRECISIONS", "Precision", "as_float32", "autocast", "native_bfloat16", "resolve_precision",
]

Precision = Literal["auto", "float32", "bfloat16"]
PRECISIONS: tuple[str, ...] = ("auto", "float32", "bfloat16")


def native_bfloat16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 convolutions in hardware (CPU AMX, CUDA bf16)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
        try:
            return bool(probe()) if probe is not None else False
        except RuntimeError:  # a build without the CPU feature query
            return False
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``"float32"`` or ``"bfloat16"``: ``precision``, with ``"auto"`` decided by the device.

    Raises
    ------
    InfocusInputError
        For a name other than ``auto``, ``float32`` or ``bfloat16``.
    """
    if precision not in PRECISIONS:
        raise InfocusInputError(
            f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r}).")
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    return precision


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager[Any]:
    """A context in which the network runs in ``precision`` (already resolved) on ``device``."""
    device = torch.device(device)
    if precision != "bfloat16" or device.type not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def as_float32(output: Any) -> Any:
    """A network's output (a tensor, or a tuple/list/dict of them) with every tensor float32."""
    if isinstance(output, torch.Tensor):
        return output.float()
    if isinstance(output, dict):
        return {key: as_float32(value) for key, value in output.items()}
    if isinstance(output, (tuple, list)):
        return type(output)(as_float32(value) for value in output)
    return output
