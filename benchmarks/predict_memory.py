"""Peak memory of out-of-core prediction: a 2 GB uint16 Zarr stack streamed to Zarr.

    python -m benchmarks.predict_memory                  # 2 GB stack, small network
    python -m benchmarks.predict_memory --frames 2       # quick check

Makes a ``TYX`` uint16 Zarr stack of noisy synthetic frames in a temporary folder, saves an
(untrained) U-Net model, and runs ``infocus predict MODEL stack.zarr -o out.zarr --dtype uint16``
under ``/usr/bin/time -v`` to read the peak resident memory of the whole process. Memory does not
depend on what the weights learned, only on the network's size and the tile size; the network
width is a flag so the default-size network can be measured on a shorter stack.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def make_stack(path: Path, frames: int, size: int, seed: int = 0) -> int:
    """Write a TYX uint16 OME-Zarr of ``frames`` frames of size² pixels; returns its bytes."""
    from infocus.io._zarr import create_zarr

    rng = np.random.default_rng(seed)
    array = create_zarr(path, shape=(frames, size, size), dtype=np.uint16, axes="TYX")
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for t in range(frames):
        signal = 200 + 150 * np.sin(xx / 37.0 + t) * np.cos(yy / 53.0)
        array[t] = np.clip(rng.poisson(np.maximum(signal, 0)), 0, 65535).astype(np.uint16)
    return frames * size * size * 2


def make_model(path: Path, base_filters: int) -> None:
    import torch

    from infocus.nets import create_network
    from infocus.predict.model import TrainedModel
    from infocus.training.config import default_config
    from infocus.training.normalize import Normalizer

    torch.manual_seed(0)
    network = create_network("unet", ndim=2, base_filters=base_filters).eval()
    config = default_config("n2v").with_updates(network_options={"base_filters": base_filters})
    norm = Normalizer(mean=(200.0,), std=(110.0,))
    TrainedModel(network=network, config=config, spatial="YX", input_norm=norm,
                 target_norm=norm).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--base-filters", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="infocus-memory-") as scratch:
        folder = Path(scratch)
        stack_bytes = make_stack(folder / "stack.zarr", args.frames, args.size)
        make_model(folder / "model", args.base_filters)
        command = ["/usr/bin/time", "-v", sys.executable, "-m", "infocus.cli", "predict",
                   str(folder / "model"), str(folder / "stack.zarr"), "-o",
                   str(folder / "out.zarr"), "--dtype", "uint16"]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(done.stderr[-2000:])
        peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1])
    result = {
        "date": date.today().isoformat(),
        "stack": {"frames": args.frames, "size": args.size, "dtype": "uint16",
                  "gigabytes": stack_bytes / 1e9},
        "network": {"name": "unet", "depth": 2, "base_filters": args.base_filters},
        "peak_rss_gigabytes": peak_kb * 1024 / 1e9,
        "seconds": seconds,
        "megapixels_per_second": args.frames * args.size**2 / 1e6 / seconds,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{result['date']}-predict-memory-{args.frames}x{args.size}-f{args.base_filters}.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
