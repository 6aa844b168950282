"""Array checks and small mesh operations shared by the file formats: checked (N, k) arrays, vertex
normals, dropping unused vertices, and a winding that stays consistent when a reader welds
coincident vertices.

Everything here is numpy (no torch), so writing files never imports the fitting stack.
"""
from __future__ import annotations

import hashlib
import threading

import numpy as np

from ..errors import UsageError
from ..geometry.mesh import unit_rows, vertex_normals  # noqa: F401  (re-exported for the writers)


def as_array(x, dtype, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    """An array or tensor as a numpy array of `dtype` (no copy when it already is one), checked to be
    (N, *shape_tail), finite (floats) or integer (indices).

    Accepts numpy arrays, sequences and torch tensors (duck-typed, so this module needs no torch).
    """
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1 + len(shape_tail) or tuple(arr.shape[1:]) != shape_tail:
        want = ", ".join(["N", *map(str, shape_tail)])
        raise UsageError(f"{what} must have shape ({want}), got {tuple(arr.shape)}")
    if np.issubdtype(np.dtype(dtype), np.integer):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise UsageError(f"{what} must be integer indices, got dtype {arr.dtype}")
    elif not np.isfinite(arr).all():
        raise UsageError(f"{what} contains NaN or inf values")
    return arr.astype(dtype, copy=False)


def check_indices(indices: np.ndarray, count: int, what: str) -> None:
    """Raise `UsageError` unless every index is in [0, count)."""
    if indices.size and (indices.min() < 0 or indices.max() >= count):
        raise UsageError(f"{what} indices must be in [0, {count}), got [{indices.min()}, {indices.max()}]")


def mesh_arrays(vertices, triangles, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Checked (V, 3) `dtype` vertices and (F, 3) int64 triangles indexing them."""
    verts = as_array(vertices, dtype, (3,), "vertices")
    tris = as_array(triangles, np.int64, (3,), "triangles")
    check_indices(tris, len(verts), "triangle")
    return verts, tris


def uv_arrays(uv, uv_triangles, triangles: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Checked (T, 2) float64 UVs and (F, 3) int64 UV triangles matching `triangles`, or (None, None)."""
    if (uv is None) != (uv_triangles is None):
        raise UsageError("uv and uv_triangles must be given together")
    if uv is None:
        return None, None
    uvs = as_array(uv, np.float64, (2,), "uv")
    uv_tris = as_array(uv_triangles, np.int64, (3,), "uv_triangles")
    if uv_tris.shape != triangles.shape:
        raise UsageError(f"uv_triangles {uv_tris.shape} must match triangles {triangles.shape}")
    check_indices(uv_tris, len(uvs), "uv_triangles")
    return uvs, uv_tris


def per_vertex(values, count: int, what: str) -> np.ndarray:
    """Checked (count, 3) float64 per-vertex values (normals, colours, offsets)."""
    arr = as_array(values, np.float64, (3,), what)
    if len(arr) != count:
        raise UsageError(f"{what} must be one per vertex ({count}), got {len(arr)}")
    return arr


def used_index_map(triangles: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The entries of a `count`-long array that (F, 3) `triangles` use, and the triangles remapped.

    Returns:
        kept (K,) int64, the used indices in increasing order (so a fully used array keeps its
        order), and (F, 3) triangles indexing `kept`.
    """
    used = np.zeros(count, dtype=bool)
    used[triangles.reshape(-1)] = True
    kept = np.flatnonzero(used)
    new_index = np.full(count, -1, dtype=np.int64)
    new_index[kept] = np.arange(len(kept))
    return kept, new_index[triangles]


def weld_keys(vertices: np.ndarray, decimals: int = 6) -> np.ndarray:
    """(V,) int64: one id per distinct position (rounded to `decimals` mm), as a reader that merges
    coincident vertices (trimesh's default `process=True`, Blender's "merge by distance") sees them."""
    _, inverse = np.unique(np.round(np.asarray(vertices, dtype=np.float64), decimals), axis=0,
                           return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def orient_consistently(vertices: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reverse triangles so that every edge shared by exactly two triangles of the *welded* mesh
    (coincident vertices merged) is traversed once in each direction.

    A mesh can be consistent as indexed and still not once welded: ICT's eyelash cards and the lid
    vertices they touch are duplicated, and the duplicates' triangles disagree. Within each connected
    patch the orientation of the majority of triangles is kept (a closed, outward-facing surface
    stays outward); edges used by three or more triangles do not constrain anything. A patch that
    cannot be oriented (a Moebius strip, or ICT's crossing eyelash cards, which meet at coincident
    vertices) keeps a spanning-tree orientation, and its triangles on the edges left inconsistent
    are reported.

    Returns:
        (F, 3) triangles (the reversed ones as (a, c, b)) and an (F,) bool mask of the triangles on
        an edge that is still traversed twice in the same direction.

    The answer depends only on the triangles and which vertices weld together, so it is kept for the
    last few such meshes (every fitted face of one model welds the same way): 82 ms of each save's
    PLY on the ICT head, 16 ms with the weld and the key.
    """
    tris = np.asarray(triangles, dtype=np.int64)
    if len(tris) == 0:
        return tris.copy(), np.zeros(0, dtype=bool)
    welded = weld_keys(vertices)[tris]
    key = hashlib.blake2b(np.ascontiguousarray(tris).tobytes() + np.ascontiguousarray(welded).tobytes(),
                          digest_size=16).digest()
    with _ORIENTED_LOCK:
        kept = _ORIENTED.get(key)
    if kept is None:
        kept = _orient(tris, welded)
        with _ORIENTED_LOCK:
            while len(_ORIENTED) >= _ORIENTED_KEEP:
                _ORIENTED.pop(next(iter(_ORIENTED)))
            _ORIENTED[key] = kept
    return kept[0].copy(), kept[1].copy()


_ORIENTED: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
_ORIENTED_KEEP = 4
_ORIENTED_LOCK = threading.Lock()  # saves may run in threads (the server's worker, a user's pool)


def _orient(tris: np.ndarray, welded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`orient_consistently` for (F, 3) triangles whose corners weld to `welded` (F, 3) ids."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, connected_components

    n = len(tris)
    directed = np.concatenate([welded[:, [0, 1]], welded[:, [1, 2]], welded[:, [2, 0]]])
    face = np.tile(np.arange(n), 3)
    lo, hi = directed.min(axis=1), directed.max(axis=1)
    forward = directed[:, 0] == lo
    key = lo * (int(welded.max()) + 1) + hi
    order = np.argsort(key, kind="stable")
    _, start, counts = np.unique(key[order], return_index=True, return_counts=True)
    pairs = start[counts == 2]
    a, b = order[pairs], order[pairs + 1]
    keep = face[a] != face[b]
    a, b = a[keep], b[keep]
    # two triangles agree when they traverse their shared edge in opposite directions
    fa, fb = face[a], face[b]
    opposite_flip = forward[a] == forward[b]
    graph = coo_matrix((np.ones(2 * len(fa)), (np.concatenate([fa, fb]), np.concatenate([fb, fa]))),
                       shape=(n, n)).tocsr()
    pair_key = np.concatenate([fa * n + fb, fb * n + fa])
    pair_order = np.argsort(pair_key)
    pair_sorted = pair_key[pair_order]
    pair_flip = np.concatenate([opposite_flip, opposite_flip])[pair_order]
    n_patches, patch = connected_components(graph, directed=False)
    flip = np.zeros(n, dtype=bool)
    for p in np.flatnonzero(np.bincount(patch, minlength=n_patches) > 1):
        members = np.flatnonzero(patch == p)
        visit, parent = breadth_first_order(graph, members[0], directed=False, return_predecessors=True)
        child = visit[1:]
        step = pair_flip[np.searchsorted(pair_sorted, parent[child] * n + child)].tolist()
        state = {int(visit[0]): False}
        for f, up, s_ in zip(child.tolist(), parent[child].tolist(), step):
            state[f] = state[up] ^ s_
        flip[list(state)] = list(state.values())
        if flip[members].sum() * 2 > len(members):
            flip[members] = ~flip[members]
    out = tris.copy()
    out[flip] = out[flip][:, ::-1]
    same_direction = forward[a] ^ flip[fa] == forward[b] ^ flip[fb]
    conflicted = np.zeros(n, dtype=bool)
    conflicted[fa[same_direction]] = conflicted[fb[same_direction]] = True
    return out, conflicted
