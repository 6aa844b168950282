"""Errors per face region, in the spirit of REALY (Chai et al., ECCV 2022): nose, mouth, forehead, cheeks.

REALY scores each region separately because a global median hides where a method fails (a good
forehead can mask a bad nose). Here the caller gives the regions as vertex indices of the
ground-truth mesh; `face_regions_from_landmarks` derives the four regions for any face mesh from its
68 landmark positions, so no per-topology mask files are needed. It is a geometric approximation of
REALY's hand-drawn masks, not a copy of them, and REALY's per-region re-alignment is not done here.

The derivation works in a face frame built from the landmarks: x from the right to the left outer
eye corner, y up (from the mouth towards the eyes), z = x cross y out of the face; lengths are in
units of the outer inter-ocular distance (iod), so any unit and any head size works.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from scipy.spatial import ConvexHull

from ..errors import UsageError
from .arrays import as_points
from .now import summarize

REALY_REGIONS = ("nose", "mouth", "forehead", "cheeks")

_JAW = np.arange(0, 17)
_BROWS = np.arange(17, 27)
_NOSE = np.arange(27, 36)
_EYES = np.arange(36, 48)
_OUTER_LIPS = np.arange(48, 60)

# Margins, in inter-ocular distances (outer eye corners, about 90-100 mm on an adult).
NOSE_MARGIN = 0.08  # the alae reach past the nostril landmarks 31 and 35
MOUTH_MARGIN = 0.12  # lips and the skin just around them
FOREHEAD_HEIGHT = 0.6  # band above the brows (the hairline is about this far up)
FOREHEAD_GAP = 0.05
CHEEK_BELOW_EYES = 0.08  # keep the lower eyelids out of the cheeks
CHEEK_LATERAL_GAP = 0.1  # cheeks start this far beside the nose and the mouth
DEPTH_MARGIN = 0.15  # vertices farther behind the jaw line than this are not face (ears, back of head)


def face_frame(landmarks68: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Face frame of 68 landmarks (68, 3): origin (3,), axes (3, 3) as rows x, y, z, and the iod."""
    lm = as_points("landmarks", landmarks68)
    if lm.shape != (68, 3):
        raise UsageError(f"landmarks must be the 68 iBUG points, shape (68, 3), got {lm.shape}")
    x = lm[45] - lm[36]
    iod = float(np.linalg.norm(x))
    if iod == 0.0:
        raise UsageError("the outer eye corners (landmarks 36 and 45) coincide")
    x /= iod
    up = lm[_EYES].mean(axis=0) - lm[[48, 54]].mean(axis=0)
    y = up - (up @ x) * x
    if np.linalg.norm(y) == 0.0:
        raise UsageError("the eyes and the mouth landmarks do not span a face")
    y /= np.linalg.norm(y)
    return lm[_EYES].mean(axis=0), np.stack([x, y, np.cross(x, y)]), iod


