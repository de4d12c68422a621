"""infocus: denoise fluorescence-microscopy images and measure how far to trust the result.

The public API is flat::

    import infocus
    image = infocus.read_image("noisy.tif")
    noise = infocus.estimate_noise(image.data, axes=image.axes)
    clean = infocus.denoise(image.data, "bm3d", axes=image.axes, noise=noise)
    model = infocus.train("stack.tif", method="n2v", axes="SYX", output="n2v-model")
    clean = infocus.load_model("n2v-model").denoise(image.data, axes=image.axes)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from infocus._api import denoise
from infocus._errors import InfocusInputError, OutputExistsError
from infocus.classical import get_denoiser, list_denoisers
from infocus.io import Image, read_image, write_image
from infocus.metrics import evaluate, mse, psnr, si_psnr, ssim
from infocus.noise import NoiseParams, estimate_noise, simulate_poisson_gaussian

try:
    __version__ = version("infocus")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "Image",
    "InfocusInputError",
    "NoiseParams",
    "OutputExistsError",
    "__version__",
    "denoise",
    "estimate_noise",
    "evaluate",
    "get_denoiser",
    "list_denoisers",
    "load_model",
    "mse",
    "psnr",
    "read_image",
    "si_psnr",
    "simulate_poisson_gaussian",
    "ssim",
    "train",
    "write_image",
]


if TYPE_CHECKING:
    from infocus.predict.model import load_model
    from infocus.training.loop import train

#: Public names whose modules import torch: loaded on first use (PEP 562), so that
#: ``import infocus`` stays light, while ``infocus.train`` *is* the training function, with its
#: real signature and docstring.
_LAZY = {"train": "infocus.training.loop", "load_model": "infocus.predict.model"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'infocus' has no attribute {name!r}")
