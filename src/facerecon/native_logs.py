"""Native log lines (MediaPipe's C++ / absl / TFLite, written straight to file descriptor 2) kept
off the user's terminal. No facerecon imports: any layer may use it, and the CLI imports it before
anything heavy."""

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence MediaPipe's native (C++/absl/TFLite) log lines, which bypass Python's sys.stderr.

    File descriptor 2 points at /dev/null within the block, so nothing native reaches the terminal,
    from any thread; when `sys.stderr` wrote to that descriptor it is swapped for a stream on a
    copy of the original one, so the command's own messages (and tqdm's bar) still show.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2 (embedded interpreters)
        yield
        return
    python_stderr = sys.stderr
    swapped = _writes_to_fd2(python_stderr)
    if swapped:
        sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=getattr(python_stderr, "encoding", None),
                               errors="backslashreplace")
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        if swapped:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = python_stderr
        os.dup2(saved, 2)
        os.close(saved)


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (OSError, ValueError, AttributeError):  # pytest's capsys and other in-memory streams
        return False