def face_regions_from_landmarks(vertices: np.ndarray, landmarks68: np.ndarray) -> dict[str, np.ndarray]:
    """The four REALY-like regions of a face mesh, as vertex indices, from its 68 landmarks.

    - nose: inside the 2D hull (face frame) of landmarks 27-35, widened by NOSE_MARGIN iod;
    - mouth: inside the hull of the outer lips 48-59, widened by MOUTH_MARGIN iod;
    - forehead: a band FOREHEAD_HEIGHT iod high just above the brows, between the brows' ends;
    - cheeks: the rest of the face inside the jaw line and below the eyes, beside nose and mouth.
    Only vertices not far behind the jaw line count (no ears, neck back or back of the head).
    The regions are disjoint.

    Args:
        vertices: (V, 3) mesh vertices.
        landmarks68: (68, 3) positions of the 68 iBUG landmarks on that mesh (same frame).

    Returns:
        {"nose", "mouth", "forehead", "cheeks"} -> int64 vertex indices.
    """
    v = as_points("vertices", vertices)
    origin, axes, iod = face_frame(landmarks68)
    local = (v - origin) @ axes.T / iod  # (V, 3) in iod units
    lm = (np.asarray(landmarks68, dtype=np.float64) - origin) @ axes.T / iod
    xy = local[:, :2]
    front = local[:, 2] >= lm[_JAW, 2].min() - DEPTH_MARGIN

    nose = front & _inside_hull(xy, lm[_NOSE, :2], NOSE_MARGIN)
    mouth = front & ~nose & _inside_hull(xy, lm[_OUTER_LIPS, :2], MOUTH_MARGIN)
    brow_top = lm[_BROWS, 1].max()
    forehead = (
        front & ~nose & ~mouth
        & (xy[:, 1] > brow_top + FOREHEAD_GAP) & (xy[:, 1] <= brow_top + FOREHEAD_HEIGHT)
        & (xy[:, 0] >= lm[17, 0]) & (xy[:, 0] <= lm[26, 0])
    )
    centre_lo = min(lm[_NOSE, 0].min(), lm[_OUTER_LIPS, 0].min()) - CHEEK_LATERAL_GAP
    centre_hi = max(lm[_NOSE, 0].max(), lm[_OUTER_LIPS, 0].max()) + CHEEK_LATERAL_GAP
    cheeks = (
        front & ~nose & ~mouth & ~forehead
        & _inside_polygon(xy, lm[_JAW, :2])
        & (xy[:, 1] < lm[_EYES, 1].min() - CHEEK_BELOW_EYES)
        & ((xy[:, 0] < centre_lo) | (xy[:, 0] > centre_hi))
    )
    masks = {"nose": nose, "mouth": mouth, "forehead": forehead, "cheeks": cheeks}
    return {name: np.flatnonzero(masks[name]) for name in REALY_REGIONS}


def region_errors(
    distances: np.ndarray,
    regions: Mapping[str, np.ndarray],
    point_indices: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Error statistics per region.

    Args:
        distances: (P,) error of each ground-truth point.
        regions: name -> indices of the ground-truth vertices in that region.
        point_indices: optional (P,) ground-truth vertex index of each distance, when the distances
            cover only some vertices (e.g. `NowResult.scan_indices` after the NoW crop). Without it
            distances[i] belongs to vertex i.

    Returns:
        name -> {"median", "mean", "std", "count"}; a region with no measured point has count 0
        and NaN statistics.
    """
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 1:
        raise UsageError(f"distances must have shape (P,), got {d.shape}")
    if point_indices is not None:
        point_indices = np.asarray(point_indices)
        if point_indices.shape != d.shape:
            raise UsageError(f"point_indices must match distances {d.shape}, got {point_indices.shape}")
    out = {}
    for name, idx in regions.items():
        idx = np.asarray(idx, dtype=np.int64).ravel()
        if point_indices is None:
            if idx.size and (idx.min() < 0 or idx.max() >= d.size):
                raise UsageError(f"region {name!r} indexes past the {d.size} distances")
            values = d[idx]
        else:
            values = d[np.isin(point_indices, idx)]
        if values.size:
            out[name] = {**summarize([values]), "count": int(values.size)}
        else:
            out[name] = {"median": float("nan"), "mean": float("nan"), "std": float("nan"), "count": 0}
    return out


def _inside_hull(xy: np.ndarray, corners: np.ndarray, margin: float) -> np.ndarray:
    """(N,) whether points (N, 2) lie within `margin` of the convex hull of corners (K, 2)."""
    eq = ConvexHull(corners).equations  # rows (nx, ny, offset), unit normals pointing out
    return (xy @ eq[:, :2].T + eq[:, 2]).max(axis=1) <= margin


def _inside_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) crossing-number test of points (N, 2) against the closed polygon (K, 2)."""
    a, b = polygon, np.roll(polygon, -1, axis=0)
    px, py = xy[:, None, 0], xy[:, None, 1]
    straddles = (a[:, 1] > py) != (b[:, 1] > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = a[:, 0] + (py - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    return (straddles & (px < x_cross)).sum(axis=1) % 2 == 1
