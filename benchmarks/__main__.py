"""One command for the benchmarks: measure, then write docs/benchmarks.md.

    python -m benchmarks run --profile quick            # make bench (< 30 min on 2 cores)
    python -m benchmarks run --profile full             # make bench-full (hours)
    python -m benchmarks run --profile full --suites learned --resume
    python -m benchmarks report                         # docs from the newest results file
    python -m benchmarks report --results benchmarks/results/2026-11-30-full.json
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from benchmarks import runner
from benchmarks.profiles import PROFILES, get_profile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run suites of a profile, then write the report")
    run.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    run.add_argument("--suites", default=",".join(runner.SUITES),
                     help=f"comma-separated subset of {','.join(runner.SUITES)}")
    run.add_argument("--output", type=Path, default=None,
                     help="results JSON (default benchmarks/results/<date>-<profile>.json)")
    run.add_argument("--resume", action="store_true",
                     help="continue the results file: skip complete suites and finished parts")
    run.add_argument("--docs", type=Path, default=None,
                     help="report to write (default docs/benchmarks.md; 'none' to skip)")
    report = commands.add_parser("report", help="write docs/benchmarks.md from a results file")
    report.add_argument("--results", type=Path, default=None,
                        help="results JSON (default: the newest full run, else the newest)")
    report.add_argument("--docs", type=Path, default=None)
    args = parser.parse_args(argv)
    # Two OpenMP threads that spin while waiting stall beside any other CPU job (see README).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    from benchmarks import report as report_module

    if args.command == "run":
        profile = get_profile(args.profile)
        suites = tuple(s.strip() for s in args.suites.split(",") if s.strip())
        path = runner.run(profile, suites, path=args.output, resume=args.resume)
        if str(args.docs) != "none":
            written = report_module.write(path, args.docs)
            print(f"wrote {written}")
        return 0
    path = args.results or report_module.newest_results()
    written = report_module.write(path, args.docs)
    print(f"wrote {written} from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
