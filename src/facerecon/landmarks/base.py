"""The detector interface and what it returns.

Pixel coordinates follow docs/conventions.md: (u, v) = (column, row) with the origin at the
top-left corner of the image, so the centre of pixel (row i, column j) is (j + 0.5, i + 0.5).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..errors import NoFaceError, UsageError
from .schemes import IBUG68, MEDIAPIPE478, MEDIAPIPE_TO_IBUG68, NUM_POINTS, check_scheme


@dataclass(frozen=True, eq=False)
class FaceLandmarks:
    """One detected face.

    Attributes (N = 478 for "mediapipe478", 68 for "ibug68"):
        box: (4,) float64 x0, y0, x1, y1 in pixels, the face detector's box.
        score: the face detector's confidence in [0, 1].
        points: (N, 2) float64 (u, v) in pixels.
        points3d: (N, 3) float64 or None: (u, v, w) in pixels, with w the depth relative to the
            face (MediaPipe's z scaled to pixels; smaller is nearer the camera). Not metric.
        scheme: "mediapipe478" or "ibug68".
        visibility: (N,) float64 in [0, 1] or None when the backend does not report it (neither
            MediaPipe's face mesh nor dlib does).
        found_by: which detection path found the face, when the backend says ("full_range",
            "short_range", "mesh_fallback", "rotated_90+full_range", ...: see
            `facerecon.landmarks.mediapipe_detector`); "" otherwise.
    """

    box: np.ndarray
    score: float
    points: np.ndarray
    points3d: np.ndarray | None
    scheme: str
    visibility: np.ndarray | None = None
    found_by: str = ""

    def __post_init__(self) -> None:
        n = NUM_POINTS[check_scheme(self.scheme)]
        if self.points.shape != (n, 2):
            raise UsageError(f"{self.scheme} points must be ({n}, 2), got {self.points.shape}")
        if self.points3d is not None and self.points3d.shape != (n, 3):
            raise UsageError(f"{self.scheme} points3d must be ({n}, 3), got {self.points3d.shape}")
        if self.visibility is not None and self.visibility.shape != (n,):
            raise UsageError(f"{self.scheme} visibility must be ({n},), got {self.visibility.shape}")
        if np.shape(self.box) != (4,):
            raise UsageError(f"box must be (4,) x0, y0, x1, y1, got {np.shape(self.box)}")

    @property
    def area(self) -> float:
        """Area of `box` in square pixels."""
        x0, y0, x1, y1 = self.box
        return float(max(x1 - x0, 0.0) * max(y1 - y0, 0.0))

    def to_ibug68(self) -> "FaceLandmarks":
        """The same face in the iBUG 68-point scheme (itself when it already is)."""
        if self.scheme == IBUG68:
            return self
        idx = MEDIAPIPE_TO_IBUG68

        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx].copy()

        return FaceLandmarks(self.box.copy(), self.score, pick(self.points), pick(self.points3d), IBUG68,
                             pick(self.visibility), self.found_by)

    def to_dict(self) -> dict:
        """JSON-ready dict: scheme, box, score, points (and points3d/visibility/found_by when present)."""
        out = {"scheme": self.scheme, "box": _rounded(self.box), "score": round(float(self.score), 4),
               "points": _rounded(self.points)}
        if self.points3d is not None:
            out["points3d"] = _rounded(self.points3d)
        if self.visibility is not None:
            out["visibility"] = _rounded(self.visibility)
        if self.found_by:
            out["found_by"] = self.found_by
        return out


def _rounded(a: np.ndarray) -> list:
    return np.round(np.asarray(a, dtype=np.float64), 3).tolist()


class LandmarkDetector(ABC):
    """Finds faces and their landmarks in an RGB image.

    A detector holds native resources (model graphs): create it once, reuse it for many images,
    and `close()` it (or use it as a context manager). Not thread-safe: one detector per thread.
    """

    scheme: str = MEDIAPIPE478
    # the name of this detector's learned error model (landmarks.error_model), or None: the fits
    # then trust every point equally
    error_model: str | None = None

    @abstractmethod
    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
        """Every face found in `image` ((H, W, 3) float32 RGB in [0, 1], or uint8), largest box first."""

    def detect_largest(self, image: np.ndarray) -> FaceLandmarks:
        """The face with the largest box.

        Raises:
            NoFaceError: no face was found.
        """
        faces = self.detect(image)
        if not faces:
            h, w = np.shape(image)[:2]
            raise NoFaceError(f"no face found in the {w}x{h} image; use a photo with a visible face "
                              f"(at least about 80 pixels wide)")
        return faces[0]

    def close(self) -> None:
        """Release native resources; the detector cannot be used afterwards."""

    def __enter__(self) -> "LandmarkDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def as_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """A C-contiguous (H, W, 3) uint8 copy or view of an RGB image.

    Accepts (H, W, 3) float in [0, 1] (values outside are clipped) or uint8; (H, W) greyscale is
    repeated into three channels.
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise UsageError(f"expected an (H, W, 3) RGB image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if not np.issubdtype(arr.dtype, np.floating):
        raise UsageError(f"expected a float image in [0, 1] or uint8, got dtype {arr.dtype}")
    scaled = arr.astype(np.float32) * np.float32(255.0)
    if not np.isfinite(scaled.sum(dtype=np.float64)):
        raise UsageError("the image contains NaN or infinite values")
    np.clip(scaled, 0.0, 255.0, out=scaled)
    scaled += np.float32(0.5)  # round half up, then truncate
    return scaled.astype(np.uint8)


def sort_largest_first(faces: list[FaceLandmarks]) -> list[FaceLandmarks]:
    """Faces sorted by box area, largest first (ties: higher score first)."""
    return sorted(faces, key=lambda f: (-f.area, -f.score))


def box_iou(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(intersection over union, intersection over the smaller box) of two x0, y0, x1, y1 boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0, 0.0
    inter = iw * ih
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return float(inter / (area_a + area_b - inter)), float(inter / max(min(area_a, area_b), 1e-9))
