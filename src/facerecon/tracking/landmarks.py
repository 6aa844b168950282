"""Landmarks frame after frame: MediaPipe's face mesh in video mode inside a crop window placed
from the previous frame's face box.

The window is a square about `WINDOW_SCALE` times the face's landmark box, cut from the frame
(zero-padded past its borders). It stays where it is while the face stays well inside it, so the
face mesh sees a steady image sequence and its video mode works as meant: it seeds each frame from
the previous frame's landmarks and skips its own face detector. When the face nears the window's
edge or changes size the window is re-placed around the new box. When the face mesh loses the
face, `MediaPipeDetector.detect` (both face detectors, tiles for small faces) looks for it in the
whole frame; a frame where that finds nothing has no landmarks (`None`).
"""
from __future__ import annotations

import numpy as np

from ..landmarks import FaceLandmarks, MEDIAPIPE478
from ..landmarks.mediapipe_detector import MediaPipeDetector, _square_crop
from ..native_logs import quiet_native_stderr

WINDOW_SCALE = 2.2
# the window is re-placed when the face's centre moves this far from its centre (fraction of the
# window side) or the face's side leaves this range of fractions of the window side
RECENTRE_FRACTION = 0.12
SIZE_RANGE = (0.32, 0.6)
FOUND_BY_TRACKING = "video_tracking"
# the video-mode face mesh is the legacy one (v1): the tracked points' learned error model
# (`LandmarkErrorModel.load`), also used for the frames the detector re-acquires
ERROR_MODEL = "mediapipe478"


class FaceLandmarkTracker:
    """Landmarks of one face through a video (see the module docstring).

    Args:
        detector: a `MediaPipeDetector` for (re)acquiring the face, default one face, no rotated retries.
        min_tracking_confidence: MediaPipe's threshold below which it considers the face lost.

    `update(image)` for each frame in order; `reset()` between clips.
    """

    error_model = ERROR_MODEL

    def __init__(self, detector: MediaPipeDetector | None = None, min_tracking_confidence: float = 0.5) -> None:
        from ..landmarks.mediapipe_import import import_mediapipe

        import_mediapipe()
        from mediapipe.python.solutions.face_mesh import FaceMesh

        self._own_detector = detector is None
        self.detector = detector if detector is not None else MediaPipeDetector(max_num_faces=1, rotations=False)
        # its native log lines stay off the terminal; a blank first frame (no face, so nothing is
        # tracked from it) waits for those its graph's threads write as the model loads
        with quiet_native_stderr():
            self._mesh = FaceMesh(static_image_mode=False, refine_landmarks=True, max_num_faces=1,
                                  min_detection_confidence=0.5, min_tracking_confidence=min_tracking_confidence)
            self._mesh.process(np.zeros((32, 32, 3), np.uint8))
        self._window: tuple[float, float, float] | None = None  # centre x, centre y, side (px)
        self.detections = 0  # full-frame detector runs (acquisitions)

    def reset(self) -> None:
        self._window = None

    def close(self) -> None:
        self._mesh.close()
        if self._own_detector:
            self.detector.close()

    def __enter__(self) -> "FaceLandmarkTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, image: np.ndarray) -> FaceLandmarks | None:
        """The face's 478 landmarks in `image` ((H, W, 3) uint8 RGB, the frames in order), or None."""
        if self._window is not None:
            face = self._in_window(image)
            if face is not None:
                return face
        self.detections += 1
        faces = self.detector.detect(image)
        if not faces:
            self._window = None
            return None
        self._place(faces[0].box)
        return self._in_window(image) or faces[0]

    def _place(self, box: np.ndarray) -> None:
        side = WINDOW_SCALE * max(box[2] - box[0], box[3] - box[1])
        self._window = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, side)

    def _in_window(self, image: np.ndarray) -> FaceLandmarks | None:
        cx, cy, side = self._window
        crop, x0, y0, side = _square_crop(image, cx, cy, side)
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        xyz = np.array([(p.x, p.y, p.z) for p in lm], dtype=np.float64) * side + np.array([x0, y0, 0.0])
        pts = xyz[:, :2]
        box = np.concatenate([pts.min(0), pts.max(0)])
        face_side = max(box[2] - box[0], box[3] - box[1])
        moved = np.hypot((box[0] + box[2]) / 2 - cx, (box[1] + box[3]) / 2 - cy) / side
        if moved > RECENTRE_FRACTION or not SIZE_RANGE[0] <= face_side / side <= SIZE_RANGE[1]:
            self._place(box)
        return FaceLandmarks(box, 1.0, pts.copy(), xyz, MEDIAPIPE478, found_by=FOUND_BY_TRACKING)
