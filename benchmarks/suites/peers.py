"""infocus beside CAREamics in the same run: same data, network size and optimizer steps.

The protocol and the runners live in ``benchmarks/peers/`` (``compare.py``); this suite runs
them with the profile's methods and step budget. CAREamics needs its own environment
(``make peers`` builds ``.venv-peers`` from ``../shared/peers/setup_venv.sh``); without it
the suite is skipped with that hint.
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks.peers import compare
from benchmarks.runner import Context


def run(context: Context) -> dict[str, Any]:
    profile = context.profile
    peers_python = compare.REPO / ".venv-peers" / "bin" / "python"
    if not peers_python.is_file():
        message = "the CAREamics environment .venv-peers is missing; build it with `make peers`"
        context.log(f"skipped: {message}")
        return {"skipped": message}
    output = context.artifacts / "peers.json"
    argv = ["--methods", ",".join(profile.peer_methods), "--steps", str(profile.peer_steps),
            "--output", str(output)]
    status = compare.main(argv)
    result = json.loads(output.read_text())
    result["all_checks_pass"] = status == 0
    return result
