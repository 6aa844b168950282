"""Triangle adjacency, needed to tell silhouette edges from interior ones (antialiasing)."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

_CACHE: list[tuple[Tensor, Tensor]] = []
_CACHE_SIZE = 8


def _adjacency_numpy(tris: np.ndarray) -> np.ndarray:
    nf = tris.shape[0]
    a = tris.reshape(-1)
    b = tris[:, [1, 2, 0]].reshape(-1)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((hi, lo))
    lo_s, hi_s = lo[order], hi[order]
    same = (lo_s[1:] == lo_s[:-1]) & (hi_s[1:] == hi_s[:-1])
    # a manifold edge is a run of exactly two equal keys: same[i] true, and its neighbours false
    prev_same = np.concatenate([[False], same[:-1]])
    next_same = np.concatenate([same[1:], [False]])
    pair = same & ~prev_same & ~next_same
    adj = np.full(3 * nf, -1, np.int64)
    i = np.nonzero(pair)[0]
    e0, e1 = order[i], order[i + 1]
    adj[e0] = e1 // 3
    adj[e1] = e0 // 3
    return adj.reshape(nf, 3)


def triangle_adjacency(triangles: Tensor) -> Tensor:
    """(F, 3) -> (F, 3) long: the triangle across edge k = (v_k, v_{k+1 mod 3}).

    -1 where the edge is a boundary (one triangle) or non-manifold (three or more). Computed on the
    CPU (a copy of the triangles goes there once per mesh) and cached for the last few meshes, keyed
    on content, so calling this every frame costs one comparison.
    """
    for tris, adj in _CACHE:
        if (tris.shape == triangles.shape and tris.dtype == triangles.dtype and tris.device == triangles.device
                and torch.equal(tris, triangles)):
            return adj
    adj_np = _adjacency_numpy(triangles.detach().cpu().long().numpy())
    adj = torch.from_numpy(adj_np).to(triangles.device)
    _CACHE.insert(0, (triangles.detach().clone(), adj))
    del _CACHE[_CACHE_SIZE:]
    return adj
