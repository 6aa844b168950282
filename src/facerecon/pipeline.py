"""The main job: photo -> landmarks -> fast landmark fit -> (full photometric fit) -> Reconstruction.

    import facerecon
    rec = facerecon.reconstruct("photo.jpg", mode="full")
    rec.save("out/")            # mesh.obj/.ply/.glb, albedo.png, params.json, overlay.png, landmarks.json
    rec.mesh.export("face.glb")
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import FitError, NoFaceError, UsageError
from .fitting import (LandmarkFitConfig, LandmarkFitter, PhotometricFitConfig, PhotometricFitter,
                      correspondence_on)
from .fitting.rotation_np import euler_from_matrix_deg, rodrigues_np
from .landmarks import (MEDIAPIPE478, FaceLandmarks, LandmarkDetector, create_detector, eyelid_pairs,
                        face_region_mask, inner_lip_pairs, load_correspondence)
from .models import MorphableModel, load_model
from .reconstruction import FaceParams, Reconstruction

MODES = ("fast", "full")
MIN_FACE_PX = 40
MAX_YAW_DEG = 60.0


@dataclass
class PipelineConfig:
    """What the pipeline fits and how."""

    view: str = "head"
    landmark: LandmarkFitConfig = field(default_factory=LandmarkFitConfig)
    photometric: PhotometricFitConfig = field(default_factory=PhotometricFitConfig)
    # relative weight of the upper face outline (forehead/hairline), where detectors disagree most
    forehead_outline_weight: float = 0.3
    # after the full fit, re-fit expression, pose and focal length to the landmarks with the
    # full fit's identity held, so the overlay sits on the landmarks while the shape keeps what
    # shading taught it
    landmark_polish: bool = True
    polish_expression: bool = False


class Reconstructor:
    """Holds a model, its fitters and a landmark detector, to reconstruct many photos.

    Args:
        model: a `MorphableModel`, a model name or a path (default ICT-FaceKit).
        device: "cpu" or "cuda" (the full fit runs there; the landmark fit is small and stays on CPU).
        detector: a `LandmarkDetector` (default MediaPipe 478 points).
        config: `PipelineConfig`.
        download: allow fetching the default model if it is not found.
    """

    def __init__(self, model: MorphableModel | str | Path = "ict", device: str = "cpu",
                 detector: LandmarkDetector | None = None, config: PipelineConfig | None = None,
                 download: bool = False, max_faces: int = 1, identity_metric: bool = True,
                 embedder=None) -> None:
        if device not in ("cpu", "cuda"):
            raise UsageError(f"device must be 'cpu' or 'cuda', got {device!r}")
        if device == "cuda" and not torch.cuda.is_available():
            raise UsageError("device 'cuda' was asked for but torch sees no CUDA device; use --device cpu")
        if max_faces < 1:
            raise UsageError(f"max_faces must be >= 1, got {max_faces}")
        self.config = config or PipelineConfig()
        self.device = device
        self.max_faces = max_faces
        self.model = model if isinstance(model, MorphableModel) else load_model(model, download=download)
        try:
            self.view = self.model.view(self.config.view)
        except UsageError:
            self.view = self.model
        emb = load_correspondence(self.view)
        self.correspondence = correspondence_on(self.view, emb.as_embedding(), sliding=emb.sliding.cpu().numpy())
        self.landmark_weights = self._landmark_weights(emb)
        self.fast_fitter = LandmarkFitter(self.view, self.correspondence)
        self._full_fitter: PhotometricFitter | None = None
        self._fixed_focal_fitter: PhotometricFitter | None = None
        self._own_detector = detector is None
        self.detector = detector if detector is not None else create_detector("mediapipe", max_num_faces=max(max_faces, 4))
        self.identity_metric = identity_metric
        self._embedder = embedder  # None: try dlib on first use; False: unavailable
        self._embedder_note = ""
        self.eye_pairs = np.concatenate(list(eyelid_pairs(MEDIAPIPE478).values()))
        self.lip_pairs = inner_lip_pairs(MEDIAPIPE478)

    @property
    def full_fitter(self) -> PhotometricFitter:
        if self._full_fitter is None:
            self._full_fitter = PhotometricFitter(self.view.to(self.device), self.config.photometric)
        return self._full_fitter

    @property
    def fixed_focal_fitter(self) -> PhotometricFitter:
        """The full fitter with the focal length held (a known focal length)."""
        if self._fixed_focal_fitter is None:
            cfg = self.config.photometric
            cfg = dataclasses.replace(cfg, learning_rates={**cfg.learning_rates, "log_focal": 0.0})
            self._fixed_focal_fitter = PhotometricFitter(self.view.to(self.device), cfg)
        return self._fixed_focal_fitter

    def _identity_similarity(self, rec: Reconstruction) -> dict:
        """Cosine similarity of face embeddings of the photo and the rendered reconstruction."""
        from .evaluation.identity import DlibFaceEmbedder, identity_similarity
        from .landmarks.dlib_detector import DlibMissingError

        if self._embedder is None:
            try:
                self._embedder = DlibFaceEmbedder()
            except DlibMissingError as exc:
                self._embedder, self._embedder_note = False, str(exc)
        if self._embedder is False:
            return {"cosine": None, "unavailable": self._embedder_note}
        sim = identity_similarity(self._embedder, rec.image, rec.render_textured(), rec.landmarks.box)
        return {"cosine": round(sim, 4) if np.isfinite(sim) else None, "backend": type(self._embedder).__name__}

    def close(self) -> None:
        if self._own_detector:
            self.detector.close()

    def __enter__(self) -> "Reconstructor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _landmark_weights(self, emb) -> np.ndarray:
        from .landmarks.schemes import MEDIAPIPE_SILHOUETTE

        w = np.ones(len(emb), dtype=np.float64)
        w[emb.iris.cpu().numpy() | ~emb.valid.cpu().numpy()] = 0.0
        y = self.correspondence.points(self.view.mean.detach().cpu().double().numpy())[:, 1]
        brow = np.median(y)  # points above the middle of the face on the outline: forehead/hairline
        sil = np.zeros(len(emb), dtype=bool)
        sil[MEDIAPIPE_SILHOUETTE] = True
        w[sil & (y > brow + 30.0)] = self.config.forehead_outline_weight
        return w

    # ------------------------------------------------------------------ the job
    def reconstruct(self, image: np.ndarray | str | Path, mode: str = "fast",
                    focal: float | None = None) -> list[Reconstruction]:
        """Reconstruct up to `max_faces` faces of one image, largest first.

        Args:
            image: a path, or (H, W, 3) float32 RGB in [0, 1] (uint8 is accepted too).
            mode: "fast" (landmark fit) or "full" (landmark fit, then the photometric fit).
            focal: the camera's focal length in px when known (then held fixed), else estimated.

        Raises:
            NoFaceError: no face in the image. ImageError: the file cannot be read.
        """
        if mode not in MODES:
            raise UsageError(f"mode must be one of {MODES}, got {mode!r}")
        if focal is not None and not (np.isfinite(focal) and focal > 0):
            raise UsageError(f"focal must be a positive number of pixels, got {focal!r}")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        source = None
        if isinstance(image, (str, Path)):
            from .io.images import load_image

            source = str(image)
            image = load_image(image)
        image = _as_float_image(image)
        timings["load_s"] = time.perf_counter() - t0
        t = time.perf_counter()
        faces = self.detector.detect(image)
        timings["detect_s"] = time.perf_counter() - t
        if not faces:
            h, w = image.shape[:2]
            raise NoFaceError(f"no face found in {source or f'the {w}x{h} image'}")
        results = []
        for index, face in enumerate(faces[: self.max_faces]):
            rec = self._fit_face(image, face, mode, dict(timings), focal)
            rec.face_index = index
            rec.faces_detected = len(faces)
            rec.source = source
            if len(faces) > 1:
                rec.quality["multiple_faces"] = True
            if self.identity_metric:
                t = time.perf_counter()
                rec.identity_similarity = self._identity_similarity(rec)
                rec.timings["identity_metric_s"] = time.perf_counter() - t
            results.append(rec)
        return results

    def _fit_face(self, image: np.ndarray, face: FaceLandmarks, mode: str, timings: dict,
                  focal: float | None = None) -> Reconstruction:
        h, w = image.shape[:2]
        if face.scheme != MEDIAPIPE478:
            raise UsageError(f"the pipeline fits MediaPipe's 478 points; got {face.scheme}")
        points = face.points
        weights = self.landmark_weights.copy()
        quality: dict = {}
        box_w = float(face.box[2] - face.box[0])
        if box_w < MIN_FACE_PX:
            quality["tiny_face"] = True
        t = time.perf_counter()
        fast = self.fast_fitter.fit(points, (h, w), weights, self.config.landmark, focal=focal)
        timings["fast_fit_s"] = time.perf_counter() - t
        fit_used = fast
        sh = None
        albedo = None
        corrective = None
        losses = {"fast": {"landmark_rms_px": fast.rms_px}}
        if mode == "full":
            t = time.perf_counter()
            skin = face_region_mask(face, (h, w))
            try:
                fitter = self.full_fitter if focal is None else self.fixed_focal_fitter
                full = fitter.fit(image, points, weights, skin, fast, self.eye_pairs, self.lip_pairs)
            except FitError as exc:
                quality["full_mode_failed"] = str(exc)
                full = None
            timings["full_fit_s"] = time.perf_counter() - t
            if full is not None:
                losses["full"] = {"landmark_rms_px": full.rms_px, **{f"final_{k}": v for k, v in
                                                                     full.losses.get("final", {}).items()}}
                if self.config.landmark_polish:
                    polished = self.fast_fitter.fit(points, (h, w), weights, self.config.landmark, focal=focal,
                                                    init=full, freeze_identity=True,
                                                    freeze_expression=not self.config.polish_expression)
                    losses["full"]["polished_landmark_rms_px"] = polished.rms_px
                    full.expression, full.rotation, full.translation = (polished.expression, polished.rotation,
                                                                        polished.translation)
                    full.focal, full.residual_px = polished.focal, polished.residual_px
                    full.correspondence = polished.correspondence
                # full mode must never return a face worse than fast mode's by its own measures
                if full.rms_px > fast.rms_px * 1.25 + 0.5:
                    quality["full_mode_reverted_to_fast"] = (
                        f"landmark error {full.rms_px:.2f} px vs fast {fast.rms_px:.2f} px")
                else:
                    fit_used = full
                sh = full.sh
                albedo = full.albedo
                corrective = full.corrective if fit_used is full else None
        yaw, pitch, roll = euler_from_matrix_deg(rodrigues_np(fit_used.rotation))
        if abs(yaw) > MAX_YAW_DEG:
            quality["extreme_yaw"] = round(yaw, 1)
        face_size = float(np.linalg.norm(np.ptp(points[weights > 0], axis=0)))
        if fit_used.rms_px > 0.05 * face_size:
            quality["poor_landmark_fit"] = round(fit_used.rms_px, 2)
        params = FaceParams(
            identity=np.asarray(fit_used.identity, dtype=np.float64),
            expression=np.asarray(fit_used.expression, dtype=np.float64),
            rotation=np.asarray(fit_used.rotation, dtype=np.float64),
            translation=np.asarray(fit_used.translation, dtype=np.float64),
            focal=float(fit_used.focal), principal=np.asarray(fit_used.principal, dtype=np.float64),
            image_size=(h, w), sh=None if sh is None else np.asarray(sh, dtype=np.float64),
        )
        timings["total_s"] = sum(v for k, v in timings.items() if k != "total_s")
        return Reconstruction(
            model=self.model, view=self.view, params=params, mode=mode, landmarks=face, image=image,
            albedo=albedo, corrective=corrective, quality=quality, losses=losses, timings=timings,
            correspondence=fit_used.correspondence or fast.correspondence,
            landmark_weights=weights,
        )


def reconstruct(image: np.ndarray | str | Path, mode: str = "fast", model: MorphableModel | str = "ict",
                device: str = "cpu", max_faces: int = 1, download: bool = False) -> Reconstruction:
    """Reconstruct the largest face of one photo (see `Reconstructor` to reuse the set-up)."""
    with Reconstructor(model, device=device, max_faces=max_faces, download=download) as rec:
        return rec.reconstruct(image, mode=mode)[0]


def _as_float_image(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise UsageError(f"image must be (H, W, 3) RGB, got shape {arr.shape}")
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise UsageError("image contains NaN or inf")
    return np.clip(arr, 0.0, 1.0)
