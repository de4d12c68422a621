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
from typing import Any

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


def train(*args: Any, **kwargs: Any) -> Any:
    """Train a denoising network; see :func:`infocus.training.loop.train` (imports torch lazily)."""
    from infocus.training.loop import train as _train

    return _train(*args, **kwargs)


def load_model(path: Any) -> Any:
    """Load a trained model; see :func:`infocus.predict.model.load_model`."""
    from infocus.predict.model import load_model as _load_model

    return _load_model(path)
