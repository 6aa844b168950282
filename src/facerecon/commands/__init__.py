"""The logic behind each CLI subcommand (argument parsing stays in cli.py). This layer sits with
cli and pipeline at the top: it may import every other layer."""

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence MediaPipe's native (C++) log lines, which bypass Python's sys.stderr, so the
    command's stderr holds only its own message."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable fd 2 (embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
