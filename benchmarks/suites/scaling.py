"""Prediction time and peak memory for growing inputs, and a stack larger than its memory cap.

Every measurement is one ``infocus predict`` process (the shipped command, default 16-filter
U-Net, untrained: speed and memory do not depend on what the weights learned) under GNU
``time -v``, which reports the process's peak resident memory.

* **Growing inputs** (1, 4, 16, 64 megapixels as stacks of 1024×1024 frames): once streamed
  Zarr → Zarr (memory should stay flat) and once in memory, ``.npy`` → ``.npy`` (the whole
  input and output are held, so memory grows by about 8 bytes per pixel). Time should grow
  linearly in both.
* **Out of core**: a ``TYX`` uint16 Zarr stack of 4096×4096 frames (64 frames = 2.1 GB)
  predicted to a uint16 Zarr inside a memory cgroup capped at ``out_of_core_memory_gib``;
  the cap is enforced by the kernel where a writable cgroup-v1 memory controller exists (the
  process would be killed above it), and otherwise only measured.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.runner import Context, cpu_model

FRAME = 1024
_RSS = re.compile(r"Maximum resident set size \(kbytes\):\s*(\d+)")
_CPU = re.compile(r"(?:User|System) time \(seconds\):\s*([\d.]+)")


def _make_model(path: Path) -> None:
    import torch

    from infocus.intensity.normalize import Normalizer
    from infocus.methods.config import default_config
    from infocus.nets import create_network
    from infocus.predict.model import TrainedModel

    torch.manual_seed(0)
    config = default_config("n2v")
    network = create_network(config.network, ndim=2, **config.network_options).eval()
    norm = Normalizer(mean=(200.0,), std=(110.0,))
    TrainedModel(network=network, config=config, spatial="YX", input_norm=norm,
                 target_norm=norm).save(path)


def _frames(count: int, size: int, seed: int = 0) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for t in range(count):
        signal = 200 + 150 * np.sin(xx / 37.0 + t) * np.cos(yy / 53.0)
        yield np.clip(rng.poisson(np.maximum(signal, 0)), 0, 65535).astype(np.uint16)


def _zarr_stack(path: Path, count: int, size: int) -> None:
    from infocus.io._zarr import create_zarr

    array = create_zarr(path, shape=(count, size, size), dtype=np.uint16, axes="TYX")
    for t, frame in enumerate(_frames(count, size)):
        array[t] = frame


def _cgroup_root() -> Path | None:
    """This process's own cgroup-v1 memory folder, if it is writable."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, where = line.split(":", 2)
            if "memory" in controllers.split(","):
                folder = Path("/sys/fs/cgroup/memory") / where.lstrip("/")
                return folder if os.access(folder, os.W_OK) else None
    except OSError:
        return None
    return None


