"""The one training engine shared by every scheme (CARE, Noise2Noise, Noise2Void, ...).

A scheme only decides how a batch is prepared and scored (:mod:`infocus.methods`); this loop
does the rest: data, normalisation, network, optimiser, schedule, validation, checkpoints,
resume after a kill, early stopping, several processes with ``torchrun``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from infocus._errors import InfocusInputError, OutputExistsError
from infocus.training.config import TrainingConfig, default_config, default_scheme_options

__all__ = ["train", "select_device", "checkpoint_dir_for"]

CHECKPOINT_NAME = "checkpoint.pt"


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
                f"{', '.join(sorted(set(axes_list)))}; choose --spatial YX or fix --axes."
            )
        return config.spatial
    has_z = {"Z" in ax for ax in axes_list}
    if len(has_z) > 1:
        raise InfocusInputError(
            "Some training images have a Z axis and some do not; train 2-D and 3-D data separately."
        )
    return "ZYX" if has_z.pop() else "YX"


#: Patch edge used unless told otherwise (CARE, N2V and CAREamics use 64 as well).
DEFAULT_PATCH = 64


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


class _Distributed:
    """torchrun support: one process per device, gradients averaged by DDP."""

    def __init__(self, device: torch.device) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world_size > 1
        if self.enabled and not torch.distributed.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        if not self.enabled:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def mean(self, value: float) -> float:
        if not self.enabled:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(tensor)
        return float(tensor.item()) / self.world_size


#: Schemes whose blind spot is widened to cover spatially correlated noise unless told otherwise.
MEASURED_BLIND_SPOT = ("n2v", "n2v2")
#: Blind-spot schemes with a fixed blind spot: correlated noise only brings a warning.
BLIND_SPOT_ONLY_WARNS = ("n2s",)


def _without_unresolved(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if not (k == "blind_spot" and isinstance(v, str))}


def _resolve_blind_spot(
    config: TrainingConfig, blocks: Sequence[Any], ndim: int, say: Callable[[str], None]
) -> tuple[TrainingConfig, dict[str, Any] | None]:
    """Turn ``blind_spot="auto"`` (the default of N2V/N2V2) or ``"pixel"`` into offsets.

    ``auto`` measures the noise correlation on up to 32 planes of the training images, combines
    them with :meth:`~infocus.noise.NoiseCorrelation.combine` (the majority decides, with a
    warning when the images disagree) and hides every neighbour it reaches
    (:meth:`~infocus.noise.NoiseCorrelation.blind_pattern`); the offsets
    are stored in the configuration, so the saved model and a resumed run use the same ones.
    Also returns what was measured (for the model's provenance), or None.
    """
    from infocus.methods.blind_spot import StructPattern, max_fraction, radius_for_pattern
    from infocus.noise.correlation import (
        NoiseCorrelation,
        describe_pattern,
        estimate_noise_correlation,
        share_correlated,
    )
    from infocus.training.data import sample_planes

    summary: dict[str, Any] | None = None

    def measure() -> tuple[NoiseCorrelation, list[NoiseCorrelation]]:
        nonlocal summary
        # Plane by plane: a training set may mix cameras, and the majority decides. Large
        # crops: the estimator keeps the flattest quarter of its 16² blocks, and on a densely
        # structured frame (Convallaria) a 256² crop has too few flat blocks, so structure
        # read as correlation (0.33/0.35 there, 0.18/0.23 on the whole 1024² frame).
        planes = sample_planes(blocks, size=1024, max_planes=8)
        measured = [estimate_noise_correlation(plane) for channel in planes for plane in channel]
        combined = NoiseCorrelation.combine(measured)
        summary = {**combined.to_dict(), "correlated": bool(combined.blind_pattern())}
        return combined, measured

    if config.method in BLIND_SPOT_ONLY_WARNS:
        correlation, _ = measure()
        if correlation.blind_pattern():
            say(f"Warning: measured {correlation.describe()}. {config.method} hides one pixel "
                "per blind spot, so the network can learn part of this noise from the "
                "neighbours; n2v and n2v2 widen their blind spot to cover it.")
        return config, summary
    if config.method not in MEASURED_BLIND_SPOT:
        return config, None
    options = dict(config.scheme_options)
    choice = options.get("blind_spot", "auto")
    if choice == "pixel":
        options["blind_spot"] = []
    elif choice == "auto":
        correlation, measured = measure()
        pattern = correlation.blind_pattern()
        options["blind_spot"] = [list(o) for o in pattern]
        correlated, usable = share_correlated(measured)
        if usable == 0:
            say("Noise correlation not measurable (images too small or flat); one-pixel blind spot.")
        elif pattern:
            say(f"Measured {correlation.describe()}: hiding {describe_pattern(pattern)} around "
                "every blind spot (pass blind_spot='pixel' for the classic one-pixel blind spot).")
        else:
            say(f"Measured {correlation.describe()}: one-pixel blind spot.")
        if usable and 0 < correlated < usable:
            say(f"Warning: the noise is spatially correlated in {correlated} of {usable} sampled "
                "images but not in the others (several cameras?); the blind spot suits the "
                "majority. Train the two kinds of images separately for the best result.")
    elif isinstance(choice, str):
        raise InfocusInputError(
            f"Unknown blind_spot {choice!r}; use 'auto' (measure the noise correlation), 'pixel' "
            "(the classic one-pixel blind spot) or a list of (dy, dx) offsets to hide."
        )
    pattern = options["blind_spot"]
    if pattern and "fraction" not in config.scheme_options:
        # The default fraction packs blind spots as densely as a one-pixel blind spot allows;
        # a hidden pattern needs them further apart.
        struct = StructPattern(tuple(tuple(o) for o in pattern))
        radius = radius_for_pattern(int(options.get("radius", 2)), struct)
        default = default_scheme_options(config.method, ndim).get("fraction", 1.0)
        options["fraction"] = min(default, max_fraction(radius, struct, ndim))
    return config.with_updates(scheme_options=options), summary


def train(
    inputs: Any,
    *,
    method: str = "n2v",
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
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> Any:
    """Train a denoising network and return it as a :class:`~infocus.predict.TrainedModel`.

    Parameters
    ----------
    inputs : array, path, or a list of them
        Noisy images (files, folders, Zarr arrays that are never loaded whole, or arrays).
    method : str
        ``care`` and ``n2n`` need ``targets`` (clean, or a second noisy capture); ``n2v``,
        ``n2v2``, ``structn2v`` and ``n2s`` train on the noisy images alone.
    axes : str, optional
        Axes of the inputs when the files carry none (e.g. ``"SYX"`` for a stack of images).
    targets : like ``inputs``, optional
        Same shapes as ``inputs``, in the same order.
    output : path, optional
        Model to write (a folder, or a ``.zip``); checkpoints go to a hidden sibling folder
        while training and make ``resume=True`` continue a killed run.
    config : TrainingConfig, optional
        All settings; ``steps``, ``patch_size``, ``batch_size``, ``learning_rate`` and ``seed``
        override its fields.
    validation : (noisy, clean, axes), optional
        An image with ground truth: its PSNR is reported after every epoch.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"mps"``; default the best available.

    Returns
    -------
    TrainedModel
        With the same ``denoise(image, axes=...)`` call as the classical denoisers.
    """
    from infocus.methods import create_scheme
    from infocus.nets import channels_last, create_network
    from infocus.predict.model import TrainedModel
    from infocus.training.data import (
        PatchSampler,
        fixed_validation_patches,
        split_validation,
        to_blocks,
    )
    from infocus.training.normalize import Normalizer

    say = log or (lambda message: print(message, file=sys.stderr))
    config = (config or default_config(method)).with_updates(
        steps=steps,
        patch_size=patch_size,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
    )
    # Check the options now; a blind spot left to be measured ("auto") is resolved with the data.
    scheme = create_scheme(config.method, **_without_unresolved(config.scheme_options))
    output_path = Path(output).expanduser() if output is not None else None
    checkpoint_dir = checkpoint_dir_for(output_path) if output_path is not None else None
    if output_path is not None and output_path.exists() and not overwrite:
        raise OutputExistsError(
            f"Model {output_path} already exists; pass --overwrite to replace it or choose another path."
        )
    if resume and (checkpoint_dir is None or not (checkpoint_dir / CHECKPOINT_NAME).is_file()):
        raise InfocusInputError(
            f"Nothing to resume: no checkpoint for {output_path} was found; start without --resume."
        )
    if scheme.needs_target and targets is None:
        raise InfocusInputError(
            f"Method {config.method!r} learns from pairs; give the targets with --target "
            "(clean images for care, second noisy captures for n2n)."
        )
    if not scheme.needs_target and targets is not None:
        raise InfocusInputError(
            f"Method {config.method!r} is self-supervised and uses no targets; drop --target or "
            "choose care/n2n."
        )

    device_ = select_device(device)
    dist = _Distributed(device_)
    rng = np.random.default_rng([config.seed, dist.rank])
    torch.manual_seed(config.seed)
    generator = torch.Generator(device="cpu").manual_seed(config.seed + 7919 * dist.rank)

    # --- data ----------------------------------------------------------------------------
    loaded = _load(inputs, axes, "input")
    spatial = _spatial(config, [ax for _, ax in loaded])
    input_blocks = [b for data, ax in loaded for b in to_blocks(data, ax, spatial=spatial,
                                                                 channels=config.channels)]
    target_blocks = None
    if targets is not None:
        loaded_targets = _load(targets, axes, "target")
        if len(loaded_targets) != len(loaded):
            raise InfocusInputError(
                f"Got {len(loaded)} input image(s) but {len(loaded_targets)} target image(s); "
                "give one target per input, in the same order."
            )
        target_blocks = [b for data, ax in loaded_targets for b in to_blocks(
            data, ax, spatial=spatial, channels=config.channels)]
        for i, (a, b) in enumerate(zip(input_blocks, target_blocks, strict=True)):
            if tuple(a.shape) != tuple(b.shape):
                raise InfocusInputError(
                    f"Input block {i} has shape {tuple(a.shape)} but its target has "
                    f"{tuple(b.shape)}; inputs and targets must have the same shape."
                )
    channels = int(input_blocks[0].shape[0])
    ndim = len(spatial)
    config, noise_correlation = _resolve_blind_spot(config, input_blocks, ndim, say)
    # CARE's targets may be in other units than its inputs (another exposure, another
    # camera); Noise2Noise's targets are captures like the inputs.
    relation = (_photometric_relation(input_blocks, target_blocks)
                if target_blocks is not None and config.method == "care" else None)
    # Now that the dimensionality is known, rebuild the scheme with its defaults for it.
    scheme = create_scheme(
        config.method, **{**default_scheme_options(config.method, ndim), **config.scheme_options}
    )
    network_options = {"ndim": ndim, "in_channels": channels, "out_channels": channels}
    network_options.update(config.network_options)
    network = create_network(config.network, **network_options)
    multiple = int(network.size_multiple)
    patch_shape = _patch_shape(config, input_blocks, multiple)

    train_in, train_tg, val_in, val_tg = split_validation(
        input_blocks, target_blocks, fraction=config.validation_fraction,
        patch_shape=patch_shape, rng=np.random.default_rng(config.seed),
    )
    input_norm = Normalizer.fit(train_in, rng=np.random.default_rng(config.seed))
    target_norm = (
        Normalizer.fit(train_tg, rng=np.random.default_rng(config.seed))
        if config.method == "care" and train_tg is not None
        else input_norm
    )
    sampler = PatchSampler(train_in, train_tg, patch_shape=patch_shape, augment=config.augment,
                           rotate=getattr(scheme, "rotation_invariant", True), rng=rng)
    val_x, val_y = fixed_validation_patches(
        val_in, val_tg, patch_shape, config.validation_patches, np.random.default_rng(config.seed + 1)
    )
    val_x_t = torch.from_numpy(input_norm.normalize(val_x, channel_axis=1)).to(device_)
    val_y_t = (torch.from_numpy(target_norm.normalize(val_y, channel_axis=1)).to(device_)
               if val_y is not None else None)

    # --- optimisation ----------------------------------------------------------------------
    network.to(device_)
    channels_last(network, ndim)
    model = dist.wrap(network, device_)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    if config.schedule == "cosine":
        scheduler: Any = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config))
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=5)
    history: list[dict[str, Any]] = []
    start_step = 0
    best = {"val_loss": math.inf, "state": None, "epoch": 0}
    if resume:
        assert checkpoint_dir is not None
        state = torch.load(checkpoint_dir / CHECKPOINT_NAME, map_location=device_, weights_only=True)
        saved_config = json.loads(state["config"])
        if saved_config != config.to_dict():
            raise InfocusInputError(
                "The checkpoint was made with other training settings; rerun with the same "
                "options as the killed run, or start afresh without --resume."
            )
        network.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        generator.set_state(state["torch_generator"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = json.loads(state["numpy_rng"])
        history = json.loads(state["history"])
        start_step = int(state["step"])
        best["val_loss"] = float(state["best_val_loss"])
        say(f"Resuming {config.method} from step {start_step} of {config.steps}.")

    validation_model = None
    if validation is not None:
        validation_model = TrainedModel(
            network=network, config=config, spatial=spatial, input_norm=input_norm,
            target_norm=target_norm, history=history, provenance={},
        )

    def validate() -> float:
        network.eval()
        val_generator = torch.Generator(device="cpu").manual_seed(config.seed + 104729)
        with torch.inference_mode():
            losses = []
            for i in range(0, val_x_t.shape[0], config.batch_size):
                x = val_x_t[i : i + config.batch_size]
                y = val_y_t[i : i + config.batch_size] if val_y_t is not None else None
                batch = scheme.prepare(x, y, val_generator)
                prediction = network(channels_last(batch.input, ndim))
                losses.append(float(scheme.loss(prediction, batch)) * x.shape[0])
        network.train()
        return sum(losses) / val_x_t.shape[0]

    progress_ctx: Any = nullcontext(None)
    show = progress and dist.is_main and sys.stderr.isatty()
    if show:
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        from infocus.cli._common import console

        progress_ctx = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("step {task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]:.4g} val {task.fields[val]:.4g}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console,
        )
    network.train()
    running: list[float] = []
    started = time.perf_counter()
    stopped_early = False
    with progress_ctx as bar:
        task = (bar.add_task(f"train {config.method}", total=config.steps, completed=start_step,
                             loss=math.nan, val=math.nan) if bar is not None else None)
        for step in range(start_step, config.steps):
            x_np, y_np = sampler.sample(config.batch_size)
            x = torch.from_numpy(input_norm.normalize(x_np, channel_axis=1)).to(device_)
            y = (torch.from_numpy(target_norm.normalize(y_np, channel_axis=1)).to(device_)
                 if y_np is not None else None)
            batch = scheme.prepare(x, y, generator)
            loss = scheme.loss(model(channels_last(batch.input, ndim)), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if config.schedule == "cosine":
                scheduler.step()
            running.append(float(loss.detach()))
            done = step + 1
            if bar is not None:
                bar.update(task, completed=done, loss=float(np.mean(running[-20:])))
            if done % config.steps_per_epoch and done != config.steps:
                continue
            # --- end of an epoch: validate, log, checkpoint, maybe stop -------------------
            val_loss = dist.mean(validate()) if dist.is_main or dist.enabled else math.nan
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
            running = []
            if validation_model is not None and dist.is_main:
                from infocus.metrics import psnr

                noisy, clean, val_axes = validation
                denoised = validation_model.denoise(noisy, axes=val_axes, backend="torch")
                entry["val_psnr"] = psnr(denoised, clean)
                network.train()
            history.append(entry)
            if bar is not None:
                bar.update(task, val=val_loss)
            elif dist.is_main and progress:
                extra = f", val PSNR {entry['val_psnr']:.2f} dB" if "val_psnr" in entry else ""
                say(f"epoch {entry['epoch']}: step {done}/{config.steps}, train loss "
                    f"{entry['train_loss']:.4g}, val loss {val_loss:.4g}{extra}")
            if val_loss < best["val_loss"]:
                best.update(val_loss=val_loss, state=copy.deepcopy(network.state_dict()),
                            epoch=entry["epoch"])
            if checkpoint_dir is not None and dist.is_main:
                _save_checkpoint(checkpoint_dir, network, optimizer, scheduler, generator, rng,
                                 history, done, best["val_loss"], config)
            dist.barrier()
            if (config.patience is not None
                    and entry["epoch"] - best["epoch"] >= config.patience):
                say(f"Early stop: no better validation loss for {config.patience} epochs; "
                    f"keeping the weights of epoch {best['epoch']}.")
                stopped_early = True
                break
    if stopped_early and best["state"] is not None:
        network.load_state_dict(best["state"])
    network.eval()
    trained = TrainedModel(
        network=network, config=config, spatial=spatial, input_norm=input_norm,
        target_norm=target_norm, history=history,
        provenance=_provenance(config, loaded, device_, time.perf_counter() - started),
    )
    if noise_correlation is not None:
        trained.provenance["noise_correlation"] = noise_correlation
    if relation is not None:
        trained.provenance["photometric_relation"] = relation
    if output_path is not None and dist.is_main:
        trained.save(output_path, overwrite=overwrite)
        if checkpoint_dir is not None:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
    dist.barrier()
    return trained


def _save_checkpoint(
    folder: Path, network: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
    generator: torch.Generator, rng: np.random.Generator, history: list[dict[str, Any]],
    step: int, best_val_loss: float, config: TrainingConfig,
) -> None:
    """Everything needed to continue bit-identically; only tensors, numbers and strings, so it
    loads with ``torch.load(weights_only=True)`` (no pickled code)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "model": network.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": json.dumps(rng.bit_generator.state),
        "history": json.dumps(history),
        "step": step,
        "best_val_loss": best_val_loss,
        "config": json.dumps(config.to_dict()),
    }
    temporary = folder / f".{CHECKPOINT_NAME}.tmp"
    torch.save(state, temporary)
    os.replace(temporary, folder / CHECKPOINT_NAME)


