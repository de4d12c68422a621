"""Training in several processes with ``torch.distributed``: gloo on CPUs, NCCL on GPUs.

Data-parallel training (Li et al., "PyTorch Distributed: Experiences on Accelerating Data
Parallel Training", VLDB 2020): every process holds the same network, draws its share of
every batch, and ``DistributedDataParallel`` averages the gradients before each optimiser
step. infocus keeps the *global* batch fixed: with ``N`` processes each one draws
``batch_size / N`` patches, with its own random stream, from the same training/validation
split, so a step sees as many patches as a single-process step and a run trains like one
(batch normalisation excepted: its statistics are per process, as in CAREamics and n2v).
Only the first process (rank 0) writes checkpoints and the model; the random streams of all
processes go into every checkpoint, so a killed run resumes as if it had never stopped.

Two ways in:

* ``train(..., processes=N)`` / ``infocus train ... --processes N`` starts ``N`` worker
  processes on this machine with torch's elastic launcher (the engine of ``torchrun``), and
  forwards their progress to the caller.
* ``torchrun --nnodes 2 --nproc-per-node 4 ... -m infocus.cli train ...`` on a cluster: the
  environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``) says which process this is; nothing
  else changes.
"""

from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import shutil
import signal
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from infocus._errors import InfocusInputError, OutputExistsError

if TYPE_CHECKING:
    from infocus.predict.model import TrainedModel

__all__ = ["Distributed", "check_processes", "train_in_processes"]

#: The most processes ``--processes`` starts on one machine.
MAX_PROCESSES = 64


