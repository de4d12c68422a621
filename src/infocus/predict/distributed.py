"""Prediction on a dask.distributed cluster: stacks larger than one machine, block by block.

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from infocus._errors import InfocusInputError, OutputExistsError

if TYPE_CHECKING:
    from infocus.predict.model import TrainedModel

__all__ = ["denoise_dask", "predict_distributed"]

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
class _Job:
    """Everything a worker needs to predict one block (plain values: it travels to workers)."""

    model: str
    source: str
    axes: str
    partial: str
    markers: str
    dtype: str
    outputs: tuple[str, ...]
    #: The SHA-256 of the model's files: a worker reloads the model only when it changed.
    model_digest: str = ""
    #: Pixels of the whole input: what one process would predict with one exported network.
    pixels: int = 0
    settings: dict[str, Any] = field(default_factory=dict)
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
    distributed = _require_distributed()
    from infocus.io import open_image_lazy
    from infocus.io._atomic import _move_into_place, check_output_path
    from infocus.io._common import resolve_path
    from infocus.predict.model import TrainedModel, load_model

    targets = {"denoised": resolve_path(output)}
    if uncertainty is not None:
        targets["uncertainty"] = resolve_path(uncertainty)
    for name, path in (also or {}).items():
        targets[name] = resolve_path(path)
    for path in targets.values():
        if path.suffix.lower() != ".zarr":
            raise InfocusInputError(
                f"Distributed prediction writes Zarr, chunk by chunk, but the output is {path}; "
                "give a name ending in .zarr (convert it afterwards if needed)."
            )
        check_output_path(path, overwrite=overwrite)
    loaded = model if isinstance(model, TrainedModel) else load_model(model)
    for name in targets:
        if name != "denoised":
            loaded.require_output(name)
    image = open_image_lazy(source, axes=axes)
    layout = loaded._layout(image.data, image.axes)
    blocks = [index for _, index in layout.blocks(tuple(image.data.shape))]
    main = targets["denoised"]
    partial = {name: path.parent / f".{path.name}.partial" for name, path in targets.items()}
    markers = main.parent / f".{main.name}.progress"
    _prepare(partial, markers, resume=resume, overwrite=overwrite)
    model_path = _model_for_workers(model, loaded, markers)
    job = _Job(model=str(model_path), source=str(resolve_path(source)), axes=image.axes,
               partial=json.dumps({k: str(v) for k, v in partial.items()}),
               markers=str(markers), dtype=str(np.dtype(dtype)), outputs=tuple(targets),
               model_digest=_model_digest(model_path),
               pixels=int(np.prod(image.data.shape)), settings=_plain_settings(settings))
    _check_or_record(job, markers, len(blocks), resume=resume)
    _create_outputs(partial, image, layout, dtype, main.name)
    with _DaskClient(distributed, workers, scheduler) as client:
        job = _Job(**{**asdict(job), "threads_by_host": _threads_by_host(client)})
        clipped = _run_blocks(client, distributed, job, blocks, progress)
    for name, path in targets.items():
        _move_into_place(partial[name], path, overwrite=overwrite)
    shutil.rmtree(markers, ignore_errors=True)
    if clipped:
        from infocus.io import ClippingWarning

        warnings.warn(ClippingWarning(
            f"{clipped} pixel(s) were clipped to the {dtype} range in {main}.",
            n_clipped=clipped, n_pixels=int(np.prod(image.data.shape)), dtype=str(dtype)),
            stacklevel=2)
    return main


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
                "The killed prediction was made with another model, input or settings; rerun "
                "it with the same ones, or start afresh with --overwrite instead of --resume."
            )
        return
    temporary = record.with_suffix(".tmp")
    temporary.write_text(json.dumps(wanted, indent=2))
    os.replace(temporary, record)


def _create_outputs(partial: dict[str, Path], image: Any, layout: Any, dtype: str, name: str
                    ) -> None:
    """The output Zarrs, chunked so that no chunk spans two blocks (created once)."""
    from infocus.io._zarr import create_zarr
    from infocus.predict.stream import output_dtype

    one_per_block = {a: 1 for a in layout.loop_axes}
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


def _predict_block(job: _Job, number: int, index: tuple[Any, ...]) -> int:
    """Predict block ``number`` (selected by ``index``) and write it; the clipped count."""
    import torch

    from infocus.predict.stream import _ConvertingWriter, output_dtype

    threads = _task_threads(job.threads_by_host)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    from infocus.predict.backends import ONNX_MIN_PIXELS

    model = _worker_model(job.model, job.model_digest)
    # backend="auto" decides as one process predicting the whole stack would: by the stack's
    # size, not the block's, since the exported network is kept between blocks.
    model.onnx_min_pixels = 0 if job.pixels >= ONNX_MIN_PIXELS else None
    block = np.asarray(_worker_source(job.source, job.axes)[index])
    kept = "".join(a for a, i in zip(job.axes, index, strict=True) if isinstance(i, slice))
    also = tuple(n for n in job.outputs if n not in ("denoised", "uncertainty"))
    result = model.predict(block, axes=kept, uncertainty="uncertainty" in job.outputs,
                           also=also, **job.settings)
    clipped = 0
    for name, (array, stored) in _worker_targets(job).items():
        writer = _ConvertingWriter(array, job.axes, stored,
                                   np.dtype(output_dtype(name, job.dtype)))
        writer[index] = result.extras[name] if name in also else getattr(result, name)
        clipped += writer.clipped
    marker = Path(job.markers) / f"{number}.done"
    marker.touch()  # only now: every chunk of this block is on disk
    return clipped


# ------------------------------------------------------------------------------ lazy form
def denoise_dask(model: TrainedModel, array: Any, *, axes: str, **settings: Any) -> Any:
    """A lazy dask array of ``model``'s prediction of the dask (or NumPy) array ``array``.

    The array is rechunked to one chunk per block (a whole plane or volume the model sees),
    and every chunk is predicted as :meth:`TrainedModel.denoise` would; compute it with any
    dask scheduler (a ``distributed.Client`` spreads the blocks over its workers).
    """
    try:
        import dask.array as da
    except ImportError:
        raise ImportError(_INSTALL_HINT) from None
    from infocus.axes import check_axes

    array = da.asarray(array)
    axes = check_axes(axes, array.shape)
    layout = model._layout(array, axes)
    chunks = tuple(1 if a in layout.loop_axes else n for a, n in zip(axes, array.shape,
                                                                     strict=True))
    blocks = array.rechunk(chunks)

    def predict(block: np.ndarray) -> np.ndarray:
        index = tuple(0 if a in layout.loop_axes else slice(None) for a in axes)
        kept = "".join(a for a in axes if a not in layout.loop_axes)
        return model.denoise(np.asarray(block[index]), axes=kept, **settings)[
            tuple(np.newaxis if a in layout.loop_axes else slice(None) for a in axes)]

    return blocks.map_blocks(predict, dtype=np.float32)
