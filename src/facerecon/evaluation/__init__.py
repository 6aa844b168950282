"""Metrics, measured the way the field measures them.

    distance        exact point-to-triangle-mesh distance (scan-to-mesh), BVH + numba
    alignment       Similarity, Umeyama, refinement of a mesh -> scan transform (ICP / Gauss-Newton)
    now             the NoW benchmark protocol: crop, align, scan-to-mesh errors, summary
    regions         per-region errors (nose, mouth, forehead, cheeks), REALY-like regions from landmarks
    landmark_error  2D landmark NME (inter-ocular, box diagonal) and mean pixel error
    files           OBJ/PLY meshes, 3D landmark files, iBUG .pts
    synthetic       seeded synthetic faces (on-model and off-model) with ground truth
    calibration     'nothing' (mean face) and 'floor' (model fitted to the truth) baselines, gap fraction

Units: mm for 3D (docs/conventions.md), pixels for 2D.
"""
from __future__ import annotations

from .alignment import RefinedAlignment, Similarity, refine_to_scan, umeyama
from .distance import MeshDistanceIndex, SurfaceDistance, scan_to_mesh_distance
from .landmark_error import mean_pixel_error, nme_box_diagonal, nme_inter_ocular
from .now import NOW_LANDMARKS_68, NowResult, now_errors, summarize
from .regions import face_regions_from_landmarks, region_errors

__all__ = [
    "MeshDistanceIndex",
    "NOW_LANDMARKS_68",
    "NowResult",
    "RefinedAlignment",
    "Similarity",
    "SurfaceDistance",
    "face_regions_from_landmarks",
    "mean_pixel_error",
    "nme_box_diagonal",
    "nme_inter_ocular",
    "now_errors",
    "refine_to_scan",
    "region_errors",
    "scan_to_mesh_distance",
    "summarize",
    "umeyama",
]
