"""Input checks shared by the evaluation modules: shapes, dtypes and finiteness, as UsageError."""
from __future__ import annotations

import numpy as np

from ..errors import UsageError


def as_points(name: str, points, min_points: int = 0) -> np.ndarray:
    """`points` as a C-contiguous float64 (N, 3) array with N >= min_points and finite values."""
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or p.shape[0] < min_points:
        raise UsageError(f"{name} must have shape (N, 3) with N >= {min_points}, got {p.shape}")
    if not np.isfinite(p).all():
        raise UsageError(f"{name} contain NaN or inf")
    return np.ascontiguousarray(p)


def as_mesh(vertices, triangles) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 vertices and (F, 3) int64 triangles, checked (V, F > 0, indices in range)."""
    v = as_points("vertices", vertices, 1)
    f = np.asarray(triangles)
    if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0:
        raise UsageError(f"triangles must have shape (F, 3) with F > 0, got {f.shape}")
    if not np.issubdtype(f.dtype, np.integer):
        raise UsageError(f"triangles must hold integer vertex indices, got dtype {f.dtype}")
    if f.min() < 0 or f.max() >= v.shape[0]:
        raise UsageError(f"triangle indices must lie in [0, {v.shape[0]}), got [{f.min()}, {f.max()}]")
    return v, f.astype(np.int64)