@contextlib.contextmanager
def memory_cap(limit_bytes: int) -> Iterator[Path | None]:
    """A child memory cgroup limited to ``limit_bytes`` (None where none can be made)."""
    root = _cgroup_root()
    if root is None:
        yield None
        return
    group = root / f"infocus-bench-{os.getpid()}"
    try:
        group.mkdir(exist_ok=True)
        (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
    except OSError:
        yield None
        return
    try:
        yield group
    finally:
        with contextlib.suppress(OSError):
            group.rmdir()


#: One streamed prediction, Zarr to Zarr, without the command line's quality summary: the
#: reference a distributed run (which skips the summary) is compared with.
_STREAMED_ONLY = ("import sys; from infocus.predict.model import load_model; "
                  "from infocus.predict.stream import predict_file; "
                  "predict_file(load_model(sys.argv[1]), sys.argv[2], sys.argv[3], axes='TYX', "
                  "dtype='uint16')")


def predict(model: Path, source: Path, output: Path, *, cgroup: Path | None = None,
            extra: tuple[str, ...] = (), prediction_only: bool = False) -> dict[str, Any]:
    """One ``infocus predict`` process (or, with ``prediction_only``, one process running
    :func:`~infocus.predict.stream.predict_file` alone): wall seconds, peak RSS, exit status."""
    program = (["-c", _STREAMED_ONLY] if prediction_only
               else ["-m", "infocus.cli", "predict"])
    command = ["/usr/bin/time", "-v", sys.executable, *program,
               str(model), str(source), *([] if prediction_only else ["-o"]), str(output),
               *extra]
    if cgroup is not None:
        # Join the capped group before exec, so everything the command allocates counts.
        procs = cgroup / "cgroup.procs"
        command = ["sh", "-c", f'echo $$ > "{procs}" && exec "$@"', "sh", *command]
    # Before the run: at its end the load also counts the run's own worker processes.
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    seconds = time.perf_counter() - start
    rss = _RSS.findall(done.stderr)
    cpu = _CPU.findall(done.stderr)
    return {
        "seconds": seconds,
        # User + system time of the process and its children (dask workers): unlike wall
        # time, it hardly changes with what else runs on a shared machine.
        "cpu_seconds": sum(float(c) for c in cpu[-2:]) if len(cpu) >= 2 else None,
        "load_average": os.getloadavg()[0],  # over the last minute, as the run ended
        "load_average_before": load_before,
        "peak_rss_mib": int(rss[-1]) / 1024 if rss else None,
        "exit_status": done.returncode,
        "error": None if done.returncode == 0 else done.stderr[-600:],
    }


def settle(limit: float = 1.0, timeout: float = 150.0) -> float:
    """Wait until the 1-minute load average is below ``limit`` (at most ``timeout`` seconds),
    so a run does not start in the wake of the previous run's own worker processes; the
    load then."""
    waited = 0.0
    while os.getloadavg()[0] > limit and waited < timeout:
        time.sleep(5.0)
        waited += 5.0
    return os.getloadavg()[0]


def _geometry(megapixels: float) -> tuple[int, int]:
    """Frames and frame side of a stack of about ``megapixels``: 1024² frames, or one smaller
    frame below a megapixel."""
    frames = max(1, round(megapixels * 1e6 / FRAME**2))
    size = FRAME if megapixels >= 1 else int(math.sqrt(megapixels * 1e6)) // 16 * 16
    return frames, size


def _growing(context: Context, folder: Path, model: Path) -> list[dict[str, Any]]:
    growing = []
    for megapixels in context.profile.scaling_megapixels:
        frames, size = _geometry(megapixels)
        stack = folder / f"in-{megapixels:g}.zarr"
        _zarr_stack(stack, frames, size)
        npy = folder / f"in-{megapixels:g}.npy"
        np.save(npy, np.stack(list(_frames(frames, size))).astype(np.float32))
        row: dict[str, Any] = {"megapixels": frames * size * size / 1e6, "frames": frames,
                               "frame": size}
        row["streamed"] = predict(model, stack, folder / f"out-{megapixels:g}.zarr",
                                  extra=("--axes", "TYX"))
        row["in_memory"] = predict(model, npy, folder / f"out-{megapixels:g}.npy",
                                   extra=("--axes", "TYX"))
        for key in ("streamed", "in_memory"):
            r = row[key]
            r["megapixels_per_second"] = row["megapixels"] / r["seconds"]
        growing.append(row)
        context.log(f"{row['megapixels']:.0f} MP: streamed {row['streamed']['seconds']:.1f} s "
                    f"{row['streamed']['peak_rss_mib']:.0f} MiB; in memory "
                    f"{row['in_memory']['seconds']:.1f} s "
                    f"{row['in_memory']['peak_rss_mib']:.0f} MiB")
        shutil.rmtree(stack)
        npy.unlink()
    return growing


def _out_of_core(context: Context, folder: Path, model: Path) -> dict[str, Any]:
    profile = context.profile
    side = 4096 if profile.crop is None else 4 * profile.crop
    stack = folder / "big.zarr"
    _zarr_stack(stack, profile.out_of_core_frames, side)
    stack_bytes = profile.out_of_core_frames * side * side * 2
    cap = int(profile.out_of_core_memory_gib * 2**30)
    with memory_cap(cap) as group:
        big = predict(model, stack, folder / "big-out.zarr", cgroup=group,
                      extra=("--dtype", "uint16"))
    big.update({
        "frames": profile.out_of_core_frames, "frame": side, "stack_gib": stack_bytes / 2**30,
        "memory_cap_gib": profile.out_of_core_memory_gib,
        "cap_enforced": group is not None,
        "megapixels_per_second": profile.out_of_core_frames * side * side / 1e6 / big["seconds"],
        "cpu": cpu_model(),
    })
    context.log(f"out of core: {big['stack_gib']:.2f} GiB stack, cap "
                f"{big['memory_cap_gib']} GiB ({'enforced' if group else 'not enforced'}): "
                f"exit {big['exit_status']}, peak {big['peak_rss_mib']} MiB, "
                f"{big['seconds']:.0f} s")
    shutil.rmtree(stack)
    return big


def _workers(context: Context, folder: Path, model: Path) -> list[dict[str, Any]]:
    """``infocus predict --workers W`` on uint16 Zarr stacks of 1024² frames: wall time and
    the peak memory of the largest process (a dask worker or the client; GNU time reports
    the largest descendant). ``workers`` 0 is the reference measured beside them, under the
    same load: one process streaming the same stack (prediction only, as the distributed
    command skips the quality summary)."""
    rows = []
    for megapixels in context.profile.scaling_workers_megapixels:
        frames, size = _geometry(megapixels)
        stack = folder / f"dist-{megapixels:g}.zarr"
        _zarr_stack(stack, frames, size)
        for workers in (0, *context.profile.scaling_workers):
            settle(timeout=context.profile.scaling_settle_seconds)
            out = folder / f"dist-{megapixels:g}-{workers}.zarr"
            if workers == 0:
                row = predict(model, stack, out, prediction_only=True)
            else:
                row = predict(model, stack, out, extra=("--axes", "TYX", "--dtype", "uint16",
                                                        "--workers", str(workers)))
            row.update({"megapixels": frames * size * size / 1e6, "frames": frames,
                        "frame": size, "workers": workers, "input_gib": frames * size**2 * 2
                        / 2**30})
            row["megapixels_per_second"] = row["megapixels"] / row["seconds"]
            rows.append(row)
            context.log(f"{row['megapixels']:.0f} MP, {workers or 'no'} worker(s): "
                        f"{row['seconds']:.1f} s, largest process {row['peak_rss_mib']} MiB")
            shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(stack)
    return rows


PARTS = {"growing": _growing, "out_of_core": _out_of_core, "workers": _workers}


def run(context: Context) -> dict[str, Any]:
    if not Path("/usr/bin/time").is_file():
        return {"skipped": "GNU time is missing (apt-get install time)"}
    result = {"network": "default n2v U-Net (16 filters, depth 2)", **context.previous}
    with tempfile.TemporaryDirectory(prefix="infocus-scaling-") as scratch:
        folder = Path(scratch)
        model = folder / "model"
        _make_model(model)
        for part, measure in PARTS.items():
            if part in result:
                continue
            result[part] = measure(context, folder, model)
            context.save(result)
    return result
