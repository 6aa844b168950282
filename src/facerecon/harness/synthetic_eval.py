"""Reconstruct a synthetic set with the pipeline and score it by the NoW protocol, with its calibration.

    report = evaluate_synthetic(n=50, seed=0, mode="fast")
    print(format_synthetic_report(report))

Every report carries the calibration (see `calibration`): the error of the mean face ("nothing"),
of the model fitted to the ground truth ("floor"), and the fraction of that gap each result closes.
Errors pool all scan points of all scored faces (median, mean, std in mm, as NoW does); per-|yaw|
bins give the mean of the points of the faces in the bin. Faces whose detection fails are counted,
listed and left out of every statistic of that result, baselines included.

`landmarks="gt"` replaces the detector by the gt mesh's MediaPipe points projected into the image
(a perfect detector, self-occluded points included), to separate fitting errors from detection errors.

This harness sits above the pipeline (it drives it); `evaluation` below holds the metrics it uses.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import FitError, NoFaceError, UsageError
from ..landmarks import MEDIAPIPE478, FaceLandmarks, LandmarkDetector, load_correspondence
from ..models import MorphableModel
from ..evaluation.calibration import Calibration, calibrate, gap_fraction, score_vertices
from ..evaluation.now import summarize
from ..evaluation.synthetic import SyntheticFace, ground_truth_mediapipe_points, load_or_generate_synthetic_set
from ..pipeline import MODES, Reconstructor

YAW_BINS: tuple[tuple[float, float], ...] = ((0, 15), (15, 30), (30, 45), (45, 60), (60, 90))
"""|yaw| bins in degrees, [lo, hi) except the last, which includes 90."""
LANDMARK_SOURCES = ("detector", "gt")


def evaluate_synthetic(n: int = 50, seed: int = 0, mode: str = "fast", off_model: bool = False,
                       out: str | os.PathLike | None = None, landmarks: str = "detector",
                       reconstructor: "Reconstructor | None" = None, modes: Sequence[str] | None = None,
                       image_size: int = 256, metrical: bool = False) -> dict:
    """Generate (or load) a synthetic set, reconstruct every face, score it and calibrate the scores.

    Args:
        n, seed, off_model, image_size: the set (see `generate_synthetic_set`).
        mode: "fast" or "full"; `modes` (e.g. ("fast", "full")) runs several on the same set instead.
        out: folder to keep the set in; a set already there with the same n, seed, off_model and
            image size is loaded instead of generated again.
        landmarks: "detector" (the reconstructor's, MediaPipe by default) or "gt".
        reconstructor: a `facerecon.pipeline.Reconstructor` (default: a new one on ICT-FaceKit).
        metrical: score with the metrical NoW variant (no scale in the alignment).

    Returns:
        {"set", "landmarks", "metrical", "yaw_bins", "calibration" (all faces), "results": {mode:
        result}}; each result as `summarize_results` returns it.
    """

    if landmarks not in LANDMARK_SOURCES:
        raise UsageError(f"landmarks must be one of {LANDMARK_SOURCES}, got {landmarks!r}")
    modes = [mode] if modes is None else list(modes)
    if not modes or any(m not in MODES for m in modes):
        raise UsageError(f"modes must be among {MODES}, got {modes!r}")
    own = reconstructor is None
    if own:
        reconstructor = Reconstructor()
    try:
        faces = load_or_generate_synthetic_set(reconstructor.model, n, seed, out, off_model, image_size)
        view = reconstructor.view
        cal = calibrate(faces, view, metrical)
        results = {}
        for m in modes:
            scored = reconstruct_and_score(faces, reconstructor, m, landmarks, metrical)
            results[m] = summarize_results(faces, scored, cal)
    finally:
        if own:
            reconstructor.close()
    names = [f.name for f in faces]
    return {
        "set": {"n": len(faces), "seed": int(seed), "off_model": bool(off_model), "image_size": int(image_size),
                "folder": None if out is None else str(out), "model": reconstructor.model.name},
        "landmarks": landmarks,
        "metrical": bool(metrical),
        "yaw_bins": [list(b) for b in YAW_BINS],
        "calibration": calibration_summary(faces, cal, names),
        "results": results,
    }


@dataclass
class ScoredFace:
    """One face's reconstruction and score, or why it has none.

    Attributes:
        name, yaw_deg: of the synthetic face.
        distances: (P,) NoW distances (mm), None when the face failed.
        landmark_px: the fit's RMS landmark reprojection error (rec.landmark_error_px()).
        detector_px: mean distance of the detector's 68 points to the gt landmarks2d (px).
        fit_s: fitting time (fast + full fit, detection excluded); detect_s: detection time.
        failure: "no face detected" or the fit error, else None.
        quality: the reconstruction's quality flags.
    """

    name: str
    yaw_deg: float
    distances: np.ndarray | None = None
    landmark_px: float = float("nan")
    detector_px: float = float("nan")
    fit_s: float = float("nan")
    detect_s: float = float("nan")
    failure: str | None = None
    quality: dict = field(default_factory=dict)


class GroundTruthDetector(LandmarkDetector):
    """A 'detector' that returns the MediaPipe points of the face it was last given (`use(face)`)."""

    scheme = MEDIAPIPE478

    def __init__(self, model: MorphableModel) -> None:
        self.model = model
        self.embedding = load_correspondence(model).as_embedding()
        self._face: FaceLandmarks | None = None

    def use(self, face: SyntheticFace) -> None:
        points = ground_truth_mediapipe_points(self.model, face, self.embedding)
        box = np.r_[points.min(0), points.max(0)]
        self._face = FaceLandmarks(box, 1.0, points, None, MEDIAPIPE478)

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
        return [] if self._face is None else [self._face]


def reconstruct_and_score(faces: list[SyntheticFace], reconstructor: Reconstructor, mode: str,
                          landmarks: str = "detector", metrical: bool = False,
                          warm_up: bool = True) -> list[ScoredFace]:
    """Reconstruct each face with `reconstructor` in `mode` and score its fitted view by NoW.

    Detection failures (NoFaceError) and failed fits (FitError) are recorded, not raised. With
    `warm_up`, the first face is fitted once untimed first (JIT compilation, the full fitter's set-up),
    so that seconds per image are those of a warm reconstructor.
    """
    if landmarks not in LANDMARK_SOURCES:
        raise UsageError(f"landmarks must be one of {LANDMARK_SOURCES}, got {landmarks!r}")
    detector = reconstructor.detector
    gt = GroundTruthDetector(reconstructor.model)
    scored = []
    try:
        if warm_up and faces:
            reconstructor.detector = gt
            gt.use(faces[0])
            reconstructor.reconstruct(faces[0].image, mode=mode)
        reconstructor.detector = gt if landmarks == "gt" else detector
        for face in faces:
            if landmarks == "gt":
                gt.use(face)
            scored.append(_reconstruct_one(face, reconstructor, mode, metrical, landmarks == "detector"))
    finally:
        reconstructor.detector = detector
    return scored


def _reconstruct_one(face: SyntheticFace, reconstructor: Reconstructor, mode: str, metrical: bool,
                     detected: bool) -> ScoredFace:
    out = ScoredFace(face.name, face.yaw_deg)
    try:
        rec = reconstructor.reconstruct(face.image, mode=mode)[0]
    except NoFaceError:
        out.failure = "no face detected"
        return out
    except FitError as exc:
        out.failure = f"fit failed: {exc}"
        return out
    out.distances = score_vertices(face, reconstructor.view, rec.vertices(full=False), metrical).distances
    out.landmark_px = rec.landmark_error_px()
    if detected:
        out.detector_px = float(np.linalg.norm(rec.landmarks.to_ibug68().points - face.landmarks2d, axis=1).mean())
    out.fit_s = rec.timings.get("fast_fit_s", 0.0) + rec.timings.get("full_fit_s", 0.0)
    out.detect_s = rec.timings.get("detect_s", float("nan"))
    out.quality = rec.quality.to_dict()
    return out


def yaw_bin(yaw_deg: float) -> int:
    """Index into YAW_BINS of |yaw| (the last bin is closed), -1 beyond it."""
    a = abs(yaw_deg)
    for k, (lo, hi) in enumerate(YAW_BINS):
        if lo <= a < hi or (k == len(YAW_BINS) - 1 and a == hi):
            return k
    return -1


def _pooled(distances: list[np.ndarray]) -> dict[str, float]:
    nan = float("nan")
    return summarize(distances) if distances else {"median": nan, "mean": nan, "std": nan}


def calibration_summary(faces: list[SyntheticFace], cal: Calibration, names: Sequence[str]) -> dict:
    """Pooled and per-|yaw|-bin errors of the nothing and floor baselines over the faces `names`."""
    chosen = [f for f in faces if f.name in set(names)]
    out = {}
    for label, table in (("nothing", cal.nothing), ("floor", cal.floor)):
        out[label] = _pooled([table[f.name] for f in chosen])
        out[f"{label}_per_yaw_bin"] = [
            _pooled([table[f.name] for f in chosen if yaw_bin(f.yaw_deg) == k])["mean"] for k in range(len(YAW_BINS))]
    return out


def summarize_results(faces: list[SyntheticFace], scored: list[ScoredFace], cal: Calibration) -> dict:
    """Statistics of one mode's scored faces, with the calibration over the same faces.

    Returns:
        {"faces", "scored", "detection_failures", "fit_failures", "failed" (names), "error_mm" (median,
        mean, std pooled), "gap_fraction" (mean, median), "calibration" (as `calibration_summary`),
        "per_yaw_bin" [{"bin", "faces", "mean", "nothing", "floor", "gap_fraction"}],
        "landmark_error_px", "detector_error_px", "seconds_per_image" (fit only), "detect_seconds",
        "per_face" [{"name", "yaw_deg", "median", "mean", "landmark_px", "fit_s", "failure", "quality"}]}.
    """
    ok = [s for s in scored if s.failure is None]
    calib = calibration_summary(faces, cal, [s.name for s in ok])
    error = _pooled([s.distances for s in ok])
    bins = []
    for k, (lo, hi) in enumerate(YAW_BINS):
        members = [s for s in ok if yaw_bin(s.yaw_deg) == k]
        mean = _pooled([s.distances for s in members])["mean"]
        nothing, floor = calib["nothing_per_yaw_bin"][k], calib["floor_per_yaw_bin"][k]
        bins.append({"bin": [lo, hi], "faces": len(members), "mean": mean, "nothing": nothing, "floor": floor,
                     "gap_fraction": gap_fraction(mean, nothing, floor) if members else float("nan")})

    def mean_of(values: list[float]) -> float:
        values = [v for v in values if np.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")

    per_face = []
    for s in scored:
        stats = _pooled([s.distances] if s.distances is not None else [])
        per_face.append({"name": s.name, "yaw_deg": round(s.yaw_deg, 2), "median": stats["median"],
                         "mean": stats["mean"], "landmark_px": s.landmark_px, "fit_s": s.fit_s,
                         "failure": s.failure, "quality": s.quality})
    return {
        "faces": len(scored),
        "scored": len(ok),
        "detection_failures": sum(s.failure == "no face detected" for s in scored),
        "fit_failures": sum(s.failure is not None and s.failure != "no face detected" for s in scored),
        "failed": [s.name for s in scored if s.failure is not None],
        "error_mm": error,
        "gap_fraction": {k: gap_fraction(error, calib["nothing"], calib["floor"], k) for k in ("mean", "median")},
        "calibration": calib,
        "per_yaw_bin": bins,
        "landmark_error_px": mean_of([s.landmark_px for s in ok]),
        "detector_error_px": mean_of([s.detector_px for s in ok]),
        "seconds_per_image": mean_of([s.fit_s for s in ok]),
        "detect_seconds": mean_of([s.detect_s for s in ok]),
        "per_face": per_face,
    }


def format_synthetic_report(report: dict) -> str:
    """The report of `evaluate_synthetic` as fixed-width text: scores with their calibration, then the
    mean error per |yaw| bin."""
    s = report["set"]
    kind = "off-model" if s["off_model"] else "on-model"
    source = "ground-truth landmarks" if report["landmarks"] == "gt" else "detected landmarks"
    alignment = "rigid (metrical)" if report["metrical"] else "similarity"
    lines = [f"synthetic set: {s['n']} {kind} faces, seed {s['seed']}, {s['image_size']} px, {source}",
             f"NoW scan-to-mesh error (mm), {alignment} landmark alignment + refinement; "
             f"gap = (nothing - result) / (nothing - floor)"]
    head = (f"{'':<22}{'faces':>6}{'median':>8}{'mean':>8}{'std':>8}{'gap mean':>10}{'gap med':>9}"
            f"{'lmk px':>8}{'s/img':>7}{'no face':>8}")
    lines.append(head)
    cal = report["calibration"]
    for label, key in (("nothing (mean face)", "nothing"), ("floor (fit to gt)", "floor")):
        e = cal[key]
        lines.append(f"{label:<22}{s['n']:>6d}{e['median']:>8.3f}{e['mean']:>8.3f}{e['std']:>8.3f}")
    for mode, r in report["results"].items():
        e, g = r["error_mm"], r["gap_fraction"]
        lines.append(f"{mode:<22}{r['scored']:>6d}{e['median']:>8.3f}{e['mean']:>8.3f}{e['std']:>8.3f}"
                     f"{_pct(g['mean']):>10}{_pct(g['median']):>9}{r['landmark_error_px']:>8.2f}"
                     f"{r['seconds_per_image']:>7.2f}{r['detection_failures']:>8d}")
        if r["scored"] < r["faces"]:
            c = r["calibration"]
            lines.append(f"{'  its faces: nothing':<22}{r['scored']:>6d}{c['nothing']['median']:>8.3f}"
                         f"{c['nothing']['mean']:>8.3f}{c['nothing']['std']:>8.3f}")
            lines.append(f"{'  its faces: floor':<22}{r['scored']:>6d}{c['floor']['median']:>8.3f}"
                         f"{c['floor']['mean']:>8.3f}{c['floor']['std']:>8.3f}")
    lines.append("")
    lines.append("mean error (mm) per |yaw| bin (gap closed in brackets)")
    labels = [f"[{lo:g},{hi:g}{']' if k == len(YAW_BINS) - 1 else ')'}" for k, (lo, hi) in enumerate(YAW_BINS)]
    lines.append(f"{'':<22}" + "".join(f"{b:>15}" for b in labels))
    for mode, r in report["results"].items():
        counts = "".join(f"{b['faces']:>15d}" for b in r["per_yaw_bin"])
        lines.append(f"{'faces (' + mode + ')':<22}{counts}")
    for label, key in (("nothing", "nothing_per_yaw_bin"), ("floor", "floor_per_yaw_bin")):
        lines.append(f"{label:<22}" + "".join(f"{_mm(v):>15}" for v in cal[key]))
    for mode, r in report["results"].items():
        cells = "".join(f"{_mm(b['mean']) + (' (' + _pct(b['gap_fraction']) + ')' if b['faces'] else ''):>15}"
                        for b in r["per_yaw_bin"])
        lines.append(f"{mode:<22}{cells}")
    return "\n".join(lines)


def _pct(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{100 * x:.0f}%"


def _mm(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x:.3f}"


def json_ready(value):
    """A copy of a report with NaN and inf as None (strict JSON has neither)."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