def _photometric_relation(inputs: list[Any], targets: list[Any]) -> list[dict[str, float]]:
    """Per channel, how target intensities relate to input intensities at large scales
    (:func:`infocus.predict.calibration.photometric_relation`), from sampled planes."""
    from infocus.predict.calibration import photometric_relation
    from infocus.training.data import sample_planes

    x, t = sample_planes(inputs), sample_planes(targets)
    relations = [photometric_relation(x[c], t[c]) for c in range(x.shape[0])]
    return [{"alpha": alpha, "beta": beta} for alpha, beta in relations]


def _provenance(
    config: TrainingConfig, loaded: Sequence[tuple[Any, str]], device: torch.device, seconds: float
) -> dict[str, Any]:
    import hashlib
    import platform

    from infocus import __version__

    digest = hashlib.sha256()
    for data, axes in loaded:
        digest.update(axes.encode())
        digest.update(str(tuple(data.shape)).encode())
        # Hash a strided sample: enough to tell data sets apart without reading a huge array.
        index = tuple(slice(None, None, max(1, n // 64)) for n in data.shape)
        digest.update(np.ascontiguousarray(np.asarray(data[index]), dtype=np.float32).tobytes())
    return {
        "infocus_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "seed": config.seed,
        "data_sha256": digest.hexdigest(),
        "data_shapes": [[list(map(int, d.shape)), ax] for d, ax in loaded],
        "training_seconds": round(seconds, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
