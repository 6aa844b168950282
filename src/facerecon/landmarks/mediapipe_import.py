"""Importing MediaPipe without paying for matplotlib.

`import mediapipe` runs `mediapipe.python.solutions.drawing_utils`, which imports
`matplotlib.pyplot` at module level for one plotting helper facerecon never calls: about 0.5 s of a
command that should answer in about two. `import_mediapipe()` imports MediaPipe with a stand-in for
`matplotlib` and `matplotlib.pyplot` in `sys.modules`, then removes the stand-ins, so a later
`import matplotlib` anywhere in the process loads the real library. Should MediaPipe's plotting
helper ever be called, the stand-in forwards the attribute to the real `matplotlib.pyplot`.
When matplotlib is already imported, nothing is replaced.

MediaPipe's audio tasks also try `import sounddevice` at import time (for microphone recording,
which facerecon never uses); where the PortAudio library is missing, as on most servers, that
loads cffi and searches the system for the library before failing, about 50 ms. During
`import_mediapipe()` the name is blocked (`sys.modules["sounddevice"] = None`, so the import fails
at once with the ImportError MediaPipe already handles); the block is lifted afterwards, so a later
`import sounddevice` elsewhere behaves as usual.
"""
from __future__ import annotations

import importlib
import sys
import types

_STANDINS = ("matplotlib", "matplotlib.pyplot")
# Not `cv2`, though only drawing_utils imports it in Python: MediaPipe's native bindings import it
# too when a graph is made, so a stand-in saves nothing, and with the detector's second landmarker
# made on a worker thread, two threads then run OpenCV's bootstrap (not thread-safe) at once and
# the process hangs (6 of 6 CLI runs, tried 2026-12-04).
_BLOCKED = ("sounddevice",)  # imported by MediaPipe's audio tasks only


class _Deferred(types.ModuleType):
    """A module whose attributes are those of the real module `name`, imported on first use."""

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        real = importlib.import_module(self.__name__)
        if real is self:  # still inside import_mediapipe(): cannot happen after it returns
            raise AttributeError(attr)
        return getattr(real, attr)


def import_mediapipe() -> types.ModuleType:
    """`import mediapipe` (the `solutions` and `tasks` packages included) without importing matplotlib.

    Returns:
        The `mediapipe` module.
    """
    if "mediapipe" in sys.modules:
        return sys.modules["mediapipe"]
    standins: dict[str, types.ModuleType] = {}
    if not any(name in sys.modules for name in _STANDINS):
        standins = {name: _Deferred(name) for name in _STANDINS}
        standins["matplotlib"].pyplot = standins["matplotlib.pyplot"]
    blocked = [name for name in _BLOCKED if name not in sys.modules]
    sys.modules.update(standins)
    sys.modules.update(dict.fromkeys(blocked))
    try:
        return importlib.import_module("mediapipe")
    finally:
        for name, module in standins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
