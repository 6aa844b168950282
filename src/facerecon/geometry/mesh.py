"""Mesh topology and normals in numpy: edges, the uniform graph Laplacian, area-weighted normals.

The differentiable (torch/numba) vertex normals used while fitting live in `render.shading`; this is
the plain-array version for exporters and closed-form stages, and the reference the kernel is tested
against.
"""
from __future__ import annotations

import numpy as np
from scipy import sparse


def mesh_edges(triangles: np.ndarray) -> np.ndarray:
    """Unique undirected edges (E, 2), each sorted (lo, hi), of a triangle list (F, 3)."""
    tris = np.asarray(triangles)
    e = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    e.sort(axis=1)
    return np.unique(e, axis=0)


def graph_laplacian(edges: np.ndarray, num_vertices: int) -> sparse.csr_matrix:
    """Uniform graph Laplacian L = D - A (num_vertices, num_vertices), float64, of undirected `edges` (E, 2).

    Duplicate edges count once; isolated vertices get an all-zero row.
    """
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    adj = sparse.coo_matrix((np.ones(2 * len(e)), (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])),
                            shape=(num_vertices, num_vertices)).tocsr()
    adj.data[:] = 1.0
    return (sparse.diags(np.asarray(adj.sum(axis=1)).ravel()) - adj).tocsr()


def subgraph_edges(edges: np.ndarray, keep: np.ndarray, num_vertices: int) -> np.ndarray:
    """The edges (E', 2) between the vertices `keep` (sorted ids), renumbered 0..len(keep)-1."""
    pos = np.full(num_vertices, -1)
    pos[keep] = np.arange(len(keep))
    e = pos[np.asarray(edges, dtype=np.int64)]
    return e[(e >= 0).all(axis=1)]


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(V, 3), (F, 3) -> (V, 3) unit normals, the area-weighted mean of the adjacent faces' normals
    (counter-clockwise = outward). A vertex in no (non-degenerate) triangle gets +z."""
    v = np.asarray(vertices, dtype=np.float64)
    tri = np.asarray(triangles, dtype=np.int64)
    fn = np.cross(v[tri[:, 1]] - v[tri[:, 0]], v[tri[:, 2]] - v[tri[:, 0]])
    idx = tri.T.reshape(-1)
    summed = np.stack([np.bincount(idx, np.tile(fn[:, k], 3), minlength=len(v)) for k in range(3)], axis=1)
    return unit_rows(summed)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """(N, 3) rows scaled to unit length; (near-)zero rows become +z."""
    length = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.where(length > 1e-12, vectors / np.maximum(length, 1e-300), np.array([0.0, 0.0, 1.0]))
