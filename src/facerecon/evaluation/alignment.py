"""Rigid and similarity alignment of a predicted mesh to a ground-truth scan.

Two steps, as in the NoW protocol:
1. `umeyama`: the least-squares similarity (or rigid) transform between corresponding points, in
   closed form (Umeyama, PAMI 1991); reflections are never returned.
2. `refine_to_scan`: iterative refinement that minimises the mean squared scan-to-mesh distance
   (each scan point to the closest point on the transformed mesh surface), starting from step 1.

A transform maps mesh coordinates into scan coordinates: x_scan = s * R @ x_mesh + t.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import UsageError
from ..geometry.similarity import Similarity, umeyama
from .arrays import as_points
from .distance import MeshDistanceIndex, SurfaceDistance

__all__ = ["RefinedAlignment", "Similarity", "refine_to_scan", "umeyama"]


@dataclass(frozen=True)
class RefinedAlignment:
    """Result of `refine_to_scan`.

    Attributes:
        transform: the refined mesh -> scan transform.
        surface: SurfaceDistance of the scan points to the transformed mesh: (P,) distances,
            (P, 3) closest points (scan frame), (P,) triangle ids.
        iterations: number of accepted refinement steps.
    """

    transform: Similarity
    surface: SurfaceDistance
    iterations: int


def refine_to_scan(
    scan_points: np.ndarray,
    vertices: np.ndarray,
    triangles: np.ndarray,
    initial: Similarity,
    with_scale: bool = True,
    max_iterations: int = 30,
    tolerance: float = 1e-6,
    index: MeshDistanceIndex | None = None,
) -> RefinedAlignment:
    """Refine a mesh -> scan transform so the scan points lie closer to the mesh surface.

    Minimises the mean squared distance from each scan point to the closest point of the
    transformed mesh (the objective the NoW code minimises) over rotation, translation and, if
    `with_scale`, scale. Each iteration tries a Gauss-Newton step on the point-to-surface distances
    (fast, point-to-plane-like) and, if that does not lower the error, the closed-form
    point-to-point ICP step, which cannot raise it. A step is kept only if it lowers the mean squared
    distance and does not raise the mean distance, so the result is never worse than `initial` in
    either; the loop stops when neither step helps or the relative gain drops below `tolerance`.

    Args:
        scan_points: (P, 3) ground-truth points.
        vertices: (V, 3) mesh vertices, in mesh coordinates.
        triangles: (F, 3) triangle vertex indices.
        initial: the starting mesh -> scan transform (e.g. `umeyama` on landmarks).
        with_scale: refine the scale too (False for the metrical variant).
        max_iterations: most accepted steps.
        tolerance: stop when the mean squared distance improves by less than this fraction.
        index: a prebuilt MeshDistanceIndex of (vertices, triangles), to save building it again.

    Returns:
        RefinedAlignment(transform, surface distances of the scan to the transformed mesh, iterations).
    """
    scan = as_points("scan points", scan_points)
    if index is None:
        index = MeshDistanceIndex(vertices, triangles)

    def evaluate(transform: Similarity, hint: np.ndarray | None):
        # Distances scale with the transform, so query the untransformed mesh with the scan points
        # brought into mesh coordinates: the index is built once.
        raw = index.query(transform.inverse().apply(scan), hint)
        return raw, transform.scale * raw.distances

    transform = initial
    raw, dist = evaluate(transform, None)
    mean_sq, mean = float(np.mean(dist**2)), float(np.mean(dist))
    iterations = 0
    while iterations < max_iterations and mean_sq > 0.0:
        accepted = None
        for step in (_gauss_newton_step, _point_to_point_step):
            candidate = step(scan, raw, transform, dist, index, with_scale)
            if candidate is None:
                continue
            raw_c, dist_c = evaluate(candidate, raw.triangle_ids)
            mean_sq_c, mean_c = float(np.mean(dist_c**2)), float(np.mean(dist_c))
            if mean_sq_c < mean_sq and mean_c <= mean:
                accepted = (candidate, raw_c, dist_c, mean_sq_c, mean_c)
                break
        if accepted is None:
            break
        gain = (mean_sq - accepted[3]) / mean_sq
        transform, raw, dist, mean_sq, mean = accepted
        iterations += 1
        if gain < tolerance:
            break
    surface = SurfaceDistance(dist, transform.apply(raw.closest_points), raw.triangle_ids)
    return RefinedAlignment(transform, surface, iterations)


def _point_to_point_step(scan, raw, transform, dist, index, with_scale) -> Similarity | None:
    # With the closest points held fixed this minimises the same objective in closed form, so the
    # error cannot rise; finding new closest points can only lower it further.
    try:
        return umeyama(raw.closest_points, scan, with_scale)
    except UsageError:
        return None


def _gauss_newton_step(scan, raw, transform, dist, index, with_scale) -> Similarity | None:
    """One Gauss-Newton step on the residuals d_i = |x_i - p_i| (x_i: closest point, scan frame).

    The update is x -> (1 + sigma) R(omega) (x - mu) + mu + tau about the scan centroid mu; to first
    order d_i changes by u_i . (sigma y_i + omega x y_i + tau), u_i = (x_i - p_i) / d_i, y_i = x_i - mu.
    """
    closest = transform.apply(raw.closest_points)
    diff = closest - scan
    u = np.empty_like(diff)
    far = dist > 1e-9 * max(1.0, float(dist.max()))
    u[far] = diff[far] / dist[far, None]
    if (~far).any():
        # On the surface the distance grows along the triangle normal in either direction.
        corners = index.vertices[index.triangles[raw.triangle_ids[~far]]]
        normal = transform.rotation @ np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]).T
        u[~far] = (normal / np.maximum(np.linalg.norm(normal, axis=0), 1e-300)).T
    mu = scan.mean(axis=0)
    y = closest - mu
    columns = [np.cross(y, u), u]
    if with_scale:
        columns.insert(0, (u * y).sum(axis=1, keepdims=True))
    jac = np.concatenate(columns, axis=1)
    norms = np.linalg.norm(jac, axis=0)
    norms[norms == 0] = 1.0
    delta = np.linalg.lstsq(jac / norms, -dist, rcond=1e-10)[0] / norms
    if not np.isfinite(delta).all():
        return None
    sigma = delta[0] if with_scale else 0.0
    omega, tau = delta[-6:-3], delta[-3:]
    scale = 1.0 + sigma
    if scale <= 0.0:
        return None
    rotation = Rotation.from_rotvec(omega).as_matrix()
    update = Similarity(scale, rotation, mu + tau - scale * rotation @ mu)
    return update.after(transform)
