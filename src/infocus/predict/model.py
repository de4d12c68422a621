"""A trained network with everything needed to use it: the model format and prediction.

A model is a folder (or one ``.zip`` of that folder) holding::

    config.json          format version, network name + constructor arguments, training
                         settings, axes handled, normalisation statistics, provenance
    weights.safetensors  the network weights (safetensors: tensors only, never code)
    history.json         the training and validation losses per epoch

Nothing in a model is unpickled, so loading a model file cannot run code.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infocus._errors import InfocusInputError, OutputExistsError
from infocus._validate import check_image
from infocus.axes import check_axes, default_axes
from infocus.predict.backends import ONNX_MIN_PIXELS, Backend, make_runner
from infocus.predict.backends import tta as tta_mean
from infocus.predict.calibration import calibrate_intensity
from infocus.predict.fusion import estimate_noise_or_none, fuse_with_noisy

__all__ = ["TrainedModel", "load_model", "MODEL_FORMAT"]

#: Identifies our model folders; bumped when the layout changes.
MODEL_FORMAT = "infocus-model/1"
_FILES = ("config.json", "weights.safetensors", "history.json")


@dataclass
class TrainedModel:
    """A trained denoising network, its normalisation and its provenance.

    Use :meth:`denoise` (or call the object) exactly like a classical denoiser.
    """

    network: torch.nn.Module
    config: Any  # TrainingConfig
    spatial: str
    input_norm: Any  # Normalizer
    target_norm: Any  # Normalizer
    history: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    #: The backend the last :meth:`denoise` call ran on ("torch" or "onnxruntime").
    last_backend: str | None = field(default=None, repr=False, compare=False)
    #: Per image and channel of the last :meth:`denoise` call with calibration: the gain and
    #: offset that restored the measurement's photometric scale.
    last_intensity_fits: list[Any] = field(default_factory=list, repr=False, compare=False)
    _runner_cache: Any = field(default=None, repr=False, compare=False)

    @property
    def blind_spot(self) -> bool:
        """Whether the network was trained never to see the pixel it predicts."""
        from infocus.methods import create_scheme

        return bool(create_scheme(self.config.method, **self.config.scheme_options).blind_spot)

    @property
    def fuses_noisy_pixel(self) -> bool:
        """Whether :meth:`denoise` fuses the prediction with the noisy pixel by default: a
        blind-spot model with a one-pixel blind spot, trained on noise not measured as
        spatially correlated (:mod:`infocus.predict.fusion`)."""
        if not self.blind_spot or self.config.method not in ("n2v", "n2v2", "n2s"):
            return False
        if self.config.scheme_options.get("blind_spot"):
            return False
        return not self.provenance.get("noise_correlation", {}).get("correlated", False)

    @property
    def calibrates_intensity(self) -> bool:
        """Whether :meth:`denoise` calibrates intensities against the measurement by default:
        for CARE, whose supervised mapping carries its training domain's intensities with it
        (:mod:`infocus.predict.calibration`), when the model knows how its targets relate to
        its inputs (models saved before that relation was stored do not)."""
        return self.config.method == "care" and "photometric_relation" in self.provenance

    def photometric_relation(self, channel: int = 0) -> tuple[float, float]:
        """``(alpha, beta)``: target ≈ alpha · input + beta at large scales, as fitted on the
        training pairs; the identity for self-supervised models."""
        relations = self.provenance.get("photometric_relation") or []
        if not relations:
            return 1.0, 0.0
        chosen = relations[channel] if channel < len(relations) else relations[0]
        return float(chosen["alpha"]), float(chosen["beta"])

    @property
    def rotation_invariant(self) -> bool:
        """False when the model was trained without 90° turns (noise correlated along one axis);
        test-time augmentation then keeps to flips."""
        from infocus.methods import create_scheme

        scheme = create_scheme(self.config.method, **self.config.scheme_options)
        return bool(getattr(scheme, "rotation_invariant", True))

    # ----------------------------------------------------------------------------- predict
    def denoise(
        self,
        image: np.ndarray,
        *,
        axes: str | None = None,
        tile_size: int | None = None,
        overlap: int | None = None,
        tta: bool = False,
        batch_size: int = 4,
        device: str | None = None,
        backend: Backend = "auto",
        pixel_fusion: bool | None = None,
        calibrate: bool | None = None,
        out: Any = None,
        progress: Any = None,
    ) -> np.ndarray:
        """Denoise ``image`` (any size; tiled with smooth blending, so no seams).

        Parameters
        ----------
        image : array_like
            Pixels in the camera units the model was trained on; a Zarr array is read tile by
            tile when ``out`` is given.
        axes : str
            Axes of ``image``; must contain the model's spatial axes (``YX``, ``ZYX`` or ``TYX``).
        tile_size : int, optional
            Tile edge in pixels; default chosen from free memory.
        overlap : int, optional
            Overlap of neighbouring tiles; default covers the network's receptive field.
        tta : bool
            Average over the 8 flips/rotations of the YX plane (test-time augmentation); over
            the 4 flips only for a model trained without rotations (:attr:`rotation_invariant`).
        backend : {"auto", "torch", "onnxruntime"}
            What runs the network: ``auto`` uses ONNX Runtime on the CPU when it is installed
            (faster there, same output to float rounding), else PyTorch
            (:mod:`infocus.predict.backends`).
        pixel_fusion : bool, optional
            Blind-spot models only: combine the prediction with the noisy pixel it was not
            allowed to see, weighted by the estimated noise and network error
            (:mod:`infocus.predict.fusion`). Default: on when the model hid one pixel per
            blind spot on noise measured as white (:attr:`fuses_noisy_pixel`).
        calibrate : bool, optional
            Fit one gain and offset per image so that the prediction's large-scale intensities
            agree with the measurement's (:mod:`infocus.predict.calibration`); the fits are
            kept in :attr:`last_intensity_fits`. Default: on for CARE
            (:attr:`calibrates_intensity`).
        out : array-like, optional
            Writable array (e.g. a Zarr array) of the image's shape to stream the result into.

        Returns
        -------
        ndarray float32 of the image's shape (or ``out``).
        """
        from infocus.nets import channels_last, fused_for_inference
        from infocus.predict.tiling import available_memory, tiled_apply

        lazy = hasattr(image, "chunks") and not isinstance(image, np.ndarray)
        array = image if lazy else check_image(image, axes)
        axes = check_axes(axes, array.shape) if axes else default_axes(array.shape)
        missing = [a for a in self.spatial if a not in axes]
        if missing:
            raise InfocusInputError(
                f"This model works on {self.spatial} but the image axes {axes!r} lack "
                f"{''.join(missing)!r}; pass the right --axes."
            )
        channels = int(self.config_channels)
        joint = self.config.channels == "joint"
        if joint and "C" not in axes and channels > 1:
            raise InfocusInputError(
                f"This model denoises {channels} channels jointly but the image has no C axis; "
                "pass axes with C."
            )
        if joint and "C" in axes and array.shape[axes.index("C")] != channels:
            raise InfocusInputError(
                f"This model expects {channels} channels but the image has "
                f"{array.shape[axes.index('C')]}; use a model trained on this channel layout."
            )
        block_axes = ("C" if joint and "C" in axes else "") + self.spatial
        device_ = torch.device(device) if device else next(self.network.parameters()).device
        # A folded eval-mode copy: the network itself (maybe mid-training) is left as it is.
        network = fused_for_inference(self.network.to(device_))
        multiple = int(network.size_multiple)
        spatial_shape = tuple(array.shape[axes.index(a)] for a in self.spatial)
        tile, overlaps, margins = _tiling(
            network, spatial_shape, tile_size=tile_size, overlap=overlap, batch_size=batch_size,
            memory=available_memory(),
        )
        loop_axes = [a for a in axes if a not in block_axes]
        loop_shape = tuple(array.shape[axes.index(a)] for a in loop_axes)
        result = out if out is not None else np.empty(array.shape, dtype=np.float32)

        ndim = len(self.spatial)
        channels_last(network, ndim)
        rotations = self.rotation_invariant
        if backend == "auto" and int(np.prod(array.shape)) < ONNX_MIN_PIXELS:
            backend = "torch"  # too little to predict for the export to pay off
        call, self.last_backend = self._runner(network, device_, ndim, backend)
        fuse = self.fuses_noisy_pixel if pixel_fusion is None else bool(pixel_fusion)
        if fuse and not self.blind_spot:
            raise InfocusInputError(
                f"pixel_fusion applies to blind-spot models (n2v, n2v2, n2s), not to "
                f"{self.config.method!r}."
            )

        calibrated = self.calibrates_intensity if calibrate is None else bool(calibrate)
        self.last_intensity_fits = []

        def run(batch: np.ndarray) -> np.ndarray:
            try:
                return tta_mean(call, batch, rotations=rotations) if tta else call(batch)
            except (MemoryError, RuntimeError) as error:
                if not isinstance(error, MemoryError) and "alloc" not in str(error).lower():
                    raise
                raise InfocusInputError(
                    f"Out of memory predicting {batch.shape[0]} tile(s) of "
                    f"{'×'.join(map(str, batch.shape[2:]))} pixels; pass a smaller --tile-size "
                    "or --batch-size (or free memory)."
                ) from None

        total = int(np.prod(loop_shape)) if loop_shape else 1
        for count, position in enumerate(np.ndindex(*loop_shape) if loop_shape else [()], 1):
            index: list[Any] = [slice(None)] * array.ndim
            for a, p in zip(loop_axes, position, strict=True):
                index[axes.index(a)] = p
            remaining = [a for a in axes if a in block_axes]
            block = np.asarray(array[tuple(index)], dtype=np.float32)
            if lazy and not np.isfinite(block).all():
                raise InfocusInputError(
                    f"The image contains NaN or infinite pixels (in block {position}); replace "
                    "them (e.g. with the background value) before denoising."
                )
            # Bring the block into (C, *spatial) order.
            block = np.transpose(block, [remaining.index(a) for a in block_axes])
            if not joint:
                block = block[np.newaxis]
            normed = self.input_norm.normalize(block, channel_axis=0)
            predicted = tiled_apply(
                normed,
                run,
                tile_shape=tile,
                overlap=overlaps,
                margin=margins,
                multiple=multiple,
                batch_size=batch_size,
            )
            predicted = self.target_norm.denormalize(predicted, channel_axis=0)
            if fuse:
                for c in range(predicted.shape[0]):
                    # Each image gets its own noise model (so a frame of a stack comes out as
                    # it would alone), from a central crop: 512² pixels per plane measure the
                    # noise well and keep the estimate cheap beside the prediction.
                    noise = estimate_noise_or_none(_central_crop(block[c], 512), self.spatial)
                    if noise is not None:
                        predicted[c], _ = fuse_with_noisy(block[c], predicted[c], self.spatial,
                                                          noise)
            if calibrated:
                for c in range(predicted.shape[0]):
                    predicted[c], fit = calibrate_intensity(
                        predicted[c], block[c], self.photometric_relation(c))
                    self.last_intensity_fits.append(fit)
            if not joint:
                predicted = predicted[0]
            predicted = np.transpose(predicted, [block_axes.index(a) for a in remaining])
            result[tuple(index)] = predicted
            if progress is not None:
                progress(count, total)
        return result

    __call__ = denoise

    def _runner(
        self, network: torch.nn.Module, device: torch.device, ndim: int, backend: Backend
    ) -> tuple[Any, str]:
        """The batch function for ``network`` (a folded copy of :attr:`network`), kept while the
        weights stay the same: an ONNX export costs about half a second."""
        weights = tuple(
            (name, tensor.data_ptr(), tensor._version)
            for name, tensor in self.network.state_dict().items()
        )
        key = (device.type, device.index, ndim, backend, weights)
        if self._runner_cache is None or self._runner_cache[0] != key:
            self._runner_cache = (key, make_runner(network, device=device, ndim=ndim,
                                                   backend=backend))
        return self._runner_cache[1]

    @property
    def config_channels(self) -> int:
        return int(getattr(self.network, "config", {}).get("in_channels", 1))

    # ----------------------------------------------------------------------------- save
    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the model folder, or one ``.zip`` when ``path`` ends in ``.zip`` (atomically)."""
        from safetensors.torch import save_file

        path = Path(path).expanduser()
        if path.exists() and not overwrite:
            raise OutputExistsError(
                f"Model {path} already exists; pass --overwrite to replace it or choose another path."
            )
        if not path.parent.is_dir():
            raise InfocusInputError(f"Folder {path.parent} does not exist; create it first.")
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            folder = staging / "model"
            folder.mkdir()
            state = {k: v.detach().cpu().contiguous() for k, v in self.network.state_dict().items()}
            save_file(state, folder / "weights.safetensors")
            (folder / "config.json").write_text(json.dumps(self._config_dict(), indent=2))
            (folder / "history.json").write_text(json.dumps(self.history, indent=2))
            if path.suffix == ".zip":
                archive = staging / "model.zip"
                with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
                    for name in _FILES:
                        zf.write(folder / name, name)
                _replace(archive, path)
            else:
                _replace(folder, path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return path

    def _config_dict(self) -> dict[str, Any]:
        network_config = dict(getattr(self.network, "config", {}))
        return {
            "format": MODEL_FORMAT,
            "network": {"name": self.config.network, "config": network_config},
            "training": self.config.to_dict(),
            "spatial": self.spatial,
            "normalization": {
                "input": self.input_norm.to_dict(),
                "target": self.target_norm.to_dict(),
            },
            "provenance": self.provenance,
        }


def _replace(source: Path, destination: Path) -> None:
    """Move ``source`` to ``destination``, replacing it only once the new one is complete."""
    if destination.exists():
        trash = destination.parent / f".{destination.name}.old"
        if trash.exists():
            shutil.rmtree(trash) if trash.is_dir() else trash.unlink()
        os.replace(destination, trash)
        os.replace(source, destination)
        shutil.rmtree(trash) if trash.is_dir() else trash.unlink()
    else:
        os.replace(source, destination)


def _tiling(
    network: torch.nn.Module,
    spatial_shape: tuple[int, ...],
    *,
    tile_size: int | None,
    overlap: int | None,
    batch_size: int,
    memory: int,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Tile shape, overlap and blending margin per axis.

    The margin (pixels next to an inner tile edge that get no weight) covers the network's
    receptive radius, so a tiled prediction equals the untiled one; the rest of the overlap is
    cross-faded. Tiles are as large as an eighth of free memory (at most 512 MiB for the whole
    batch of tiles) allows, so the network's working memory does not grow with the image.
    """
    from infocus.predict.tiling import auto_tile_shape

    multiple = int(network.size_multiple)
    field_ = network.receptive_field
    field_ = max(field_) if isinstance(field_, (tuple, list)) else int(field_)
    margin = _round_up(field_ // 2 + 1, multiple)
    wanted_overlap = int(overlap) if overlap is not None else 2 * margin + 2 * multiple
    if tile_size is None:
        tile = auto_tile_shape(
            spatial_shape, multiple=multiple, bytes_per_voxel=_bytes_per_voxel(network),
            memory_budget=min(memory // 8, 512 * 1024**2) // max(1, batch_size),
        )
    else:
        tile = tuple(_round_up(min(int(tile_size), n), multiple) for n in spatial_shape)
    overlaps = []
    margins = []
    for t, n in zip(tile, spatial_shape, strict=True):
        # A tile that spans the axis needs no overlap; a short one gets what fits.
        o = wanted_overlap if t < n else 0
        o = min(o, max(0, (t - multiple) // 2))
        overlaps.append(o)
        margins.append(min(margin, max(0, (o - 1) // 2)))
    return tuple(tile), tuple(overlaps), tuple(margins)


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def _bytes_per_voxel(network: torch.nn.Module) -> int:
    """Rough working memory per input voxel during inference (activations of the widest level)."""
    config = getattr(network, "config", {})
    return int(4 * 6 * config.get("base_filters", 32))


def _central_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central ``size``² window of the last two axes (the whole image when smaller)."""
    h, w = image.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[..., top : top + size, left : left + size]


def load_model(path: str | os.PathLike[str]) -> TrainedModel:
    """Load a model folder or ``.zip`` written by :meth:`TrainedModel.save`.

    Only JSON and safetensors are read; a pickled file (``.pt``, ``.pth``, ``.ckpt``, ``.pkl``)
    or a folder without our ``config.json`` is refused, so loading cannot run code.
    """
    from safetensors.torch import load_file

    from infocus.nets import create_network
    from infocus.training.config import TrainingConfig
    from infocus.training.normalize import Normalizer

    path = Path(path).expanduser()
    if not path.exists():
        raise InfocusInputError(f"No such model: {path}; check the path.")
    if path.is_file() and path.suffix.lower() in {".pt", ".pth", ".ckpt", ".pkl", ".pickle"}:
        raise InfocusInputError(
            f"{path} is a pickle-based file, which can run arbitrary code when loaded; infocus only "
            "loads its own model folders or .zip files (JSON + safetensors)."
        )
    with tempfile.TemporaryDirectory() as scratch:
        folder = path
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise InfocusInputError(
                    f"{path} is neither an infocus model folder nor a .zip model; check the path."
                )
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                unexpected = sorted(names - set(_FILES))
                if unexpected or not {"config.json", "weights.safetensors"} <= names:
                    raise InfocusInputError(
                        f"{path} is not an infocus model (unexpected or missing entries: "
                        f"{', '.join(unexpected) or 'config.json/weights.safetensors'})."
                    )
                for name in names:
                    zf.extract(name, scratch)
            folder = Path(scratch)
        config_path = folder / "config.json"
        weights_path = folder / "weights.safetensors"
        if not config_path.is_file() or not weights_path.is_file():
            raise InfocusInputError(
                f"{path} is not an infocus model: config.json and weights.safetensors are missing."
            )
        try:
            config = json.loads(config_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InfocusInputError(f"{config_path} is not valid JSON ({error}).") from None
        if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
            raise InfocusInputError(
                f"{path} is not an infocus model of format {MODEL_FORMAT!r} "
                f"(found {config.get('format') if isinstance(config, dict) else None!r})."
            )
        try:
            state = load_file(weights_path)
        except Exception as error:  # safetensors raises its own error types
            raise InfocusInputError(
                f"{weights_path.name} in {path} is corrupt or truncated ({error})."
            ) from None
        history_path = folder / "history.json"
        history = json.loads(history_path.read_text()) if history_path.is_file() else []
    network = create_network(config["network"]["name"], **config["network"]["config"])
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise InfocusInputError(
            f"The weights in {path} do not fit its network description ({str(error)[:200]})."
        ) from None
    network.eval()
    return TrainedModel(
        network=network,
        config=TrainingConfig.from_dict(config["training"]),
        spatial=config["spatial"],
        input_norm=Normalizer.from_dict(config["normalization"]["input"]),
        target_norm=Normalizer.from_dict(config["normalization"]["target"]),
        history=history,
        provenance=config.get("provenance", {}),
    )
