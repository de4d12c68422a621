"""Run benchmark suites for a profile into one results file, suite by suite.

The results file ``benchmarks/results/<date>-<profile>.json`` is rewritten atomically after every
suite and every checkpoint inside a long suite, so an interrupted run keeps what it measured and
``--resume`` continues it (finished parts are not measured again).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.profiles import Profile

RESULTS = Path(__file__).resolve().parent / "results"
#: Suites in the order they run; each module has ``run(context) -> dict``.
SUITES = ("classical", "learned", "probabilistic", "qc", "joint", "context", "transfer",
          "precision", "peers", "roofline", "scaling")


def cpu_model() -> str:
    """The CPU's model name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import psutil
    import torch

    from infocus import __version__
    from infocus.nets.precision import native_bfloat16

    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "bfloat16_native": native_bfloat16("cpu"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {"infocus": __version__, "numpy": np.__version__, "torch": torch.__version__},
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, indent=1, default=_jsonable)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def _store(path: Path, data: dict[str, Any], name: str) -> None:
    """Write suite ``name`` of ``data`` into the file, keeping the other suites as they are on
    disk (another process may be running other suites into the same file)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = json.loads(path.read_text()) if path.exists() else dict(data, suites={})
        current.setdefault("suites", {})[name] = data["suites"][name]
        write_json(path, current)
        data["suites"] = current["suites"]


@dataclass
class Context:
    """What a suite gets: the profile, its earlier partial result, and ways to log and save."""

    profile: Profile
    results_path: Path
    previous: dict[str, Any] = field(default_factory=dict)
    log: Callable[[str], None] = print
    save: Callable[[dict[str, Any]], None] = lambda partial: None

    @property
    def artifacts(self) -> Path:
        """Folder for files a suite keeps beside the JSON (crops for the report's figures)."""
        folder = self.results_path.with_suffix("")
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def run_parts(context: Context, parts: dict[str, Callable[..., None]]) -> dict[str, Any]:
    """A suite made of resumable parts: each ``measure(context, partial, save)`` fills its
    ``partial`` result and calls ``save()`` after every finished piece; a part marked complete
    in the earlier result is skipped, an interrupted one gets its partial result back."""
    result = {part: dict(value) if isinstance(value, dict) else value
              for part, value in context.previous.items()}
    for part, measure in parts.items():
        partial = result.setdefault(part, {})
        if partial.get("complete"):
            continue
        context.log(f"{part} ...")
        measure(context, partial, lambda: context.save(result))
        partial["complete"] = True
        context.save(result)
    return result


def results_path(profile: Profile, when: date | None = None, folder: Path = RESULTS) -> Path:
    return folder / f"{(when or date.today()).isoformat()}-{profile.name}.json"


def run(
    profile: Profile,
    suites: tuple[str, ...] = SUITES,
    *,
    path: Path | None = None,
    resume: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Run ``suites`` for ``profile``; returns the results file.

    With ``resume`` an existing file is continued: suites marked complete are skipped and a
    partial suite gets its partial result back. Without it, the named suites are measured
    afresh and replace their earlier entries (other suites in the file are kept).
    """
    unknown = sorted(set(suites) - set(SUITES))
    if unknown:
        raise SystemExit(f"Unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}.")
    path = path or results_path(profile)
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("profile", {}).get("name") != profile.name:
            raise SystemExit(f"{path} holds a {data.get('profile', {}).get('name')!r} run, not "
                             f"{profile.name!r}; pass another --output.")
    else:
        data = {"date": date.today().isoformat(), "profile": profile.to_dict(),
                "machine": machine(), "suites": {}}
    for name in suites:
        entry = data["suites"].get(name, {})
        if resume and entry.get("complete"):
            log(f"[{name}] complete in {path.name}; skipped")
            continue
        previous = entry.get("result", {}) if resume else {}
        # A resumed suite's wall time includes what its earlier, interrupted runs spent.
        started = time.perf_counter() - (float(entry.get("wall_seconds", 0.0)) if resume else 0.0)
        load = os.getloadavg()[0]

        def save(partial: dict[str, Any], name: str = name, started: float = started,
                 load: float = load) -> None:
            data["suites"][name] = {
                "complete": False, "result": partial, "load_average_start": load,
                "wall_seconds": time.perf_counter() - started,
                "updated": datetime.now().isoformat(timespec="seconds"), "cpu": cpu_model(),
            }
            _store(path, data, name)

        context = Context(profile=profile, results_path=path, previous=previous,
                          log=lambda message, name=name: log(f"[{name}] {message}"), save=save)
        log(f"[{name}] {profile.name} profile ...")
        module = importlib.import_module(f"benchmarks.suites.{name}")
        result = module.run(context)
        data["suites"][name] = {
            "complete": True, "result": result, "load_average_start": load,
            "load_average_end": os.getloadavg()[0],
            "wall_seconds": time.perf_counter() - started,
            "updated": datetime.now().isoformat(timespec="seconds"),
            # A resumed file may gather suites measured on different machines.
            "cpu": cpu_model(),
        }
        _store(path, data, name)
        log(f"[{name}] done in {time.perf_counter() - started:.0f} s (all runs) -> {path}")
    return path
