"""A trained network with everything needed to use it: the model format and prediction.

A model is a folder (or one ``.zip`` of that folder) holding::

    config.json          format version, network name + constructor arguments, training
                         settings (method and its options), axes handled, normalisation
                         statistics, the method's fitted state (e.g. a noise model), provenance
    weights.safetensors  the network weights (safetensors: tensors only, never code)
    history.json         the training and validation losses per epoch
    loss.png             (folders only) their curve, drawn by ``infocus train``; never read

A .zip holds the first three alone (a loss curve goes beside it, ``NAME.loss.png``), so that
every infocus version that reads the format reads it.

Nothing in a model is unpickled, so loading a model file cannot run code. Prediction is the
same for every method: the method (:mod:`infocus.methods`) says what runs on each tile and how
the stitched output becomes the result; this module tiles, batches, streams and writes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infocus._errors import InfocusInputError, OutputExistsError
from infocus._validate import check_float32_exact, check_image, check_spatial_size
from infocus.axes import check_axes, default_axes
from infocus.intensity import Normalizer
from infocus.io import check_output_path
from infocus.methods import PredictionContext, PredictionRequest, TrainingScheme, create_scheme
from infocus.methods.config import TrainingConfig
from infocus.predict.backends import ONNX_MIN_PIXELS, Backend, make_runner
from infocus.predict.backends import tta as tta_mean

__all__ = ["MODEL_FORMAT", "Prediction", "TrainedModel", "load_model"]

#: Identifies our model folders; bumped when the layout changes. Format 2 stores the method's
#: fitted state under "state"; format 1 (infocus 0.1) kept it in the provenance.
MODEL_FORMAT = "infocus-model/2"
_READABLE_FORMATS = ("infocus-model/1", MODEL_FORMAT)
#: Provenance entries of a format-1 model that are its method's state in format 2.
_FORMAT_1_STATE = ("noise_correlation", "photometric_relation")
_FILES = ("config.json", "weights.safetensors", "history.json")


#: Outputs that hold object ids rather than intensities (returned as uint32, written as
#: unsigned integers).
LABEL_OUTPUTS = frozenset({"labels"})


@dataclass
class Prediction:
    """The result of :meth:`TrainedModel.predict`: the estimate and, when asked for and offered
    by the method, the per-pixel posterior standard deviation (both in camera units)."""

    denoised: np.ndarray
    uncertainty: np.ndarray | None = None
    #: Further images a method gives when asked (``also``), e.g. DecoNoising's
    #: ``"deconvolved"``.
    extras: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Layout:
    """How an image maps onto the network's blocks ``(C, *spatial)``."""

    axes: str
    block_axes: str  # channel (when joint) + spatial axes, in the network's order
    loop_axes: list[str]
    joint: bool

    def blocks(self, shape: tuple[int, ...]) -> Any:
        """``(position, index)`` of every block: where it is and the index that selects it."""
        loop_shape = tuple(shape[self.axes.index(a)] for a in self.loop_axes)
        positions = np.ndindex(*loop_shape) if loop_shape else [()]
        for position in positions:
            index: list[Any] = [slice(None)] * len(self.axes)
            for a, p in zip(self.loop_axes, position, strict=True):
                index[self.axes.index(a)] = p
            yield position, tuple(index)

    @property
    def remaining(self) -> list[str]:
        """The axes a selected block keeps, in the image's order."""
        return [a for a in self.axes if a in self.block_axes]

    def to_network(self, block: np.ndarray) -> np.ndarray:
        """A selected block in the image's order -> ``(C, *spatial)``."""
        block = np.transpose(block, [self.remaining.index(a) for a in self.block_axes])
        return block if self.joint else block[np.newaxis]

    def to_image(self, predicted: np.ndarray) -> np.ndarray:
        """``(..., C, *spatial)`` -> the block in the image's order (leading axes kept)."""
        if not self.joint:
            predicted = np.squeeze(predicted, axis=-(len(self.block_axes) + 1))
        lead = predicted.ndim - len(self.block_axes)
        order = [self.block_axes.index(a) + lead for a in self.remaining]
        return np.transpose(predicted, list(range(lead)) + order)


def _is_plain_setting(value: Any) -> bool:
    """A module attribute that defines what a network computes besides its tensors (a
    window, a padding mode, a kernel size), comparable by value."""
    if isinstance(value, tuple):
        return all(_is_plain_setting(v) for v in value)
    return isinstance(value, (bool, int, float, str)) or value is None


