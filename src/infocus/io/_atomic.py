"""Atomic output: write under a temporary name in the target directory, then rename.

A reader never sees a half-written output, and a failed or interrupted write leaves the
target untouched (the old file, if any, or nothing). Files are moved into place with
:func:`os.replace`, which is atomic on POSIX and Windows when source and target share a
directory. Directories (Zarr) cannot be replaced atomically, so an existing one is first
renamed aside and deleted only after the new one is in place.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from infocus._errors import InfocusInputError, OutputExistsError

__all__ = [
    "atomic_output",
    "check_output_path",
    "check_writable_folder",
    "is_infocus_folder",
    "remove_stale_temporaries",
]


def check_output_path(path: Path, *, overwrite: bool) -> None:
    """Refuse a missing parent directory or an existing output (unless ``overwrite``).

    Raises
    ------
    InfocusInputError
        The directory that should hold ``path`` does not exist or is not a directory, or
        ``path`` is a folder infocus did not write (:func:`is_infocus_folder`).
    OutputExistsError
        ``path`` exists and ``overwrite`` is false.
    """
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise InfocusInputError(
            f"Output directory {str(parent)!r} {what}; create it first or choose another output path."
        )
    if not overwrite and (path.exists() or path.is_symlink()):
        raise OutputExistsError(
            f"{str(path)!r} exists; pass --overwrite to replace it or choose another output path."
        )
    if path.is_dir() and not path.is_symlink() and not is_infocus_folder(path):
        raise InfocusInputError(
            f"{str(path)!r} is a folder that infocus did not write (not a Zarr store, model, "
            "demo output or quality report); --overwrite replaces only those, so remove it yourself or choose "
            "another output path."
        )


def check_writable_folder(folder: Path) -> None:
    """Refuse a folder that cannot take a new file (permissions, a read-only disk), found by
    creating and deleting a hidden probe file there: cheap, and true for every user."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".infocus-probe-"):
            pass
    except OSError as error:
        raise InfocusInputError(
            f"Cannot write to the output folder {str(folder)!r} ({error.strerror or error}); "
            "choose a folder you can write to."
        ) from None


def is_infocus_folder(path: Path) -> bool:
    """Whether the folder ``path`` looks like something infocus writes, so ``--overwrite`` may
    replace it: a Zarr store (v2 or v3), a model folder (``config.json`` of an infocus model
    format), a demo output (``metrics.json`` beside ``comparison.png``) or a quality report
    (``qc.json`` beside ``report.html``). Anything else may hold the user's data and is never
    deleted."""
    if any((path / marker).is_file() for marker in (".zgroup", ".zarray", "zarr.json")):
        return True
    for summary, figure in (("metrics.json", "comparison.png"), ("qc.json", "report.html")):
        if (path / summary).is_file() and (path / figure).is_file():
            return True
    config = path / "config.json"
    if not config.is_file() or config.is_symlink():
        return False
    try:
        data = json.loads(config.read_text()[:1_000_000])
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and str(data.get("format", "")).startswith("infocus-model")


def _remove(path: Path) -> None:
    """Delete a file or directory tree if present; never raises."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete what a killed earlier write of ``path`` left beside it (its hidden
    ``.{name}.tmp-*`` output and ``.{name}.old-*`` backup); returns what was removed.

    An interrupted write cleans up after itself; only SIGKILL or a power cut leaves these.
    """
    if not path.parent.is_dir():
        return []
    pattern = glob.escape(path.name)
    stale = sorted(p for tag in ("tmp", "old") for p in path.parent.glob(f".{pattern}.{tag}-*"))
    for leftover in stale:
        _remove(leftover)
    return stale


def _temporary_name(path: Path, tag: str, suffix: str) -> Path:
    return path.with_name(f".{path.name}.{tag}-{secrets.token_hex(4)}{suffix}")


@contextlib.contextmanager
def atomic_output(path: Path, *, overwrite: bool = False, suffix: str = "") -> Iterator[Path]:
    """Context manager yielding a temporary path to write to; on success it becomes ``path``.

    Parameters
    ----------
    path : Path
        Final output path (file or directory).
    overwrite : bool
        Replace an existing ``path``; otherwise :class:`OutputExistsError` is raised before
        anything is written.
    suffix : str
        Ending for the temporary name (e.g. ``".ome.tif"``), so writers that choose a format
        from the name see the right one: ``.{name}.tmp-XXXXXXXX{suffix}``.

    Notes
    -----
    On any exception (including :class:`KeyboardInterrupt`) inside the ``with`` block the
    temporary output is deleted and the exception propagates; nothing appears under ``path``.

    Examples
    --------
    >>> with atomic_output(Path("out.npy")) as tmp:  # doctest: +SKIP
    ...     np.save(tmp, array)
    """
    check_output_path(path, overwrite=overwrite)
    tmp = _temporary_name(path, "tmp", suffix)
    try:
        yield tmp
        if not (tmp.exists() or tmp.is_symlink()):
            raise RuntimeError(f"writer produced no output at {tmp}")
        _move_into_place(tmp, path, overwrite=overwrite)
    except BaseException:
        _remove(tmp)
        raise


def _move_into_place(tmp: Path, path: Path, *, overwrite: bool) -> None:
    # Re-check: the target may have appeared while we were writing.
    check_output_path(path, overwrite=overwrite)
    exists = path.exists() or path.is_symlink()
    if not exists or not (tmp.is_dir() or path.is_dir()):
        os.replace(tmp, path)
        return
    # A directory is involved: move the old output aside, put the new one in place, and
    # delete the old one only once the new one is there (restore it if the rename fails).
    backup = _temporary_name(path, "old", "")
    os.replace(path, backup)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(backup, path)
        raise
    _remove(backup)
