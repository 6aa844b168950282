"""Synthetic meshes for the evaluation tests (mm)."""
from __future__ import annotations

import numpy as np

from facerecon.evaluation.alignment import Similarity
from scipy.spatial.transform import Rotation


def icosphere(radius: float = 80.0, subdivisions: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) on a sphere of `radius` and outward-wound triangles (F, 3)."""
    t = (1 + 5**0.5) / 2
    v = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t),
         (0, -1, -t), (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    f = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
         (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9),
         (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    verts = [np.array(p, float) for p in v]
    for _ in range(subdivisions):
        mid: dict = {}

        def midpoint(i, j):
            key = (min(i, j), max(i, j))
            if key not in mid:
                mid[key] = len(verts)
                verts.append((verts[i] + verts[j]) / 2)
            return mid[key]

        new = []
        for a, b, c in f:
            ab, bc, ca = midpoint(a, b), midpoint(b, c), midpoint(c, a)
            new += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        f = new
    verts = np.array(verts)
    return radius * verts / np.linalg.norm(verts, axis=1, keepdims=True), np.array(f, dtype=np.int64)


def face_patch(n: int = 41) -> tuple[np.ndarray, np.ndarray]:
    """A face-like height field, 120 x 160 mm, with a nose and an asymmetric cheek bump."""
    x, y = np.meshgrid(np.linspace(-60, 60, n), np.linspace(-80, 80, n))
    z = (40 * np.exp(-(x**2 / 1800 + y**2 / 3200))
         + 15 * np.exp(-(x**2 / 80 + (y + 5) ** 2 / 400))
         + 4 * np.exp(-((x - 30) ** 2 + (y - 25) ** 2) / 200))
    vertices = np.stack([x, y, z], axis=-1).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    a = (i * n + j).ravel()
    b, c, d = a + 1, a + n, a + n + 1
    return vertices, np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])


def sample_surface(vertices, triangles, count: int, seed: int = 0) -> np.ndarray:
    """(count, 3) points uniform in barycentric coordinates on random triangles."""
    rng = np.random.default_rng(seed)
    tri = rng.integers(0, len(triangles), count)
    w = rng.dirichlet(np.ones(3), count)
    return np.einsum("pk,pkd->pd", w, vertices[triangles[tri]])


def random_similarity(seed: int, angle_deg: float = 40.0, scale_range=(0.5, 2.0), shift: float = 50.0) -> Similarity:
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=3)
    rotvec = np.deg2rad(angle_deg) * axis / np.linalg.norm(axis)
    return Similarity(
        float(rng.uniform(*scale_range)), Rotation.from_rotvec(rotvec).as_matrix(), rng.uniform(-shift, shift, 3)
    )


def now_landmarks_on_sphere(radius: float = 80.0) -> np.ndarray:
    """The 7 NoW landmarks laid out like a face on the +z side of a sphere (mm)."""
    xy = np.array([(-45, 35), (-15, 35), (15, 35), (45, 35), (0, -10), (-25, -40), (25, -40)], float)
    return np.column_stack([xy, np.sqrt(radius**2 - (xy**2).sum(axis=1))])
