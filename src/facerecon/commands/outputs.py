"""Output folders checked before any work starts, and write failures turned into `OutputError`.

A command that writes into OUT checks it first (`check_output_folder`): a file where the folder
must go, a file among its parents, or a nearest existing folder the user cannot write to is named
in one line (exit code 7) before minutes of fitting or tracking, not in a traceback after them.
"""
from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from ..errors import OutputError

# what a full disk, a read-only mount, missing permission or a file in the way raise
WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.ENOTDIR, errno.EEXIST,
                errno.EISDIR, errno.ENAMETOOLONG}


def check_output_folder(folder: str | os.PathLike) -> Path:
    """`folder` as a Path, or OutputError when it cannot become a folder the user writes into.

    Nothing is created: the folder itself may not exist yet (it is made when results are saved)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder (the results go into a folder of that name)")
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing != folder and not existing.is_dir():
        raise OutputError(f"{folder}: {existing} is a file, so no folder can be made inside it")
    if existing.is_dir() and not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{folder}: no permission to write in {existing}")
    return folder


def check_output_file(path: str | os.PathLike) -> Path:
    """`path` as a Path, or OutputError when no file can be written there (a folder stands there,
    or its folder cannot be made or written: `check_output_folder`)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name")
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputError(f"{path}: {path.parent} is a file, so nothing can be written inside it")
    check_output_folder(path.parent)
    return path


def output_error(exc: OSError) -> OutputError:
    """The one-line `OutputError` for an OSError met while writing results."""
    where = exc.filename if exc.filename is not None else "the output"
    return OutputError(f"cannot write {where}: {exc.strerror or exc}")


@contextlib.contextmanager
def writing_outputs():
    """Within the block, an OSError of the kinds writing raises becomes `OutputError`."""
    try:
        yield
    except OSError as exc:
        if exc.errno in WRITE_ERRNOS:
            raise output_error(exc) from None
        raise
