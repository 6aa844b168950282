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

import importlib

# name -> submodule, imported on first use (PEP 562): `facerecon.evaluation.identity`, which every
# reconstruction command may use, then does not import numba and the BVH code of `distance`
_EXPORTS = {
    "RefinedAlignment": "alignment", "Similarity": "alignment", "refine_to_scan": "alignment", "umeyama": "alignment",
    "MeshDistanceIndex": "distance", "SurfaceDistance": "distance", "scan_to_mesh_distance": "distance",
    "mean_pixel_error": "landmark_error", "nme_box_diagonal": "landmark_error", "nme_inter_ocular": "landmark_error",
    "NOW_LANDMARKS_68": "now", "NowResult": "now", "now_errors": "now", "summarize": "now",
    "face_regions_from_landmarks": "regions", "region_errors": "regions",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
