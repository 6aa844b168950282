"""facerecon: 3D face reconstruction from photos, on a CPU, offline.

Layers (imports go down, never up): models -> render -> landmarks -> fitting -> evaluation -> io
-> pipeline -> cli. See docs/conventions.md for units and coordinate frames.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: F401
    FaceReconError,
    FitError,
    ImageError,
    ModelError,
    NoFaceError,
    RenderError,
    UsageError,
)


def __getattr__(name: str):
    # The pipeline pulls in mediapipe and the renderer; import it only when asked for.
    if name in ("reconstruct", "Reconstruction"):
        from . import pipeline

        return getattr(pipeline, name)
    if name in ("reconstruct_person", "PersonReconstruction"):
        from . import person

        return getattr(person, name)
    raise AttributeError(name)
