"""Small closed meshes for tests, demos and benchmarks (counter-clockwise = outward)."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def icosphere(subdivisions: int = 3, radius: float = 1.0, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Unit icosahedron subdivided `subdivisions` times, projected onto the sphere.

    -> vertices (N, 3), triangles (F, 3) long with F = 20 * 4**subdivisions.
    """
    t = (1 + 5**0.5) / 2
    verts = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
             [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    faces = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
             [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11],
             [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    v = np.asarray(verts, np.float64)
    f = np.asarray(faces, np.int64)
    for _ in range(subdivisions):
        edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        uniq, inv = np.unique(edges, axis=0, return_inverse=True)
        mid = len(v) + inv.reshape(3, -1).T  # midpoint ids of edges (01, 12, 20) per face
        v = np.concatenate([v, (v[uniq[:, 0]] + v[uniq[:, 1]]) / 2])
        a, b, c = f.T
        ab, bc, ca = mid.T
        f = np.concatenate([np.stack(x, 1) for x in ((a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca))])
    v = v / np.linalg.norm(v, axis=1, keepdims=True) * radius
    return torch.tensor(v, dtype=dtype), torch.tensor(f, dtype=torch.long)


def box(
    size: tuple[float, float, float] = (1.0, 1.0, 1.0), dtype: torch.dtype = torch.float32
) -> tuple[Tensor, Tensor]:
    """Axis-aligned box centred at the origin: vertices (8, 3), triangles (12, 3) long."""
    sx, sy, sz = (s / 2 for s in size)
    v = [[x, y, z] for x in (-sx, sx) for y in (-sy, sy) for z in (-sz, sz)]  # index = 4*ix + 2*iy + iz
    quads = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    f = [[q[0], q[1], q[2]] for q in quads] + [[q[0], q[2], q[3]] for q in quads]
    return torch.tensor(v, dtype=dtype), torch.tensor(f, dtype=torch.long)