@dataclass
class TrainedModel:
    """A trained denoising network, its normalisation, its method's fitted state and its
    provenance.

    Use :meth:`denoise` (or call the object) exactly like a classical denoiser;
    :meth:`predict` adds the per-pixel uncertainty and :meth:`sample` draws posterior samples
    where the method offers them (:attr:`outputs`).
    """

    network: torch.nn.Module
    config: TrainingConfig
    spatial: str
    input_norm: Normalizer
    target_norm: Normalizer
    history: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    #: What the method measured on the training data and needs at prediction (JSON-able).
    state: dict[str, Any] = field(default_factory=dict)
    #: The backend the last prediction ran on ("torch" or "onnxruntime").
    last_backend: str | None = field(default=None, repr=False, compare=False)
    #: What the method noted during the last prediction (e.g. intensity fits per image);
    #: :meth:`report` turns them into sentences.
    last_notes: list[Any] = field(default_factory=list, repr=False, compare=False)
    last_tiling_notes: list[str] = field(default_factory=list, repr=False, compare=False)
    #: ``backend="auto"`` uses ONNX Runtime for images of at least this many pixels (None:
    #: :data:`~infocus.predict.backends.ONNX_MIN_PIXELS`, where its export pays off); a process
    #: that predicts a large image block by block with one model object sets 0, since the
    #: exported network is kept between calls (:mod:`infocus.predict.distributed`).
    onnx_min_pixels: int | None = field(default=None, repr=False, compare=False)
    _runner_cache: Any = field(default=None, repr=False, compare=False)
    _scheme_cache: Any = field(default=None, repr=False, compare=False)
    _inference_cache: Any = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------------ the method
    @property
    def scheme(self) -> TrainingScheme:
        """The method with its stored options (not yet bound to its fitted state)."""
        key = (self.config.method, repr(self.config.scheme_options))
        if self._scheme_cache is None or self._scheme_cache[0] != key:
            self._scheme_cache = (key, create_scheme(self.config.method,
                                                     **self.config.scheme_options))
        return self._scheme_cache[1]

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def blind_spot(self) -> bool:
        """Whether the network was trained never to see the pixel it predicts."""
        return bool(self.scheme.blind_spot)

    @property
    def rotation_invariant(self) -> bool:
        """False when the model was trained without 90° turns (noise correlated along one axis);
        test-time augmentation then keeps to flips."""
        return bool(self.scheme.rotation_invariant)

    @property
    def prediction_options(self) -> tuple[str, ...]:
        """The method's own prediction options (e.g. ``pixel_fusion``, ``calibrate``)."""
        return tuple(self.scheme.prediction_options)

    @property
    def outputs(self) -> frozenset[str]:
        """What a prediction can give: ``"denoised"`` and, for probabilistic methods,
        ``"uncertainty"`` and ``"samples"``."""
        return frozenset(self.scheme.outputs)

    @property
    def config_channels(self) -> int:
        return int(getattr(self.network, "config", {}).get("in_channels", 1))

    def report(self) -> list[str]:
        """Sentences about the last prediction (e.g. how far calibration moved intensities, or
        a tile size raised so that tiling cannot change the result)."""
        return [*self.last_tiling_notes, *self.scheme.report(self.last_notes)]

    # ----------------------------------------------------------------------------- predict
    def denoise(
        self,
        image: np.ndarray,
        *,
        axes: str | None = None,
        tile_size: int | None = None,
        overlap: int | None = None,
        tta: bool | None = None,
        batch_size: int = 4,
        device: str | None = None,
        backend: Backend = "auto",
        out: Any = None,
        progress: Any = None,
        **options: Any,
    ) -> np.ndarray:
        """Denoise ``image`` (any size; tiled with smooth blending, so no seams).

        Parameters
        ----------
        image : array_like
            Pixels in the camera units the model was trained on; a Zarr array is read block by
            block.
        axes : str
            Axes of ``image``; must contain the model's spatial axes (``YX``, ``ZYX`` or ``TYX``).
        tile_size : int, optional
            Tile edge in pixels; default chosen from free memory. Raised where needed so that
            tiles cannot change the result (:meth:`report` says so).
        overlap : int, optional
            Overlap of neighbouring tiles; default covers the network's receptive field, and
            a smaller one is raised to ``2 * receptive_radius + 1``.
        tta : bool or None
            Average over the 8 flips/rotations of the YX plane (test-time augmentation); over
            the 4 flips only for a model trained without rotations (:attr:`rotation_invariant`).
            None: the method's default (:attr:`TrainingScheme.prediction_tta`; on for
            DecoNoising, off for the others).
        batch_size : int
            Tiles per forward pass.
        device : str, optional
            Where PyTorch runs (default: where the network is).
        backend : {"auto", "torch", "onnxruntime"}
            What runs the network: ``auto`` uses ONNX Runtime on the CPU when it is installed
            and the method allows it (faster there, same output to float rounding), else
            PyTorch (:mod:`infocus.predict.backends`).
        out : array-like, optional
            Writable array (e.g. a Zarr array) of the image's shape to stream the result into.
        progress : callable, optional
            ``progress(done, total)`` after each block.
        **options
            The method's own prediction options (:attr:`prediction_options`), e.g.
            ``pixel_fusion`` for blind-spot methods, ``calibrate`` for CARE, ``samples`` for
            the probabilistic ones; None means the method's default.

        Returns
        -------
        ndarray float32 of the image's shape (or ``out``).
        """
        request = PredictionRequest(options=self._check_options(options))
        results = self._run(image, axes, request, {"denoised": out}, tile_size=tile_size,
                            overlap=overlap, tta=tta, batch_size=batch_size, device=device,
                            backend=backend, progress=progress)
        return results["denoised"]

    __call__ = denoise

    def predict(
        self,
        image: np.ndarray,
        *,
        axes: str | None = None,
        uncertainty: bool = False,
        out: Any = None,
        uncertainty_out: Any = None,
        also: Sequence[str] = (),
        also_out: dict[str, Any] | None = None,
        tile_size: int | None = None,
        overlap: int | None = None,
        tta: bool | None = None,
        batch_size: int = 4,
        device: str | None = None,
        backend: Backend = "auto",
        progress: Any = None,
        **options: Any,
    ) -> Prediction:
        """:meth:`denoise`, plus the per-pixel posterior standard deviation when
        ``uncertainty`` is True (methods with ``"uncertainty"`` in :attr:`outputs`), plus the
        further images named in ``also`` (e.g. ``"deconvolved"``) in :attr:`Prediction.extras`.

        ``uncertainty_out`` and ``also_out`` (by name) are writable arrays to stream into.
        """
        if uncertainty:
            self.require_output("uncertainty")
        for name in also:
            self.require_output(name)
        request = PredictionRequest(options=self._check_options(options), uncertainty=uncertainty)
        outs = {"denoised": out, **({"uncertainty": uncertainty_out} if uncertainty else {}),
                **{name: (also_out or {}).get(name) for name in also}}
        results = self._run(image, axes, request, outs, tile_size=tile_size, overlap=overlap,
                            tta=tta, batch_size=batch_size, device=device, backend=backend,
                            progress=progress)
        extras = {name: results[name] if (also_out or {}).get(name) is not None
                  or name not in LABEL_OUTPUTS else results[name].astype(np.uint32)
                  for name in also}
        return Prediction(results["denoised"], results.get("uncertainty"), extras)

    def sample(
        self,
        image: np.ndarray,
        *,
        n: int,
        axes: str | None = None,
        seed: int = 0,
        out: Any = None,
        tile_size: int | None = None,
        overlap: int | None = None,
        batch_size: int = 4,
        device: str | None = None,
        progress: Any = None,
        **options: Any,
    ) -> np.ndarray:
        """``n`` posterior samples of the clean image, shape ``(n, *image.shape)``: the
        diverse plausible solutions of a generative method (``"samples"`` in :attr:`outputs`).
        ``seed`` makes the draw reproducible."""
        self.require_output("samples")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InfocusInputError(f"The number of samples must be a positive integer (got {n!r}).")
        request = PredictionRequest(options={**self._check_options(options), "seed": seed},
                                    samples=n)
        results = self._run(image, axes, request, {"samples": out}, tile_size=tile_size,
                            overlap=overlap, tta=False, batch_size=batch_size, device=device,
                            backend="torch", progress=progress)
        return results["samples"]

    def require_output(self, output: str) -> None:
        """Raise a clear error unless the method offers ``output`` (:attr:`outputs`)."""
        if output in self.outputs:
            return
        if output == "samples":
            raise InfocusInputError(
                f"Method {self.method!r} gives one estimate per pixel and cannot draw posterior "
                "samples; train a generative method (e.g. divnoising) to sample."
            )
        from infocus.methods import create_scheme, list_schemes

        offering = [name for name in list_schemes() if output in create_scheme(name).outputs]
        raise InfocusInputError(
            f"Method {self.method!r} gives one estimate per pixel, no {output}; train a "
            f"method that gives it ({', '.join(offering) or 'none'})."
        )

    def _check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The method's prediction options that were given (None = the default), checked."""
        given = {k: v for k, v in options.items() if v is not None}
        unknown = sorted(set(given) - set(self.prediction_options))
        if unknown:
            offered = ", ".join(self.prediction_options) or "none"
            raise InfocusInputError(
                f"Method {self.method!r} has no prediction option {unknown[0]!r}; its options "
                f"are: {offered}."
            )
        return given

    def _layout(self, array: Any, axes: str) -> _Layout:
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
        return _Layout(axes, block_axes, [a for a in axes if a not in block_axes], joint)

    def _run(
        self, image: Any, axes: str | None, request: PredictionRequest, outs: dict[str, Any],
        *, tile_size: int | None, overlap: int | None, tta: bool | None, batch_size: int,
        device: str | None, backend: Backend, progress: Any,
    ) -> dict[str, Any]:
        """Predict every block of ``image`` and write the requested results into ``outs``."""
        from infocus.predict.tiling import tiled_apply

        lazy = hasattr(image, "chunks") and not isinstance(image, np.ndarray)
        array = image if lazy else check_image(image, axes)
        axes = check_axes(axes, array.shape) if axes else default_axes(array.shape)
        if lazy:  # an in-memory image was checked whole by check_image
            check_spatial_size(tuple(array.shape), axes)
        layout = self._layout(array, axes)
        scheme = self.scheme.bind(self.state, self.input_norm)
        run, tiling = self._prepare_run(scheme, array, axes, request, tta=tta,
                                        tile_size=tile_size, overlap=overlap,
                                        batch_size=batch_size, device=device, backend=backend)
        lead = (request.samples,) if request.samples else ()
        results = {name: out if out is not None else np.empty(lead + tuple(array.shape),
                                                               dtype=np.float32)
                   for name, out in outs.items()}
        context = PredictionContext(state=self.state, input_norm=self.input_norm,
                                    target_norm=self.target_norm, spatial=self.spatial,
                                    request=request)
        self.last_notes = context.notes
        blocks = list(layout.blocks(tuple(array.shape)))
        for count, (position, index) in enumerate(blocks, 1):
            raw = np.asarray(array[index])
            if lazy:
                check_float32_exact(raw)
            block = raw.astype(np.float32, copy=False)
            if lazy and not np.isfinite(block).all():
                raise InfocusInputError(
                    f"The image contains NaN or infinite pixels (in block {position}); replace "
                    "them (e.g. with the background value) first."
                )
            block = layout.to_network(block)
            scheme.check_input(block, self.state)
            outputs = tiled_apply(self.input_norm.normalize(block, channel_axis=0), run,
                                  batch_size=batch_size, **tiling)
            finished = scheme.finish(outputs, block, context)
            _check_finite_output(finished, position)
            for name, result in results.items():
                placed = layout.to_image(finished[name])
                result[(slice(None),) * len(lead) + index] = placed
            if progress is not None:
                progress(count, len(blocks))
        return results

    def _prepare_run(
        self, scheme: TrainingScheme, array: Any, axes: str, request: PredictionRequest, *,
        tta: bool | None, tile_size: int | None, overlap: int | None, batch_size: int,
        device: str | None, backend: Backend,
    ) -> tuple[Any, dict[str, Any]]:
        """The tile function (network, backend, test-time augmentation) and the tiling."""
        from infocus.predict.tiling import available_memory

        if backend not in ("auto", "torch") and not scheme.exportable:
            raise InfocusInputError(
                f"Method {self.method!r} predicts with PyTorch only ("
                f"{scheme.not_exportable_because}); use backend 'auto' or 'torch'."
            )
        least = ONNX_MIN_PIXELS if self.onnx_min_pixels is None else self.onnx_min_pixels
        if backend == "auto" and (not scheme.exportable or int(np.prod(array.shape)) < least):
            backend = "torch"  # too little to predict for the export to pay off
        device_ = torch.device(device) if device else next(self.network.parameters()).device
        ndim = len(self.spatial)
        network = self._inference_network(device_, ndim)
        spatial_shape = tuple(array.shape[axes.index(a)] for a in self.spatial)
        predictor = scheme.prediction_network(network, request).to(device_).eval()
        # A method whose prediction widens the network's field (a blur after it) says so.
        reach = predictor if hasattr(predictor, "receptive_radius") else network
        tile, overlaps, margins, self.last_tiling_notes = _tiling(
            reach, spatial_shape, tile_size=tile_size, overlap=overlap, batch_size=batch_size,
            memory=available_memory,
        )
        call, self.last_backend = self._runner(predictor, device_, ndim, backend, request)
        rotations = self.rotation_invariant
        tta = scheme.prediction_tta if tta is None else bool(tta)

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

        tiling = {"tile_shape": tile, "overlap": overlaps, "margin": margins,
                  "multiple": _per_axis_ints(reach.size_multiple, ndim)}
        return run, tiling

    def _weights_key(self) -> tuple[Any, ...]:
        """Identifies the current network: any in-place update of the weights (an optimizer
        step, a loaded state) bumps a tensor's version, a replaced tensor has a new address,
        and a module's plain settings (an attention window, a padding mode) are compared by
        value, so a cached copy never outlives a change to what the network computes."""
        weights = tuple((name, tensor.data_ptr(), tensor._version)
                        for name, tensor in self.network.state_dict().items())
        settings = tuple(
            (name, type(module).__name__,
             tuple(sorted((k, v) for k, v in vars(module).items()
                          if not k.startswith("_") and _is_plain_setting(v))))
            for name, module in self.network.named_modules())
        return weights, settings

    def _inference_network(self, device: torch.device, ndim: int) -> torch.nn.Module:
        """A folded, channels-last, eval-mode copy of :attr:`network` on ``device``; the
        network itself (maybe mid-training) is left as it is. The copy is kept while the
        weights stay the same: copying and folding cost about as much as predicting a 256²
        image with the default network."""
        from infocus.nets import channels_last, fused_for_inference

        key = (device.type, device.index, ndim, self._weights_key())
        if self._inference_cache is None or self._inference_cache[0] != key:
            network = fused_for_inference(self.network.to(device))
            channels_last(network, getattr(network, "ndim", ndim))
            self._inference_cache = (key, network)
        return self._inference_cache[1]

    def _runner(
        self, network: torch.nn.Module, device: torch.device, ndim: int, backend: Backend,
        request: PredictionRequest,
    ) -> tuple[Any, str]:
        """The batch function for ``network`` (a folded copy of :attr:`network`, maybe wrapped
        by the method); an ONNX Runtime one is kept while the weights and the request stay the
        same: its export costs about half a second."""
        if backend == "torch":
            # Cheap to make, and a method's predictor may hold state (a random generator
            # that must start afresh with every prediction).
            return make_runner(network, device=device, ndim=ndim, backend=backend)
        key = (device.type, device.index, ndim, backend, self._weights_key(), repr(request))
        if self._runner_cache is None or self._runner_cache[0] != key:
            self._runner_cache = (key, make_runner(network, device=device, ndim=ndim,
                                                   backend=backend))
        return self._runner_cache[1]

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
        check_output_path(path, overwrite=True)  # never replaces a folder infocus did not write
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
            "state": self.state,
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
    memory: int | Callable[[], int],
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], list[str]]:
    """Tile shape, overlap and blending margin per axis, and a sentence for each raised setting.

    The margin (pixels next to an inner tile edge that get no weight) is the network's
    receptive radius ``r``, so every pixel that is weighed in was computed from the same input
    as in the untiled prediction: tiled equals untiled to float rounding. That needs an
    overlap of at least ``2 r + 1`` (both margins plus a cross-fade) and tiles of at least
    twice the overlap; a user's smaller tile size or overlap is raised to these minima, and the
    returned notes say so. Tiles are as large as an eighth of free memory (at most 512 MiB for
    the whole batch of tiles) allows, so the network's working memory does not grow with the
    image. The budget is shared by the tiles that can actually be in one batch: an image that
    fits in fewer than ``batch_size`` larger tiles gets those (a 1024² image one tile rather
    than four overlapping ones, which would recompute the overlaps). ``memory`` (bytes, or a
    function that measures them) is only read when the tile size is chosen here. The radius
    and the alignment (``size_multiple``) may differ per axis, e.g. for a method that reads a
    few neighbouring frames along T and runs a 2-D network on each.
    """
    from infocus.predict.tiling import auto_tile_shape, padded_shape, plan_tiles

    ndim = len(spatial_shape)
    multiples = _per_axis_ints(network.size_multiple, ndim)
    radii = _per_axis_ints(_receptive_radius(network), ndim)
    padded = padded_shape(spatial_shape, multiples)

    def fitted(asked: tuple[int, ...]) -> tuple[list[int], list[int]]:
        tile, overlaps = [], []
        for t, n, m, r in zip(asked, padded, multiples, radii, strict=True):
            # A short tile gets the overlap that fits it, but never less than exactness needs.
            default_overlap = 2 * _round_up(r + 1, m) + 2 * m
            o = overlap if overlap is not None else min(default_overlap, (t - m) // 2)
            o = max(int(o), 2 * r + 1)
            t = t if t >= n else min(max(t, _round_up(2 * o, m)), n)
            tile.append(t)
            overlaps.append(o if t < n else 0)
        return tile, overlaps

    if tile_size is None:
        budget = min(int(memory() if callable(memory) else memory) // 8, 512 * 1024**2)
        # The largest tiles whose batch fits: one tile for the budget if it covers the image,
        # else two for half of it, and so on up to batch_size.
        for per_batch in range(1, max(1, batch_size) + 1):
            asked = auto_tile_shape(spatial_shape, multiple=max(multiples),
                                    bytes_per_voxel=_bytes_per_voxel(network),
                                    memory_budget=budget // per_batch)
            asked = tuple(min(_round_up(t, m), n) for t, m, n in zip(asked, multiples, padded,
                                                                       strict=True))
            tile, overlaps = fitted(asked)
            if per_batch >= batch_size or len(plan_tiles(spatial_shape, tile, overlaps,
                                                         multiple=multiples)) <= per_batch:
                break
    else:
        asked = tuple(_round_up(min(int(tile_size), n), m) for n, m in zip(padded, multiples,
                                                                            strict=True))
        tile, overlaps = fitted(asked)
    margins = tuple(r if o else 0 for r, o in zip(radii, overlaps, strict=True))
    notes = []
    if tile_size is not None and tuple(tile) != asked:
        notes.append(f"the tile size from {tile_size} to {max(tile)}")
    if overlap is not None and max(overlaps) > overlap:
        notes.append(f"the overlap from {overlap} to {max(overlaps)}")
    if notes:
        notes = [f"Raised {' and '.join(notes)} pixels: the network sees {max(radii)} pixels on "
                 "each side, and smaller tiles would change the result near tile edges."]
    return tuple(tile), tuple(overlaps), margins, notes


def _per_axis_ints(value: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    """An int, or one per spatial axis, as one int per axis."""
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * ndim


def _receptive_radius(network: torch.nn.Module) -> int | tuple[int, ...]:
    """Farthest input pixel on either side that an output pixel depends on (per axis, when
    the network says so)."""
    radius = getattr(network, "receptive_radius", None)
    if radius is not None:
        return tuple(int(r) for r in radius) if isinstance(radius, (tuple, list)) else int(radius)
    field_ = network.receptive_field
    field_ = max(field_) if isinstance(field_, (tuple, list)) else int(field_)
    return field_ // 2 + 1


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def _bytes_per_voxel(network: torch.nn.Module) -> int:
    """Rough working memory per input voxel during inference: activations of the widest level,
    plus, for a network with more outputs than inputs (e.g. PN2V's prior samples), what the
    method computes on each output (a few float32 intermediates per output channel)."""
    config = getattr(network, "config", {})
    extra = max(0, int(config.get("out_channels", 1)) - int(config.get("in_channels", 1)))
    return int(4 * 6 * config.get("base_filters", 32) + 4 * 24 * extra)


def load_model(path: str | os.PathLike[str]) -> TrainedModel:
    """Load a model folder or ``.zip`` written by :meth:`TrainedModel.save`.

    Only JSON and safetensors are read; a pickled file (``.pt``, ``.pth``, ``.ckpt``, ``.pkl``)
    or a folder without our ``config.json`` is refused, so loading cannot run code. Models of
    format 1 (infocus 0.1) load too.

    Raises
    ------
    InfocusInputError
        For a missing, foreign, corrupt or truncated model, an unknown method, or a method
        state (e.g. a noise model) that is missing or malformed.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InfocusInputError(f"No such model: {path}; check the path.")
    if path.is_file() and path.suffix.lower() in {".pt", ".pth", ".ckpt", ".pkl", ".pickle"}:
        raise InfocusInputError(
            f"{path} is a pickle-based file, which can run arbitrary code when loaded; infocus only "
            "loads its own model folders or .zip files (JSON + safetensors)."
        )
    files = _model_files(path)
    config = _read_config(files["config.json"], path)
    weights = _read_weights(files["weights.safetensors"], path)
    history = _read_history(files.get("history.json"), path)
    return _model_from(config, weights, history, path)


#: The most each model file may hold: a model is read into memory, never extracted, so a
#: crafted file cannot fill the disk or the memory. The largest networks infocus ships have a
#: few million weights (tens of MB).
MAX_MODEL_BYTES = {"config.json": 16 * 2**20, "history.json": 16 * 2**20,
                   "weights.safetensors": 2**30}


def _model_files(path: Path) -> dict[str, bytes]:
    """The bytes of a model's files, from its folder or its .zip, each within its cap."""
    if path.is_file():
        return _zip_files(path)
    if not (path / "config.json").is_file() or not (path / "weights.safetensors").is_file():
        raise InfocusInputError(
            f"{path} is not an infocus model: config.json and weights.safetensors are missing."
        )
    root = path.resolve()
    files = {}
    for name in _FILES:
        member = path / name
        if not (member.exists() or member.is_symlink()):
            continue
        if not member.resolve().is_relative_to(root):
            raise InfocusInputError(
                f"{member} is a link to {member.resolve()}, outside the model folder; a model's "
                "files must be inside it: copy the file in or retrain the model."
            )
        if not member.is_file():
            raise InfocusInputError(f"{member} is not a file; the model folder is damaged.")
        _check_size(name, member.stat().st_size, path)
        files[name] = member.read_bytes()
    return files


def _zip_files(path: Path) -> dict[str, bytes]:
    if not zipfile.is_zipfile(path):
        raise InfocusInputError(
            f"{path} is neither an infocus model folder nor a .zip model; check the path."
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = [info.filename for info in infos]
            unexpected = sorted(set(names) - set(_FILES))
            if unexpected or not {"config.json", "weights.safetensors"} <= set(names):
                raise InfocusInputError(
                    f"{path} is not an infocus model (unexpected or missing entries: "
                    f"{', '.join(unexpected) or 'config.json/weights.safetensors'})."
                )
            if len(names) != len(set(names)):
                raise InfocusInputError(
                    f"{path} holds the same entry twice; the .zip is damaged or was tampered "
                    "with: export the model again."
                )
            for info in infos:  # the declared sizes, before anything is decompressed
                _check_size(info.filename, info.file_size, path)
            # ZipExtFile stops at the declared size and checks the CRC at the end.
            return {info.filename: zf.read(info) for info in infos}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError,
            ValueError, RuntimeError, NotImplementedError) as error:  # RuntimeError: encrypted
        raise InfocusInputError(f"{path} is a damaged .zip ({error}); export the model again.") \
            from None


def _check_size(name: str, size: int, path: Path) -> None:
    if size > MAX_MODEL_BYTES[name]:
        raise InfocusInputError(
            f"{name} in {path} is {size / 2**20:.0f} MiB, more than the "
            f"{MAX_MODEL_BYTES[name] / 2**20:.0f} MiB an infocus model file may hold; the file "
            "is damaged or not an infocus model."
        )


def _read_config(data: bytes, path: Path) -> dict[str, Any]:
    try:
        config = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InfocusInputError(f"config.json in {path} is not valid JSON ({error}).") from None
    if not isinstance(config, dict) or config.get("format") not in _READABLE_FORMATS:
        raise InfocusInputError(
            f"{path} is not an infocus model of format {MODEL_FORMAT!r} "
            f"(found {config.get('format') if isinstance(config, dict) else None!r})."
        )
    _check_config_layout(config, path)
    return config


#: The sections of config.json and the type each must have.
_CONFIG_LAYOUT = {"training": dict, "network": dict, "normalization": dict, "spatial": str}


def _check_config_layout(config: dict[str, Any], path: Path) -> None:
    """Every section a model needs is there with the right type, so a damaged file is named as
    such (and never blamed on the image)."""
    for key, kind in _CONFIG_LAYOUT.items():
        if not isinstance(config.get(key), kind):
            raise _damaged(path, f"its '{key}' section is missing or malformed")
    network, normalization = config["network"], config["normalization"]
    if not isinstance(network.get("name"), str) or not isinstance(network.get("config"), dict):
        raise _damaged(path, "its network description is missing or malformed")
    if not all(isinstance(normalization.get(k), dict) for k in ("input", "target")):
        raise _damaged(path, "its normalisation is missing or malformed")
    if config["spatial"] not in ("YX", "ZYX", "TYX"):
        raise _damaged(path, f"its spatial axes {config['spatial']!r} are not YX, ZYX or TYX")


def _damaged(path: Path, what: str) -> InfocusInputError:
    return InfocusInputError(
        f"The model {path} is damaged: {what} in config.json; export it again from an intact "
        "copy or retrain it."
    )


def _read_weights(data: bytes, path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load as load_safetensors

    try:
        return load_safetensors(data)
    except Exception as error:  # safetensors raises its own error types
        raise InfocusInputError(
            f"weights.safetensors in {path} is corrupt or truncated ({str(error)[:200]}); "
            "export the model again from an intact copy or retrain it."
        ) from None


def _read_history(data: bytes | None, path: Path) -> list[dict[str, Any]]:
    if data is None:
        return []
    try:
        history = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InfocusInputError(
            f"history.json in {path} is not valid JSON ({error}); the model folder is damaged: "
            "remove history.json (it only records the training) or export the model again."
        ) from None
    if not isinstance(history, list) or not all(isinstance(e, dict) for e in history):
        raise InfocusInputError(
            f"history.json in {path} is not a list of epochs; the model folder is damaged: "
            "remove history.json (it only records the training) or export the model again."
        )
    return history


def _check_finite_output(finished: dict[str, np.ndarray], position: Any) -> None:
    """Finite pixels in must give finite pixels out; never write NaN as a result."""
    where = f", block {position}" if position else ""
    for name, values in finished.items():
        if not np.isfinite(values).all():
            raise InfocusInputError(
                f"The model produced NaN or infinite values ({name}{where}) from a "
                "finite image; its weights or noise model are unusable for this data: retrain "
                "the model on data like this image."
            )


def _check_weights_fit(name: str, options: dict[str, Any], weights: dict[str, torch.Tensor],
                       path: Path) -> None:
    """Compare the network description with the weights before building anything: the
    network is first made on PyTorch's meta device, which allocates no memory, so a damaged
    description (depth 50, 100000 filters) costs nothing."""
    from infocus.nets import create_network

    try:
        with torch.device("meta"):
            skeleton = create_network(name, **options)
    except (InfocusInputError, TypeError, ValueError, RuntimeError, OverflowError) as error:
        raise _damaged(path, f"its network description does not build ({str(error)[:120]})"
                       ) from None
    expected = {key: tuple(value.shape) for key, value in skeleton.state_dict().items()}
    found = {key: tuple(value.shape) for key, value in weights.items()}
    if expected != found:
        differing = sorted(set(expected) ^ set(found)) or sorted(
            key for key in expected if expected[key] != found[key])
        raise InfocusInputError(
            f"The weights in {path} do not fit its network description (first difference: "
            f"{differing[0]}); the model is damaged: export it again or retrain it."
        )


def _check_finite_weights(weights: dict[str, torch.Tensor], path: Path) -> None:
    """A NaN or infinite weight makes every prediction NaN: refuse the model instead."""
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise InfocusInputError(
                f"The weights of {path} contain NaN or infinite values ({name}), so every "
                "prediction would be NaN; the training diverged or the file is damaged: retrain "
                "the model (with a lower --learning-rate if it diverged)."
            )


def _model_from(config: dict[str, Any], weights: dict[str, torch.Tensor],
                history: list[dict[str, Any]], path: Path) -> TrainedModel:
    """Rebuild the network, the method and its state from a model's config and weights."""
    from infocus.nets import create_network

    try:
        training = TrainingConfig.from_dict(config["training"])
        input_norm = Normalizer.from_dict(config["normalization"]["input"])
        target_norm = Normalizer.from_dict(config["normalization"]["target"])
    except (TypeError, ValueError, KeyError) as error:
        raise _damaged(path, f"its training or normalisation settings are malformed ({error})"
                       ) from None
    provenance = config.get("provenance", {})
    if config["format"] == MODEL_FORMAT:
        state = config.get("state")
    else:
        state = {key: provenance[key] for key in _FORMAT_1_STATE if key in provenance}
    if not isinstance(state, dict):
        raise InfocusInputError(
            f"{path} has no method state (or a malformed one); retrain the model with "
            f"infocus train {training.method}."
        )
    try:
        scheme = create_scheme(training.method, **training.scheme_options)
    except InfocusInputError as error:
        raise InfocusInputError(
            f"{path} was trained with method {training.method!r}, which this infocus cannot "
            f"rebuild ({error}); upgrade infocus or retrain the model."
        ) from None
    scheme.check_state(state, str(path))
    _check_finite_weights(weights, path)
    name, options = config["network"]["name"], config["network"]["config"]
    _check_weights_fit(name, options, weights, path)
    network = create_network(name, **options)
    network.load_state_dict(weights)
    network.eval()
    return TrainedModel(
        network=network,
        config=training,
        spatial=config["spatial"],
        input_norm=input_norm,
        target_norm=target_norm,
        history=history,
        provenance=provenance,
        state=state,
    )
