"""Importing MediaPipe without paying for matplotlib.

`import mediapipe` runs `mediapipe.python.solutions.drawing_utils`, which imports
`matplotlib.pyplot` at module level for one plotting helper facerecon never calls: about 0.5 s of a
command that should answer in about two. `import_mediapipe()` imports MediaPipe with a stand-in for
`matplotlib` and `matplotlib.pyplot` in `sys.modules`, then removes the stand-ins, so a later
`import matplotlib` anywhere in the process loads the real library. Should MediaPipe's plotting
helper ever be called, the stand-in forwards the attribute to the real `matplotlib.pyplot`.
When matplotlib is already imported, nothing is replaced.
"""
from __future__ import annotations

import importlib
import sys
import types

_STANDINS = ("matplotlib", "matplotlib.pyplot")


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
    if "mediapipe" in sys.modules or any(name in sys.modules for name in _STANDINS):
        return importlib.import_module("mediapipe")
    standins = {name: _Deferred(name) for name in _STANDINS}
    standins["matplotlib"].pyplot = standins["matplotlib.pyplot"]
    sys.modules.update(standins)
    try:
        return importlib.import_module("mediapipe")
    finally:
        for name, module in standins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
