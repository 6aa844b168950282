"""Array checks and mesh operations shared by the formats: normals, compaction, consistent winding."""
from __future__ import annotations

import numpy as np

from facerecon.io import vertex_normals
from facerecon.io.arrays import orient_consistently, used_index_map, weld_keys

from .meshes import seamed_quad


def test_vertex_normals_follow_counter_clockwise_winding():
    v, t, _, _ = seamed_quad()
    flat = v.copy()
    flat[:, 2] = 0
    n = vertex_normals(flat, t)
    np.testing.assert_allclose(n, np.tile([0.0, 0.0, 1.0], (4, 1)), atol=1e-12)
    np.testing.assert_allclose(vertex_normals(flat, t[:, ::-1]), -n, atol=1e-12)
    lonely = vertex_normals(np.vstack([flat, [[5, 5, 5]]]), t)
    np.testing.assert_allclose(lonely[4], [0, 0, 1])



def test_used_index_map_keeps_order_and_remaps():
    kept, tris = used_index_map(np.array([[4, 2, 0], [0, 2, 5]]), 7)
    np.testing.assert_array_equal(kept, [0, 2, 4, 5])
    np.testing.assert_array_equal(kept[tris], [[4, 2, 0], [0, 2, 5]])


def _strip(n: int = 6):
    """A strip of 2n triangles on a grid, each vertex duplicated in a second copy used by every
    other quad (as a mesh split at seams is), so only welding connects the quads."""
    x = np.arange(n + 1, dtype=np.float64)
    top, bottom = np.stack([x, np.ones_like(x), 0 * x], 1), np.stack([x, 0 * x, 0 * x], 1)
    v = np.concatenate([bottom, top, bottom, top])  # copy 0: [0, 2n+2), copy 1: [2n+2, 4n+4)
    tris = []
    for c in range(n):
        o = 0 if c % 2 == 0 else 2 * n + 2
        b0, b1, t0, t1 = o + c, o + c + 1, o + n + 1 + c, o + n + 2 + c
        tris += [[b0, b1, t1], [b0, t1, t0]]
    return v, np.array(tris)


def test_orient_consistently_fixes_flips_seen_only_after_welding():
    v, t = _strip()
    assert len(np.unique(weld_keys(v))) == len(v) // 2
    bad = t.copy()
    bad[[2, 3, 8]] = bad[[2, 3, 8]][:, ::-1]  # one quad and a half reversed: the minority
    fixed, conflicted = orient_consistently(v, bad)
    normals = np.cross(v[fixed[:, 1]] - v[fixed[:, 0]], v[fixed[:, 2]] - v[fixed[:, 0]])
    assert (normals[:, 2] > 0).all() and not conflicted.any()


def test_orient_consistently_reports_what_cannot_be_oriented():
    # two triangles on one welded edge in the same direction: one is reversed
    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0.0, 0, 0], [1, 0, 0], [1, -1, 0]])
    fixed, conflicted = orient_consistently(v, np.array([[0, 1, 2], [3, 4, 5]]))
    assert not conflicted.any() and (fixed == [[0, 1, 2], [5, 4, 3]]).all()
    # a Moebius strip cannot be oriented: some triangles stay on a conflicting edge
    n = 6
    v = np.random.default_rng(0).normal(size=(2 * n, 3))
    b, t = np.arange(n), np.arange(n, 2 * n)
    tris = [[b[i], b[i + 1], t[i + 1]] for i in range(n - 1)] + [[b[i], t[i + 1], t[i]] for i in range(n - 1)]
    tris += [[b[n - 1], t[0], b[0]], [b[n - 1], b[0], t[n - 1]]]
    _, conflicted = orient_consistently(v, np.array(tris))
    assert 0 < conflicted.sum() < len(tris)
    e, c = orient_consistently(v, np.zeros((0, 3), dtype=np.int64))
    assert e.shape == (0, 3) and c.shape == (0,)


def test_orient_consistently_keeps_answers_by_triangles_and_weld_and_hands_out_copies():
    v, t = _strip()
    bad = t.copy()
    bad[[2, 3, 8]] = bad[[2, 3, 8]][:, ::-1]
    first, conflicted = orient_consistently(v, bad)
    first[:] = -1  # the caller's copy: the kept answer is untouched
    conflicted[:] = True
    again, conflicted_again = orient_consistently(v + 0.25, bad)  # moved, welded the same: the same answer
    normals = np.cross(v[again[:, 1]] - v[again[:, 0]], v[again[:, 2]] - v[again[:, 0]])
    assert (normals[:, 2] > 0).all() and not conflicted_again.any()
    # the copies no longer weld (copy 1 moved off copy 0): the quads are separate patches, each keeps its own
    apart = v.copy()
    apart[len(v) // 2:, 2] += 1.0
    separate, _ = orient_consistently(apart, bad)
    assert not np.array_equal(separate, again)
