"""`track(video)`: a face through a video, as per-frame expression, head pose and camera with one
identity for the whole clip.

Three stages:
1. decode + landmarks, streamed (`io.video.read_frames`; frames larger than 1280 px are downscaled
   for landmarks, points are mapped back to video pixels): `FaceLandmarkTracker` per frame. Only
   the landmarks (478 x 2 float32 per frame, 3.8 kB) and the most frontal frame's picture (for the
   texture) are kept, so memory grows by a few kB per frame, not by frames.
2. identity: keyframes chosen for pose diversity (`identity.select_keyframes`), one identity and
   focal length from them by the joint multi-image fit (`identity.identity_from_keyframes`), baked
   into a personalised view.
3. per frame, expression and pose by the fast fit (`LandmarkFitter.fit`, warm-started from the
   previous frame, focal held) on landmarks de-biased and weighted by the detector's error model
   at the previous frame's yaw (`debias.debiased_landmarks`, as the pipeline's fast mode does a
   photo). Then temporal smoothness (`TrackConfig.smoothing`): by default the forward-backward
   RTS smoother over each run of tracked frames (`smoothing.rts_smooth`, no lag, its variances
   measured on the clip), or the causal `temporal_smoothness` objective term, or a one-euro
   filter. Frames without a face are "lost"; gaps of at most `gaps.MAX_GAP_FRAMES` frames are
   interpolated (`gaps.fill_gaps`).

benchmarks/bench_track.py (90-frame synthetic clips, 640x480) chose the default: against the
pipeline's fast mode frame by frame, the RTS track's expression error is 0.083 vs 0.091 on the
moving clip (0.117 vs 0.125 on the 7 animated weights, no lag added) and its still-clip jitter is
0.28 vs 4.1 mm; the causal term has 0.078 overall but 0.203 on the animated weights (it trails fast
blinks by frames).

A stream that breaks part-way (`VideoDecodeError`) ends stage 1 early: the frames read so far go
through stages 2 and 3, and `PartialTrackError` carries that `Track` (exit code 4), so a caller
writes what was tracked before raising.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ImageError, NoFaceError, UsageError
from ..fitting import FitResult, LandmarkFitter
from ..fitting import LandmarkFitConfig
from ..io.animation import HeadAnimation, quaternions_wxyz
from ..io.video import LANDMARK_MAX_SIDE, VideoDecodeError, VideoFrame, frames_from_arrays, read_frames
from ..landmarks import FaceLandmarks
from ..landmarks.error_model import LandmarkErrorModel
from ..models.arkit import ARKIT_NAMES, ICT_EXTRAS, arkit_weights, gltf_weights, uses_ict_names
from ..pipeline import Reconstructor
from ..reconstruction import Reconstruction, photo_copy
from .gaps import LOST, MAX_GAP_FRAMES, TRACKED, fill_gaps
from .identity import NUM_KEYFRAMES, identity_from_keyframes, personalised_view, rough_pose_deg, select_keyframes
from .landmarks import FaceLandmarkTracker
from .debias import debiased_landmarks
from .smoothing import TEMPORAL_TERM, OneEuroFilter, rts_smooth

SMOOTHING = ("rts", "term", "one_euro", "none")


@dataclass
class TrackConfig:
    """How a video is tracked.

    Attributes:
        smoothing: "rts" (default: the forward-backward smoother over the fits, `smoothing.rts_smooth`;
            benchmarks/bench_track.py), "term" (the temporal objective term, causal), "one_euro" (a
            one-euro filter after each frame's fit) or "none".
        error_model: de-bias and weight each frame's landmarks by the detector's error model, as
            the pipeline's fast mode does (`debias.debiased_landmarks`; needs a detector with one).
        temporal_weight: weight of the temporal term (1: a change of one sigma costs as much as one
            landmark's noise).
        temporal_sigma: (expression weight, rotation rad, translation mm) frame-to-frame changes the
            term treats as one unit of noise (a head turns up to ~2 deg per frame at 30 fps).
        one_euro: (min cutoff Hz, beta) of the one-euro filter.
        max_gap_frames: the longest run of frames without a face that is interpolated.
        num_keyframes: keyframes for the identity.
        joint_identity: the identity from the joint multi-image fit of the keyframes (default), else
            the mean of their single-frame fits (`identity.identity_from_keyframes`).
        landmark_max_side: frames are downscaled to this longer side for landmarks.
        frame_fit: the per-frame fast fit (few iterations: it starts from the previous frame).
        keyframe_fit: the keyframes' fast fit (identity included).
        focal: the camera's focal length in px when known (else estimated from the keyframes).
    """

    smoothing: str = "rts"
    error_model: bool = True
    temporal_weight: float = 1.0
    temporal_sigma: tuple[float, float, float] = (0.08, 0.032, 8.0)
    one_euro: tuple[float, float] = (1.0, 0.3)
    max_gap_frames: int = MAX_GAP_FRAMES
    num_keyframes: int = NUM_KEYFRAMES
    joint_identity: bool = True
    landmark_max_side: int = LANDMARK_MAX_SIDE
    frame_fit: LandmarkFitConfig = field(default_factory=lambda: LandmarkFitConfig(
        num_identity=0, iterations=4, sliding_updates=1))
    keyframe_fit: LandmarkFitConfig = field(default_factory=LandmarkFitConfig)
    focal: float | None = None

    def __post_init__(self) -> None:
        if self.smoothing not in SMOOTHING:
            raise UsageError(f"smoothing must be one of {SMOOTHING}, got {self.smoothing!r}")
        if self.max_gap_frames < 0 or self.num_keyframes < 1:
            raise UsageError("max_gap_frames must be >= 0 and num_keyframes >= 1")


@dataclass
class Track:
    """A tracked face (T frames). Per-frame arrays hold NaN on "lost" frames.

    Attributes:
        timestamps_s: (T,) presentation times from the first frame. status: (T,) "tracked",
            "interpolated" or "lost". found_by: (T,) how each frame's landmarks were found ("" if not).
        identity: (K,) the clip's identity; focal: px; image_size: (H, W) of the video.
        expression: (T, E) weights; rotation: (T, 3) axis-angle model -> camera; translation: (T, 3) mm.
        landmarks: (T, 478, 2) float32 px in the video (NaN where none). rms_px: (T,) landmark fit RMS.
        keyframes: frame indices the identity came from. timings_s: stage -> seconds.
        model_source, model_name, expression_names: the model. source: the video's path or None.
        reference: a `Reconstruction` of the most frontal tracked frame (its picture textures the mesh).
        error: why decoding stopped early, or None.
    """

    timestamps_s: np.ndarray
    status: list[str]
    found_by: list[str]
    identity: np.ndarray
    focal: float
    image_size: tuple[int, int]
    expression: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    landmarks: np.ndarray
    rms_px: np.ndarray
    keyframes: list[int]
    timings_s: dict
    model_source: str
    model_name: str
    expression_names: tuple[str, ...]
    source: str | None = None
    reference: Reconstruction | None = None
    error: str | None = None

    @property
    def num_frames(self) -> int:
        return len(self.timestamps_s)

    @property
    def face_found(self) -> np.ndarray:
        """(T,) bool: the frame's landmarks were found and fitted."""
        return np.array([s == TRACKED for s in self.status], dtype=bool)

    @property
    def has_values(self) -> np.ndarray:
        """(T,) bool: tracked or interpolated."""
        return np.array([s != LOST for s in self.status], dtype=bool)

    def pose_deg(self) -> np.ndarray:
        """(T, 3) yaw, pitch, roll in degrees (R = Ry(yaw) Rx(pitch) Rz(roll)); NaN where lost."""
        from ..geometry.rotation import axis_angle_to_matrix_np, matrix_to_euler_deg_np

        out = np.full((self.num_frames, 3), np.nan)
        for i in np.flatnonzero(self.has_values):
            out[i] = matrix_to_euler_deg_np(axis_angle_to_matrix_np(self.rotation[i]))
        return out

    def quaternions_wxyz(self) -> np.ndarray:
        """(T, 4) unit quaternions (w, x, y, z) of the rotation, sign-continuous; NaN where lost."""
        out = np.full((self.num_frames, 4), np.nan)
        ok = self.has_values
        if ok.any():
            out[ok] = quaternions_wxyz(self.rotation[ok])
        return out

    def arkit_curves(self) -> np.ndarray:
        """(T, 52) ARKit blendshape weights in `ARKIT_NAMES` order (`arkit_weights`); NaN where lost."""
        names = list(self.expression_names)
        if not uses_ict_names(names):
            raise UsageError(f"ARKit curves need an ICT-FaceKit model; {self.model_name} has other expressions")
        out = np.full((self.num_frames, len(ARKIT_NAMES)), np.nan)
        for i in np.flatnonzero(self.has_values):
            out[i] = list(arkit_weights(names, self.expression[i]).values())
        return out

    def animation(self, target_names: list[str]) -> HeadAnimation:
        """The frames with values as animation keys for a mesh whose morph targets are `target_names`
        (ARKit's 52 and ICT's halves, as `Reconstruction.mesh` names them; `gltf_weights`)."""
        names = list(self.expression_names)
        keep = np.flatnonzero(self.has_values)
        if len(keep) == 0:
            raise NoFaceError("no frame of the track has a face to animate")
        weights = []
        for i in keep:
            main, extra = gltf_weights(names, self.expression[i])
            by_name = dict(zip(ARKIT_NAMES + ICT_EXTRAS, main + extra))
            missing = [n for n in target_names if n not in by_name]
            if missing:
                raise UsageError(f"the mesh has morph targets the track does not drive: {missing[:5]}")
            weights.append([by_name[n] for n in target_names])
        return HeadAnimation(self.timestamps_s[keep], np.array(weights), self.rotation[keep], self.translation[keep])


class PartialTrackError(ImageError):
    """The video broke part-way; `track` holds what was tracked from the frames before the break."""

    def __init__(self, message: str, track: Track) -> None:
        super().__init__(message)
        self.track = track


class FrameLandmarks:
    """Every frame's (L, 2) landmarks in one growing float32 array (NaN rows: no face), not one small
    array per frame: a 10-minute clip's 18000 frames are one 69 MB block, without the per-array
    overhead and the heap fragmentation of 18000 small allocations among the fits' temporaries."""

    def __init__(self, num_points: int, capacity: int = 256) -> None:
        self._data = np.empty((capacity, num_points, 2), dtype=np.float32)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, points: np.ndarray | None) -> None:
        if self._count == len(self._data):
            grown = np.empty((2 * len(self._data),) + self._data.shape[1:], dtype=np.float32)
            grown[: self._count] = self._data[: self._count]
            self._data = grown
        self._data[self._count] = np.nan if points is None else points
        self._count += 1

    def __getitem__(self, index: int) -> np.ndarray | None:
        """Frame `index`'s (L, 2) float64 points, or None without a face."""
        row = self._data[: self._count][index]
        return None if np.isnan(row[0, 0]) else row.astype(np.float64)

    @property
    def array(self) -> np.ndarray:
        """(T, L, 2) float32, NaN where no face (a view, no copy)."""
        return self._data[: self._count]


@dataclass
class _Observed:
    """Stage 1's output: per-frame landmarks and times, and the most frontal frame."""

    points: FrameLandmarks
    timestamps: list[float] = field(default_factory=list)
    found_by: list[str] = field(default_factory=list)
    poses: list[tuple[float, float, float] | None] = field(default_factory=list)
    best_frame: tuple[float, int, np.ndarray, FaceLandmarks] | None = None  # (|pose|, index, picture, face)
    image_size: tuple[int, int] | None = None
    error: VideoDecodeError | None = None


class VideoTracker:
    """Holds the model, its fitters and the landmark tracker, to track several videos.

    Args:
        model: a model name or path (default ICT-FaceKit) or a `Reconstructor` to share.
        config: `TrackConfig`.
    """

    def __init__(self, model: str | Path | Reconstructor = "ict", config: TrackConfig | None = None,
                 download: bool = False) -> None:
        from ..landmarks.mediapipe_detector import MediaPipeDetector

        self.config = config or TrackConfig()
        if isinstance(model, Reconstructor):
            self.reconstructor, self._own = model, False
        else:
            detector = MediaPipeDetector(max_num_faces=1, rotations=False)
            self.reconstructor, self._own = Reconstructor(model, detector=detector, download=download), True
        self.landmarks = FaceLandmarkTracker(self.reconstructor.detector)
        self._mean_points = self.reconstructor.correspondence.points(
            self.reconstructor.view.mean.detach().cpu().double().numpy())
        rec = self.reconstructor
        with_model = self.config.error_model and rec.config.landmark_error_model and \
            getattr(rec.detector, "error_model", None) is not None
        self._error_model = LandmarkErrorModel.load(self.landmarks.error_model) if with_model else None

    def close(self) -> None:
        self.landmarks.close()
        if self._own:
            self.reconstructor.detector.close()

    def __enter__(self) -> "VideoTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ stage 1
    def observe(self, frames: Iterable[VideoFrame], progress: Callable[[int], None] | None = None) -> _Observed:
        """Landmarks of every frame (stage 1), streamed."""
        obs = _Observed(FrameLandmarks(len(self.reconstructor.correspondence)))
        weights = self.reconstructor.landmark_weights
        self.landmarks.reset()
        try:
            for frame in frames:
                obs.image_size = frame.video_size
                face = self.landmarks.update(frame.image)
                obs.timestamps.append(frame.timestamp_s)
                if face is None:
                    obs.points.append(None)
                    obs.poses.append(None)
                    obs.found_by.append("")
                else:
                    pts = face.points / frame.scale
                    obs.points.append(pts)
                    obs.found_by.append(face.found_by)
                    pose = rough_pose_deg(self._mean_points, pts, weights)
                    obs.poses.append(pose)
                    frontal = abs(pose[0]) + abs(pose[1])
                    if obs.best_frame is None or frontal < obs.best_frame[0]:
                        full = FaceLandmarks(face.box / frame.scale, face.score, pts,
                                             None, face.scheme, found_by=face.found_by)
                        obs.best_frame = (frontal, frame.index, frame.image.copy(), full)
                if progress is not None:
                    progress(len(obs.timestamps))
        except VideoDecodeError as exc:
            obs.error = exc
        return obs

    # ------------------------------------------------------------------ stages 2 and 3
    def fit(self, obs: _Observed, source: str | None = None, timings: dict | None = None) -> Track:
        """Identity from keyframes, then every frame's fit, smoothing and gap filling."""
        cfg = self.config
        rec = self.reconstructor
        timings = dict(timings or {})
        n = len(obs.timestamps)
        with_face = np.flatnonzero(~np.isnan(obs.points.array[:, 0, 0])).tolist()
        if not with_face:
            raise NoFaceError(f"no face found in any of the {n} frames of {source or 'the video'}")
        h, w = obs.image_size
        weights = rec.landmark_weights
        t, c = time.perf_counter(), time.process_time()
        picks = select_keyframes(np.array([obs.poses[i] for i in with_face]), cfg.num_keyframes)
        keyframes = [with_face[k] for k in picks]
        debias = self._debias(rec.fast_fitter)
        identity, focal, _ = identity_from_keyframes(
            rec.fast_fitter, [obs.points[i] for i in keyframes], (h, w), weights,
            cfg.keyframe_fit, focal=cfg.focal, debias=debias, joint=cfg.joint_identity)
        fitter = LandmarkFitter(personalised_view(rec.view, identity), rec.correspondence)
        debias = self._debias(fitter)
        timings["identity_s"], timings["identity_cpu_s"] = time.perf_counter() - t, time.process_time() - c

        t, c = time.perf_counter(), time.process_time()
        e_dim = rec.view.num_expression
        expression = np.full((n, e_dim), np.nan)
        rotation = np.full((n, 3), np.nan)
        translation = np.full((n, 3), np.nan)
        rms = np.full(n, np.nan, dtype=np.float32)
        status = [LOST] * n
        fit_cfg = cfg.frame_fit
        if cfg.smoothing == "term":
            fit_cfg = dataclasses.replace(fit_cfg, terms={**fit_cfg.terms, TEMPORAL_TERM: cfg.temporal_weight})
        filters = [OneEuroFilter(*cfg.one_euro) for _ in range(3)]
        previous: FitResult | None = None
        last = -10**9
        segments: list[list[int]] = []
        reference_fit = None
        for i in with_face:
            if i - last > cfg.max_gap_frames + 1:
                previous = None
                segments.append([])
                for f in filters:
                    f.reset()
            extras = {}
            if previous is not None and cfg.smoothing == "term":
                extras = {"previous": (expression[last], rotation[last], translation[last]),
                          "temporal_sigma": cfg.temporal_sigma}
            points = obs.points[i]
            frame_weights = weights
            if debias is not None:
                # the yaw of the previous frame (or, after a gap, of a first plain fit) de-biases this one
                start = previous or fitter.fit(points, (h, w), weights, fit_cfg, focal=focal)
                points, frame_weights = debias(points, start)
            result = fitter.fit(points, (h, w), frame_weights, fit_cfg, focal=focal, init=previous, extras=extras)
            p = result.state.params
            e, r, tr = p.expression[0], p.rotation[0], p.translation[0]
            if cfg.smoothing == "one_euro":
                ts = obs.timestamps[i]
                e, r, tr = filters[0](e, ts), filters[1](r, ts), filters[2](tr, ts)
            expression[i], rotation[i], translation[i] = e, r, tr
            rms[i] = result.rms_px
            status[i] = TRACKED
            segments[-1].append(i)
            previous, last = result, i
            if obs.best_frame is not None and i == obs.best_frame[1]:
                reference_fit = result
        if cfg.smoothing == "rts":
            self._smooth(segments, expression, rotation, translation)
        timings["fit_s"], timings["fit_cpu_s"] = time.perf_counter() - t, time.process_time() - c
        times = np.asarray(obs.timestamps, dtype=np.float64)
        status = fill_gaps(times, status, {"expression": expression, "rotation": rotation,
                                           "translation": translation}, cfg.max_gap_frames)
        track = Track(times, status, obs.found_by, identity, focal, (h, w), expression, rotation, translation,
                      obs.points.array, rms, keyframes, timings, rec.model_source, rec.model.name,
                      tuple(rec.view.expression_names), source,
                      error=None if obs.error is None else str(obs.error))
        if reference_fit is not None:
            track.reference = self._reference(track, obs, reference_fit)
        return track

    def _debias(self, fitter: LandmarkFitter):
        """(points, fit) -> de-biased (points, weights) for `fitter`'s fits, or None without an error model."""
        if self._error_model is None:
            return None
        rec = self.reconstructor
        return lambda points, fit: debiased_landmarks(self._error_model, fitter, points, rec.landmark_weights,
                                                      fit, rec.config)

    def _smooth(self, segments: list[list[int]], expression: np.ndarray, rotation: np.ndarray,
                translation: np.ndarray) -> None:
        """`rts_smooth` over each run of frames fitted one after the other (in place); expression
        weights stay within the model's bounds."""
        bounds = self.reconstructor.view.expression_bounds
        e_dim = expression.shape[1]
        for frames in segments:
            x = rts_smooth(np.concatenate([expression[frames], rotation[frames], translation[frames]], axis=1))
            e = x[:, :e_dim] if bounds is None else np.clip(x[:, :e_dim], *bounds)
            expression[frames], rotation[frames], translation[frames] = e, x[:, e_dim:e_dim + 3], x[:, e_dim + 3:]

    def _reference(self, track: Track, obs: _Observed, fit: FitResult) -> Reconstruction:
        """The most frontal frame as a `Reconstruction` (identity of the clip, that frame's expression and pose)."""
        rec = self.reconstructor
        i = obs.best_frame[1]
        state = fit.state.replace(identity=track.identity[None], expression=track.expression[i][None],
                                  rotation=track.rotation[i][None], translation=track.translation[i][None])
        return Reconstruction(state=state, mode="fast", model_source=rec.model_source, view_name=rec.config.view,
                              landmarks=obs.best_frame[3], photo=photo_copy(obs.best_frame[2].astype(np.float32) / 255),
                              correspondence=fit.correspondence, landmark_weights=rec.landmark_weights,
                              source=track.source)

    def track(self, source: str | Path | Iterable[np.ndarray], fps: float = 30.0,
              progress: Callable[[int], None] | None = None) -> Track:
        """Track the face of a video file, or of in-memory frames ((H, W, 3) uint8 or float) at `fps`.

        Raises:
            ImageError: the file is missing or not a readable video. NoFaceError: no frame has a face.
            PartialTrackError: the stream broke part-way; `.track` holds the frames before the break.
        """
        t0, c0 = time.perf_counter(), time.process_time()
        if isinstance(source, (str, Path)):
            name = str(source)
            frames = read_frames(source, self.config.landmark_max_side)
        else:
            name = None
            frames = frames_from_arrays(source, fps, self.config.landmark_max_side)
        obs = self.observe(frames, progress)
        timings = {"decode_and_landmarks_s": time.perf_counter() - t0,
                   "decode_and_landmarks_cpu_s": time.process_time() - c0, "frames": len(obs.timestamps),
                   "detector_runs": self.landmarks.detections}
        if not obs.timestamps and obs.error is not None:
            raise obs.error
        track = self.fit(obs, name, timings)
        track.timings_s["total_s"] = time.perf_counter() - t0
        if obs.error is not None:
            raise PartialTrackError(str(obs.error), track)
        return track


def track(source: str | Path | Iterable[np.ndarray], model: str | Path = "ict", config: TrackConfig | None = None,
          fps: float = 30.0, download: bool = False) -> Track:
    """Track the face in a video file or a sequence of frames (see `VideoTracker.track`)."""
    with VideoTracker(model, config, download=download) as tracker:
        return tracker.track(source, fps)
