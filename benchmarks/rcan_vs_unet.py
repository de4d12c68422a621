"""CARE with the RCAN network against CARE with the default U-Net, outside the harness.

    python -m benchmarks.rcan_vs_unet                  # 300 steps each, seed 0
    python -m benchmarks.rcan_vs_unet --steps 20       # smoke run
    python -m benchmarks.rcan_vs_unet --networks "rcan:num_channels=16" --seeds 0,1

The protocol is the benchmark harness's (``python -m benchmarks run --suites context``, part
``rcan``; see :mod:`benchmarks.suites.context`): the embedded sample's four 256² quadrants at
30 peak photons under the simulated camera, three trained on, the bottom-right one scored.
This script runs it for other networks, network options, steps or seeds than the profile's;
results are printed as JSON and, with ``--output``, written there after every run.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning threads slow a shared CPU

from benchmarks.suites.context import rcan_training_run  # noqa: E402


def run(spec: str, steps: int, seed: int = 0) -> dict[str, object]:
    """One training run; ``spec`` is a network name, optionally with options, as in
    ``rcan:num_channels=16``."""
    network, _, text = spec.partition(":")
    try:
        options = {k: int(v) for k, v in (pair.split("=") for pair in text.split(",") if pair)}
    except ValueError:
        raise SystemExit(f"Cannot read the network options {text!r}; write them as "
                         "NAME=INT,NAME=INT (e.g. rcan:num_channels=16).") from None
    return rcan_training_run(network, steps, seed, options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--networks", default="unet;rcan",
                        help="';'-separated networks, each NAME or NAME:OPTION=INT,...")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    results = []
    # Seed by seed, so the networks of one seed run back to back at a similar machine load.
    for seed in (int(s) for s in args.seeds.split(",") if s.strip()):
        for spec in args.networks.split(";"):
            results.append(run(spec, args.steps, seed))
            print(json.dumps(results[-1]), flush=True)
            if args.output is not None:  # after every run, so a long study keeps what it has
                args.output.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
