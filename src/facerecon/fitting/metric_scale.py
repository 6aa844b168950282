"""Absolute scale from the iris: adult irises are about 11.7 +- 0.5 mm across, heads vary more.

A photo cannot tell a face's size (scaling the scene about the camera leaves the image unchanged);
the fit's size is its shape prior's. MediaPipe's iris points (468-477: per eye a centre and four
contour points) measure the iris in pixels: the four contour points are the ends of two conjugate
diameters of the projected circle, so the ellipse's semi-major axis is sqrt(lambda_max(a1 a1^T +
a2 a2^T)) whatever the gaze or head turn. At the fitted eye depth z and focal f that is an iris of
d_px z / f mm in the fit's units; 11.7 mm over it is the iris's scale estimate, with a relative std
from the population spread, the detector's error on the diameter (`IRIS_DETECTOR_LOG_STD`) and
(when the focal was estimated) the depth difference between eye and face. It is combined with the shape prior (scale 1, the model's relative
size std) by inverse-variance weighting in log scale. `metric_scale` multiplies the fitted mesh and
translation into true millimetres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import FitError, UsageError
from ..models import MorphableModel

IRIS_DIAMETER_MM = 11.7
IRIS_DIAMETER_STD_MM = 0.5
IRIS_POINTS = {"right": (468, 469, 470, 471, 472), "left": (473, 474, 475, 476, 477)}
# std of log(detected / true diameter), the mean of both eyes, of MediaPipe's iris points: 0.13 on
# training renders (evaluation.synthetic seed 9100, 30 faces, 512 px, yaw within +-45 deg), never
# the benchmark's faces; a render's painted iris edge is not a real limbus, so the bias seen there
# (-9.5 %) is not corrected
IRIS_DETECTOR_LOG_STD = 0.13


@dataclass
class MetricScale:
    """scale: multiply the fit's mm by this for true mm; std: its standard deviation. iris_scale,
    iris_std: the iris's estimate alone; prior_std: the shape prior's; iris_px: (2,) right, left."""

    scale: float
    std: float
    iris_scale: float
    iris_std: float
    prior_std: float
    iris_px: np.ndarray


def iris_diameters_px(points: np.ndarray) -> np.ndarray:
    """(2,) iris diameters (right, left eye) in px from MediaPipe's (478, 2) points."""
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (478, 2):
        raise UsageError(f"iris diameters need MediaPipe's (478, 2) points, got {points.shape}")
    out = []
    for ids in IRIS_POINTS.values():
        p = points[list(ids)]
        a1, a2 = (p[1] - p[3]) / 2, (p[2] - p[4]) / 2
        out.append(2 * np.sqrt(np.linalg.eigvalsh(np.outer(a1, a1) + np.outer(a2, a2))[-1]))
    return np.array(out)


def model_size_std(model: MorphableModel, region: str = "narrow_face", num_identity: int | None = None) -> float:
    """Relative std of the size (RMS radius about the centroid) of `region` under the identity prior."""
    ids = model.regions[region].cpu().numpy() if region in model.regions else np.arange(model.num_vertices)
    k = num_identity or model.num_identity
    c = model.mean.detach().cpu().double().numpy()[ids]
    c = c - c.mean(0)
    r0 = np.sqrt((c ** 2).sum(1).mean())
    basis = model.identity_basis.detach().cpu().double().numpy()[:k, ids]
    basis = basis - basis.mean(1, keepdims=True)
    grad = (c[None] * basis).sum((1, 2)) / (len(ids) * r0)
    return float(np.linalg.norm(grad) / r0)


def estimate_metric_scale(points: np.ndarray, eye_depths_mm: np.ndarray, focal_px: float, prior_std: float,
                          focal_known: bool = False, face_depth_mm: float | None = None,
                          detector_log_std: float = IRIS_DETECTOR_LOG_STD, focal_log_std: float = 0.25,
                          iris_mm: float = IRIS_DIAMETER_MM, iris_std_mm: float = IRIS_DIAMETER_STD_MM) -> MetricScale:
    """Scale and std of a fit from its iris points (see the module docstring).

    Args:
        points: (478, 2) MediaPipe points, px (the fit's image). eye_depths_mm: (2,) depth (-z) of the
            right and left iris centres in the fit's camera. focal_px: the fit's focal length.
        prior_std: the shape prior's relative size std (`model_size_std`).
        focal_known: the focal was given or read from EXIF (then its error does not count).
        face_depth_mm: depth of the face's centroid (for the focal term), default the eyes'.
        detector_log_std: the detector's relative error on the mean iris diameter (log std).
    """
    d_px = iris_diameters_px(points)
    z = np.asarray(eye_depths_mm, dtype=np.float64)
    if z.shape != (2,) or not (z > 0).all() or not np.isfinite(d_px).all() or (d_px <= 1.0).any():
        raise FitError(f"cannot measure the irises (diameters {d_px.round(2).tolist()} px, depths {z.tolist()} mm)")
    fit_mm = d_px * z / float(focal_px)
    iris_scale = float(np.exp(np.mean(np.log(iris_mm / fit_mm))))
    var = (iris_std_mm / iris_mm) ** 2 + detector_log_std ** 2
    if not focal_known:
        zf = float(np.mean(z)) if face_depth_mm is None else float(face_depth_mm)
        var += (focal_log_std * abs(float(np.mean(z)) - zf) / zf) ** 2
    iris_std = float(np.sqrt(var))
    w_i, w_p = 1.0 / var, 1.0 / prior_std ** 2
    log_s = w_i * np.log(iris_scale) / (w_i + w_p)
    std_log = 1.0 / np.sqrt(w_i + w_p)
    scale = float(np.exp(log_s))
    return MetricScale(scale, scale * float(std_log), iris_scale, iris_scale * iris_std, prior_std, d_px)
