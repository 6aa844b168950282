"""The NoW benchmark protocol (Sanyal et al., CVPR 2019): scan-to-mesh error of a predicted face.

For one image:
1. Crop the ground-truth scan to a sphere around the face centre, defined from the scan's 7
   landmarks: centre = nose_bottom + 0.3 (nose_bridge - nose_bottom), with nose_bridge the midpoint
   of the inner eye corners; radius = 1.4 (outer-eye distance + |nose_bridge - nose_bottom|) / 2.
2. Align the predicted mesh to the scan with the similarity transform (Umeyama) between the 7
   predicted and the 7 scan landmarks.
3. Refine scale, rotation and translation to minimise the scan-to-mesh distance
   (`alignment.refine_to_scan`; never worse than step 2).
4. The error is the distance of every cropped scan point to the closest point of the aligned
   predicted surface, in mm. Scores pool all points of all images: median, mean, std.

The metrical variant (`scale=False`) estimates no scale in steps 2 and 3: the prediction must be in mm.
Differences from the official code: reflections are never allowed in step 2 (the official
`procrustes` may return one), and the refinement is Gauss-Newton/ICP instead of chumpy's dogleg.

The 7 landmarks, in this order, are the 68-point (iBUG) landmarks `NOW_LANDMARKS_68`:
outer and inner corner of the right eye, inner and outer corner of the left eye, nose bottom
(subnasale), right and left mouth corner.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import UsageError
from .alignment import Similarity, refine_to_scan, umeyama
from .arrays import as_points
from .distance import MeshDistanceIndex

NOW_LANDMARKS_68 = (36, 39, 42, 45, 33, 48, 54)
"""Indices into the 68 iBUG landmarks of the 7 NoW landmarks, in NoW order."""

CROP_RADIUS_FACTOR = 1.4
CROP_CENTRE_UP = 0.3


@dataclass(frozen=True)
class NowResult:
    """NoW error of one prediction.

    Attributes:
        distances: (P',) distance in mm of each cropped scan point to the aligned prediction.
        aligned_pred_vertices: (V, 3) predicted vertices in the scan's frame after alignment.
        transform: Similarity mapping predicted-mesh coordinates to scan coordinates (landmark
            alignment followed by the refinement).
        scan_indices: (P',) indices into `scan_points` of the points kept by the crop.
        landmark_transform: the landmark-only (step 2) transform, for comparison.
    """

    distances: np.ndarray
    aligned_pred_vertices: np.ndarray
    transform: Similarity
    scan_indices: np.ndarray
    landmark_transform: Similarity


def _as_landmarks7(name: str, landmarks) -> np.ndarray:
    lm = as_points(name, landmarks)
    if lm.shape != (7, 3):
        raise UsageError(f"{name} must be the 7 NoW landmarks, shape (7, 3), got {lm.shape}")
    return lm


def face_crop_sphere(scan_landmarks7: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (3,) and radius of the NoW face crop, from the scan's (7, 3) landmarks."""
    lm = _as_landmarks7("scan landmarks", scan_landmarks7)
    nose_bottom = lm[4]
    nose_bridge = (lm[1] + lm[2]) / 2
    centre = nose_bottom + CROP_CENTRE_UP * (nose_bridge - nose_bottom)
    outer_eye = np.linalg.norm(lm[0] - lm[3])
    nose_length = np.linalg.norm(nose_bridge - nose_bottom)
    return centre, float(CROP_RADIUS_FACTOR * (outer_eye + nose_length) / 2)


def crop_scan(scan_points: np.ndarray, scan_landmarks7: np.ndarray) -> np.ndarray:
    """Indices (P',) of the scan points (P, 3) inside the NoW face crop sphere."""
    points = as_points("scan points", scan_points)
    centre, radius = face_crop_sphere(scan_landmarks7)
    return np.flatnonzero(np.linalg.norm(points - centre, axis=1) <= radius)


def now_errors(
    pred_vertices: np.ndarray,
    pred_triangles: np.ndarray,
    pred_landmarks7: np.ndarray,
    scan_points: np.ndarray,
    scan_landmarks7: np.ndarray,
    scale: bool = True,
    refine: bool = True,
) -> NowResult:
    """NoW scan-to-mesh errors of one predicted mesh against its ground-truth scan.

    Args:
        pred_vertices: (V, 3) predicted mesh vertices (mm when `scale` is False).
        pred_triangles: (F, 3) predicted mesh triangles.
        pred_landmarks7: (7, 3) the 7 NoW landmarks on the prediction, in its frame.
        scan_points: (P, 3) ground-truth scan points (vertices), mm.
        scan_landmarks7: (7, 3) the 7 NoW landmarks on the scan, mm.
        scale: estimate a scale (standard NoW); False for the metrical variant.
        refine: run the scan-to-mesh refinement after the landmark alignment (the protocol does).

    Returns:
        NowResult: per-point distances (P',), aligned vertices (V, 3), transform, crop indices.
    """
    pred_lm = _as_landmarks7("predicted landmarks", pred_landmarks7)
    scan_lm = _as_landmarks7("scan landmarks", scan_landmarks7)
    keep = crop_scan(scan_points, scan_lm)
    if len(keep) == 0:
        raise UsageError(
            "no scan point lies inside the NoW face crop: check that the scan landmarks are in the "
            "scan's frame and units (mm)"
        )
    cropped = np.asarray(scan_points, dtype=np.float64)[keep]
    index = MeshDistanceIndex(pred_vertices, pred_triangles)
    landmark_transform = umeyama(pred_lm, scan_lm, with_scale=scale)
    refined = refine_to_scan(
        cropped, index.vertices, index.triangles, landmark_transform,
        with_scale=scale, max_iterations=30 if refine else 0, index=index,
    )
    return NowResult(
        distances=refined.surface.distances,
        aligned_pred_vertices=refined.transform.apply(index.vertices),
        transform=refined.transform,
        scan_indices=keep,
        landmark_transform=landmark_transform,
    )


def summarize(distances: Sequence[np.ndarray]) -> dict[str, float]:
    """Median, mean and std (population, as NoW's np.std) of all distances pooled.

    Args:
        distances: a list of (P_i,) distance arrays, one per image (or a single array).

    Returns:
        {"median": ..., "mean": ..., "std": ...} in the distances' units.
    """
    if isinstance(distances, np.ndarray):
        distances = [distances]
    arrays = [np.asarray(d, dtype=np.float64).ravel() for d in distances]
    pooled = np.concatenate(arrays) if arrays else np.zeros(0)
    if pooled.size == 0:
        raise UsageError("no distances to summarize")
    return {"median": float(np.median(pooled)), "mean": float(pooled.mean()), "std": float(pooled.std())}
