"""Denoising on a dask.distributed cluster: stacks larger than one machine, block by block.

A trained model sees an image as *blocks*: one plane (2-D model) or one volume (3-D model)
per time point, channel and sample. Blocks are independent, so they are the unit of work:
each dask task reads one block from the input (Zarr, TIFF or ``.npy``, read lazily), predicts
it with exactly the code a single process runs (tiled, with a blending margin that covers the
receptive field, so tile sizes chosen from a worker's own free memory do not change the result),
and writes it into the output Zarr, whose chunks never span two blocks. Hence

* the result equals single-process prediction (to float rounding: tiling is exact);
* a worker loads and prepares the model once (per model file content), not once per block:
  its network is exported for ONNX Runtime once where the whole stack is large enough for the
  export to pay off, as it is in one ``infocus predict`` process;
* a worker holds the model, one block and a few tiles, whatever the stack's size; a task
  returns only the count of clipped pixels, so the client never holds pixels either;
* Zarr writes every chunk to a temporary file and renames it (``zarr.storage.LocalStore``), so
  a killed job never leaves a half-written chunk under its final name; a block is recorded as
  finished (an empty marker file) only after all its chunks are written, and ``resume=True``
  skips finished blocks;
* the output appears under its final name only when every block is done.

The cluster is dask's: ``workers=N`` starts a ``LocalCluster`` of N worker processes;
``scheduler="tcp://host:8786"`` uses a running one (dask-jobqueue on SLURM, dask-gateway on
Kubernetes). The input, the output folder and the model must be reachable by the workers
under the same paths (a shared file system).

The classical denoisers (:func:`denoise_distributed`) run on the same engine. They choose
their noise domain and automatic parameters per channel from the whole stack, so the client
makes that choice once (:func:`infocus.classical.plan_denoising`, one channel in memory at a
time) and every worker denoises its block (one (Z)YX volume per time point, channel and sample)
with that plan: the result equals one ``infocus denoise`` process. The plan is recorded with the
job, and a resumed run reuses it.

:func:`denoise_dask` is the lazy form: a dask array in, a dask array out.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from infocus._errors import InfocusInputError, OutputExistsError

if TYPE_CHECKING:
    from infocus.classical import DenoisePlan
    from infocus.noise import NoiseParams
    from infocus.predict.model import TrainedModel

__all__ = ["denoise_dask", "denoise_distributed", "predict_distributed"]

#: How long to wait for a scheduler given by its address.
CONNECT_TIMEOUT = "30s"

_INSTALL_HINT = ("Distributed prediction needs dask.distributed; install it with "
                 "pip install 'infocus[distributed]'.")


def _require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(_INSTALL_HINT) from None
    return distributed


@dataclass(frozen=True)
class _ModelTask:
    """Predict a block with a saved model (plain values: it travels to workers)."""

    model: str
    settings: dict[str, Any] = field(default_factory=dict)
    #: The SHA-256 of the model's files: a worker reloads the model only when it changed.
    model_digest: str = ""
    #: Pixels of the whole input: what one process would predict with one exported network.
    pixels: int = 0

    def run(self, block: np.ndarray, axes: str, where: dict[str, int], job: _Job
            ) -> dict[str, np.ndarray]:
        import torch

        from infocus.predict.backends import ONNX_MIN_PIXELS

        threads = _task_threads(job.threads_by_host)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        model = _worker_model(self.model, self.model_digest)
        # backend="auto" decides as one process predicting the whole stack would: by the
        # stack's size, not the block's, since the exported network is kept between blocks.
        model.onnx_min_pixels = 0 if self.pixels >= ONNX_MIN_PIXELS else None
        also = tuple(n for n in job.outputs if n not in ("denoised", "uncertainty"))
        result = model.predict(block, axes=axes, uncertainty="uncertainty" in job.outputs,
                               also=also, **self.settings)
        return {name: result.extras[name] if name in also else getattr(result, name)
                for name in job.outputs}


@dataclass(frozen=True)
class _ClassicalTask:
    """Denoise a block with a classical method and the stack's plan (JSON forms)."""

    method: str
    options: dict[str, Any]
    noise: dict[str, float] | None
    vst: bool | None
    plan: dict[str, Any]

    def run(self, block: np.ndarray, axes: str, where: dict[str, int], job: _Job
            ) -> dict[str, np.ndarray]:
        plan = _worker_plan(json.dumps(self.plan, sort_keys=True))
        return {"denoised": plan.channel(where.get("C", 0)).denoise(block, axes=axes)}