class Distributed:
    """This process's place in a distributed run (one process, when not distributed).

    Attributes
    ----------
    world_size, rank : int
        Number of processes and this one's index (from ``WORLD_SIZE`` and ``RANK``).
    enabled : bool
        More than one process.
    """

    def __init__(self, device: torch.device) -> None:
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world_size > 1
        if self.enabled and not torch.distributed.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)

    @property
    def is_main(self) -> bool:
        """The process that writes checkpoints and the model, and reports progress."""
        return self.rank == 0

    def share(self, batch_size: int) -> int:
        """Patches this process draws per step: an equal share of the global batch."""
        if batch_size % self.world_size:
            raise InfocusInputError(
                f"A batch of {batch_size} patches cannot be shared equally by "
                f"{self.world_size} processes; use a --batch-size that is a multiple of "
                f"{self.world_size}."
            )
        return batch_size // self.world_size

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` under ``DistributedDataParallel`` (gradients averaged), or as it is."""
        if not self.enabled:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.enabled:
            torch.distributed.barrier()

    def mean(self, value: float) -> float:
        """Mean of ``value`` over the processes."""
        if not self.enabled:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        torch.distributed.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def gather(self, value: Any) -> list[Any]:
        """Every process's ``value`` (picklable), in rank order, on every process."""
        if not self.enabled:
            return [value]
        values: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(values, value)
        return values


# ------------------------------------------------------------------------ the launcher
class _Forward:
    """A picklable stand-in for the caller's progress or log callback in a worker: it puts
    what it is called with on a queue that the launching process reads."""

    def __init__(self, channel: Any, kind: str) -> None:
        self.channel = channel
        self.kind = kind

    def __call__(self, item: Any) -> None:
        self.channel.put((self.kind, item))


def _quiet(message: str) -> None:
    """The log of every process but the first."""


def _worker(options: dict[str, Any], progress: bool | str, channel: Any, threads: int
            ) -> tuple[str, str] | None:
    """One process of :func:`train_in_processes`; returns an input error as (class, text).

    ``progress`` is the caller's setting, ``"callback"`` standing for a callable."""
    from infocus.training.loop import train

    torch.set_num_threads(threads)
    if int(os.environ.get("RANK", "0")) == 0:
        shown = _Forward(channel, "progress") if progress == "callback" else progress
        log: Callable[[str], None] = _Forward(channel, "log")
    else:
        shown, log = False, _quiet
    try:
        train(**options, progress=shown, log=log)
    except InfocusInputError as error:  # the same on every process: the data decide it
        return type(error).__name__, str(error)
    return None


class _Relay(threading.Thread):
    """Hands what the workers report to the caller's callbacks. A callback that raises (a
    Ctrl-C, a cancel button) stops the run: the launcher is interrupted as by Ctrl-C, and the
    callback's exception is raised in the launching thread."""

    def __init__(self, channel: Any, progress: Any, log: Callable[[str], None]) -> None:
        super().__init__(daemon=True)
        self.channel, self.progress, self.log = channel, progress, log
        self.done = threading.Event()
        self.raised: BaseException | None = None

    def run(self) -> None:
        while True:
            try:
                kind, item = self.channel.get(timeout=0.1)
            except queue_module.Empty:
                if self.done.is_set():
                    return
                continue
            try:
                if kind == "progress" and callable(self.progress):
                    self.progress(item)
                elif kind == "log":
                    self.log(item)
            except BaseException as error:  # noqa: BLE001 - handed to the launching thread
                self.raised = error
                os.kill(os.getpid(), signal.SIGINT)
                return

    def finish(self) -> None:
        self.done.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join()


def train_in_processes(options: dict[str, Any], processes: int, *,
                       progress: bool | Callable[[Any], None], log: Callable[[str], None]
                       ) -> TrainedModel:
    """Run :func:`~infocus.training.loop.train` with ``options`` in ``processes`` local
    processes (torch's elastic launcher, as ``torchrun --standalone``) and return the model.

    What the first process reports reaches ``progress`` (a callable, or True for epoch
    lines) and ``log`` here.

    The processes share the machine's cores (``cores // processes`` threads each, at least
    one) or take one GPU each. The model is written by the first process to ``options
    ["output"]`` (to a temporary folder when there is none) and read back here.
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from infocus.predict.model import load_model

    check_processes(processes)
    output = options.get("output")
    staging = None if output is not None else Path(tempfile.mkdtemp(prefix="infocus-train-"))
    target = Path(output).expanduser() if output is not None else staging / "model"
    options = {**options, "output": target}
    channel = multiprocessing.get_context("spawn").Queue()
    relay = _Relay(channel, progress, log)
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=processes, run_id=f"infocus-{uuid.uuid4()}",
        rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
        start_method="spawn", monitor_interval=0.1,
    )
    threads = max(1, (os.cpu_count() or 1) // processes)
    relay.start()
    try:
        shown = "callback" if callable(progress) else bool(progress)
        try:
            results = elastic_launch(config, _worker)(options, shown, channel, threads)
        except SignalException:  # SIGTERM or Ctrl-C: the launcher has stopped the workers
            relay.finish()
            if relay.raised is not None:
                raise relay.raised from None
            raise KeyboardInterrupt from None
        except ChildFailedError as error:
            raise InfocusInputError(_failure_sentence(error)) from None
        relay.finish()
        if relay.raised is not None:  # raised by a callback after the workers had finished
            raise relay.raised
        errors = [result for result in results.values() if result is not None]
        if errors:
            kind, message = errors[0]
            raise (OutputExistsError if kind == OutputExistsError.__name__
                   else InfocusInputError)(message)
        return load_model(target)
    finally:
        relay.finish()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _failure_sentence(error: Any) -> str:
    """One sentence for a worker process that crashed (not an input error: those return)."""
    rank, failure = error.get_first_failure()
    message = failure.message.get("message") if isinstance(failure.message, dict) else None
    why = (message or f"exit code {failure.exitcode}").splitlines()[0][:200]
    return (f"Training process {rank} stopped ({why}); the last checkpoint is kept, so rerun "
            "with --resume once the cause (memory, a killed process) is fixed.")


def check_processes(processes: int) -> None:
    """Refuse a process count this machine cannot start, in one sentence."""
    if isinstance(processes, bool) or not isinstance(processes, int) or not (
            1 <= processes <= MAX_PROCESSES):
        raise InfocusInputError(
            f"processes must be a whole number from 1 to {MAX_PROCESSES} (got {processes!r})."
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise InfocusInputError(
            "This is already one process of a distributed run (started by torchrun); leave out "
            "--processes there: torchrun's --nproc-per-node sets the number."
        )
    if torch.cuda.is_available() and processes > torch.cuda.device_count():
        raise InfocusInputError(
            f"{processes} processes need {processes} GPUs, one each, but this machine has "
            f"{torch.cuda.device_count()}; ask for at most that many."
        )
