"""Atomic output: write under a temporary name in the target directory, then rename.

A reader never sees a half-written output, and a failed or interrupted write leaves the
target untouched (the old file, if any, or nothing). Files are moved into place with
:func:`os.replace`, which is atomic on POSIX and Windows when source and target share a
directory. Directories (Zarr) cannot be replaced atomically, so an existing one is first
renamed aside and deleted only after the new one is in place.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from infocus._errors import InfocusInputError, OutputExistsError

__all__ = ["atomic_output", "check_output_path"]


def check_output_path(path: Path, *, overwrite: bool) -> None:
    """Refuse a missing parent directory or an existing output (unless ``overwrite``).

    Raises
    ------
    InfocusInputError
        The directory that should hold ``path`` does not exist or is not a directory.
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


def _remove(path: Path) -> None:
    """Delete a file or directory tree if present; never raises."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()


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