@dataclass(frozen=True)
class _Job:
    """Everything a worker needs to process one block (plain values: it travels to workers)."""

    task: _ModelTask | _ClassicalTask
    source: str
    axes: str
    partial: str
    markers: str
    dtype: str
    outputs: tuple[str, ...]
    #: dask threads per host: the cores of a worker's machine are shared among them.
    threads_by_host: dict[str, int] = field(default_factory=dict)

    def fingerprint(self) -> dict[str, Any]:
        """What a resumed run must share with the killed one."""
        return {k: v for k, v in asdict(self).items() if k not in ("threads_by_host",)}


def predict_distributed(
    model: str | os.PathLike[str] | TrainedModel,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    axes: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    dtype: str = "float32",
    uncertainty: str | os.PathLike[str] | None = None,
    also: dict[str, str | os.PathLike[str]] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **settings: Any,
) -> Path:
    """Predict the image file ``source`` block by block on a dask.distributed cluster.

    Parameters
    ----------
    model : path or TrainedModel
        A saved model (the workers load it), or a model object (saved once beside the output).
    source : path
        The noisy image (Zarr, TIFF, ``.npy``); workers read only the blocks they predict.
    output : path ending in ``.zarr``
        Written block by block under a hidden partial name, renamed when complete.
    workers : int, optional
        Start a local cluster of this many worker processes (default: one per two cores).
    scheduler : str, optional
        Address of a running dask scheduler to use instead.
    resume : bool
        Continue a killed run that was writing ``output``: finished blocks are kept.
    overwrite : bool
        Replace an existing ``output`` (and any partial run's files).
    dtype : str
        Output pixel type.
    uncertainty : path ending in ``.zarr``, optional
        Also write the per-pixel posterior standard deviation (probabilistic methods).
    also : dict, optional
        Further images by name and path (``.zarr``), e.g. ``{"deconvolved": path}``.
    progress : callable, optional
        Called as ``progress(done_blocks, total_blocks)``.
    **settings
        As for :meth:`TrainedModel.predict` (``tile_size``, ``overlap``, ``tta``,
        ``batch_size``, ``backend`` and the method's own options).

    Returns
    -------
    Path of the written output.
    """
    _require_distributed()
    from infocus.predict.model import TrainedModel, load_model

    targets = {"denoised": output}
    if uncertainty is not None:
        targets["uncertainty"] = uncertainty
    targets.update(also or {})
    run = _Run(targets, resume=resume, overwrite=overwrite)
    loaded = model if isinstance(model, TrainedModel) else load_model(model)
    for name in run.targets:
        if name != "denoised":
            loaded.require_output(name)
    from infocus.io import open_image_lazy

    image = open_image_lazy(source, axes=axes)
    layout = loaded._layout(image.data, image.axes)
    run.prepare()
    model_path = _model_for_workers(model, loaded, run.markers)
    task = _ModelTask(model=str(model_path), settings=_plain_settings(settings),
                      model_digest=_model_digest(model_path),
                      pixels=int(np.prod(image.data.shape)))
    return run.execute(task, source, image, layout.loop_axes, workers=workers,
                       scheduler=scheduler, dtype=dtype, progress=progress)


