"""The one training engine shared by every method.

A method (:mod:`infocus.methods`) decides what it measures on the data first, which network it
needs, how a batch is prepared and scored, and how a prediction is formed; this loop does the
rest: data, normalisation, optimiser, schedule, validation, checkpoints, resume after a kill,
early stopping, several processes with ``torchrun``. It reports progress through a callback
and never names a method.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import pickle
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from infocus._errors import InfocusInputError, OutputExistsError
from infocus.io import check_output_path, check_writable_folder
from infocus.methods import DEFAULT_METHOD, FitData, Fitted, TrainingScheme, create_scheme
from infocus.methods._base import has_labels
from infocus.methods.config import TrainingConfig, default_config
from infocus.training.distributed import Distributed, check_processes, train_in_processes

if TYPE_CHECKING:
    from infocus.intensity import Normalizer
    from infocus.noise.models import NoiseModel
    from infocus.predict.model import TrainedModel
    from infocus.training.data import LabelledShareSampler, PatchSampler

__all__ = ["TrainingProgress", "checkpoint_dir_for", "fit_noise_model", "select_device", "train"]

CHECKPOINT_NAME = "checkpoint.pt"
#: What every checkpoint holds (see _Engine._save_checkpoint).
_CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "torch_generator", "torch_rng",
                    "numpy_rng", "history", "step", "best_val_loss", "config")
#: Settings a method trained first (:attr:`FitData.pretrain`) takes from the run it serves.
_BUDGET = ("steps", "steps_per_epoch", "patch_size", "batch_size", "learning_rate", "schedule",
           "validation_fraction", "validation_patches", "augment", "seed")
#: Patch edge used unless told otherwise (CARE, N2V and CAREamics use 64 as well).
DEFAULT_PATCH = 64


@dataclass(frozen=True)
class TrainingProgress:
    """What a progress callback hears after every optimiser step.

    Attributes
    ----------
    method : str
        The method being trained.
    step, steps : int
        Steps done and steps in all.
    loss : float
        Mean training loss over the last 20 steps.
    val_loss : float
        The latest validation loss (NaN before the first epoch ends).
    epoch : dict or None
        At the end of an epoch, its entry of the training history (train and validation loss,
        learning rate, seconds, any terms the method's loss logs); else None.
    """

    method: str
    step: int
    steps: int
    loss: float
    val_loss: float
    epoch: dict[str, Any] | None = None


ProgressCallback = Callable[[TrainingProgress], None]


def select_device(device: str | None = None) -> torch.device:
    """``"auto"``/None: CUDA if present, then Apple MPS, else CPU; or the device named."""
    if device not in (None, "auto"):
        return torch.device(device)
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        return torch.device("cuda", local_rank)
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def checkpoint_dir_for(output: Path) -> Path:
    """Where the checkpoints of a run that writes ``output`` live: a hidden sibling folder."""
    output = Path(output)
    return output.parent / f".{output.name}.training"


# ------------------------------------------------------------------------------------ data
@dataclass
class _TrainingData:
    """The training images as blocks ``(C, *spatial)`` (lazy arrays stay lazy)."""

    inputs: list[Any]
    targets: list[Any] | None
    spatial: str
    loaded: list[tuple[Any, str]]

    @property
    def ndim(self) -> int:
        return len(self.spatial)

    @property
    def channels(self) -> int:
        return int(self.inputs[0].shape[0])

    def planes(self, role: str = "inputs", *, size: int = 256, max_planes: int = 32) -> np.ndarray:
        """Central crops of evenly chosen planes of the inputs or targets (``FitData.planes``)."""
        from infocus.training.data import sample_planes

        blocks = self.targets if role == "targets" else self.inputs
        if blocks is None:
            raise InfocusInputError("This method has no targets to sample planes from.")
        return sample_planes(blocks, size=size, max_planes=max_planes)


def _as_list(items: Any) -> list[Any]:
    if items is None:
        return []
    if isinstance(items, (str, os.PathLike, np.ndarray)) or hasattr(items, "chunks"):
        return [items]
    return list(items)


def _load(items: Any, axes: str | None, role: str) -> list[tuple[Any, str]]:
    """Arrays and/or paths -> [(array, axes)]."""
    from infocus.axes import check_axes, default_axes
    from infocus.training.data import load_inputs

    loaded: list[tuple[Any, str]] = []
    for item in _as_list(items):
        if isinstance(item, (str, os.PathLike)):
            loaded.extend(load_inputs([item], axes=axes))
        else:
            array = item if hasattr(item, "chunks") else np.asarray(item)
            item_axes = check_axes(axes, array.shape) if axes else default_axes(array.shape)
            loaded.append((array, item_axes))
    if not loaded:
        raise InfocusInputError(f"No {role} images were given; pass at least one image or folder.")
    return loaded


def _spatial(config: TrainingConfig, axes_list: list[str]) -> str:
    if config.spatial != "auto":
        missing = [a for a in config.spatial if any(a not in ax for ax in axes_list)]
        if missing:
            raise InfocusInputError(
                f"Training in {config.spatial} needs axis {missing[0]!r}, but the data have axes "
                f"{', '.join(sorted(set(axes_list)))}; drop --context {missing[0]} (or choose "
                "--spatial YX), or fix --axes."
            )
        return config.spatial
    has_z = {"Z" in ax for ax in axes_list}
    if len(has_z) > 1:
        raise InfocusInputError(
            "Some training images have a Z axis and some do not; train 2-D and 3-D data separately."
        )
    return "ZYX" if has_z.pop() else "YX"


def _load_data(inputs: Any, targets: Any, axes: str | None, config: TrainingConfig,
               scheme: TrainingScheme | None = None) -> _TrainingData:
    """Read (lazily) the inputs and targets and cut them into blocks of the network's axes."""
    from infocus.training.data import to_blocks

    loaded = _load(inputs, axes, "input")
    spatial = _spatial(config, [ax for _, ax in loaded])
    if config.channels == "joint" and not any("C" in ax for _, ax in loaded):
        raise InfocusInputError(
            f"Joint channels (--context C) need images with a C axis, but the data have axes "
            f"{', '.join(sorted({ax for _, ax in loaded}))}; drop --context C or fix --axes."
        )
    input_blocks = [b for data, ax in loaded
                    for b in to_blocks(data, ax, spatial=spatial, channels=config.channels)]
    if targets is None:
        return _TrainingData(input_blocks, None, spatial, loaded)
    if scheme is not None and scheme.labels:
        loaded_targets = _load_labels(targets, loaded, axes)
    else:
        loaded_targets = _load(targets, axes, "target")
    if len(loaded_targets) != len(loaded):
        raise InfocusInputError(
            f"Got {len(loaded)} input image(s) but {len(loaded_targets)} target image(s); "
            "give one target per input, in the same order."
        )
    target_blocks = [b for data, ax in loaded_targets
                     for b in to_blocks(data, ax, spatial=spatial, channels=config.channels)]
    for i, (a, b) in enumerate(zip(input_blocks, target_blocks, strict=True)):
        if tuple(a.shape) != tuple(b.shape):
            raise InfocusInputError(
                f"Input block {i} has shape {tuple(a.shape)} but its "
                f"{'labels have' if scheme is not None and scheme.labels else 'target has'} "
                f"{tuple(b.shape)}; inputs and targets must have the same shape."
            )
    if scheme is not None and scheme.labels:
        target_blocks = [scheme.encode_labels(np.asarray(b)) for b in target_blocks]
    return _TrainingData(input_blocks, target_blocks, spatial, loaded)


def _load_labels(targets: Any, loaded: list[tuple[Any, str]], axes: str | None
                 ) -> list[tuple[Any, str]]:
    """Label images for some inputs: ``None`` for an unlabelled one (marked -1 throughout)."""
    items = _as_list(targets)
    if len(items) != len(loaded):
        raise InfocusInputError(
            f"Got {len(loaded)} input image(s) but {len(items)} label entries; give one per "
            "input, None (or no file) for the unlabelled ones."
        )
    if all(item is None for item in items):
        raise InfocusInputError(
            "None of the images has labels; give instance masks for at least one image "
            "(--labels LABELS/ with files named like the images).")
    result = []
    for item, (data, data_axes) in zip(items, loaded, strict=True):
        if item is None:
            result.append((np.full(tuple(data.shape), -1, dtype=np.int32), data_axes))
        else:
            (labels, label_axes), = _load([item], axes or data_axes, "label")
            result.append((labels, label_axes))
    return result


def _patch_shape(
    config: TrainingConfig, blocks: Sequence[Any], multiple: int
) -> tuple[int, ...]:
    """Training patch shape: the configured edge, or 64 shrunk to fit small images.

    With fewer than five blocks the validation split holds out a band one patch high, so an
    automatic patch is at most half the shortest image side.
    """
    ndim = len(blocks[0].shape) - 1
    smallest = min(min(int(n) for n in b.shape[-2:]) for b in blocks)
    size = config.patch_size
    if size is None:
        room = smallest if len(blocks) >= 5 else smallest // 2
        size = max(multiple, min(DEFAULT_PATCH, room) // multiple * multiple)
    if size % multiple:
        raise InfocusInputError(
            f"Patch size {size} is not a multiple of {multiple} (2^depth of the network); "
            f"use --patch-size {max(multiple, size - size % multiple)}."
        )
    if ndim == 3:
        # Volumes are usually shallow in their first axis, and 3-D patches are costly on a CPU.
        depth_room = min(int(b.shape[1]) for b in blocks)
        depth = max(multiple, min(size, 16, depth_room) // multiple * multiple)
        return (depth, size, size)
    return (size,) * ndim


def _lr_lambda(config: TrainingConfig) -> Callable[[int], float]:
    warmup = max(1, min(100, config.steps // 20))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, config.steps - warmup))
        return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


# ------------------------------------------------------------------------------- the entry
def train(
    inputs: Any,
    *,
    method: str | None = None,
    axes: str | None = None,
    targets: Any = None,
    output: str | os.PathLike[str] | None = None,
    config: TrainingConfig | None = None,
    steps: int | None = None,
    patch_size: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    seed: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    validation: tuple[np.ndarray, np.ndarray, str] | None = None,
    init: str | os.PathLike[str] | TrainedModel | None = None,
    freeze: str | None = None,
    device: str | None = None,
    processes: int = 1,
    progress: bool | ProgressCallback = True,
    log: Callable[[str], None] | None = None,
) -> TrainedModel:
    """Train a denoising network and return it as a :class:`~infocus.predict.TrainedModel`.

    Parameters
    ----------
    inputs : array, path, or a list of them
        Noisy images (files, folders, Zarr arrays that are never loaded whole, or arrays).
    method : str, optional
        A registered method (``infocus methods`` lists them; default ``n2v``, or the method of
        ``init``); methods that need targets say so in their error message.
    axes : str, optional
        Axes of the inputs when the files carry none (e.g. ``"SYX"`` for a stack of images).
    targets : like ``inputs``, optional
        Same shapes as ``inputs``, in the same order (clean images for CARE, second noisy
        captures for Noise2Noise).
    output : path, optional
        Model to write (a folder, or a ``.zip``); checkpoints go to a hidden sibling folder
        while training and make ``resume=True`` continue a killed run.
    config : TrainingConfig, optional
        All settings (default: :func:`~infocus.methods.config.default_config` of ``method``);
        ``steps``, ``patch_size``, ``batch_size``, ``learning_rate`` and ``seed`` override its
        fields.
    resume : bool
        Continue the killed run that was writing ``output`` from its last checkpoint.
    overwrite : bool
        Replace an existing ``output``.
    validation : (noisy, clean, axes), optional
        An image with ground truth: its PSNR is reported after every epoch.
    init : path or TrainedModel, optional
        Fine-tune this model instead of starting from random weights (transfer learning,
        Laine et al. 2021 §6): its network is kept, its weights are the start, and unless
        given, the steps are a quarter and the learning rate a tenth of the method's defaults
        (:func:`fine_tuning_config`). Normalisation and what the method fits (blind spot, noise
        model) are measured on the new data.
    freeze : str, optional
        With ``init``: a part of the network whose weights stay fixed, e.g. ``"encoder"``.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"mps"``; default the best available.
    processes : int
        Train data-parallel in this many processes on this machine
        (:mod:`infocus.training.distributed`): the cores are shared among them, or each takes
        a GPU; ``batch_size`` is the global batch and must be a multiple of it.
    progress : bool or callable
        True: one line per epoch through ``log``; False: silent; a callable receives a
        :class:`TrainingProgress` after every step (the command line draws its bar with it).
    log : callable, optional
        Where messages go (default: standard error).

    Returns
    -------
    TrainedModel
        With the same ``denoise(image, axes=...)`` call as the classical denoisers.
    """
    say = log or (lambda message: print(message, file=sys.stderr))
    if processes != 1:
        check_processes(processes)
        shared = batch_size or (config or default_config(method or DEFAULT_METHOD)).batch_size
        if shared % processes:
            raise InfocusInputError(
                f"A batch of {shared} patches cannot be shared equally by {processes} "
                f"processes; use a --batch-size that is a multiple of {processes}.")
        return train_in_processes(dict(
            inputs=inputs, method=method, axes=axes, targets=targets, output=output,
            config=config, steps=steps, patch_size=patch_size, batch_size=batch_size,
            learning_rate=learning_rate, seed=seed, resume=resume, overwrite=overwrite,
            validation=validation, init=init, freeze=freeze, device=device), processes,
            progress=progress, log=say)
    base = _initial_model(init, freeze)
    # Fine-tuning continues the model's own method unless another is named.
    method = method or (base.config.method if base is not None else DEFAULT_METHOD)
    config = config or default_config(method)
    if base is not None:
        config = fine_tuning_config(config, base)
    config = config.with_updates(
        steps=steps, patch_size=patch_size, batch_size=batch_size,
        learning_rate=learning_rate, seed=seed,
    )
    # Check the options now, before any data is read.
    scheme = create_scheme(config.method, **config.scheme_options)
    output_path = Path(output).expanduser() if output is not None else None
    checkpoint_dir = checkpoint_dir_for(output_path) if output_path is not None else None
    _check_request(scheme, config, targets, output_path, checkpoint_dir, resume, overwrite)
    _check_network(scheme, config)
    _training_precision(config, scheme, select_device(device))
    data = _load_data(inputs, targets, axes, config, scheme)
    engine = _Engine(data, config, scheme, device=device, say=say, progress=progress,
                     checkpoint_dir=checkpoint_dir, validation=validation)
    if base is not None:
        engine.start_from(base, freeze)
    trained = engine.run(resume=resume)
    trained.provenance.update(_provenance(config, data.loaded, engine.device, engine.seconds))
    trained.provenance["processes"] = engine.dist.world_size
    trained.provenance["precision"] = engine.precision
    trained.provenance["data_signature"] = _signature(data, say)
    if base is not None:
        trained.provenance["fine_tuned_from"] = {
            "method": base.config.method, "data_sha256": base.provenance.get("data_sha256"),
            "frozen": freeze}
    if output_path is not None and engine.dist.is_main:
        trained.save(output_path, overwrite=overwrite)
        if checkpoint_dir is not None:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
    engine.dist.barrier()
    return trained


#: Fine-tuning defaults, as fractions of the method's: a pretrained network needs fewer steps,
#: and a lower learning rate keeps what it learnt (the usual transfer-learning practice).
FINE_TUNE_STEPS = 0.25
FINE_TUNE_LEARNING_RATE = 0.1


def fine_tuning_config(config: TrainingConfig, base: TrainedModel) -> TrainingConfig:
    """``config`` for fine-tuning ``base``: its network (name, options, dimensionality and
    channel handling), a quarter of the steps and a tenth of the learning rate."""
    return config.with_updates(
        network=base.config.network, network_options=dict(base.config.network_options),
        spatial=base.spatial, channels=base.config.channels,
        steps=max(1, round(config.steps * FINE_TUNE_STEPS)),
        learning_rate=config.learning_rate * FINE_TUNE_LEARNING_RATE,
    )


def _initial_model(init: Any, freeze: str | None) -> TrainedModel | None:
    """The model to fine-tune (loaded when given as a path), or None."""
    if init is None:
        if freeze is not None:
            raise InfocusInputError(
                f"--freeze {freeze} keeps part of a pretrained network fixed; give the model "
                "to start from with --init."
            )
        return None
    if hasattr(init, "network") and hasattr(init, "config"):
        return init
    from infocus.predict.model import load_model

    return load_model(init)


def fit_noise_model(
    inputs: Any,
    *,
    axes: str | None = None,
    source: str = "bootstrap",
    kind: str = "gmm",
    steps: int | None = None,
    seed: int = 0,
    progress: bool | ProgressCallback = True,
    log: Callable[[str], None] | None = None,
) -> NoiseModel:
    """The noise model the noise-model methods (PN2V, DivNoising) would fit on ``inputs``.

    Parameters
    ----------
    inputs : array, path, or a list of them
        Noisy images, as for :func:`train`.
    source : {"bootstrap", "parametric"}
        ``bootstrap``: fitted to (Noise2Void prediction, noisy) pairs, Noise2Void trained on
        ``inputs`` for ``steps`` (Prakash et al. 2020); ``parametric``: the Poisson–Gaussian
        model measured from the noisy images.
    kind : {"gmm", "histogram"}
        What a bootstrapped model is.
    """
    from infocus.methods._likelihood import fit_noise_model as fit

    say = log or (lambda message: print(message, file=sys.stderr))
    config = default_config(DEFAULT_METHOD).with_updates(steps=steps, seed=seed)
    data = _load_data(inputs, None, axes, config)
    engine = _Engine(data, config, create_scheme(config.method), device=None, say=say,
                     progress=progress, checkpoint_dir=None, validation=None)
    model, _ = fit(engine.fit_data(), source, kind)
    return model


def _check_request(
    scheme: TrainingScheme, config: TrainingConfig, targets: Any, output: Path | None,
    checkpoint_dir: Path | None, resume: bool, overwrite: bool,
) -> None:
    """Refuse, before any work, what cannot succeed."""
    if output is not None and output.exists() and not overwrite:
        raise OutputExistsError(
            f"Model {output} already exists; pass --overwrite to replace it or choose another path."
        )
    if output is not None:
        check_output_path(output, overwrite=True)  # its folder exists; not a folder of data
        check_writable_folder(output.parent)  # checkpoints go there too, from the first epoch
    if resume and (checkpoint_dir is None or not (checkpoint_dir / CHECKPOINT_NAME).is_file()):
        raise InfocusInputError(
            f"Nothing to resume: no checkpoint for {output} was found; start without --resume."
        )
    if (not resume and not overwrite and checkpoint_dir is not None
            and (checkpoint_dir / CHECKPOINT_NAME).is_file()):
        raise InfocusInputError(
            f"An interrupted training of {output} left a checkpoint in {checkpoint_dir}; pass "
            "--resume to continue it, or --overwrite to discard it and start afresh."
        )
    if scheme.needs_target and targets is None:
        raise InfocusInputError(
            f"Method {config.method!r} learns from pairs; give the targets with --target "
            f"({scheme.target_help} of each input)."
        )
    if scheme.labels and targets is None:
        raise InfocusInputError(
            f"Method {config.method!r} also learns to segment: give instance masks for some "
            "images (--labels LABELS/, files named like the images).")
    if not scheme.needs_target and not scheme.labels and targets is not None:
        raise InfocusInputError(
            f"Method {config.method!r} is self-supervised and uses no targets; drop --target or "
            "choose a method that learns from pairs."
        )


def _check_network(scheme: TrainingScheme, config: TrainingConfig) -> None:
    """Refuse, before any data is read, a network the method cannot train.

    The network's kind (:func:`infocus.nets.network_kind`) must be the method's
    (:attr:`~infocus.methods.TrainingScheme.network_kind`), and it must accept the options the
    method sets (:meth:`~infocus.methods.TrainingScheme.network_options`) together with the
    configured ones; the network is built once, without data, to check the option values too.
    """
    from infocus.nets import create_network, list_networks, network_kind

    kind = network_kind(config.network)  # an unknown name: the registry lists the known ones
    if kind != scheme.network_kind:
        fitting = [name for name in list_networks() if network_kind(name) == scheme.network_kind]
        raise InfocusInputError(
            f"Method {config.method!r} trains {_a(scheme.network_kind)} network, but "
            f"{config.network!r} is {_a(kind)} network; choose one of: {', '.join(fitting)}.")
    method_sets = {"ndim": 3 if config.spatial in ("ZYX", "TYX") else 2,
                   **scheme.network_options(1)}
    given = sorted(set(method_sets) & set(config.network_options))
    if given:
        raise InfocusInputError(
            f"Method {config.method!r} sets the network's {' and '.join(given)} from the data; "
            f"drop {'them' if len(given) > 1 else 'it'} from the network options.")
    create_network(config.network, **method_sets, **config.network_options)


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


# ------------------------------------------------------------------------------ the engine
@dataclass
class _State:
    """What changes while training and is saved in every checkpoint."""

    history: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0
    best_val_loss: float = math.inf
    best_weights: dict[str, Any] | None = None
    best_epoch: int = 0


#: A validation loss this far above the best one (in units of max(|best|, 1)) means the
#: optimisation has left the basin it was in; a normal epoch never moves by this much.
DIVERGENCE_JUMP = 100.0


def diverged(val_loss: float, reference: float) -> bool:
    """Whether an epoch's validation loss says the training has diverged: non-finite, or
    ``DIVERGENCE_JUMP`` × max(|reference|, 1) above ``reference`` (the best loss so far, or the
    untrained network's; losses may be negative)."""
    if not math.isfinite(val_loss):
        return True
    if not math.isfinite(reference):
        return False
    return val_loss - reference > DIVERGENCE_JUMP * max(abs(reference), 1.0)


def _training_precision(config: TrainingConfig, scheme: TrainingScheme,
                        device: torch.device) -> str:
    """``"float32"`` or ``"bfloat16"``: the config's precision for this method on ``device``."""
    from infocus.nets.precision import resolve_precision

    if scheme.mixed_precision:
        return resolve_precision(config.precision, device)
    if config.precision == "bfloat16":
        raise InfocusInputError(
            f"{config.method} trains in float32 only; leave --precision at auto or float32.")
    return "float32"


class _Engine:
    """One training run: set up from the data and the method, optimise, hand back the model."""

    def __init__(
        self, data: _TrainingData, config: TrainingConfig, scheme: TrainingScheme, *,
        device: str | None, say: Callable[[str], None], progress: bool | ProgressCallback,
        checkpoint_dir: Path | None, validation: tuple[np.ndarray, np.ndarray, str] | None,
    ) -> None:
        self.data = data
        self.config = config
        self.scheme = scheme
        self.device = select_device(device)
        self.precision = _training_precision(config, scheme, self.device)
        self.dist = Distributed(self.device)
        self.say = say
        self.progress = progress
        self.checkpoint_dir = checkpoint_dir
        self.validation = validation
        self.seconds = 0.0
        self.fitted = Fitted()
        self.initial_val_loss = math.inf
        self._start: tuple[dict[str, torch.Tensor], str | None] | None = None

    def start_from(self, base: TrainedModel, freeze: str | None) -> None:
        """Begin from ``base``'s weights (keeping its part ``freeze`` fixed)."""
        self._start = ({k: v.detach().clone() for k, v in base.network.state_dict().items()},
                       freeze)

    # --- set-up -------------------------------------------------------------------------
    def _fit(self, resume_state: dict[str, Any] | None) -> None:
        """What the method measures on the data (taken from the checkpoint when resuming)."""
        if resume_state is not None and "fitted" in resume_state:
            self.fitted = Fitted(**json.loads(resume_state["fitted"]))
        else:
            self.fitted = self.scheme.fit(self.fit_data())
        options = {**self.config.scheme_options, **self.fitted.options}
        self.config = self.config.with_updates(scheme_options=options)
        # With the dimensionality known, rebuild the scheme with its defaults for it.
        defaults = create_scheme(self.config.method, **options).defaults_for(self.data.ndim)
        self.scheme = create_scheme(self.config.method, **{**defaults, **options})

    def fit_data(self) -> FitData:
        """What the method may look at before training."""
        return FitData(
            inputs=self.data.inputs, targets=self.data.targets, ndim=self.data.ndim,
            spatial=self.data.spatial, options=dict(self.config.scheme_options),
            seed=self.config.seed, say=self.say, planes=self.data.planes,
            pretrain=self._pretrain,
        )

    def _pretrain(self, method: str, *, steps: int | None = None, **options: Any
                  ) -> TrainedModel:
        """Train another method on the same data, with its own network and options but this
        run's budget (patches, seed; at most ``steps``, by default the other method's default
        steps, and never more than this run's), e.g. to bootstrap a noise model."""
        budget = {name: getattr(self.config, name) for name in _BUDGET}
        budget["steps"] = min(self.config.steps, steps or default_config(method).steps)
        config = default_config(method).with_updates(
            spatial=self.config.spatial, channels=self.config.channels,
            scheme_options=options or None, **budget)
        self.say(f"Training {method} first ({config.steps} steps) ...")
        engine = _Engine(self.data, config, create_scheme(method, **options), device=None,
                         say=self.say, progress=self.progress, checkpoint_dir=None,
                         validation=None)
        return engine.run(resume=False)

    def _build_network(self) -> torch.nn.Module:
        from infocus.nets import create_network

        options = {"ndim": self.data.ndim, **self.scheme.network_options(self.data.channels)}
        options.update(self.config.network_options)
        return create_network(self.config.network, **options)

    def _normalizers(self, train_in: list[Any], train_tg: list[Any] | None
                     ) -> tuple[Normalizer, Normalizer]:
        from infocus.intensity import Normalizer

        input_norm = Normalizer.fit(train_in, rng=np.random.default_rng(self.config.seed))
        if self.scheme.separate_target_normalization and train_tg is not None:
            return input_norm, Normalizer.fit(train_tg, rng=np.random.default_rng(self.config.seed))
        return input_norm, input_norm

    def _setup(self, resume_state: dict[str, Any] | None) -> None:
        from infocus.training.data import fixed_validation_patches, split_validation

        config = self.config
        self._fit(resume_state)
        config = self.config
        self.local_batch = self.dist.share(config.batch_size)
        self.rng = np.random.default_rng([config.seed, self.dist.rank])
        torch.manual_seed(config.seed)
        self.generator = torch.Generator(device="cpu").manual_seed(
            config.seed + 7919 * self.dist.rank)
        self.network = self._build_network()
        if self._start is not None:
            _load_start(self.network, *self._start)
        shortest = tuple(min(int(b.shape[1 + a]) for b in self.data.inputs)
                         for a in range(self.data.ndim))
        patch_shape = self.scheme.patch_shape(
            _patch_shape(config, self.data.inputs, int(self.network.size_multiple)), shortest)
        if len(patch_shape) == 3 and patch_shape[0] > shortest[0]:
            raise InfocusInputError(
                f"The thinnest volume has {shortest[0]} planes along its first axis, fewer "
                f"than the {patch_shape[0]} a 3-D network of this depth needs; train plane by "
                "plane with --spatial YX (or config spatial='YX')."
            )
        split = _split_keeping_labels if self.scheme.labels else split_validation
        train_in, train_tg, val_in, val_tg = split(
            self.data.inputs, self.data.targets, fraction=config.validation_fraction,
            patch_shape=patch_shape, rng=np.random.default_rng(config.seed),
        )
        self.input_norm, self.target_norm = self._normalizers(train_in, train_tg)
        self.scheme = self.scheme.bind(self.fitted.state, self.input_norm)
        self.sampler = _sampler(self.scheme, train_in, train_tg, patch_shape=patch_shape,
                                augment=config.augment, rotate=self.scheme.rotation_invariant,
                                rng=self.rng)
        val_x, val_y = fixed_validation_patches(
            val_in, val_tg, patch_shape, config.validation_patches,
            np.random.default_rng(config.seed + 1))
        self.val_x = self._tensor(val_x, self.input_norm)
        self.val_y = self._target_tensor(val_y) if val_y is not None else None

    def _tensor(self, array: np.ndarray, norm: Normalizer) -> torch.Tensor:
        return torch.from_numpy(norm.normalize(array, channel_axis=1)).to(self.device)

    def _target_tensor(self, array: np.ndarray) -> torch.Tensor:
        """Targets in the network's units; label classes stay as they are."""
        if self.scheme.labels:
            return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)
        return self._tensor(array, self.target_norm)

    def _model(self, history: list[dict[str, Any]]) -> TrainedModel:
        from infocus.predict.model import TrainedModel

        return TrainedModel(network=self.network, config=self.config, spatial=self.data.spatial,
                            input_norm=self.input_norm, target_norm=self.target_norm,
                            history=history, state=dict(self.fitted.state))

    # --- optimisation -------------------------------------------------------------------
    def run(self, *, resume: bool) -> TrainedModel:
        from infocus.nets import channels_last

        resume_state = self._read_checkpoint() if resume else None
        self._setup(resume_state)
        config = self.config
        self.network.to(self.device)
        channels_last(self.network, getattr(self.network, "ndim", self.data.ndim))
        model = self.dist.wrap(self.network, self.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        scheduler: Any = (
            torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config))
            if config.schedule == "cosine"
            else torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=5))
        state = _State()
        if resume_state is not None:
            state = self._restore(resume_state, optimizer, scheduler)
        started = time.perf_counter()
        # The untrained network's validation loss: what a diverging run is measured against
        # when it has no good epoch yet.
        self.initial_val_loss = self._validate()
        stopped_early = self._optimise(model, optimizer, scheduler, state, started)
        if stopped_early and state.best_weights is not None:
            self.network.load_state_dict(state.best_weights)
        self.network.eval()
        self._after_training()
        self.seconds = time.perf_counter() - started
        return self._model(state.history)

    def _after_training(self) -> None:
        """What the method measures on the trained network (stored with its state)."""
        generator = torch.Generator(device="cpu").manual_seed(self.config.seed + 15485863)
        with torch.inference_mode():
            updates = self.scheme.after_training(self.network, self.val_x, generator)
        if updates:
            self.fitted = Fitted(self.fitted.options, {**self.fitted.state, **updates})
            self.scheme = self.scheme.bind(self.fitted.state, self.input_norm)

    def _optimise(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  scheduler: Any, state: _State, started: float) -> bool:
        """The steps from ``state.step`` on; True when stopped early."""
        config = self.config
        running: list[float] = []
        terms: dict[str, list[float]] = {}
        self.network.train()
        for step in range(state.step, config.steps):
            loss, logged = self._step(model, optimizer)
            if not math.isfinite(loss):
                return self._stop_diverged(step + 1, loss, state)
            if config.schedule == "cosine":
                scheduler.step()
            running.append(loss)
            for name, value in logged.items():
                terms.setdefault(name, []).append(value)
            done = step + 1
            recent = float(np.mean(running[-20:]))
            if done % config.steps_per_epoch and done != config.steps:
                last = state.history[-1]["val_loss"] if state.history else math.nan
                self._report(done, recent, last, None)
                continue
            entry = self._end_epoch(done, running, terms, optimizer, scheduler, started)
            if diverged(entry["val_loss"], min(state.best_val_loss, self.initial_val_loss)):
                # Before the checkpoint: the last good one stays on disk.
                return self._stop_diverged(done, entry["val_loss"], state)
            running, terms = [], {}
            state.history.append(entry)
            state.step = done
            self._report(done, recent, entry["val_loss"], entry)
            if entry["val_loss"] < state.best_val_loss:
                state.best_val_loss = entry["val_loss"]
                state.best_weights = copy.deepcopy(self.network.state_dict())
                state.best_epoch = entry["epoch"]
            if self.checkpoint_dir is not None:
                streams = self.dist.gather(self._random_streams())
                if self.dist.is_main:
                    self._save_checkpoint(optimizer, scheduler, state, streams)
            self.dist.barrier()
            if config.patience is not None and entry["epoch"] - state.best_epoch >= config.patience:
                self.say(f"Early stop: no better validation loss for {config.patience} epochs; "
                         f"keeping the weights of epoch {state.best_epoch}.")
                return True
        return False

    def _stop_diverged(self, step: int, loss: float, state: _State) -> bool:
        """Stop a diverged run: keep the best epoch's weights, or refuse when there is none."""
        rate = self.config.learning_rate
        if state.best_weights is None:
            raise InfocusInputError(
                f"Training diverged at step {step} (loss {loss:.3g}) before any epoch gave a "
                f"usable model, so nothing was saved; train again with a lower --learning-rate "
                f"(now {rate:g})."
            )
        self.say(f"Training diverged at step {step} (validation loss {loss:.3g}, best "
                 f"{state.best_val_loss:.3g} at epoch {state.best_epoch}); stopped, keeping the "
                 f"weights of epoch {state.best_epoch}. A lower --learning-rate (now {rate:g}) "
                 "may train further.")
        return True

    def _step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer
              ) -> tuple[float, dict[str, float]]:
        """One optimiser step; the loss and the extra terms the method logs."""
        x_np, y_np = self.sampler.sample(self.local_batch)
        x = self._tensor(x_np, self.input_norm)
        y = self._target_tensor(y_np) if y_np is not None else None
        batch = self.scheme.prepare(x, y, self.generator)
        loss, logged = _split_loss(self.scheme.loss(self._forward(model, batch.input), batch))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach()), logged

    def _forward(self, model: torch.nn.Module, inputs: torch.Tensor) -> Any:
        """The network's output in float32, computed in the run's precision."""
        from infocus.nets import channels_last
        from infocus.nets.precision import as_float32, autocast

        with autocast(self.precision, self.device):
            output = model(channels_last(inputs, inputs.ndim - 2))
        return as_float32(output)

    def _validate(self) -> float:
        """Mean loss over the fixed validation patches (masks drawn from a fixed seed)."""
        self.network.eval()
        generator = torch.Generator(device="cpu").manual_seed(self.config.seed + 104729)
        losses = []
        size = self.config.batch_size
        with torch.inference_mode():
            for i in range(0, self.val_x.shape[0], size):
                x = self.val_x[i : i + size]
                y = self.val_y[i : i + size] if self.val_y is not None else None
                batch = self.scheme.prepare(x, y, generator)
                output = self._forward(self.network, batch.input)
                loss, _ = _split_loss(self.scheme.loss(output, batch))
                losses.append(float(loss) * x.shape[0])
        self.network.train()
        return sum(losses) / self.val_x.shape[0]

    def _end_epoch(self, done: int, running: list[float], terms: dict[str, list[float]],
                   optimizer: torch.optim.Optimizer, scheduler: Any, started: float
                   ) -> dict[str, Any]:
        """Validate and make the history entry of the epoch that ends at step ``done``."""
        dist, config = self.dist, self.config
        val_loss = dist.mean(self._validate()) if dist.is_main or dist.enabled else math.nan
        if config.schedule == "plateau":
            scheduler.step(val_loss)
        entry: dict[str, Any] = {
            "epoch": -(-done // config.steps_per_epoch),
            "step": done,
            "train_loss": dist.mean(float(np.mean(running))) if running else math.nan,
            "val_loss": val_loss,
            "learning_rate": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started,
        }
        for name, values in terms.items():
            entry[f"train_{name}"] = dist.mean(float(np.mean(values)))
        if self.validation is not None and dist.is_main:
            from infocus.metrics import psnr

            noisy, clean, axes = self.validation
            denoised = self._model([]).denoise(noisy, axes=axes, backend="torch")
            entry["val_psnr"] = psnr(denoised, clean)
            self.network.train()
        return entry

    def _report(self, done: int, loss: float, val_loss: float, entry: dict[str, Any] | None
                ) -> None:
        if not self.dist.is_main or self.progress is False:
            return
        if callable(self.progress):
            self.progress(TrainingProgress(self.config.method, done, self.config.steps, loss,
                                           val_loss, entry))
        elif entry is not None:
            extra = f", val PSNR {entry['val_psnr']:.2f} dB" if "val_psnr" in entry else ""
            self.say(f"epoch {entry['epoch']}: step {done}/{self.config.steps}, train loss "
                     f"{entry['train_loss']:.4g}, val loss {entry['val_loss']:.4g}{extra}")

    # --- checkpoints --------------------------------------------------------------------
    @functools.cached_property
    def data_sha256(self) -> str:
        """The training data's fingerprint (:func:`data_digest`), kept with each checkpoint."""
        return data_digest(self.data.loaded)

    def _read_checkpoint(self) -> dict[str, Any]:
        assert self.checkpoint_dir is not None
        path = self.checkpoint_dir / CHECKPOINT_NAME
        try:
            with warnings.catch_warnings():  # torch's notes on foreign pickles; we refuse them
                warnings.simplefilter("ignore")
                saved = torch.load(path, map_location=self.device, weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
            # weights_only=True refuses pickled code; a truncated file fails to unzip.
            raise InfocusInputError(
                f"The checkpoint {path} is damaged or not an infocus checkpoint "
                f"({str(error).splitlines()[0][:120]}); start afresh with --overwrite instead "
                "of --resume."
            ) from None
        missing = [key for key in _CHECKPOINT_KEYS if key not in saved] if isinstance(
            saved, dict) else list(_CHECKPOINT_KEYS)
        if missing:
            raise InfocusInputError(
                f"The checkpoint {path} lacks {missing[0]!r}, so it is not an infocus "
                "checkpoint; start afresh with --overwrite instead of --resume."
            )
        return saved

    def _restore(self, saved: dict[str, Any], optimizer: torch.optim.Optimizer, scheduler: Any
                 ) -> _State:
        if json.loads(saved["config"]) != self.config.to_dict():
            raise InfocusInputError(
                "The checkpoint was made with other training settings; rerun with the same "
                "options as the killed run, or start afresh with --overwrite instead of --resume."
            )
        if "data_sha256" in saved and saved["data_sha256"] != self.data_sha256:
            raise InfocusInputError(
                "The checkpoint was made on other training data (other images, shapes or "
                "axes); give the same data as the interrupted run, or start afresh with "
                "--overwrite instead of --resume."
            )
        self.network.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        self._restore_random_streams(saved)
        state = _State(history=json.loads(saved["history"]), step=int(saved["step"]),
                       best_val_loss=float(saved["best_val_loss"]))
        self.say(f"Resuming {self.config.method} from step {state.step} of {self.config.steps}.")
        return state

    def _random_streams(self) -> dict[str, Any]:
        """This process's random generators (patches, masks, dropout), as JSON-able values."""
        return {"numpy": self.rng.bit_generator.state,
                "generator": self.generator.get_state().tolist(),
                "torch": torch.get_rng_state().tolist()}

    def _restore_random_streams(self, saved: dict[str, Any]) -> None:
        streams = json.loads(saved.get("random_streams", "null")) or [{
            "numpy": json.loads(saved["numpy_rng"]),
            "generator": saved["torch_generator"].tolist(),
            "torch": saved["torch_rng"].tolist()}]
        if len(streams) != self.dist.world_size:
            raise InfocusInputError(
                f"The checkpoint was written by a run in {len(streams)} process(es), this one "
                f"has {self.dist.world_size}; resume with --processes {len(streams)}."
            )
        mine = streams[self.dist.rank]
        self.rng.bit_generator.state = mine["numpy"]
        self.generator.set_state(torch.tensor(mine["generator"], dtype=torch.uint8))
        torch.set_rng_state(torch.tensor(mine["torch"], dtype=torch.uint8))

    def _save_checkpoint(self, optimizer: torch.optim.Optimizer, scheduler: Any, state: _State,
                         streams: list[dict[str, Any]]) -> None:
        """Everything needed to continue bit-identically; only tensors, numbers and strings,
        so it loads with ``torch.load(weights_only=True)`` (no pickled code)."""
        assert self.checkpoint_dir is not None
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        saved = {
            "model": self.network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": json.dumps(self.rng.bit_generator.state),
            "history": json.dumps(state.history),
            "step": state.step,
            "best_val_loss": state.best_val_loss,
            "config": json.dumps(self.config.to_dict()),
            "fitted": json.dumps({"options": self.fitted.options, "state": self.fitted.state}),
            "data_sha256": self.data_sha256,
            # every process's generators, so that each resumes its own stream
            "random_streams": json.dumps(streams),
        }
        temporary = self.checkpoint_dir / f".{CHECKPOINT_NAME}.tmp"
        torch.save(saved, temporary)
        os.replace(temporary, self.checkpoint_dir / CHECKPOINT_NAME)


def _sampler(scheme: TrainingScheme, inputs: list[Any], targets: list[Any] | None,
             **options: Any) -> PatchSampler | LabelledShareSampler:
    """The scheme's share of labelled patches per batch when only some images carry labels
    (:meth:`TrainingScheme.labelled_share`); else patches drawn from all images alike."""
    from infocus.training.data import LabelledShareSampler, PatchSampler

    share = scheme.labelled_share() if scheme.labels else None
    if share is not None and targets is not None:
        labelled = [has_labels(t) for t in targets]
        if any(labelled) and not all(labelled):
            return LabelledShareSampler(inputs, targets, labelled, share=share, **options)
    return PatchSampler(inputs, targets, **options)


def _split_keeping_labels(inputs: list[Any], targets: list[Any] | None, **options: Any
                          ) -> tuple[list[Any], list[Any] | None, list[Any], list[Any] | None]:
    """The validation split of a method that also learns from a few label images: validation
    comes from the unlabelled images (labels are too few to hold any out); with none, from
    all as usual."""
    from infocus.training.data import split_validation

    assert targets is not None
    labelled = [i for i, t in enumerate(targets) if has_labels(t)]
    rest = [i for i in range(len(inputs)) if i not in labelled]
    if not rest:
        return split_validation(inputs, targets, **options)
    train_in, train_tg, val_in, val_tg = split_validation(
        [inputs[i] for i in rest], [targets[i] for i in rest], **options)
    assert train_tg is not None
    return ([inputs[i] for i in labelled] + train_in, [targets[i] for i in labelled] + train_tg,
            val_in, val_tg)


def _load_start(network: torch.nn.Module, weights: dict[str, torch.Tensor],
                freeze: str | None) -> None:
    """Copy a pretrained network's weights in, after checking that they fit, and freeze a part."""
    expected = network.state_dict()
    for key, value in expected.items():
        if key not in weights or tuple(weights[key].shape) != tuple(value.shape):
            found = tuple(weights[key].shape) if key in weights else "nothing"
            raise InfocusInputError(
                f"The model given with --init does not fit these data: {key} is {found} there "
                f"but {tuple(value.shape)} here (another number of channels, dimensionality or "
                "network); fine-tune on data like the model's, or train from scratch."
            )
    network.load_state_dict(weights)
    if freeze is None:
        return
    try:
        part = network.get_submodule(freeze)
    except AttributeError:
        parts = ", ".join(name for name, _ in network.named_children())
        raise InfocusInputError(
            f"The network has no part {freeze!r} to freeze; its parts are: {parts}."
        ) from None
    for parameter in part.parameters():
        parameter.requires_grad_(False)


def _split_loss(loss: torch.Tensor | dict[str, torch.Tensor]
                ) -> tuple[torch.Tensor, dict[str, float]]:
    """The scalar to minimise and the other terms a method's loss logs."""
    if isinstance(loss, dict):
        return loss["loss"], {k: float(v.detach()) for k, v in loss.items() if k != "loss"}
    return loss, {}


def data_digest(loaded: Sequence[tuple[Any, str]]) -> str:
    """SHA-256 of the training images' axes, shapes and a strided sample of their pixels:
    enough to tell data sets apart without reading a huge array whole."""
    import hashlib

    digest = hashlib.sha256()
    for data, axes in loaded:
        digest.update(axes.encode())
        digest.update(str(tuple(data.shape)).encode())
        index = tuple(slice(None, None, max(1, n // 64)) for n in data.shape)
        digest.update(np.ascontiguousarray(np.asarray(data[index]), dtype=np.float32).tobytes())
    return digest.hexdigest()


def _signature(data: _TrainingData, say: Callable[[str], None]) -> dict[str, Any] | None:
    """What the training inputs looked like (``infocus.intensity.signature``), so that
    ``infocus qc --model`` can tell new input that lies outside them. Never costs the trained
    model: data it cannot describe get None and one line saying why."""
    from infocus.intensity.signature import data_signature

    try:
        return data_signature(data.planes("inputs", size=256, max_planes=32))
    except (InfocusInputError, ValueError, np.linalg.LinAlgError) as error:
        say(f"The training data could not be described for the domain check ({error}).")
        return None


def _provenance(
    config: TrainingConfig, loaded: Sequence[tuple[Any, str]], device: torch.device, seconds: float
) -> dict[str, Any]:
    import platform

    from infocus import __version__

    return {
        "infocus_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "seed": config.seed,
        "data_sha256": data_digest(loaded),
        "data_shapes": [[list(map(int, d.shape)), ax] for d, ax in loaded],
        "training_seconds": round(seconds, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
