"""Exact point-to-surface distance: for each query point, the closest point on a triangle mesh.

Point-to-triangle, not point-to-vertex: a scan point above the middle of a large triangle is at its
true (small) distance, not at the distance of the triangle's corners. This is the distance of the NoW
benchmark's scan-to-mesh error.

The search is exact. A bounding-volume hierarchy (axis-aligned boxes, median split) is built over the
triangles once; each query walks it nearest box first and skips a box only when the box is farther
than the best triangle found so far, so the true closest triangle is never pruned. The
point-triangle test is Ericson's region method (Real-Time Collision Detection, 5.1.5), with the
three edges as a fallback for zero-area triangles. Both run in numba, the queries in parallel.

All coordinates are float64 internally; units are those of the input (mm in facerecon).
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from ..errors import UsageError
from .arrays import as_mesh, as_points

_LEAF_SIZE = 4
_STACK_SIZE = 256  # the median split halves each node, so depth <= log2(F) + 1 << 128
_CHUNK = 256  # points per parallel work item: one traversal stack each


@dataclass(frozen=True)
class SurfaceDistance:
    """Closest points on a mesh to a set of query points.

    Attributes:
        distances: (P,) Euclidean distance of each point to the surface.
        closest_points: (P, 3) the closest surface point of each query point.
        triangle_ids: (P,) int64 index of the triangle holding the closest point (one of them on a tie).
    """

    distances: np.ndarray
    closest_points: np.ndarray
    triangle_ids: np.ndarray


# ----------------------------------------------------------------------------------- numba kernels


@numba.njit(cache=True, inline="always")
def _closest_on_segment(px, py, pz, ax, ay, az, bx, by, bz):
    ex, ey, ez = bx - ax, by - ay, bz - az
    den = ex * ex + ey * ey + ez * ez
    t = 0.0
    if den > 0.0:
        t = ((px - ax) * ex + (py - ay) * ey + (pz - az) * ez) / den
        t = min(max(t, 0.0), 1.0)
    qx, qy, qz = ax + t * ex, ay + t * ey, az + t * ez
    dx, dy, dz = px - qx, py - qy, pz - qz
    return dx * dx + dy * dy + dz * dz, qx, qy, qz


@numba.njit(cache=True)
def _closest_on_triangle(px, py, pz, ax, ay, az, bx, by, bz, cx, cy, cz):
    """Squared distance and closest point of p on triangle abc (Ericson's Voronoi-region test)."""
    abx, aby, abz = bx - ax, by - ay, bz - az
    acx, acy, acz = cx - ax, cy - ay, cz - az
    ab2 = abx * abx + aby * aby + abz * abz
    ac2 = acx * acx + acy * acy + acz * acz
    abac = abx * acx + aby * acy + abz * acz
    # |ab x ac|^2; zero for a needle or a point, where the region test divides by zero.
    if ab2 * ac2 - abac * abac <= 1e-14 * ab2 * ac2 or ab2 == 0.0 or ac2 == 0.0:
        best = _closest_on_segment(px, py, pz, ax, ay, az, bx, by, bz)
        other = _closest_on_segment(px, py, pz, bx, by, bz, cx, cy, cz)
        if other[0] < best[0]:
            best = other
        other = _closest_on_segment(px, py, pz, cx, cy, cz, ax, ay, az)
        if other[0] < best[0]:
            best = other
        return best

    apx, apy, apz = px - ax, py - ay, pz - az
    d1 = abx * apx + aby * apy + abz * apz
    d2 = acx * apx + acy * apy + acz * apz
    if d1 <= 0.0 and d2 <= 0.0:
        qx, qy, qz = ax, ay, az
    else:
        bpx, bpy, bpz = px - bx, py - by, pz - bz
        d3 = abx * bpx + aby * bpy + abz * bpz
        d4 = acx * bpx + acy * bpy + acz * bpz
        cpx, cpy, cpz = px - cx, py - cy, pz - cz
        d5 = abx * cpx + aby * cpy + abz * cpz
        d6 = acx * cpx + acy * cpy + acz * cpz
        vc = d1 * d4 - d3 * d2
        vb = d5 * d2 - d1 * d6
        va = d3 * d6 - d5 * d4
        if d3 >= 0.0 and d4 <= d3:
            qx, qy, qz = bx, by, bz
        elif d6 >= 0.0 and d5 <= d6:
            qx, qy, qz = cx, cy, cz
        elif vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0:
            v = d1 / (d1 - d3)
            qx, qy, qz = ax + v * abx, ay + v * aby, az + v * abz
        elif vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0:
            w = d2 / (d2 - d6)
            qx, qy, qz = ax + w * acx, ay + w * acy, az + w * acz
        elif va <= 0.0 and d4 - d3 >= 0.0 and d5 - d6 >= 0.0:
            w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
            qx, qy, qz = bx + w * (cx - bx), by + w * (cy - by), bz + w * (cz - bz)
        else:
            den = 1.0 / (va + vb + vc)
            v = vb * den
            w = vc * den
            qx = ax + v * abx + w * acx
            qy = ay + v * aby + w * acy
            qz = az + v * abz + w * acz
    dx, dy, dz = px - qx, py - qy, pz - qz
    return dx * dx + dy * dy + dz * dz, qx, qy, qz


@numba.njit(cache=True)
def _build_bvh(tri_lo, tri_hi, centroids, leaf_size):
    """Median-split BVH. Returns node boxes, children (-1 for leaves), leaf ranges and the order.

    Node k covers triangles order[start[k]:start[k] + count[k]]; internal nodes have count 0.
    """
    n_tri = tri_lo.shape[0]
    max_nodes = 2 * n_tri + 1
    lo = np.empty((max_nodes, 3))
    hi = np.empty((max_nodes, 3))
    left = np.full(max_nodes, -1, np.int64)
    right = np.full(max_nodes, -1, np.int64)
    start = np.zeros(max_nodes, np.int64)
    count = np.zeros(max_nodes, np.int64)
    order = np.arange(n_tri)
    todo = np.empty((max_nodes, 3), np.int64)  # (node, begin, end)
    todo[0, 0], todo[0, 1], todo[0, 2] = 0, 0, n_tri
    n_todo = 1
    n_nodes = 1
    while n_todo > 0:
        n_todo -= 1
        node, b, e = todo[n_todo, 0], todo[n_todo, 1], todo[n_todo, 2]
        clo = np.full(3, np.inf)
        chi = np.full(3, -np.inf)
        for k in range(3):
            lo[node, k] = np.inf
            hi[node, k] = -np.inf
        for j in range(b, e):
            t = order[j]
            for k in range(3):
                lo[node, k] = min(lo[node, k], tri_lo[t, k])
                hi[node, k] = max(hi[node, k], tri_hi[t, k])
                clo[k] = min(clo[k], centroids[t, k])
                chi[k] = max(chi[k], centroids[t, k])
        if e - b <= leaf_size:
            start[node], count[node] = b, e - b
            continue
        axis = np.argmax(chi - clo)
        sub = order[b:e].copy()
        order[b:e] = sub[np.argsort(centroids[sub, axis], kind="mergesort")]
        mid = (b + e) // 2
        left[node], right[node] = n_nodes, n_nodes + 1
        todo[n_todo, 0], todo[n_todo, 1], todo[n_todo, 2] = n_nodes, b, mid
        todo[n_todo + 1, 0], todo[n_todo + 1, 1], todo[n_todo + 1, 2] = n_nodes + 1, mid, e
        n_todo += 2
        n_nodes += 2
    return lo[:n_nodes], hi[:n_nodes], left[:n_nodes], right[:n_nodes], start[:n_nodes], count[:n_nodes], order


@numba.njit(cache=True, inline="always")
def _box_distance2(px, py, pz, lo, hi, node):
    dx = max(lo[node, 0] - px, 0.0, px - hi[node, 0])
    dy = max(lo[node, 1] - py, 0.0, py - hi[node, 1])
    dz = max(lo[node, 2] - pz, 0.0, pz - hi[node, 2])
    return dx * dx + dy * dy + dz * dz


@numba.njit(cache=True, parallel=True)
def _query_bvh(points, corners, lo, hi, left, right, start, count, order, hint):
    """Closest triangle of each point. corners: (F, 9) triangle corners in BVH order."""
    n_pts = points.shape[0]
    dist2 = np.empty(n_pts)
    closest = np.empty((n_pts, 3))
    tri_ids = np.empty(n_pts, np.int64)
    n_chunks = (n_pts + _CHUNK - 1) // _CHUNK
    for chunk in numba.prange(n_chunks):
        stack = np.empty(_STACK_SIZE, np.int64)
        for i in range(chunk * _CHUNK, min(n_pts, (chunk + 1) * _CHUNK)):
            px, py, pz = points[i, 0], points[i, 1], points[i, 2]
            best, bx, by, bz, best_slot = np.inf, 0.0, 0.0, 0.0, -1
            if hint[i] >= 0:
                s = hint[i]
                c = corners[s]
                best, bx, by, bz = _closest_on_triangle(
                    px, py, pz, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
                )
                best_slot = s
            stack[0] = 0
            top = 1
            while top > 0:
                top -= 1
                node = stack[top]
                if _box_distance2(px, py, pz, lo, hi, node) >= best:
                    continue
                if left[node] < 0:
                    for s in range(start[node], start[node] + count[node]):
                        c = corners[s]
                        d2, qx, qy, qz = _closest_on_triangle(
                            px, py, pz, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
                        )
                        if d2 < best:
                            best, bx, by, bz, best_slot = d2, qx, qy, qz, s
                    continue
                near, far = left[node], right[node]
                d_near = _box_distance2(px, py, pz, lo, hi, near)
                d_far = _box_distance2(px, py, pz, lo, hi, far)
                if d_far < d_near:
                    near, far = far, near
                    d_near, d_far = d_far, d_near
                # Nearer child on top of the stack: it is searched first and tightens `best`.
                if d_far < best:
                    stack[top] = far
                    top += 1
                if d_near < best:
                    stack[top] = near
                    top += 1
            dist2[i] = best
            closest[i, 0], closest[i, 1], closest[i, 2] = bx, by, bz
            tri_ids[i] = order[best_slot]
    return dist2, closest, tri_ids


# ----------------------------------------------------------------------------------------- public


class MeshDistanceIndex:
    """A triangle mesh prepared for many exact closest-point queries (build once, query often).

    Args:
        vertices: (V, 3) mesh vertices.
        triangles: (F, 3) vertex indices of each triangle.

    Example:
        >>> index = MeshDistanceIndex(vertices, triangles)
        >>> result = index.query(scan_points)          # SurfaceDistance
    """

    def __init__(self, vertices: np.ndarray, triangles: np.ndarray):
        self.vertices, self.triangles = as_mesh(vertices, triangles)
        corners = self.vertices[self.triangles]  # (F, 3, 3)
        self._lo, self._hi, self._left, self._right, self._start, self._count, self._order = _build_bvh(
            corners.min(axis=1), corners.max(axis=1), corners.mean(axis=1), _LEAF_SIZE
        )
        self._slot_of_triangle = np.empty_like(self._order)
        self._slot_of_triangle[self._order] = np.arange(len(self._order))
        self._corners = np.ascontiguousarray(corners[self._order].reshape(-1, 9))

    def query(self, points: np.ndarray, hint_triangles: np.ndarray | None = None) -> SurfaceDistance:
        """Closest surface point of each query point.

        Args:
            points: (P, 3) query points.
            hint_triangles: optional (P,) triangle ids likely to be close (e.g. the answer of a
                previous query on slightly moved points), or -1. They only speed the search up; the
                answer is exact either way.

        Returns:
            SurfaceDistance with (P,) distances, (P, 3) closest points and (P,) triangle ids.
        """
        p = as_points("points", points)
        if hint_triangles is None:
            slots = np.full(len(p), -1, np.int64)
        else:
            hint = np.asarray(hint_triangles, dtype=np.int64)
            if hint.shape != (len(p),):
                raise UsageError(f"hint_triangles must have shape ({len(p)},), got {hint.shape}")
            valid = (hint >= 0) & (hint < len(self.triangles))
            slots = np.where(valid, self._slot_of_triangle[np.where(valid, hint, 0)], -1)
        if len(p) == 0:
            return SurfaceDistance(np.zeros(0), np.zeros((0, 3)), np.zeros(0, np.int64))
        d2, closest, ids = _query_bvh(
            p, self._corners, self._lo, self._hi, self._left, self._right,
            self._start, self._count, self._order, slots,
        )
        return SurfaceDistance(np.sqrt(d2), closest, ids)


def scan_to_mesh_distance(points: np.ndarray, vertices: np.ndarray, triangles: np.ndarray) -> SurfaceDistance:
    """Exact distance from each point to a triangle mesh (the NoW scan-to-mesh distance).

    Args:
        points: (P, 3) scan points.
        vertices: (V, 3) mesh vertices.
        triangles: (F, 3) vertex indices of each triangle.

    Returns:
        SurfaceDistance: (P,) distances, (P, 3) closest points, (P,) triangle ids.
    """
    return MeshDistanceIndex(vertices, triangles).query(points)


def scan_to_mesh_distance_brute_force(
    points: np.ndarray, vertices: np.ndarray, triangles: np.ndarray, chunk: int = 32
) -> SurfaceDistance:
    """Reference implementation: every point against every triangle, in numpy (O(P F) time).

    A different algorithm from the fast path on purpose (projection onto the triangle's plane when it
    falls inside the triangle, else the nearest of its three edges), so each can check the other. For
    tests and benchmarks only.

    Args:
        points: (P, 3); vertices: (V, 3); triangles: (F, 3).
        chunk: points processed together (memory is about chunk x F x 200 bytes).

    Returns:
        SurfaceDistance as `scan_to_mesh_distance`.
    """
    p_all = as_points("points", points)
    v, f = as_mesh(vertices, triangles)
    corners = v[f][None]  # (1, F, 3, 3)
    out_t = np.empty(len(p_all), np.int64)
    for s in range(0, len(p_all), chunk):
        d2, _ = _brute_closest(p_all[s : s + chunk, None, :], corners)
        out_t[s : s + chunk] = d2.argmin(axis=1)
    d2, q = _brute_closest(p_all[:, None, :], v[f[out_t]][:, None])
    return SurfaceDistance(np.sqrt(d2[:, 0]), q[:, 0], out_t)


def _brute_closest(p: np.ndarray, corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared distance (m, F) and closest point (m, F, 3) of points (m, 1, 3) on triangles (*, F, 3, 3)."""
    a, b, c = corners[..., 0, :], corners[..., 1, :], corners[..., 2, :]
    best_d2, best_q = None, None
    for e0, e1 in ((a, b), (b, c), (c, a)):
        d2, q = _brute_segment(p, e0, e1)
        if best_d2 is None:
            best_d2, best_q = d2, q
        else:
            closer = d2 < best_d2
            best_d2 = np.where(closer, d2, best_d2)
            best_q = np.where(closer[..., None], q, best_q)
    n = np.cross(b - a, c - a)
    n2 = (n * n).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = p - (((p - a) * n).sum(-1) / n2)[..., None] * n
        inside = np.broadcast_to(n2 > 0, q.shape[:-1]).copy()
        for e0, e1 in ((a, b), (b, c), (c, a)):
            inside &= (np.cross(e1 - e0, q - e0) * n).sum(-1) >= 0
    d2 = np.where(inside, ((q - p) ** 2).sum(-1), np.inf)
    closer = d2 < best_d2
    return np.where(closer, d2, best_d2), np.where(closer[..., None], q, best_q)


def _brute_segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared distance and closest point of points p (m, 1, 3) on segments a-b (*, F, 3)."""
    e = b - a
    e2 = (e * e).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ((p - a) * e).sum(-1) / e2
    t = np.clip(np.nan_to_num(t, nan=0.0), 0.0, 1.0)
    q = a + t[..., None] * e
    return ((q - p) ** 2).sum(-1), q