def denoise_distributed(
    method: str,
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    axes: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    dtype: str = "float32",
    noise: NoiseParams | None = None,
    vst: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> Path:
    """Denoise the image file ``source`` with a classical method, block by block, on a dask cluster.

    The noise domain and the automatic parameters of every channel are chosen once, on the
    client, from the whole channel, exactly as one :func:`infocus.denoise` call on the whole
    stack would choose them (:func:`infocus.classical.plan_denoising`; the client holds one
    channel at a time). Each task then denoises one (Z)YX block with that plan, so the result
    equals the single-process one.

    Parameters
    ----------
    method : str
        A classical denoiser, see :func:`infocus.classical.list_denoisers`.
    source : path
        The noisy image (Zarr, TIFF, ``.npy``); workers read only the blocks they denoise.
    output : path ending in ``.zarr``
        Written block by block under a hidden partial name, renamed when complete.
    axes : str, optional
        Axes of ``source`` (default: from the file).
    workers : int, optional
        Start a local cluster of this many worker processes (default: one per two cores).
    scheduler : str, optional
        Address of a running dask scheduler to use instead.
    resume : bool
        Continue a killed run that was writing ``output``: finished blocks and the recorded
        plan are kept.
    overwrite : bool
        Replace an existing ``output`` (and any partial run's files).
    dtype : str
        Output pixel type.
    noise : NoiseParams, optional
        Noise model of every channel (default: estimated per channel).
    vst : bool, optional
        Force or forbid the variance-stabilising transform (default: automatic).
    progress : callable, optional
        Called as ``progress(done_blocks, total_blocks)``.
    **options
        The method's own options, as for :func:`infocus.denoise`.

    Returns
    -------
    Path of the written output.

    Examples
    --------
    >>> denoise_distributed("nl_means", "movie.zarr", "denoised.zarr", workers=4)  # doctest: +SKIP
    """
    _require_distributed()
    from infocus.classical import get_denoiser
    from infocus.io import open_image_lazy

    get_denoiser(method)  # an unknown name fails here, before any work
    run = _Run({"denoised": output}, resume=resume, overwrite=overwrite)
    image = open_image_lazy(source, axes=axes)
    run.prepare()
    plan = run.recorded_plan() or _plan_channel_by_channel(
        method, image.data, image.axes, noise=noise, vst=vst, options=options)
    # The options as given (not the recorded plan's): a resumed run must be asked the same.
    task = _ClassicalTask(method=method.lower(), options=dict(options),
                          noise=None if noise is None else noise.to_dict(),
                          vst=vst, plan=plan.to_dict())
    loop_axes = [a for a in image.axes if a not in "ZYX"]
    return run.execute(task, source, image, loop_axes, workers=workers, scheduler=scheduler,
                       dtype=dtype, progress=progress)


def _plan_channel_by_channel(method: str, data: Any, axes: str, *, noise: Any, vst: Any,
                             options: dict[str, Any]) -> DenoisePlan:
    """The plan of the whole stack, reading one channel at a time."""
    from infocus.classical import DenoisePlan, plan_denoising

    if "C" not in axes:
        return plan_denoising(method, np.asarray(data[...]), axes=axes, noise=noise, vst=vst,
                              **options)
    channel_axes = axes.replace("C", "")
    plans = []
    for c in range(data.shape[axes.index("C")]):
        index = tuple(c if a == "C" else slice(None) for a in axes)
        plans.append(plan_denoising(method, np.asarray(data[index]), axes=channel_axes,
                                    noise=noise, vst=vst, **options))
    return DenoisePlan(plans[0].method, plans[0].options,
                       tuple(p.channels[0] for p in plans))


class _Run:
    """One distributed job writing Zarr outputs: its files, its record and its execution."""

    def __init__(self, targets: dict[str, str | os.PathLike[str]], *, resume: bool,
                 overwrite: bool) -> None:
        from infocus.io._atomic import check_output_path
        from infocus.io._common import resolve_path

        self.targets = {name: resolve_path(path) for name, path in targets.items()}
        for path in self.targets.values():
            if path.suffix.lower() != ".zarr":
                raise InfocusInputError(
                    f"Distributed denoising writes Zarr, chunk by chunk, but the output is "
                    f"{path}; give a name ending in .zarr (convert it afterwards if needed)."
                )
            check_output_path(path, overwrite=overwrite)
        self.resume, self.overwrite = resume, overwrite
        main = self.targets["denoised"]
        self.partial = {name: path.parent / f".{path.name}.partial"
                        for name, path in self.targets.items()}
        self.markers = main.parent / f".{main.name}.progress"

    def prepare(self) -> None:
        """Clear or keep what a killed run left, as asked; the folder for the markers."""
        _prepare(self.partial, self.markers, resume=self.resume, overwrite=self.overwrite)
        self.markers.mkdir(parents=True, exist_ok=True)

    def recorded_plan(self) -> DenoisePlan | None:
        """The plan a killed classical run recorded, which a resumed run must reuse."""
        from infocus.classical import DenoisePlan

        record = self.markers / "job.json"
        if not self.resume or not record.exists():
            return None
        plan = json.loads(record.read_text()).get("task", {}).get("plan")
        return None if plan is None else DenoisePlan.from_dict(plan)

    def execute(self, task: _ModelTask | _ClassicalTask, source: str | os.PathLike[str],
                image: Any, loop_axes: list[str], *, workers: int | None,
                scheduler: str | None, dtype: str,
                progress: Callable[[int, int], None] | None) -> Path:
        """Process every block not yet done, then move the outputs into place."""
        from infocus.io._atomic import _move_into_place
        from infocus.io._common import resolve_path

        distributed = _require_distributed()
        main = self.targets["denoised"]
        blocks = _blocks(image.axes, loop_axes, tuple(image.data.shape))
        job = _Job(task=task, source=str(resolve_path(source)), axes=image.axes,
                   partial=json.dumps({k: str(v) for k, v in self.partial.items()}),
                   markers=str(self.markers), dtype=str(np.dtype(dtype)),
                   outputs=tuple(self.targets))
        _check_or_record(job, self.markers, len(blocks), resume=self.resume)
        _create_outputs(self.partial, image, loop_axes, dtype, main.name)
        with _DaskClient(distributed, workers, scheduler) as client:
            job = replace(job, threads_by_host=_threads_by_host(client))
            clipped = _run_blocks(client, distributed, job, blocks, progress)
        for name, path in self.targets.items():
            _move_into_place(self.partial[name], path, overwrite=self.overwrite)
        shutil.rmtree(self.markers, ignore_errors=True)
        if clipped:
            from infocus.io import ClippingWarning

            warnings.warn(ClippingWarning(
                f"{clipped} pixel(s) were clipped to the {dtype} range in {main}.",
                n_clipped=clipped, n_pixels=int(np.prod(image.data.shape)), dtype=str(dtype)),
                stacklevel=3)
        return main


def _blocks(axes: str, loop_axes: list[str], shape: tuple[int, ...]) -> list[tuple[Any, ...]]:
    """The index that selects each block: one position along every loop axis, the rest whole."""
    loop_shape = tuple(shape[axes.index(a)] for a in loop_axes)
    indices = []
    for position in np.ndindex(*loop_shape):
        index: list[Any] = [slice(None)] * len(axes)
        for a, p in zip(loop_axes, position, strict=True):
            index[axes.index(a)] = p
        indices.append(tuple(index))
    return indices


def _plain_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Prediction settings without the ones that make no sense on a worker."""
    return {k: v for k, v in settings.items() if k not in ("progress", "out", "uncertainty_out")
            and v is not None}


def _prepare(partial: dict[str, Path], markers: Path, *, resume: bool, overwrite: bool) -> None:
    """Clear or keep what a killed run left, as asked."""
    left = [p for p in (*partial.values(), markers) if p.exists()]
    if not left:
        return
    if resume:
        return
    if not overwrite:
        raise OutputExistsError(
            f"A killed prediction left {left[0]}; pass --resume to continue it, or --overwrite "
            "to start afresh."
        )
    for path in left:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def _model_for_workers(model: Any, loaded: TrainedModel, markers: Path) -> Path:
    """A path the workers load the model from: the given one, or the object saved once."""
    markers.mkdir(parents=True, exist_ok=True)
    if not hasattr(model, "network"):
        from infocus.io._common import resolve_path

        return resolve_path(model)
    path = markers / "model"
    if not path.exists():
        loaded.save(path)
    return path


def _model_digest(path: Path) -> str:
    """SHA-256 of a model's files (folder or .zip), the key of the workers' model cache."""
    import hashlib

    from infocus.predict.model import _model_files

    digest = hashlib.sha256()
    for name, data in sorted(_model_files(Path(path)).items()):
        digest.update(name.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def _check_or_record(job: _Job, markers: Path, count: int, *, resume: bool) -> None:
    """Write what this run is; a resumed run must be the same one."""
    record = markers / "job.json"
    wanted = {**job.fingerprint(), "blocks": count}
    if resume and record.exists():
        if json.loads(record.read_text()) != json.loads(json.dumps(wanted)):
            raise InfocusInputError(
                "The killed run was made with another model or method, input or settings; "
                "rerun it with the same ones, or start afresh with --overwrite instead of "
                "--resume."
            )
        return
    temporary = record.with_suffix(".tmp")
    temporary.write_text(json.dumps(wanted, indent=2))
    os.replace(temporary, record)


def _create_outputs(partial: dict[str, Path], image: Any, loop_axes: list[str], dtype: str,
                    name: str) -> None:
    """The output Zarrs, chunked so that no chunk spans two blocks (created once)."""
    from infocus.io._zarr import create_zarr
    from infocus.predict.stream import output_dtype

    one_per_block = {a: 1 for a in loop_axes}
    for key, path in partial.items():
        if path.exists():
            continue
        create_zarr(path, shape=tuple(image.data.shape), dtype=np.dtype(output_dtype(key, dtype)),
                    axes=image.axes,
                    pixel_sizes=image.pixel_sizes, unit=image.unit,
                    channel_names=image.channel_names,
                    name=name if key == "denoised" else f"{name} ({key})",
                    chunk_limits=one_per_block)


_TRIM = "MALLOC_TRIM_THRESHOLD_"


@contextlib.contextmanager
def _adaptive_malloc() -> Iterator[None]:
    """Start worker processes without dask's ``MALLOC_TRIM_THRESHOLD_``.

    Setting it also turns off glibc's adaptive mmap threshold: every array above 128 KiB is
    then mapped and zeroed afresh, and a worker spent about a third more CPU time per block
    (page faults) than one process. dask also leaves the variable in this process's
    environment once it has started a worker, so that copy is hidden while ours start; one
    set by the user to another value is kept.
    """
    import dask

    key = f"distributed.nanny.pre-spawn-environ.{_TRIM}"
    dasks = dask.config.get(key, default=None)
    inherited = os.environ.get(_TRIM)
    if inherited is not None and dasks is not None and inherited == str(dasks):
        del os.environ[_TRIM]
    try:
        with dask.config.set({key: None}):
            yield
    finally:
        if inherited is not None:
            os.environ[_TRIM] = inherited


class _DaskClient:
    """A dask client: on a running scheduler, or on a local cluster closed afterwards."""

    def __init__(self, distributed: Any, workers: int | None, scheduler: str | None) -> None:
        self.distributed, self.workers, self.scheduler = distributed, workers, scheduler
        self.cluster = None
        self.client = None

    def __enter__(self) -> Any:
        import logging

        distributed = self.distributed
        if self.scheduler is not None:
            try:
                self.client = distributed.Client(self.scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as error:
                raise InfocusInputError(
                    f"No dask scheduler answered at {self.scheduler} ({error}); start one "
                    "(dask scheduler, dask-jobqueue, dask-gateway) or use --workers N for a "
                    "local cluster."
                ) from None
            return self.client
        cores = os.cpu_count() or 1
        workers = self.workers or max(1, cores // 2)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InfocusInputError(f"workers must be a positive integer (got {workers!r}).")
        with _adaptive_malloc():
            self.cluster = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=":0", silence_logs=logging.ERROR,
            )
        self.client = distributed.Client(self.cluster)
        return self.client

    def __exit__(self, *exc: Any) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _threads_by_host(client: Any) -> dict[str, int]:
    """The dask threads (tasks that may run at once) on each host of the cluster."""
    from distributed.comm import get_address_host

    hosts: dict[str, int] = {}
    for address, threads in client.nthreads().items():
        host = get_address_host(address)
        hosts[host] = hosts.get(host, 0) + int(threads)
    return hosts


def _run_blocks(client: Any, distributed: Any, job: _Job, blocks: list[tuple[Any, ...]],
                progress: Callable[[int, int], None] | None) -> int:
    """Submit every block not yet finished; report as they finish; the clipped-pixel count."""
    markers = Path(job.markers)
    todo = [n for n in range(len(blocks)) if not (markers / f"{n}.done").exists()]
    done = len(blocks) - len(todo)
    if progress is not None:
        progress(done, len(blocks))
    futures = [client.submit(_predict_block, job, n, blocks[n], pure=False) for n in todo]
    clipped = 0
    try:
        for future in distributed.as_completed(futures):
            clipped += future.result()
            done += 1
            if progress is not None:
                progress(done, len(blocks))
    except BaseException:
        client.cancel(futures)
        raise
    return clipped


# --------------------------------------------------------------------------- on a worker
@functools.lru_cache(maxsize=2)
def _worker_model(path: str, digest: str) -> TrainedModel:
    """The model, loaded once per worker process and model file content (``digest``); the
    object is kept between tasks, and with it the network it exported for ONNX Runtime
    (:meth:`TrainedModel._runner` keeps it)."""
    from infocus.predict.model import load_model

    return load_model(path)


@functools.lru_cache(maxsize=2)
def _worker_source(path: str, axes: str) -> Any:
    from infocus.io import open_image_lazy

    return open_image_lazy(path, axes=axes).data


def _task_threads(threads_by_host: dict[str, int]) -> int:
    """Threads for torch and ONNX Runtime in one task: the cores this worker may use (its CPU
    affinity, as SLURM sets it), shared among the dask threads on its host."""
    try:
        from distributed import get_worker
        from distributed.comm import get_address_host

        sharing = threads_by_host.get(get_address_host(get_worker().address), 1)
    except ValueError:  # called outside a dask worker
        sharing = 1
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
             else os.cpu_count() or 1)
    return max(1, cores // max(1, sharing))


def _worker_targets(job: _Job) -> dict[str, Any]:
    import zarr

    from infocus.io._zarr import zarr_storage_axes

    stored = zarr_storage_axes(job.axes)
    return {name: (zarr.open_array(str(Path(path) / "0"), mode="r+"), stored)
            for name, path in json.loads(job.partial).items()}


@functools.lru_cache(maxsize=2)
def _worker_plan(plan: str) -> DenoisePlan:
    from infocus.classical import DenoisePlan

    return DenoisePlan.from_dict(json.loads(plan))


def _predict_block(job: _Job, number: int, index: tuple[Any, ...]) -> int:
    """Denoise block ``number`` (selected by ``index``) and write it; the clipped count."""
    from infocus.predict.stream import _ConvertingWriter, output_dtype

    block = np.asarray(_worker_source(job.source, job.axes)[index])
    kept = "".join(a for a, i in zip(job.axes, index, strict=True) if isinstance(i, slice))
    where = {a: int(i) for a, i in zip(job.axes, index, strict=True) if not isinstance(i, slice)}
    results = job.task.run(block, kept, where, job)
    clipped = 0
    for name, (array, stored) in _worker_targets(job).items():
        writer = _ConvertingWriter(array, job.axes, stored,
                                   np.dtype(output_dtype(name, job.dtype)))
        writer[index] = results[name]
        clipped += writer.clipped
    marker = Path(job.markers) / f"{number}.done"
    marker.touch()  # only now: every chunk of this block is on disk
    return clipped


# ------------------------------------------------------------------------------ lazy form
def denoise_dask(model: TrainedModel | str, array: Any, *, axes: str, **settings: Any) -> Any:
    """A lazy dask array of the denoised dask (or NumPy) array ``array``.

    Parameters
    ----------
    model : TrainedModel or str
        A trained model, or the name of a classical denoiser
        (:func:`infocus.classical.list_denoisers`).
    array : dask or NumPy array
        The noisy stack.
    axes : str
        Its axes over ``STCZYX``.
    **settings
        As for :meth:`TrainedModel.denoise`, or for a classical method its options (``noise``,
        ``vst`` and its own, as for :func:`infocus.denoise`).

    Returns
    -------
    dask.array.Array
        float32, one chunk per block (a whole plane or volume the model sees; a (Z)YX volume
        for a classical method). Compute it with any dask scheduler (a ``distributed.Client``
        spreads the blocks over its workers). Every chunk is denoised as one call on the whole
        stack would denoise it: for a classical method the noise domain and automatic
        parameters are chosen now, from the whole array, one channel at a time
        (:func:`infocus.classical.plan_denoising`).
    """
    try:
        import dask.array as da
    except ImportError:
        raise ImportError(_INSTALL_HINT) from None
    from infocus.axes import check_axes

    array = da.asarray(array)
    axes = check_axes(axes, array.shape)
    run: Callable[[np.ndarray, str, dict[str, int]], np.ndarray]
    if isinstance(model, str):
        noise, vst = settings.pop("noise", None), settings.pop("vst", None)
        plan = _plan_channel_by_channel(model, array, axes, noise=noise, vst=vst,
                                        options=settings)
        loop_axes = [a for a in axes if a not in "ZYX"]

        def run(block: np.ndarray, kept: str, where: dict[str, int]) -> np.ndarray:
            return plan.channel(where.get("C", 0)).denoise(block, axes=kept)
    else:
        loop_axes = model._layout(array, axes).loop_axes

        def run(block: np.ndarray, kept: str, where: dict[str, int]) -> np.ndarray:
            return model.denoise(block, axes=kept, **settings)

    chunks = tuple(1 if a in loop_axes else n for a, n in zip(axes, array.shape, strict=True))
    index = tuple(0 if a in loop_axes else slice(None) for a in axes)
    kept = "".join(a for a in axes if a not in loop_axes)
    expand = tuple(np.newaxis if a in loop_axes else slice(None) for a in axes)

    def denoise(block: np.ndarray, block_info: dict[Any, Any] | None = None) -> np.ndarray:
        # One chunk per position along the loop axes: a chunk's location is its position.
        location = block_info[0]["chunk-location"] if block_info else (0,) * len(axes)
        where = {a: int(location[axes.index(a)]) for a in loop_axes}
        return run(np.asarray(block[index]), kept, where)[expand]

    return array.rechunk(chunks).map_blocks(
        denoise, dtype=np.float32, meta=np.empty((0,) * len(axes), np.float32))
